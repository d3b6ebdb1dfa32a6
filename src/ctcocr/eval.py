"""ctcocr-eval: evaluate a checkpoint on any dataset config (``configs/eval.yaml``).

Writes ``metrics.json`` and ``predictions.csv`` (source, label, prediction, confidence) to the
run's output folder and prints the metrics. Example::

    ctcocr-eval ckpt_path=model.ckpt data=folder data.val_dir=my_lines split=val
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from ctcocr.data.policy import DatasetError
from ctcocr.evaluation import accelerator_device, evaluate, format_metrics, write_report
from ctcocr.module import RecognizerModule
from ctcocr.runtime import configure, user_errors
from ctcocr.train import CONFIG_DIR


def load_module(ckpt_path: str) -> RecognizerModule:
    """A trained recognizer from a checkpoint written by ctcocr-train, in eval mode on the CPU."""
    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"checkpoint not found: {ckpt_path}")
    return RecognizerModule.load_from_checkpoint(ckpt_path, map_location="cpu").eval()


def run(cfg: DictConfig) -> dict[str, Any]:
    configure(cfg)
    module = load_module(cfg.ckpt_path)
    datamodule = instantiate(cfg.data, charset=module.charset)
    if cfg.split not in ("val", "test"):
        raise DatasetError(f"split must be 'val' or 'test', got {cfg.split!r}")
    datamodule.setup("validate" if cfg.split == "val" else "test")
    loader = datamodule.val_dataloader() if cfg.split == "val" else datamodule.test_dataloader()
    metrics, rows = evaluate(module, loader, accelerator_device(cfg.trainer.accelerator), cfg.trainer.precision)
    report = write_report(cfg.paths.output_dir, metrics, rows)
    print(f"{cfg.split} metrics ({report}):\n{format_metrics(metrics)}")
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
