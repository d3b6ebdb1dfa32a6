"""ctcocr-check-data: read the data a ``ctcocr-train`` run with the same overrides would use, once,
and report what would stop or spoil training (``configs/check_data.yaml``, which composes
``train.yaml``: every override of ctcocr-train applies).

Prints a summary table (one column per split), then each split's findings with the first samples
that show them (file:line or LMDB key) and text histograms of image width, height and label length;
``format=json`` prints one JSON object instead. A progress bar and logs go to stderr.

Exit code: 0 when training would start (warnings such as duplicates or labels too long for their
frames do not count), 2 when it would stop: a bad sample under ``data.on_bad_sample=error``, a
split without usable samples, or a missing dataset (the code of every bad-input error). Examples::

    ctcocr-check-data data=folder data.train=/data/train data.val=/data/val
    ctcocr-check-data data=folder data.train=/data/lmdb_train data.val=/data/val format=json
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import hydra
from omegaconf import DictConfig
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ctcocr.cli.common import configure, user_errors
from ctcocr.data.check import DataReport, SplitReport, check_data
from ctcocr.recognition.recognizer import PREPROCESSING_KEYS, Recognizer
from ctcocr.resources import CONFIG_DIR
from ctcocr.training.module import to_container

#: Exit code when training would stop (as for every bad-input error of the commands).
STOP_EXIT_CODE = 2
BAR_WIDTH = 40


def run(cfg: DictConfig) -> DataReport:
    """Check the configured splits and print the report in ``cfg.format``."""
    configure(cfg)
    if cfg.format not in ("table", "json"):
        raise ValueError(f"format must be 'table' or 'json', got {cfg.format!r}")
    recognizer = Recognizer.from_config(
        to_container(cfg.charset), to_container(cfg.model),
        {key: cfg.data[key] for key in PREPROCESSING_KEYS})
    datamodule = hydra.utils.instantiate(cfg.data, charset=recognizer.charset)
    datamodule.check_paths()
    with progress_bar(cfg.progress) as progress:
        report = check_data(datamodule, recognizer.model.output_lengths, list(cfg.splits),
                            progress)
    charset = recognizer.charset
    settings = {"charset": len(charset), "case": charset.case,
                "unicode_normalization": charset.unicode_normalization,
                "on_bad_sample": datamodule.on_bad_sample}
    if cfg.format == "json":
        print(json.dumps({"settings": settings, **report.to_dict()}, ensure_ascii=False, indent=1))
    else:
        print_report(report, settings, Console(highlight=False, soft_wrap=True))
    return report


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """A rich progress bar on stderr, one line per dataset read (``check_data``'s ``progress``)."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not enabled) as bar:
        def start(description: str, total: int) -> Callable[[int], None]:
            task = bar.add_task(description, total=total)
            return lambda done: bar.advance(task, done)

        yield start


def print_report(report: DataReport, settings: dict[str, object], console: Console) -> None:
    """The summary table, then each split's details and histograms."""
    console.print(", ".join(f"{key}: {value}" for key, value in settings.items()))
    for split, same in report.same_as.items():
        console.print(f"{split}: the same data as {same}, not read again")
    console.print(summary_table(report))
    for split in report.splits.values():
        print_details(split, console)
    for line in report.stops:
        console.print(f"training would stop: {line}")


def summary_table(report: DataReport) -> Table:
    """One row per count, one column per split; rows in the order the splits first show them."""
    splits = list(report.splits.values())
    table = Table(box=None, pad_edge=False)
    table.add_column("")
    for split in splits:
        table.add_column(split.split, justify="right")
    rows: dict[str, list[str]] = {}
    for index, split in enumerate(splits):
        for name, value in _summary_counts(split).items():
            rows.setdefault(name, ["0"] * len(splits))[index] = str(value)
    for name, values in rows.items():
        table.add_row(name, *values)
    table.add_row("training", *("STOPS" if split.stop else "ok" for split in splits))
    return table


def _summary_counts(split: SplitReport) -> dict[str, int]:
    counts = {"samples": split.samples, "usable": split.usable}
    counts.update({f"bad: {reason}": f.count for reason, f in split.bad_samples.items()})
    counts.update({name: f.count for name, f in split.warnings.items()})
    counts.update({f"{kind} (occurrences)": sum(f.count for f in chars.values())
                   for kind, chars in split.characters.items()})
    if split.character_forms:
        counts["characters written in several forms"] = len(split.character_forms)
    return counts


def print_details(split: SplitReport, console: Console) -> None:
    """A split's findings, each with its first samples, then its histograms."""
    console.rule(f"{split.split}: {', '.join(split.datasets)}")
    for kind, findings in (("bad", split.bad_samples), ("warning", split.warnings)):
        for name, finding in findings.items():
            console.print(f"{kind}: {name}: {finding.count}")
            for example in finding.examples:
                console.print(f"    {example}")
    for kind, chars in split.characters.items():
        console.print(f"{kind}:")
        for char, finding in sorted(chars.items(), key=lambda item: -item[1].count):
            console.print(f"    {char}: {finding.count} in {', '.join(finding.examples)}"
                          + (", ..." if finding.count > len(finding.examples) else ""))
    for char, forms in split.character_forms.items():
        console.print(f"{char} written in {len(forms)} forms:")
        for written, finding in forms.items():
            console.print(f"    as {written}: {finding.count} in {', '.join(finding.examples)}")
    for name, summary in split.histograms().items():
        print_histogram(name, summary, console)


def print_histogram(name: str, summary: dict, console: Console) -> None:
    """``name: min .., median .., max ..`` and one bar per bin."""
    if not summary["bins"]:
        return
    console.print(f"{name}: min {summary['min']}, median {summary['median']}, max {summary['max']}")
    largest = max(count for _, _, count in summary["bins"])
    label_width = len(str(summary["bins"][-1][1])) * 2 + 1
    for low, high, count in summary["bins"]:
        bar = "#" * round(BAR_WIDTH * count / largest)
        console.print(f"    {f'{low}-{high}':>{label_width}} {bar} {count}")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="check_data")
@user_errors
def main(cfg: DictConfig) -> None:
    if run(cfg).stops:
        raise SystemExit(STOP_EXIT_CODE)


if __name__ == "__main__":
    main()
