"""Focal CTC (Feng et al. 2019): down-weights sequences the model already gets right."""

from __future__ import annotations

import torch
from torch import Tensor

from ctcocr.losses.base import CTCLossBase, CTCTerms


class FocalCTCLoss(CTCLossBase):
    """Per sequence ``alpha * (1 - p) ** gamma * L`` with ``L`` the CTC loss and ``p = exp(-L)``.

    ``1 - p`` is computed as ``-expm1(-L)`` and clamped to the dtype's smallest normal number, so
    the gradient stays finite at ``L = 0`` for ``gamma < 1``. ``alpha=1, gamma=0`` is plain CTC.

    Args:
        alpha: overall scale.
        gamma: focusing exponent, >= 0.
        **kwargs: the shared arguments of :class:`CTCLossBase`.
    """

    def __init__(self, alpha: float = 1.0, gamma: float = 2.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.alpha = alpha
        self.gamma = gamma

    def sample_loss(self, terms: CTCTerms) -> Tensor:
        miss = (-torch.expm1(-terms.ctc)).clamp(min=torch.finfo(terms.ctc.dtype).tiny)
        return self.alpha * miss.pow(self.gamma) * terms.ctc

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, gamma={self.gamma}, {super().extra_repr()}"
