"""Training with Lightning: the LightningModule and the callbacks of the training runs."""

from ctcocr.training.callbacks import EvaluateBestCheckpoint
from ctcocr.training.module import RecognizerModule

__all__ = ["EvaluateBestCheckpoint", "RecognizerModule"]
