"""The LightningModule's training step: infeasible labels are dropped and counted, never inf/NaN."""

from __future__ import annotations

import torch

from ctcocr.training.module import RecognizerModule

CONFIGS = {
    "charset": {"_target_": "ctcocr.data.charset.Charset", "chars": "abc"},
    "model": {"_target_": "ctcocr.models.CRNN", "hidden_size": 8,
           "backbone": {"_target_": "ctcocr.models.SmallBackbone", "channels": [4, 4, 8, 8, 8]}},
    "preprocessing": {"height": 32, "min_width": 32, "max_width": 1024},
    "loss": {"_target_": "ctcocr.losses.CTCLoss", "zero_infinity": False},
    "optimizer": {"_target_": "torch.optim.AdamW", "_partial_": True},
}


def batch(widths: list[int], labels: list[str]) -> dict:
    module_charset = {"a": 1, "b": 2, "c": 3}
    targets = torch.zeros(len(labels), max(map(len, labels), default=0), dtype=torch.long)
    for row, label in enumerate(labels):
        targets[row, : len(label)] = torch.tensor([module_charset[c] for c in label])
    return {"images": torch.randn(len(widths), 1, 32, max(widths, default=32)),
            "widths": torch.tensor(widths), "targets": targets,
            "target_lengths": torch.tensor([len(label) for label in labels]), "texts": labels,
            "sources": [f"s{i}" for i in range(len(labels))], "num_skipped": 0}


class Recorder(RecognizerModule):
    """Keeps what the module logs, instead of needing a trainer."""

    def log(self, name, value, *args, **kwargs):
        self.logged = {**getattr(self, "logged", {}), name: value}


def test_infeasible_labels_are_dropped_and_counted():
    module = Recorder(**CONFIGS)
    # width 16 gives 4 frames: "aab" needs 4 (a blank between the two a's) and fits; "abcabc" does not.
    loss = module.training_step(batch([16, 16], ["aab", "abcabc"]), 0)
    assert torch.isfinite(loss)
    assert module.logged["train/dropped_infeasible"] == 1.0
    assert module.logged["train/infinite"] == 0.0
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None)


def test_a_batch_with_nothing_to_learn_gives_a_zero_loss_that_reaches_every_parameter():
    module = Recorder(**CONFIGS)
    loss = module.training_step(batch([16], ["abcabcabc"]), 0)
    loss.backward()
    assert loss.item() == 0.0
    assert all(p.grad is not None and not p.grad.any() for p in module.parameters())
    empty = module.training_step(batch([], []), 0)
    assert empty.item() == 0.0
