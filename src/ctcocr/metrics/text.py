"""Text-recognition metrics: word accuracy, character error rate, normalised edit distance.

Edit distances are unit-cost Levenshtein distances from :mod:`rapidfuzz`. Predictions and labels are
sequences of ``str`` of equal length (one entry per sample).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import torch
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from torchmetrics import Metric

Normalizer = Callable[[str], str]

_NOT_ALNUM_LOWER = re.compile("[^0-9a-z]")


def alnum_lower(text: str) -> str:
    """Lowercase and keep only ``0-9a-z`` (the case-insensitive alphanumeric evaluation of
    deep-text-recognition-benchmark); any other character, accented letters included, is dropped."""
    return _NOT_ALNUM_LOWER.sub("", text.lower())


NORMALIZERS: dict[str, Normalizer] = {"alnum_lower": alnum_lower}


def resolve_normalizer(normalize: str | Normalizer | None) -> Normalizer | None:
    """A normaliser given by name (a key of :data:`NORMALIZERS`, for configs) or as a callable."""
    if normalize is None or callable(normalize):
        return normalize
    if normalize not in NORMALIZERS:
        choices = sorted(NORMALIZERS)
        raise ValueError(f"unknown text normaliser {normalize!r}; choose one of {choices}")
    return NORMALIZERS[normalize]


def _checked_pairs(preds: Sequence[str], labels: Sequence[str]) -> tuple[list[str], list[str]]:
    """Both sequences as lists, after checking they pair up one-to-one and hold only strings."""
    preds, labels = list(preds), list(labels)
    if len(preds) != len(labels):
        raise ValueError(f"got {len(preds)} predictions for {len(labels)} labels")
    for name, texts in (("prediction", preds), ("label", labels)):
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                kind = type(text).__name__
                raise TypeError(f"{name} of sample {index} is {kind}, not str: {text!r}")
    return preds, labels


def _require_samples(preds: list[str]) -> None:
    if not preds:
        raise ValueError("no samples: the metric is undefined for empty inputs")


def _edit_distances(preds: list[str], labels: list[str]) -> np.ndarray:
    """Levenshtein distance of each (prediction, label) pair -> int64 array (N,)."""
    if not preds:
        return np.zeros(0, dtype=np.int64)
    return process.cpdist(preds, labels, scorer=Levenshtein.distance, dtype=np.int64, workers=1)


def _normalized_distances(preds: list[str], labels: list[str], distances: np.ndarray) -> np.ndarray:
    """distance / max(len(pred), len(label)) per sample -> float64 (N,); 0 for two empty strings."""
    longest = np.array([max(len(p), len(t), 1) for p, t in zip(preds, labels)], dtype=np.float64)
    return distances / longest


def _count_exact(preds: list[str], labels: list[str], case_sensitive: bool) -> int:
    """Samples whose prediction equals the label (compared as ``str.casefold`` forms if not
    ``case_sensitive``)."""
    if case_sensitive:
        return sum(p == t for p, t in zip(preds, labels))
    return sum(p.casefold() == t.casefold() for p, t in zip(preds, labels))


def word_accuracy(
    preds: Sequence[str], labels: Sequence[str], case_sensitive: bool = True
) -> float:
    """Fraction of samples whose prediction equals the label exactly (``str.casefold`` on both sides
    when not ``case_sensitive``)."""
    preds, labels = _checked_pairs(preds, labels)
    _require_samples(preds)
    return _count_exact(preds, labels, case_sensitive) / len(preds)


def char_error_rate(preds: Sequence[str], labels: Sequence[str]) -> float:
    """Corpus-level CER: total edit distance / total number of label characters.

    Edits are not capped, so CER can exceed 1. A corpus whose labels are all empty is divided by 1
    instead of 0 (CER = number of inserted characters).
    """
    preds, labels = _checked_pairs(preds, labels)
    _require_samples(preds)
    label_chars = sum(len(label) for label in labels)
    return float(_edit_distances(preds, labels).sum()) / max(label_chars, 1)


def normalized_edit_distance(preds: Sequence[str], labels: Sequence[str]) -> float:
    """Mean over samples of distance / max(len(pred), len(label)), in [0, 1]; lower is better.

    Two empty strings count as distance 0. deep-text-recognition-benchmark reports the complement,
    ``1 - normalized_edit_distance`` (its "norm_ED", higher is better); report which one you use.
    """
    preds, labels = _checked_pairs(preds, labels)
    _require_samples(preds)
    distances = _edit_distances(preds, labels)
    return float(_normalized_distances(preds, labels, distances).mean())


class TextMetrics(Metric):
    """Accumulates word accuracy, case-insensitive word accuracy, CER and NED over batches.

    The state is a handful of sums, reduced by summation across processes (DDP) by torchmetrics when
    :meth:`compute` is called, so every rank must call it. ``normalize`` (a callable or a name in
    :data:`NORMALIZERS`, e.g. ``"alnum_lower"``) is applied to predictions and labels before
    scoring.

    ``compute()`` returns ``{"acc", "acc_ci", "cer", "ned"}`` as floats (NaN before any sample);
    ``acc_ci`` compares ``str.casefold`` forms; ``cer`` and ``ned`` are defined as in
    :func:`char_error_rate` and :func:`normalized_edit_distance`.
    """

    full_state_update = False
    higher_is_better = None
    is_differentiable = False

    def __init__(self, normalize: str | Normalizer | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.normalize = resolve_normalizer(normalize)
        for name in ("n_samples", "n_exact", "n_exact_ci", "n_edits", "n_label_chars"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        zero = torch.tensor(0.0, dtype=torch.float64)
        self.add_state("ned_sum", default=zero, dist_reduce_fx="sum")

    def update(self, preds: Sequence[str], labels: Sequence[str]) -> None:
        """Add one batch of decoded predictions and their labels (N strings each)."""
        preds, labels = _checked_pairs(preds, labels)
        if self.normalize is not None:
            preds = [self.normalize(text) for text in preds]
            labels = [self.normalize(text) for text in labels]
        distances = _edit_distances(preds, labels)
        self.n_samples += len(preds)
        self.n_exact += _count_exact(preds, labels, case_sensitive=True)
        self.n_exact_ci += _count_exact(preds, labels, case_sensitive=False)
        self.n_edits += int(distances.sum())
        self.n_label_chars += sum(len(label) for label in labels)
        self.ned_sum += float(_normalized_distances(preds, labels, distances).sum())

    def compute(self) -> dict[str, float]:
        samples = int(self.n_samples)
        if samples == 0:
            return dict.fromkeys(("acc", "acc_ci", "cer", "ned"), float("nan"))
        return {
            "acc": int(self.n_exact) / samples,
            "acc_ci": int(self.n_exact_ci) / samples,
            "cer": int(self.n_edits) / max(int(self.n_label_chars), 1),
            "ned": float(self.ned_sum) / samples,
        }
