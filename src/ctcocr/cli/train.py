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

from ctcocr.cli.common import configure, instantiate_all, user_errors
from ctcocr.evaluation import evaluate, format_metrics, write_report
from ctcocr.recognition import Recognizer, accelerator_device
from ctcocr.resources import CONFIG_DIR
from ctcocr.training.finetune import fine_tuning_module
from ctcocr.training.module import RecognizerModule

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the model, then evaluate the best checkpoint on the test split; returns all metrics."""
    configure(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    module = fine_tuning_module(cfg) if cfg.get("init_from") else \
        RecognizerModule.from_train_config(cfg)
    datamodule = instantiate(cfg.data, charset=module.charset)
    datamodule.check_paths()  # a wrong path fails in seconds, before the trainer is built
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
        recognizer = Recognizer.from_checkpoint(best) if best else module.recognizer
        datamodule.setup("test")
        test_metrics, rows = evaluate(recognizer, datamodule.test_dataloader(),
                                      accelerator_device(cfg.trainer.accelerator))
        report = write_report(Path(cfg.paths.output_dir) / "test", test_metrics, rows)
        log.info("best checkpoint: %s", best or "(last weights)")
        print(f"test metrics ({report}):\n{format_metrics(test_metrics)}")
        metrics.update({f"test/{name}": value for name, value in test_metrics.items()})
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@user_errors
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()
