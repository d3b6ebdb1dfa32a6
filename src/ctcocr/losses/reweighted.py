"""Re-weighted CTC (Li et al. 2019): frame-wise cross-entropy on the CTC alignment targets."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ctcocr.losses.base import CTCLossBase, CTCTerms, frame_cross_entropy


class ReweightedCTCLoss(CTCLossBase):
    """Per sample ``-sum_t sum_k w_k gamma_tk log p_tk`` with detached alignment targets gamma.

    Each frame is a classification sample labelled by the CTC posterior; the weights address the
    imbalance of blank and non-blank frames. With all weights 1 (and with ``renormalize``) the
    gradient with respect to the logits equals plain CTC's; the value exceeds CTC by the entropy of
    the alignment posterior.

    Args:
        blank_weight: multiplies the blank class's weight.
        class_weights: optional per-class weights (C,), default all 1.
        renormalize: rescale ``w * gamma`` on each frame to sum to 1 (a proper target distribution).
        **kwargs: the shared arguments of :class:`CTCLossBase`.
    """

    uses_alignment_targets = True

    def __init__(
        self,
        blank_weight: float = 1.0,
        class_weights: Sequence[float] | None = None,
        renormalize: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.blank_weight = blank_weight
        self.renormalize = renormalize
        weights = None
        if class_weights is not None:
            weights = torch.as_tensor(list(class_weights), dtype=torch.float64)
            if weights.dim() != 1 or bool((weights < 0).any()):
                raise ValueError("class_weights must be a flat list of non-negative numbers")
        self.register_buffer("class_weights", weights, persistent=False)

    def weights(self, num_classes: int, like: Tensor) -> Tensor:
        """Per-class weights (C,) in the dtype and device of ``like``, blank weight applied."""
        if self.class_weights is None:
            weights = like.new_ones(num_classes)
        elif self.class_weights.numel() != num_classes:
            raise ValueError(
                f"class_weights has {self.class_weights.numel()} entries "
                f"but log_probs has {num_classes} classes"
            )
        else:
            weights = self.class_weights.to(like)
        weights = weights.clone()
        weights[self.blank] *= self.blank_weight
        return weights

    def sample_loss(self, terms: CTCTerms) -> Tensor:
        target = terms.gamma * self.weights(terms.log_probs.size(-1), terms.gamma)
        if self.renormalize:
            total = target.sum(-1, keepdim=True)
            target = target / total.masked_fill(total == 0, 1.0)
        return frame_cross_entropy(target, terms.log_probs)

    def extra_repr(self) -> str:
        own = f"blank_weight={self.blank_weight}, renormalize={self.renormalize}"
        return f"{own}, {super().extra_repr()}"
