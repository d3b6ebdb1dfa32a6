"""Every config group option and every experiment composes, instantiates and takes a training step;
the configured callbacks monitor metrics the module logs, and early stopping does stop."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EarlyStopping
from omegaconf import DictConfig
from PIL import Image
from torch.utils.data import DataLoader

from ctcocr.cli.common import instantiate_all
from ctcocr.cli.train import train
from ctcocr.data.lmdb_dataset import folder_to_lmdb
from ctcocr.metrics import TextMetrics
from ctcocr.resources import CONFIG_DIR
from ctcocr.training.callbacks import EvaluateBestCheckpoint
from ctcocr.training.module import RecognizerModule
from tests.conftest import TINY, compose_config
from tests.xml_pages import write_page

GROUPS = ["charset", "data", "model", "loss", "optimizer", "scheduler", "trainer", "callbacks",
          "logger", "experiment", "debug"]
#: What the trainer configs ask for that this CPU-only test cannot give.
CPU_ONLY = {"accelerator": "cpu", "devices": 1, "strategy": "auto", "precision": "32-true"}
#: Few synthetic lines and only the committed fonts: the configs with full-size synthetic data.
SMALL_SYNTH = [f"++data.{split}.{key}={value}" for split in ("train", "val", "test")
               for key, value in (("size", 8), ("system_fonts", "false"))]
#: The training step below runs on one validation batch: a small one.
SMALL_BATCH = "data.eval_batch_size=4"


def user_files(group: str, option: str, tmp_path: Path) -> list[str]:
    """Overrides pointing the options that read the user's files at small files made here, and
    shrinking the full-size synthetic data sets."""
    if (group, option) == ("charset", "file"):
        chars = tmp_path / "chars.txt"
        chars.write_text("a\nb\nc\n \n")
        return [f"charset.file={chars}"]
    if (group, option) == ("data", "folder"):  # a folder dataset for train, an LMDB one for val
        folder = tmp_path / "lines"
        folder.mkdir()
        Image.new("L", (60, 20), 255).save(folder / "1.png")
        (folder / "gt.txt").write_text("1.png\tabc\n")
        folder_to_lmdb(folder, tmp_path / "lmdb")
        return [f"data.train={folder}", f"data.val={tmp_path / 'lmdb'}"]
    if group == "data" and option in ("page", "alto"):  # one ALTO page (PAGE: tests/data)
        xml, _ = write_page(tmp_path / "pages", "p", [("l1", "abc", 0.0)], "alto4")
        return [f"data.train={xml}", f"data.val={xml}"]
    if group == "data" and option != "tiny":
        return SMALL_SYNTH
    return []


def options(group: str) -> list[str]:
    """The selectable options of a config group (``_*.yaml`` files are shared parts, not options)."""
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml")
                  if not p.stem.startswith("_"))


def build(cfg):
    """Instantiate what ctcocr-train instantiates, without fitting (on the CPU, in float32)."""
    module = RecognizerModule.from_train_config(cfg)
    datamodule = instantiate(cfg.data, charset=module.charset)
    callbacks = instantiate_all(cfg.get("callbacks"))
    loggers = instantiate_all(cfg.get("logger"))
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **CPU_ONLY)
    return module, datamodule, trainer


def training_step(module: RecognizerModule, datamodule, trainer: L.Trainer) -> None:
    """One optimizer and scheduler step on a validation batch, checked on the way: the data's
    images fit the model, its labels encode, the loss is finite and every parameter learns."""
    module.trainer = trainer  # configure_optimizers asks it for the step budget
    optimizers = module.configure_optimizers()
    datamodule.setup("validate")
    batch = next(iter(datamodule.val_dataloader()))
    log_probs, lengths = module(batch["images"], batch["widths"])
    assert log_probs.shape[1:] == (len(batch["texts"]), module.charset.num_classes)
    assert 0 < int(lengths.max()) <= log_probs.shape[0]
    output = module.loss(log_probs, batch["targets"], lengths, batch["target_lengths"])
    assert torch.isfinite(output.loss)
    output.loss.backward()
    trained = [p for p in module.recognizer.model.parameters() if p.requires_grad]
    assert trained and all(p.grad is not None for p in trained)
    before = [p.detach().clone() for p in trained]
    optimizers["optimizer"].step()
    if "lr_scheduler" in optimizers:
        optimizers["lr_scheduler"]["scheduler"].step()
    assert any(not torch.equal(old, new) for old, new in zip(before, trained))


def test_every_group_has_options():
    for group in GROUPS:
        assert options(group), f"configs/{group} is empty"


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in GROUPS if g not in ("experiment",) for o in options(g)]
)
def test_group_option_composes_and_takes_a_step(group, option, tmp_path):
    overrides = [o for o in TINY if not o.startswith((f"{group}=", f"{group}."))] + [f"{group}={option}"]
    overrides += [SMALL_BATCH, *user_files(group, option, tmp_path)]
    cfg = compose_config("train", overrides, tmp_path)
    module, datamodule, trainer = build(cfg)
    training_step(module, datamodule, trainer)


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiment_composes_and_takes_a_step(experiment, tmp_path):
    cfg = compose_config("train", [f"experiment={experiment}", *SMALL_SYNTH, SMALL_BATCH], tmp_path)
    module, datamodule, trainer = build(cfg)
    # the run validates (and so keeps a best checkpoint) at least once within its step budget
    assert 0 < cfg.trainer.val_check_interval <= cfg.trainer.max_steps
    training_step(module, datamodule, trainer)


@pytest.mark.parametrize("name", ["eval", "predict", "export"])
def test_other_entry_point_configs_compose(name, tmp_path):
    cfg = compose_config(name, ["ckpt_path=x.ckpt", "inputs=x.png"] if name == "predict" else
                         ["ckpt_path=x.ckpt"], tmp_path)
    assert cfg.task_name == name


def test_no_config_names_a_removed_key():
    """Keys the code no longer reads (a config naming one would be silently ignored); loss.blank is
    checked in tests/losses/test_loss_configs.py."""
    removed = ("optimized_metric",)
    for path in sorted(Path(CONFIG_DIR).rglob("*.yaml")):
        text = path.read_text()
        for key in removed:
            assert key not in text, f"{path.relative_to(CONFIG_DIR)} mentions {key!r}"


# --- the callbacks ---


def test_callbacks_monitor_metrics_the_module_logs(tmp_path):
    logged = {f"val/{name}" for name in TextMetrics().compute()}  # RecognizerModule._log_metrics
    cfg = compose_config("train", [*TINY, "callbacks=[default,early_stopping]"], tmp_path)
    monitors = {name: entry.monitor for name, entry in cfg.callbacks.items()
                if entry and entry.get("monitor")}
    assert set(monitors) == {"model_checkpoint", "early_stopping"}
    assert set(monitors.values()) <= logged, monitors


def test_make_train_scores_the_real_lines_of_the_checkout(tmp_path):
    """`make train` adds callbacks=[default,real_lines]: the best checkpoint is also read on
    data/real_lines, the real-line development set."""
    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    assert '"callbacks=[default,real_lines]"' in makefile
    cfg = compose_config("train", ["callbacks=[default,real_lines]"], tmp_path)
    (evaluate,) = [c for c in instantiate_all(cfg.callbacks)
                   if isinstance(c, EvaluateBestCheckpoint)]
    real = evaluate.sets.real_lines
    assert real.split == "val" and evaluate.temperature_set is None
    assert Path(real.data.val) == Path(cfg.paths.root_dir) / "data" / "real_lines"
    assert (Path(__file__).parents[1] / "data" / "real_lines" / "gt.txt").is_file()
    assert isinstance(cfg.callbacks.model_checkpoint, DictConfig)  # the defaults stay


def test_early_stopping_is_left_out_of_the_fixed_budget_default(tmp_path):
    cfg = compose_config("train", [], tmp_path)
    assert cfg.scheduler._target_.endswith("OneCycleLR")  # anneals to the last step of the budget
    assert not any(isinstance(c, EarlyStopping) for c in instantiate_all(cfg.callbacks))


def test_early_stopping_can_fire_within_the_default_budget(tmp_path):
    """The bug this replaces: patience 20 validations in a run that validates 5 times."""
    cfg = compose_config("train", ["callbacks=[default,early_stopping]"], tmp_path)
    validations = cfg.trainer.max_steps // cfg.trainer.val_check_interval
    assert cfg.callbacks.early_stopping.patience + 1 <= validations


VAL_INTERVAL = 2


class ScriptedCER(L.LightningModule):
    """Trains a single weight; each validation logs the next value of ``cer`` as val/cer."""

    def __init__(self, cer: list[float]) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.cer = cer
        self.validations = 0

    def training_step(self, batch, batch_idx):
        return (self.weight - batch.mean()) ** 2

    def validation_step(self, batch, batch_idx):
        pass

    def on_validation_epoch_end(self):
        self.log("val/cer", self.cer[self.validations])
        self.validations += 1

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def configured_early_stopping(tmp_path: Path, validations: int) -> tuple[EarlyStopping, L.Trainer]:
    """The early stopping callbacks=[...,early_stopping] configures, in the train config's trainer
    validating every VAL_INTERVAL steps for at most ``validations`` validations."""
    cfg = compose_config("train", [*TINY, "callbacks=[default,early_stopping]",
                                   f"trainer.val_check_interval={VAL_INTERVAL}",
                                   f"trainer.max_steps={VAL_INTERVAL * validations}"], tmp_path)
    early_stopping = instantiate(cfg.callbacks.early_stopping)
    trainer = instantiate(cfg.trainer, callbacks=[early_stopping], logger=False,
                          enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False, **CPU_ONLY)
    return early_stopping, trainer


def fit(trainer: L.Trainer, cer: list[float]) -> int:
    """Fit ScriptedCER; the number of validations it ran."""
    module = ScriptedCER(cer)
    data = DataLoader(torch.randn(1000, 1), batch_size=4)
    trainer.fit(module, train_dataloaders=data, val_dataloaders=DataLoader(torch.zeros(1, 1)))
    assert trainer.global_step == VAL_INTERVAL * module.validations  # stopped after a validation
    return module.validations


def test_configured_early_stopping_stops_a_run_whose_cer_stagnates(tmp_path):
    early_stopping, trainer = configured_early_stopping(tmp_path, validations=20)
    best = 0.5
    # after the best, `patience` validations that are worse or better by less than min_delta
    stagnant = [best - 0.9 * early_stopping.min_delta if i % 2 else best + 0.1
                for i in range(early_stopping.patience)]
    cer = [0.9, best, *stagnant]
    cer += [0.1] * (20 - len(cer))  # what a run that went on would have reached
    assert fit(trainer, cer) == 2 + early_stopping.patience < len(cer)
    assert early_stopping.stopped_epoch is not None and trainer.should_stop


def test_configured_early_stopping_lets_an_improving_run_finish(tmp_path):
    early_stopping, trainer = configured_early_stopping(tmp_path, validations=20)
    step = 2 * abs(early_stopping.min_delta)  # each validation improves by twice min_delta
    assert fit(trainer, [0.9 - step * i for i in range(20)]) == 20


def test_training_runs_without_a_logger(tmp_path):
    """logger=none also drops the callbacks that need a logger (the learning-rate monitor)."""
    cfg = compose_config("train", [*TINY, "logger=none", "test=false"], tmp_path)
    assert cfg.logger is None and cfg.callbacks.lr_monitor is None
    train(cfg)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
