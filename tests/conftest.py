"""Shared fixtures: Hydra configs composed the way the entry points compose them."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import ctcocr.cli.common  # noqa: F401 - registers the config resolvers the configs use
from ctcocr.resources import CONFIG_DIR

#: Overrides that make any train config tiny: seconds on a CPU, no logs outside tmp_path.
TINY = [
    "data=tiny",
    "trainer=cpu",
    "trainer.precision=32-true",
    "trainer.max_steps=4",
    "trainer.val_check_interval=2",
    "trainer.limit_val_batches=1",
    "trainer.log_every_n_steps=1",
    "trainer.num_sanity_val_steps=0",
    "model.hidden_size=16",
    "model.backbone.channels=[4,4,8,8,8]",
    "threads=null",
    "extras.print_config=false",
]


def compose_config(name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose ``configs/<name>.yaml`` with Hydra's compose API, writing under ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose(config_name=name, overrides=overrides, return_hydra_config=True)
        HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.root_dir = str(output_dir)
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir / "logs")
    return cfg


@pytest.fixture
def tiny_train_cfg(tmp_path: Path) -> DictConfig:
    yield compose_config("train", TINY, tmp_path)
    GlobalHydra.instance().clear()
