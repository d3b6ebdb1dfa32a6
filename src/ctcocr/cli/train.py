"""ctcocr-train: train a recognizer from the Hydra config ``configs/train.yaml``.

Examples::

    ctcocr-train                                  # the embedded default (synthetic text, CPU)
    ctcocr-train loss=focal trainer.max_steps=2000
    ctcocr-train data=folder data.train=/data/train data.val=/data/val trainer=gpu
    ctcocr-train ckpt_path=logs/train/runs/.../checkpoints/last.ckpt   # resume
    ctcocr-train ckpt_path=last          # resume the newest run's checkpoints/last.ckpt
"""

from __future__ import annotations

import json
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
from ctcocr.training.resume import latest_last_checkpoint

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the model, then evaluate the best checkpoint on the test split; returns all metrics
    (also written to the run folder's ``metrics.json``: fit minutes, the last logged values, the
    samples skipped by reason, the test metrics)."""
    configure(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    module = fine_tuning_module(cfg) if cfg.get("init_from") else \
        RecognizerModule.from_train_config(cfg)
    augment = cfg.get("augment") or None  # a config Hydra instantiates (augment=none is empty)
    datamodule = instantiate(cfg.data, charset=module.charset, train_augment=augment)
    datamodule.check_paths()  # a wrong path fails in seconds, before the trainer is built
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=instantiate_all(cfg.get("callbacks")),
        logger=instantiate_all(cfg.get("logger")) or False,
    )
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path == "last":
        ckpt_path = latest_last_checkpoint(Path(cfg.paths.log_dir) / cfg.task_name / "runs")
    metrics: dict[str, Any] = {}
    if cfg.get("train"):
        started = time.perf_counter()
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics["fit_minutes"] = (time.perf_counter() - started) / 60
        log.info("training took %.1f minutes for %d steps", metrics["fit_minutes"], trainer.global_step)
    metrics.update({name: float(value) for name, value in trainer.callback_metrics.items()})
    skipped = datamodule.skipped_labels()
    for logger in trainer.loggers:
        logger.log_metrics({name: float(count) for name, count in skipped.items()},
                           step=trainer.global_step)
        logger.save()
    metrics.update(skipped)
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
    if trainer.is_global_zero:
        path = Path(cfg.paths.output_dir) / "metrics.json"
        path.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@user_errors
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()
