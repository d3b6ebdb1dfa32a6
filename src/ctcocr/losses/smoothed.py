"""Label-smoothed CTC in three named forms (Kim et al. 2017 and the uniform-target variants)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ctcocr.losses.base import CTCLossBase, CTCTerms, frame_cross_entropy

FORMS = ("targets", "uniform_kl", "confidence_penalty")


class SmoothedCTCLoss(CTCLossBase):
    """CTC with label smoothing towards the uniform distribution u over the C classes.

    Forms (sums over each sample's valid frames t):

    - ``targets``: ``-sum_t sum_k q_tk log p_tk`` with ``q = (1 - eps) gamma + eps u`` and gamma the
      detached alignment targets; logit gradient ``p - q``.
    - ``uniform_kl``: ``(1 - eps) CTC + eps sum_t KL(u || p_t)``; the same gradient as
      ``targets``, a value lower by ``(1 - eps) H(alignment posterior) + eps T log C``.
    - ``confidence_penalty``: ``CTC + eps sum_t KL(p_t || u)`` (neural_sp's form of Kim et al.), a
      different regulariser that penalises low-entropy frames.

    ``eps=0`` gives CTC's gradient in every form.

    Args:
        eps: smoothing weight in [0, 1].
        form: one of 'targets', 'uniform_kl', 'confidence_penalty'.
        **kwargs: the shared arguments of :class:`CTCLossBase`.
    """

    def __init__(self, eps: float = 0.1, form: str = "targets", **kwargs) -> None:
        super().__init__(**kwargs)
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"eps must be in [0, 1], got {eps}")
        self.eps = eps
        self.form = form

    @property
    def uses_alignment_targets(self) -> bool:
        return self.form == "targets"

    def sample_loss(self, terms: CTCTerms) -> Tensor:
        log_probs, mask = terms.log_probs, terms.frame_mask
        num_classes = log_probs.size(-1)
        if self.form == "targets":
            uniform = mask[..., None].to(log_probs.dtype) / num_classes
            return frame_cross_entropy((1 - self.eps) * terms.gamma + self.eps * uniform, log_probs)
        if self.form == "uniform_kl":
            kl = -log_probs.mean(-1) - math.log(num_classes)
            return (1 - self.eps) * terms.ctc + self.eps * _masked_frame_sum(kl, mask)
        kl = (log_probs.exp() * log_probs).sum(-1) + math.log(num_classes)
        return terms.ctc + self.eps * _masked_frame_sum(kl, mask)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, form={self.form!r}, {super().extra_repr()}"


def _masked_frame_sum(per_frame: Tensor, mask: Tensor) -> Tensor:
    """Sum of (T, B) values over the valid frames of each sample -> (B,)."""
    return torch.where(mask, per_frame, torch.zeros_like(per_frame)).sum(0)
