"""ctcocr-train: train a recognizer from the Hydra config ``configs/train.yaml``.

Examples::

    ctcocr-train                                  # the embedded default (synthetic text, CPU)
    ctcocr-train loss=focal trainer.max_steps=2000
    ctcocr-train data=folder data.train=/data/train data.val=/data/val trainer=gpu
    ctcocr-train ckpt_path=logs/train/runs/.../checkpoints/last.ckpt   # resume
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from ctcocr.evaluation import accelerator_device, evaluate, format_metrics, write_report
from ctcocr.module import RecognizerModule
from ctcocr.runtime import configure, instantiate_all, to_dict, user_errors

log = logging.getLogger(__name__)
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the model, then evaluate the best checkpoint on the test split; returns all metrics."""
    configure(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    module = RecognizerModule(
        charset=to_dict(cfg.charset), model=to_dict(cfg.model), loss=to_dict(cfg.loss),
        optimizer=to_dict(cfg.optimizer), scheduler=to_dict(cfg.scheduler) or None,
        **cfg.get("module", {}),
    )
    datamodule = instantiate(cfg.data, charset=module.charset)
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=instantiate_all(cfg.get("callbacks")),
        logger=instantiate_all(cfg.get("logger")) or False,
    )
    metrics: dict[str, Any] = {}
    if cfg.get("train"):
        started = time.perf_counter()
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        metrics["fit_minutes"] = (time.perf_counter() - started) / 60
        log.info("training took %.1f minutes for %d steps", metrics["fit_minutes"], trainer.global_step)
    metrics.update({name: float(value) for name, value in trainer.callback_metrics.items()})
    if cfg.get("test") and trainer.is_global_zero:
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if best:
            module = RecognizerModule.load_from_checkpoint(best, map_location="cpu")
        datamodule.setup("test")
        test_metrics, rows = evaluate(module, datamodule.test_dataloader(), accelerator_device(cfg.trainer.accelerator),
                                      cfg.trainer.precision)
        report = write_report(Path(cfg.paths.output_dir) / "test", test_metrics, rows)
        log.info("best checkpoint: %s", best or "(last weights)")
        print(f"test metrics ({report}):\n{format_metrics(test_metrics)}")
        metrics.update({f"test/{name}": value for name, value in test_metrics.items()})
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@user_errors
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    value = metrics.get(cfg.get("optimized_metric", "val/acc"))
    return None if value is None else float(value)


if __name__ == "__main__":
    main()
