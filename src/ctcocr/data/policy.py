"""Bad input: the error type the entry points print without a traceback, and the skip/error policy.

Bad samples are labels with characters outside the charset, empty labels, labels longer than a
configured limit, and images that cannot be decoded. Under ``"error"`` the first scan or load that
meets one raises :class:`DatasetError` naming the file, line or sample; under ``"skip"`` the sample
is dropped, counted by reason and the counts are logged on the ``ctcocr.data`` logger.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from PIL import Image

from ctcocr.data.errors import BadImageError, BadLabelError, DatasetError
from ctcocr.data.transforms import to_grayscale

if TYPE_CHECKING:
    from ctcocr.data.charset import Charset

BadSamplePolicy = Literal["error", "skip"]

logger = logging.getLogger("ctcocr.data")

EMPTY_LABEL = "empty label"
UNKNOWN_CHARACTERS = "characters outside the charset"
LABEL_TOO_LONG = "label too long"
UNREADABLE_IMAGE = "unreadable image"
UNREADABLE_LABEL = "unreadable label"

_EXAMPLES_SHOWN = 5


def check_policy(policy: str) -> BadSamplePolicy:
    """``policy`` if it is "error" or "skip", else ``ValueError``."""
    if policy not in ("error", "skip"):
        raise ValueError(f"on_bad_sample must be 'error' or 'skip', got {policy!r}")
    return policy  # type: ignore[return-value]


def label_problem(
    text: str, charset: Charset, max_label_length: int | None = None
) -> tuple[str, str] | None:
    """Why ``text`` cannot be a training label: (reason, reason with details), or None."""
    normalized = charset.normalize(text)
    if not normalized:
        return EMPTY_LABEL, EMPTY_LABEL
    unknown = charset.unknown(normalized)
    if unknown:
        return UNKNOWN_CHARACTERS, f"{UNKNOWN_CHARACTERS} {''.join(sorted(unknown))!r} in {text!r}"
    if max_label_length is not None and len(normalized) > max_label_length:
        return LABEL_TOO_LONG, f"{LABEL_TOO_LONG} ({len(normalized)} > {max_label_length})"
    return None


def check_label(
    index: int,
    text: Callable[[int], str],
    source: Callable[[int], str],
    charset: Charset,
    max_label_length: int | None = None,
) -> tuple[str | None, tuple[str, str] | None]:
    """Sample ``index``'s label as read (None: unreadable) and why it cannot be a training label:
    (reason, details naming the sample), or None. ``text`` and ``source`` as in
    :func:`scan_labels`."""
    try:
        label = text(index)
    except BadLabelError as error:  # its message names the sample
        return None, (UNREADABLE_LABEL, str(error))
    problem = label_problem(label, charset, max_label_length)
    if problem is not None:
        problem = (problem[0], f"{source(index)}: {problem[1]}")
    return label, problem


def scan_labels(
    name: str,
    size: int,
    text: Callable[[int], str],
    source: Callable[[int], str],
    charset: Charset,
    policy: BadSamplePolicy,
    max_label_length: int | None = None,
) -> tuple[list[int], list[int], Counter[str]]:
    """Check every label of a dataset; returns (kept indices, their normalized label lengths,
    the number of dropped samples by reason).

    ``text(i)`` must be cheap (no image decoding) and raises :class:`BadLabelError` for a label
    it cannot read; ``source(i)`` is only called for bad samples. Raises :class:`DatasetError`
    under ``"error"``; logs counts per reason under ``"skip"``.
    """
    kept: list[int] = []
    lengths: list[int] = []
    counts: Counter[str] = Counter()
    examples: list[str] = []
    for index in range(size):
        label, problem = check_label(index, text, source, charset, max_label_length)
        if problem is None:
            kept.append(index)
            lengths.append(len(charset.normalize(label)))
            continue
        reason, detail = problem
        counts[reason] += 1
        if len(examples) < _EXAMPLES_SHOWN:
            examples.append(detail)
    if counts:
        bad = sum(counts.values())
        summary = f"{name}: {bad} of {size} samples have bad labels ({_format_counts(counts)})"
        listed = "; ".join(examples) + ("; ..." if bad > len(examples) else "")
        if policy == "error":
            raise DatasetError(f"{summary}: {listed}. Fix them or set data.on_bad_sample=skip")
        logger.warning("%s, skipped: %s", summary, listed)
    else:
        logger.info("%s: %d labels checked, all usable", name, size)
    return kept, lengths, counts


def _format_counts(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in counts.most_common())


def read_image(file: str | Path | BinaryIO, source: str) -> Image.Image:
    """Decode an image file (path or file object) to mode "L", transparent areas drawn on white.

    Any failure (missing, truncated, not an image, too large) raises :class:`BadImageError` whose
    message starts with ``source``.
    """
    try:
        with Image.open(file) as opened:
            opened.load()
            return to_grayscale(opened)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise BadImageError(f"{source}: {UNREADABLE_IMAGE}: {error}") from None
