"""Every config in configs/loss composes with Hydra, instantiates and runs on a small batch; the
shared arguments live in loss/_base.yaml only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ctcocr.data.charset import Charset
from ctcocr.losses import CTCLoss, CTCLossBase, LossOutput
from ctcocr.resources import CONFIG_DIR

LOSS_DIR = Path(CONFIG_DIR) / "loss"
BASE = LOSS_DIR / "_base.yaml"
NAMES = sorted(path.stem for path in LOSS_DIR.glob("*.yaml") if not path.stem.startswith("_"))


def composed(name: str, overrides: list[str] | None = None):
    """configs/loss/<name>.yaml as Hydra composes it (defaults list applied)."""
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        return compose(f"loss/{name}", overrides=overrides or []).loss


def test_the_expected_configs_exist():
    assert set(NAMES) >= {"builtin", "custom", "focal", "reweighted", "smoothed"}


@pytest.mark.parametrize("name", NAMES)
def test_config_instantiates_and_runs(name):
    assert (LOSS_DIR / f"{name}.yaml").read_text().startswith("#"), (
        "each config starts with a comment saying what it is"
    )
    loss = instantiate(composed(name))
    assert isinstance(loss, CTCLossBase)
    logits = torch.randn(10, 2, 5, requires_grad=True)
    targets = torch.tensor([[1, 2, 2], [3, 4, 0]])
    output = loss(logits.log_softmax(-1), targets, torch.tensor([10, 8]), torch.tensor([3, 2]))
    assert isinstance(output, LossOutput)
    output.loss.backward()
    assert torch.isfinite(output.loss) and torch.isfinite(logits.grad).all()
    assert output.num_infinite == 0


@pytest.mark.parametrize("name", NAMES)
def test_each_config_states_only_its_own_keys(name):
    """The shared arguments come from _base.yaml; a variant repeats one only to change it."""
    base = OmegaConf.load(BASE)
    own = OmegaConf.load(LOSS_DIR / f"{name}.yaml")
    assert list(own.defaults) == ["_base", "_self_"]
    repeated = [key for key in base if key in own and own[key] == base[key]]
    assert not repeated, f"loss/{name}.yaml repeats {repeated} of loss/_base.yaml"
    config = composed(name)
    assert {key: config[key] for key in base} == {key: own.get(key, base[key]) for key in base}


@pytest.mark.parametrize("name", NAMES)
def test_a_shared_argument_is_overridden_in_any_variant(name):
    loss = instantiate(composed(name, ["loss.reduction=sum", "loss.zero_infinity=false"]))
    assert (loss.reduction, loss.zero_infinity) == ("sum", False)


def test_the_blank_is_the_charsets_class_0_and_no_setting():
    assert CTCLossBase.blank == Charset("ab").blank == 0
    for name in NAMES:
        assert "blank" not in composed(name), f"loss/{name}.yaml sets the blank"
    with pytest.raises(TypeError, match="blank"):
        CTCLoss(blank=1)
