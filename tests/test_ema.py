"""The EMA callback of callbacks/ema.yaml: its weights (and batch-norm statistics) against a
float64 reference average, used for validation, in checkpoints and after training."""

from __future__ import annotations

import itertools

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from ctcocr.resources import CONFIG_DIR

DECAY, START, STEPS, VAL_EVERY = 0.7, 1, 6, 3


def float_state(module: nn.Module) -> list[Tensor]:
    """Float64 copies of the parameters and floating-point buffers, in a fixed order."""
    return [tensor.detach().double().clone()
            for tensor in itertools.chain(module.parameters(), module.buffers())
            if tensor.is_floating_point()]


class Tiny(L.LightningModule):
    """A linear layer, batch norm and another linear layer, trained by plain SGD."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
        self.validated_with: list[list[Tensor]] = []

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        inputs, targets = batch
        return F.mse_loss(self.net(inputs), targets)

    def validation_step(self, batch: list[Tensor], batch_idx: int) -> None:
        if batch_idx == 0:
            self.validated_with.append(float_state(self))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.2)


class RecordWeights(L.Callback):
    """The weights after every optimizer step, in float64."""

    def __init__(self) -> None:
        self.after_step: list[list[Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.after_step.append(float_state(pl_module))


def reference_average(history: list[list[Tensor]], steps: int) -> list[Tensor]:
    """The EMA after ``steps`` optimizer steps: a copy of the weights after step ``START`` + 1,
    then ``average = DECAY * average + (1 - DECAY) * weights`` after each later step."""
    average = [tensor.clone() for tensor in history[START]]
    for weights in history[START + 1 : steps]:
        average = [DECAY * old + (1 - DECAY) * new for old, new in zip(average, weights)]
    return average


def assert_close(actual: list[Tensor], expected: list[Tensor]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=2e-6)


def test_ema_weights_follow_a_float64_reference(tmp_path):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["callbacks=[ema]", f"callbacks.ema.decay={DECAY}",
                                          f"callbacks.ema.update_starting_at_step={START}"])
    ema = instantiate(cfg.callbacks.ema)
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 3), torch.randn(64, 1))
    recorder = RecordWeights()
    checkpoints = ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, every_n_train_steps=None,
                                  filename="{step}")
    model = Tiny()
    trainer = L.Trainer(accelerator="cpu", max_steps=STEPS, val_check_interval=VAL_EVERY,
                        callbacks=[ema, recorder, checkpoints], logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, default_root_dir=tmp_path)
    trainer.fit(model, DataLoader(data, batch_size=8), DataLoader(data, batch_size=16))

    history = recorder.after_step
    assert len(history) == STEPS
    # the average differs from the trained weights, so the checks below can fail
    assert not torch.allclose(reference_average(history, STEPS)[0], history[-1][0])
    for number, step in enumerate(range(VAL_EVERY, STEPS + 1, VAL_EVERY)):
        assert_close(model.validated_with[number], reference_average(history, step))
        saved = torch.load(tmp_path / f"step={step}.ckpt", weights_only=False)
        restored = Tiny()
        restored.load_state_dict(saved["state_dict"])
        assert_close(float_state(restored), reference_average(history, step))
    assert_close(float_state(model), reference_average(history, STEPS))  # after training
