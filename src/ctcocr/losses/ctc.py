"""Plain CTC (the 'builtin' and 'custom' loss configs)."""

from __future__ import annotations

from torch import Tensor

from ctcocr.losses.base import CTCLossBase, CTCTerms


class CTCLoss(CTCLossBase):
    """Connectionist temporal classification loss (Graves et al. 2006), engine chosen by
    ``implementation``; see :class:`CTCLossBase` for the shared arguments."""

    def sample_loss(self, terms: CTCTerms) -> Tensor:
        return terms.ctc
