"""The guarded step: non-finite gradients skip the optimizer step without a trace in the weights,
buffers or optimizer state; too many in a row stop training with one message."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from ctcocr.training.callbacks import SkipNonFiniteSteps, TrainingDiverged
from ctcocr.training.module import RecognizerModule

MODEL = {"_target_": "ctcocr.models.CRNN", "hidden_size": 8, "shortcut": True,
         "backbone": {"_target_": "ctcocr.models.SmallBackbone", "channels": [4, 4, 4, 4, 8]}}


def module() -> RecognizerModule:
    torch.manual_seed(0)
    return RecognizerModule(
        charset={"_target_": "ctcocr.data.charset.Charset", "chars": "abc"}, model=MODEL,
        preprocessing={"height": 32, "min_width": 32, "max_width": 1024},
        loss={"_target_": "ctcocr.losses.CTCLoss"},
        optimizer={"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 0.01})


def batch(poisoned: bool = False) -> dict:
    images = torch.rand(4, 1, 32, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    if poisoned:  # one NaN pixel: a NaN loss, NaN gradients and NaN batch-norm statistics
        images[2, 0, 5, 7] = float("nan")
    return {"images": images, "widths": torch.tensor([64, 60, 50, 40]),
            "targets": torch.tensor([[1, 2], [2, 3], [3, 0], [1, 0]]),
            "target_lengths": torch.tensor([2, 2, 1, 1]),
            "sources": [f"gt.txt:{i}" for i in range(1, 5)]}


def fit(batches: list[dict], guard: SkipNonFiniteSteps) -> RecognizerModule:
    trained = module()
    trainer = L.Trainer(max_steps=len(batches), accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[guard])
    trainer.fit(trained, DataLoader(batches, batch_size=None))
    return trained


def test_a_poisoned_batch_leaves_no_trace():
    guard = SkipNonFiniteSteps()
    skipped = fit([batch(), batch(poisoned=True), batch(), batch()], guard).state_dict()
    clean = fit([batch(), batch(), batch()], SkipNonFiniteSteps()).state_dict()
    assert guard.skipped == 1 and guard.consecutive == 0
    for name, value in clean.items():  # weights and batch-norm statistics, bit for bit
        assert torch.equal(skipped[name], value), name


def test_non_finite_gradients_of_a_finite_loss_are_skipped_too():
    guard = SkipNonFiniteSteps()
    trained = module()
    calls = []

    def poison_second_step(gradient: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return gradient * float("inf") if len(calls) == 2 else gradient

    trained.recognizer.model.shortcut.weight.register_hook(poison_second_step)
    trainer = L.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[guard])
    trainer.fit(trained, DataLoader([batch()] * 3, batch_size=None))
    assert guard.skipped == 1
    assert all(torch.isfinite(p).all() for p in trained.parameters())


def test_too_many_in_a_row_stop_with_the_step_and_the_samples():
    with pytest.raises(TrainingDiverged) as stopped:
        fit([batch(), batch(poisoned=True), batch(poisoned=True), batch()],
            SkipNonFiniteSteps(max_consecutive=2))
    message = str(stopped.value)
    assert "step 2" in message and "2 optimizer steps in a row" in message  # steps 0, 1, 2
    assert "gt.txt:1" in message and "\n" not in message
