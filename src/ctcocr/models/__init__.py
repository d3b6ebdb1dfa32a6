"""CRNN recognizers: a CNN backbone, a BiLSTM sequence head, per-frame log-probabilities."""

from ctcocr.models.backbones import SmallBackbone, VGGBackbone
from ctcocr.models.crnn import CRNN

__all__ = ["CRNN", "SmallBackbone", "VGGBackbone"]
