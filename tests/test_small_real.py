"""experiment=small_real: its composition, early stopping that really stops a run, and dropout
before the classifier."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from ctcocr.data.augment import LineAugment
from ctcocr.models import CRNN, SmallBackbone
from ctcocr.resources import CONFIG_DIR


def compose_train(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=["data=folder", "data.train=/x", "data.val=/y",
                                           *overrides])


def test_small_real_composes_the_regularised_recipe():
    cfg = compose_train("experiment=small_real")
    default = compose_train()
    assert isinstance(instantiate(cfg.augment), LineAugment)
    assert cfg.model.dropout > default.model.dropout
    assert cfg.optimizer.weight_decay > default.optimizer.weight_decay
    stopping, ema = cfg.callbacks.early_stopping, cfg.callbacks.ema
    assert (stopping.monitor, stopping.mode, stopping.check_on_train_epoch_end) == \
        ("val/cer", "min", False)
    # it can fire within the budget, and the first validation already sees averaged weights
    assert (stopping.patience + 1) * cfg.trainer.val_check_interval < cfg.trainer.max_steps
    assert ema.update_starting_at_step < cfg.trainer.val_check_interval
    assert {"model_checkpoint", "last_checkpoint"} <= set(cfg.callbacks)
    assert type(instantiate(stopping)).__name__ == "EarlyStopping"
    assert type(instantiate(ema)).__name__ == "EMAWeightAveraging"


class ConstantCER(L.LightningModule):
    """Trains a linear layer; every validation logs the same ``val/cer``: it never improves."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)
        self.validations = 0

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch: list[Tensor], batch_idx: int) -> None:
        pass

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.validations += 1
        self.log("val/cer", 0.25)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_early_stopping_fires_after_patience_validations_without_improvement(tmp_path):
    cfg = compose_train("experiment=small_real")
    stopping = instantiate(cfg.callbacks.early_stopping)
    patience, every = cfg.callbacks.early_stopping.patience, 2
    data = TensorDataset(torch.randn(400, 2))  # 400 batches: the stop comes mid-epoch
    model = ConstantCER()
    trainer = L.Trainer(accelerator="cpu", max_steps=200, val_check_interval=every,
                        callbacks=[stopping], logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False,
                        default_root_dir=tmp_path)
    trainer.fit(model, DataLoader(data, batch_size=1), DataLoader(data, batch_size=200))
    assert model.validations == patience + 1  # the first sets the best, then `patience` more
    assert trainer.global_step == every * (patience + 1)
    assert stopping.wait_count == patience


@pytest.mark.parametrize("shortcut", [False, True])
def test_dropout_acts_before_the_classifier_in_training_only(shortcut):
    torch.manual_seed(0)
    backbone = SmallBackbone(height=32, channels=[4, 8, 8, 8, 8], height_reduction=32)
    model = CRNN(backbone, num_classes=5, hidden_size=8, num_layers=1, dropout=0.5,
                 shortcut=shortcut)
    plain = CRNN(backbone, num_classes=5, hidden_size=8, num_layers=1, shortcut=shortcut)
    plain.load_state_dict(model.state_dict())  # dropout adds no weights: checkpoints still load
    images = torch.randn(2, 1, 32, 40)
    model.train()
    assert not torch.equal(model(images), model(images))  # one layer: only the head drops out
    model.eval()
    plain.eval()
    torch.testing.assert_close(model(images), plain(images))
