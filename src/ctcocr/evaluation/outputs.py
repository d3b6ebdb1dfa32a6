"""Run a recognizer over a dataloader and keep its outputs on the CPU; fit temperature scaling
on them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ctcocr.metrics import fit_temperature
from ctcocr.recognition.confidence import sequence_nll
from ctcocr.recognition.inference import inference_context, on_device

if TYPE_CHECKING:
    from ctcocr.recognition.recognizer import LineReader

#: Samples drawn in ``alignments.png`` of a report.
ALIGNMENT_SAMPLES = 8


def _to_device(batch: dict[str, Any], device: str) -> dict[str, Any]:
    return {**batch, "images": batch["images"].to(device), "widths": batch["widths"].to(device)}


@dataclass
class BatchOutputs:
    """One batch's model outputs on the CPU: log_probs (T, B, C) float32, lengths (B,),
    targets (B, L), target_lengths (B,), texts and sources (B); images (b, 1, H, W) and widths (b,)
    only for the first ``b`` samples kept for pictures (b may be 0; b = B when every image is
    kept)."""

    log_probs: Tensor
    lengths: Tensor
    targets: Tensor
    target_lengths: Tensor
    texts: list[str]
    sources: list[str]
    images: Tensor
    widths: Tensor


def collect_outputs(
    recognizer: LineReader, loader: Iterable[dict[str, Any]], device: str = "cpu",
    precision: str | int = "32-true", keep_images: int | None = ALIGNMENT_SAMPLES,
) -> list[BatchOutputs]:
    """Run the model over ``loader`` and keep every batch's log-probabilities (renormalised in
    float32 after bf16 autocast) and labels; images of the first ``keep_images`` samples (None:
    of every sample, float32 at the batch's padded width, e.g. 128 KiB for a 32 x 1024 line)."""
    recognizer = on_device(recognizer, device)
    outputs = []
    with inference_context(device, precision):
        for batch in loader:
            if not batch["texts"]:
                continue  # every sample of this batch was skipped by the bad-sample policy
            moved = _to_device(batch, device)
            log_probs, lengths = recognizer(moved["images"], moved["widths"])
            seen = sum(len(o.texts) for o in outputs)
            kept = None if keep_images is None else max(0, keep_images - seen)
            outputs.append(BatchOutputs(
                log_probs=log_probs.float().log_softmax(-1).cpu(), lengths=lengths.cpu(),
                targets=batch["targets"], target_lengths=batch["target_lengths"],
                texts=list(batch["texts"]), sources=list(batch["sources"]),
                images=batch["images"][:kept].float(), widths=batch["widths"][:kept],
            ))
    if not outputs:
        raise ValueError("the evaluation set yielded no samples")
    return outputs


def _padded_concat(outputs: Sequence[BatchOutputs]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """All batches as one padded CTC input: log_probs (T_max, N, C), lengths (N,), targets
    (N, L_max), target_lengths (N,)."""
    frames = max(o.log_probs.size(0) for o in outputs)
    labels = max(o.targets.size(1) for o in outputs)
    log_probs = torch.cat([F.pad(o.log_probs, (0, 0, 0, 0, 0, frames - o.log_probs.size(0)))
                           for o in outputs], dim=1)
    targets = torch.cat([F.pad(o.targets, (0, labels - o.targets.size(1))) for o in outputs])
    lengths = torch.cat([o.lengths for o in outputs])
    target_lengths = torch.cat([o.target_lengths for o in outputs])
    return log_probs, lengths, targets, target_lengths


def fit_outputs_temperature(outputs: Sequence[BatchOutputs], blank: int = 0) -> float:
    """Temperature minimising the mean ground-truth NLL of the collected outputs (samples whose
    label cannot be emitted in their frames are left out)."""
    log_probs, lengths, targets, target_lengths = _padded_concat(outputs)
    feasible = torch.isfinite(sequence_nll(log_probs, lengths, targets, target_lengths, blank))
    if not feasible.any():
        raise ValueError("no sample of the temperature set can emit its label: cannot fit T")
    return fit_temperature(log_probs[:, feasible], targets[feasible], lengths[feasible],
                           target_lengths[feasible], blank=blank)
