"""Read the configured datasets once and report what would stop or spoil training: the logic of
``ctcocr-check-data`` (:mod:`ctcocr.cli.check_data` prints it).

The checks training makes are made with training's own code: the bad-sample policy's label check
(:func:`~ctcocr.data.policy.check_label`), image loading and preparation
(:func:`~ctcocr.data.datamodule.load_line`), the charset's normalization and encoding, the model's
frame count for the prepared width and CTC's need of one frame per character plus one per
adjacent repeat (:func:`~ctcocr.ctc.inputs.required_frames`). Beside them: Unicode in the labels
as written (:mod:`ctcocr.data.label_unicode`), duplicate images (a hash of the decoded pixels, also
across splits) and the distributions of image width, height and label length.
"""

from __future__ import annotations

import hashlib
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

from ctcocr.ctc.inputs import required_frames
from ctcocr.data import label_unicode
from ctcocr.data.charset import Charset
from ctcocr.data.datamodule import LineDataModule, load_line, sample_source
from ctcocr.data.errors import BadImageError, BadLabelError
from ctcocr.data.policy import UNKNOWN_CHARACTERS, UNREADABLE_IMAGE, BadSamplePolicy, check_label
from ctcocr.data.transforms import LineTransform

#: Sources listed per finding.
EXAMPLES = 3
#: Bars of a histogram.
BINS = 10

TOO_LONG_FOR_FRAMES = "labels too long for their frames"
SQUEEZED = "images squeezed to max_width"
DUPLICATES = "duplicate images"
CONFLICTING_DUPLICATES = "duplicate images with another label"
MIXED_SCRIPTS = "words mixing Latin, Cyrillic or Greek letters"
STRAY_SPACES = "labels with leading, trailing or double spaces"
UNUSUAL_CHARACTERS = "unusual spaces and invisible characters"
COMBINING_MARKS = "combining marks left after normalization"
WIDTH, HEIGHT, LABEL_LENGTH = "image width (px)", "image height (px)", "label length (characters)"

#: ``progress(description, total)`` -> a function called with the number of samples just read.
Progress = Callable[[str, int], Callable[[int], None]]


@dataclass
class Finding:
    """How many samples (or occurrences) show one thing, and where the first ones are."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, example: str, count: int = 1) -> None:
        self.count += count
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)


def _findings() -> defaultdict[str, Finding]:
    return defaultdict(Finding)


@dataclass
class SplitReport:
    """What the check of one split found; examples name samples by source (``gt.txt:LINE (image)``
    or ``lmdb_folder:image-KEY``).

    ``bad_samples``: per policy reason (see :mod:`ctcocr.data.policy`); training stops at the first
    under ``on_bad_sample=error``. ``warnings``: findings that do not stop training, by name (the
    constants of this module). ``characters``: per kind (outside the charset, unusual, combining
    marks) and character, the occurrences. ``character_forms``: per character written with more
    than one code-point spelling (NFC vs NFD ...), each spelling's occurrences. ``stop``: why
    training would stop, or None.
    """

    split: str
    datasets: list[str]
    samples: int = 0
    usable: int = 0
    bad_samples: dict[str, Finding] = field(default_factory=_findings)
    warnings: dict[str, Finding] = field(default_factory=_findings)
    characters: dict[str, dict[str, Finding]] = field(default_factory=lambda: defaultdict(_findings))
    character_forms: dict[str, dict[str, Finding]] = field(
        default_factory=lambda: defaultdict(_findings))
    values: dict[str, list[int]] = field(
        default_factory=lambda: {WIDTH: [], HEIGHT: [], LABEL_LENGTH: []})
    stop: str | None = None

    def histograms(self) -> dict[str, dict[str, Any]]:
        """The :func:`histogram` of each value list."""
        return {name: histogram(values) for name, values in self.values.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with histograms in place of the value lists."""
        result = asdict(self)
        del result["values"]
        return {**result, "histograms": self.histograms()}


@dataclass
class DataReport:
    """The reports of the checked splits, and the splits left out as the same data as another."""

    splits: dict[str, SplitReport] = field(default_factory=dict)
    same_as: dict[str, str] = field(default_factory=dict)

    @property
    def stops(self) -> list[str]:
        """Why training would stop, one line per split that would stop it."""
        return [f"{name}: {report.stop}" for name, report in self.splits.items() if report.stop]

    def to_dict(self) -> dict[str, Any]:
        return {"splits": {name: report.to_dict() for name, report in self.splits.items()},
                "same_as": dict(self.same_as), "stops": self.stops}


def histogram(values: Sequence[int], bins: int = BINS) -> dict[str, Any]:
    """min, median, max and ``bins`` integer-aligned bars ``[low, high, count]`` (both inclusive)."""
    if not values:
        return {"min": None, "median": None, "max": None, "bins": []}
    low, high = min(values), max(values)
    step = -(-(high - low + 1) // bins)
    edges = np.arange(low, high + step + 1, step)
    counts, _ = np.histogram(values, edges)
    return {"min": low, "median": float(statistics.median(values)), "max": high,
            "bins": [[int(a), int(a + step - 1), int(n)] for a, n in zip(edges, counts)]}


class SampleFacts(NamedTuple):
    """One sample as the check reads it."""

    source: str
    label: str | None  # as written (None: unreadable)
    problems: list[tuple[str, str]]  # (policy reason, details naming the sample)
    size: tuple[int, int] | None  # decoded image (width, height); None: not read
    width: int  # prepared width (what the model reads)
    squeezed: bool
    digest: bytes | None  # hash of the decoded pixels
    targets: list[int] | None  # class ids of a usable sample


class _Inspection(Dataset):
    """``dataset``'s samples as :class:`SampleFacts` (DataLoader workers read them in parallel)."""

    def __init__(self, dataset: Dataset, charset: Charset, transform: LineTransform,
                 max_label_length: int | None):
        self.dataset, self.charset, self.transform = dataset, charset, transform
        self.max_label_length = max_label_length
        self.source = sample_source(dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> SampleFacts:
        label, problem = check_label(index, self.dataset.text, self.source, self.charset,
                                     self.max_label_length)
        problems = [problem] if problem else []
        try:
            sample, image, squeezed = load_line(self.dataset, index, self.transform)
        except BadLabelError:  # already a problem: a dataset that cannot label it cannot load it
            return SampleFacts(self.source(index), label, problems, None, 0, False, None, None)
        except BadImageError as error:
            problems.append((UNREADABLE_IMAGE, str(error)))
            return SampleFacts(self.source(index), label, problems, None, 0, False, None, None)
        pixels = sample.image
        digest = hashlib.blake2b(f"{pixels.mode}{pixels.size}".encode(), digest_size=16)
        digest.update(pixels.tobytes())
        targets = None if problems else self.charset.encode(sample.text)
        return SampleFacts(sample.source, label, problems, pixels.size, image.size(-1), squeezed,
                           digest.digest(), targets)


def _no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda done: None


def check_data(datamodule: LineDataModule, output_lengths: Callable[[Tensor], Tensor],
               splits: Sequence[str] = ("train", "val", "test"),
               progress: Progress = _no_progress) -> DataReport:
    """Check each configured split of ``datamodule`` in order (a split configured as the same
    data as an earlier one is left out); ``output_lengths`` maps prepared image widths (B,) to the
    model's frames (B,). Samples are read with the data module's ``num_workers``."""
    report = DataReport()
    first_seen: dict[bytes, tuple[str, str]] = {}  # digest -> (split, source)
    for split in splits:
        spec = datamodule.specs[split]
        if spec is None:
            continue
        same = next((s for s in report.splits if datamodule.specs[s] == spec), None)
        if same is not None:
            report.same_as[split] = same
            continue
        report.splits[split] = _check_split(datamodule, split, output_lengths, progress,
                                            first_seen)
    return report


def _check_split(datamodule: LineDataModule, split: str,
                 output_lengths: Callable[[Tensor], Tensor], progress: Progress,
                 first_seen: dict[bytes, tuple[str, str]]) -> SplitReport:
    datasets = datamodule.split_datasets(split)
    report = SplitReport(split, list(datasets))
    in_split: dict[bytes, tuple[str, str | None]] = {}  # digest -> (source, label)
    for name, dataset in datasets.items():
        inspection = _Inspection(dataset, datamodule.charset, datamodule.eval_transform,
                                 datamodule.max_label_length)
        loader = DataLoader(inspection, batch_size=64, num_workers=datamodule.num_workers,
                            collate_fn=list)
        advance = progress(name, len(inspection))
        for batch in loader:
            _add_frames(report, batch, output_lengths)
            for facts in batch:
                _add_sample(report, facts, datamodule.charset)
                _add_image(report, facts, split, in_split, first_seen)
            advance(len(batch))
    for digest, (source, _) in in_split.items():
        first_seen.setdefault(digest, (split, source))
    report.bad_samples, report.warnings = dict(report.bad_samples), dict(report.warnings)
    report.characters = {kind: dict(chars) for kind, chars in report.characters.items()}
    report.character_forms = {char: dict(forms) for char, forms in report.character_forms.items()
                              if len(forms) > 1}
    report.stop = stop_reason(report, datamodule.on_bad_sample)
    return report


def stop_reason(report: SplitReport, policy: BadSamplePolicy) -> str | None:
    """Why training would stop on this split: no usable sample, or any bad one under "error"."""
    if not report.usable:
        return "no usable samples"
    bad = report.samples - report.usable
    if bad and policy == "error":
        return (f"{bad} of {report.samples} samples are bad and data.on_bad_sample=error "
                f"(skip would drop them)")
    return None


def _add_frames(report: SplitReport, batch: list[SampleFacts],
                output_lengths: Callable[[Tensor], Tensor]) -> None:
    """Count the usable samples whose label needs more frames than the model makes of them."""
    usable = [facts for facts in batch if facts.targets is not None]
    if not usable:
        return
    frames = output_lengths(torch.tensor([facts.width for facts in usable]))
    targets = [torch.tensor(facts.targets) for facts in usable]
    needed = required_frames(pad_sequence(targets, batch_first=True),
                             torch.tensor([len(t) for t in targets]))
    for facts, have, need in zip(usable, frames.tolist(), needed.tolist()):
        if need > have:
            report.warnings[TOO_LONG_FOR_FRAMES].add(
                f"{facts.source}: {len(facts.targets)} characters need {need} frames (a repeat "
                f"needs a blank between), its {facts.width} px give {have}")


def _add_sample(report: SplitReport, facts: SampleFacts, charset: Charset) -> None:
    """Count the sample, its policy problems and what its label holds."""
    report.samples += 1
    report.usable += not facts.problems
    for reason, detail in facts.problems:
        report.bad_samples[reason].add(detail)
    label, source = facts.label, facts.source
    if label is None:
        return
    normalized = charset.normalize(label)
    report.values[LABEL_LENGTH].append(len(normalized))
    unknown = charset.unknown(normalized)
    for char, count in Counter(c for c in normalized if c in unknown).items():
        report.characters[UNKNOWN_CHARACTERS][label_unicode.describe_character(char)].add(
            source, count)
    for kind, chars in ((UNUSUAL_CHARACTERS, label_unicode.unusual_characters(label)),
                        (COMBINING_MARKS, label_unicode.combining_marks(normalized))):
        for char, count in Counter(chars).items():
            report.characters[kind][label_unicode.describe_character(char)].add(source, count)
    for composed, written in label_unicode.character_forms(label):
        report.character_forms[label_unicode.describe_character(composed)][
            label_unicode.describe_character(written)].add(source)
    for word, letters in label_unicode.mixed_script_words(label):
        names = ", ".join(map(label_unicode.describe_character, dict.fromkeys(letters)))
        report.warnings[MIXED_SCRIPTS].add(f"{source}: {word!r} ({names})")
    if label_unicode.has_stray_spaces(label):
        report.warnings[STRAY_SPACES].add(f"{source}: {label!r}")


def _add_image(report: SplitReport, facts: SampleFacts, split: str,
               in_split: dict[bytes, tuple[str, str | None]],
               first_seen: dict[bytes, tuple[str, str]]) -> None:
    """Record the image's size, whether it was squeezed, and whether it was seen before."""
    if facts.size is None or facts.digest is None:
        return
    report.values[WIDTH].append(facts.size[0])
    report.values[HEIGHT].append(facts.size[1])
    if facts.squeezed:
        report.warnings[SQUEEZED].add(f"{facts.source}: {facts.size[0]}x{facts.size[1]} px")
    if facts.digest in first_seen:
        other_split, other = first_seen[facts.digest]
        report.warnings[f"images also in {other_split}"].add(f"{facts.source} = {other}")
    if facts.digest not in in_split:
        in_split[facts.digest] = (facts.source, facts.label)
        return
    source, label = in_split[facts.digest]
    report.warnings[DUPLICATES].add(f"{facts.source} = {source}")
    if label != facts.label:
        report.warnings[CONFLICTING_DUPLICATES].add(
            f"{facts.source} {facts.label!r} = {source} {label!r}")
