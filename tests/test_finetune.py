"""Fine-tuning from a checkpoint: charset policies, weights moved by character, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import open_dict
from torch.utils.data import DataLoader

from ctcocr.cli.common import instantiate_all
from ctcocr.data.charset import Charset
from ctcocr.recognition import Recognizer
from ctcocr.training.callbacks import FreezeBackbone
from ctcocr.training.finetune import (
    FineTuneError,
    check_compatible,
    fine_tuned_charset,
    fine_tuning_module,
    transfer_weights,
)
from ctcocr.training.module import RecognizerModule
from tests.conftest import TINY, compose_config

MODEL = {"_target_": "ctcocr.models.CRNN", "hidden_size": 8, "shortcut": True,
         "backbone": {"_target_": "ctcocr.models.SmallBackbone", "channels": [4, 4, 4, 4, 8]}}
PREPROCESSING = {"height": 32, "min_width": 32, "max_width": 1024, "normalize": True}


def recognizer(chars: str, seed: int) -> Recognizer:
    torch.manual_seed(seed)
    charset = {"_target_": "ctcocr.data.charset.Charset", "chars": chars}
    return Recognizer.from_config(charset, MODEL, PREPROCESSING).eval()


def test_new_keeps_the_configured_charset_and_union_appends_to_the_base():
    base, configured = Charset("abc"), Charset("dcb")
    assert fine_tuned_charset(base, configured, "new").characters == "dcb"
    assert fine_tuned_charset(base, configured, "union").characters == "abcd"
    with pytest.raises(FineTuneError, match="case"):
        fine_tuned_charset(base, Charset("ab", case="lower"), "union")
    with pytest.raises(FineTuneError, match="init_charset"):
        fine_tuned_charset(base, configured, "both")


def test_union_keeps_the_base_normal_form_and_a_different_form_is_named():
    base = Charset("ab", unicode_normalization="NFD")
    union = fine_tuned_charset(base, Charset("bc", unicode_normalization="NFD"), "union")
    assert union.characters == "abc" and union.unicode_normalization == "NFD"
    with pytest.raises(FineTuneError, match="unicode_normalization=NFD"):
        fine_tuned_charset(base, Charset("bc"), "union")


@pytest.mark.parametrize("chars", ["abcd", "dcb"], ids=["union", "new"])
def test_class_rows_move_by_character_and_everything_else_is_copied(chars):
    base, target = recognizer("abc", seed=0), recognizer(chars, seed=1)
    fresh = {name: value.clone() for name, value in target.state_dict().items()}
    counts = transfer_weights(base, target)
    shared = [c for c in chars if c in "abc"]
    assert counts == {"kept": len(shared), "new": len(chars) - len(shared),
                      "dropped": 3 - len(shared)}
    row = {c: i for i, c in enumerate(chars, start=1)}
    base_row = {c: i for i, c in enumerate("abc", start=1)}
    class_layers = dict(zip(target.model.class_layers(), base.model.class_layers()))
    for layer, base_layer in class_layers.items():
        for name in ("weight", "bias"):
            got, want = getattr(layer, name), getattr(base_layer, name)
            torch.testing.assert_close(got[0], want[0])  # blank
            for char in shared:
                torch.testing.assert_close(got[row[char]], want[base_row[char]])
    class_names = {"model.sequence.1.projection.weight", "model.sequence.1.projection.bias",
                   "model.shortcut.weight", "model.shortcut.bias"}
    state, base_state = target.state_dict(), base.state_dict()
    assert class_names < set(state)
    for name in set(state) - class_names:  # the rest of the network, batch-norm statistics too
        torch.testing.assert_close(state[name], base_state[name])
    if "d" in chars:  # a character the base lacks keeps its fresh initialisation
        torch.testing.assert_close(state["model.shortcut.weight"][row["d"]],
                                   fresh["model.shortcut.weight"][row["d"]])


def test_after_a_union_the_base_characters_score_as_before():
    base, target = recognizer("abc", seed=0), recognizer("abcd", seed=1)
    transfer_weights(base, target)
    images, widths = torch.rand(2, 1, 32, 80) * 2 - 1, torch.tensor([80, 61])
    with torch.no_grad():
        (before, _), (after, _) = base(images, widths), target(images, widths)
    # log-probability ratios between the base classes are unchanged by the added class
    torch.testing.assert_close(after[..., :4] - after[..., :1], before - before[..., :1])


def test_a_different_network_or_preprocessing_is_named():
    base = recognizer("abc", seed=0)
    wider = {**MODEL, "hidden_size": 16, "backbone": {**MODEL["backbone"], "channels": [8] * 5}}
    with pytest.raises(FineTuneError) as error:
        check_compatible(base, wider, {**PREPROCESSING, "height": 64})
    message = str(error.value)
    for key in ("model.hidden_size", "model.backbone.channels", "data.height"):
        assert key in message
    assert "model.shortcut" not in message
    check_compatible(base, MODEL, PREPROCESSING)  # the same network passes


def save_checkpoint(module: RecognizerModule, path: Path) -> Path:
    torch.save({"hyper_parameters": dict(module.hparams),
                "state_dict": module.state_dict()}, path)
    return path


def test_train_config_with_init_from_starts_from_the_checkpoint(tmp_path):
    cfg = compose_config("train", [*TINY, "charset.chars=abc"], tmp_path)
    base = RecognizerModule.from_train_config(cfg)
    checkpoint = save_checkpoint(base, tmp_path / "base.ckpt")
    with open_dict(cfg):
        cfg.charset.chars = "abx"
        cfg.init_from = str(checkpoint)
    module = fine_tuning_module(cfg)
    assert module.charset.characters == "abcx"  # union by default
    projection = module.recognizer.model.sequence[-1].projection.weight
    torch.testing.assert_close(projection[:4], base.recognizer.model.sequence[-1].projection.weight)
    with open_dict(cfg):
        cfg.ckpt_path = str(checkpoint)
    with pytest.raises(FineTuneError, match="not both"):
        fine_tuning_module(cfg)


def test_ctcocr_train_names_the_mismatch_in_one_line(tmp_path):
    cfg = compose_config("train", [*TINY, "charset.chars=abc"], tmp_path)
    checkpoint = save_checkpoint(RecognizerModule.from_train_config(cfg), tmp_path / "base.ckpt")
    result = subprocess.run(
        [sys.executable, "-m", "ctcocr.cli.train", *TINY, "model.hidden_size=32",
         f"init_from={checkpoint}", f"hydra.run.dir={tmp_path}/run"],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "model.hidden_size: 16 in the base model, 32 configured" in result.stderr


def tiny_module() -> RecognizerModule:
    torch.manual_seed(0)
    return RecognizerModule(
        charset={"_target_": "ctcocr.data.charset.Charset", "chars": "abc"}, model=MODEL,
        preprocessing=PREPROCESSING, loss={"_target_": "ctcocr.losses.CTCLoss"},
        optimizer={"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 0.01})


def batches(count: int) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    batch = {"images": torch.rand(4, 1, 32, 64, generator=generator) * 2 - 1,
             "widths": torch.tensor([64, 60, 50, 40]),
             "targets": torch.tensor([[1, 2], [2, 3], [3, 0], [1, 0]]),
             "target_lengths": torch.tensor([2, 2, 1, 1]), "sources": ["a", "b", "c", "d"]}
    return DataLoader([batch] * count, batch_size=None)


@pytest.mark.parametrize("steps", [2, 4])
def test_the_backbone_stays_frozen_for_its_steps_then_trains(steps):
    module = tiny_module()
    before = {name: value.clone() for name, value in module.recognizer.state_dict().items()}
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[FreezeBackbone(2)])
    trainer.fit(module, batches(steps))
    after = module.recognizer.state_dict()
    backbone = [name for name in after if name.startswith("model.backbone.")]
    moved = {name for name in after if not torch.equal(after[name], before[name])}
    assert "model.shortcut.weight" in moved  # the head trains from the first step
    if steps == 2:
        assert not moved & set(backbone)  # weights and batch-norm statistics alike
    else:
        assert "model.backbone.features.0.weight" in moved


def test_the_finetune_preset_freezes_lowers_the_rate_and_stops_early(tmp_path):
    cfg = compose_config("train", ["experiment=finetune"], tmp_path)
    kinds = {type(c).__name__ for c in instantiate_all(cfg.callbacks)}
    assert {"FreezeBackbone", "EarlyStopping", "ModelCheckpoint"} <= kinds
    default = compose_config("train", [], tmp_path)
    assert cfg.optimizer.lr < default.optimizer.lr
    assert not cfg.scheduler  # a constant rate: early stopping cuts no annealing short
