"""Every config group option and every experiment composes and instantiates."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate
from PIL import Image

from ctcocr.data.lmdb_dataset import folder_to_lmdb
from ctcocr.module import RecognizerModule
from ctcocr.runtime import instantiate_all, to_dict
from ctcocr.train import CONFIG_DIR
from tests.conftest import TINY, compose_config

GROUPS = ["charset", "data", "model", "loss", "optimizer", "scheduler", "trainer", "callbacks",
          "logger", "experiment", "debug"]


def user_files(group: str, option: str, tmp_path: Path) -> list[str]:
    """Overrides pointing the options that read the user's files at small files made here."""
    if (group, option) == ("charset", "file"):
        chars = tmp_path / "chars.txt"
        chars.write_text("a\nb\nc\n \n")
        return [f"charset.file={chars}"]
    if group == "data" and option in ("folder", "lmdb"):
        folder = tmp_path / "lines"
        folder.mkdir()
        Image.new("L", (60, 20), 255).save(folder / "1.png")
        (folder / "gt.txt").write_text("1.png\tabc\n")
        if option == "lmdb":
            folder_to_lmdb(folder, tmp_path / "lmdb")
            folder = tmp_path / "lmdb"
        return [f"data.train={folder}", f"data.val={folder}"]
    return []


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


def build(cfg):
    """Instantiate what ctcocr-train instantiates, without fitting."""
    module = RecognizerModule(
        charset=to_dict(cfg.charset), model=to_dict(cfg.model), loss=to_dict(cfg.loss),
        optimizer=to_dict(cfg.optimizer), scheduler=to_dict(cfg.scheduler) or None,
        **cfg.get("module", {}),
    )
    datamodule = instantiate(cfg.data, charset=module.charset)
    callbacks = instantiate_all(cfg.get("callbacks"))
    loggers = instantiate_all(cfg.get("logger"))
    return module, datamodule, callbacks, loggers


def test_every_group_has_options():
    for group in GROUPS:
        assert options(group), f"configs/{group} is empty"


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in GROUPS if g not in ("experiment",) for o in options(g)]
)
def test_group_option_composes_and_instantiates(group, option, tmp_path):
    overrides = [o for o in TINY if not o.startswith((f"{group}=", f"{group}."))] + [f"{group}={option}"]
    cfg = compose_config("train", overrides + user_files(group, option, tmp_path), tmp_path)
    if group == "trainer":
        trainer = instantiate(cfg.trainer, accelerator="cpu", devices=1, strategy="auto",
                              precision="32-true", logger=False)
        assert trainer.max_steps == cfg.trainer.max_steps
        return
    module, datamodule, _callbacks, _loggers = build(cfg)
    assert module.model.num_classes == module.charset.num_classes
    assert datamodule is not None


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiment_composes_and_instantiates(experiment, tmp_path):
    cfg = compose_config("train", [f"experiment={experiment}"], tmp_path)
    module, _datamodule, _callbacks, _loggers = build(cfg)
    assert sum(p.numel() for p in module.parameters()) > 0
    assert cfg.trainer.max_steps > 0


@pytest.mark.parametrize("name", ["eval", "predict", "export"])
def test_other_entry_point_configs_compose(name, tmp_path):
    cfg = compose_config(name, ["ckpt_path=x.ckpt", "inputs=x.png"] if name == "predict" else
                         ["ckpt_path=x.ckpt"], tmp_path)
    assert cfg.task_name == name
