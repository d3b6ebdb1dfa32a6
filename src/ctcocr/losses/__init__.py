"""CTC loss modules selected by the ``loss=`` config group; all return :class:`LossOutput`."""

from ctcocr.losses.base import CTCLossBase, CTCTerms, LossOutput
from ctcocr.losses.ctc import CTCLoss
from ctcocr.losses.focal import FocalCTCLoss
from ctcocr.losses.reweighted import ReweightedCTCLoss
from ctcocr.losses.smoothed import SmoothedCTCLoss

__all__ = [
    "CTCLoss",
    "CTCLossBase",
    "CTCTerms",
    "FocalCTCLoss",
    "LossOutput",
    "ReweightedCTCLoss",
    "SmoothedCTCLoss",
]
