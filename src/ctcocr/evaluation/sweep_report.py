"""Summarise a loss-study sweep folder in Markdown and PNG plots (``ctcocr-report``).

Every run folder under the sweep (one holding ``.hydra/config.yaml``) contributes the
``metrics.json`` and ``predictions.csv`` of each evaluation set it wrote (``val/``, ``shifted/``).
Runs are grouped by loss variant (``study.variant``, else a name made from the loss config) and
summarised over seeds as mean and sample standard deviation. A variant's mean is said to differ
from the baseline's when ``|mean_v - mean_b| > 2 * sqrt(s_v^2 / n_v + s_b^2 / n_b)``, i.e. the
difference of means exceeds twice its (Welch) standard error. Example::

    ctcocr-report logs/loss_study/multiruns/2026-11-22_13-00-00 [--output DIR] [--baseline builtin]

Writes ``report.md``, ``accuracy_vs_eps.png``, ``ece_vs_eps.png`` and ``reliability_<set>.png``
into ``DIR`` (default: ``<sweep>/report``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from ctcocr.evaluation import N_BINS
from ctcocr.metrics import expected_calibration_error, reliability_bins

#: Evaluation sets written by the loss study, with their titles.
SETS = {"val": "in-distribution validation set",
        "shifted": "shifted set (held-out fonts, degradation 2)"}
#: Columns of the tables: metrics.json key -> heading.
COLUMNS = {
    "acc": "word acc.", "cer": "CER", "ece": "ECE", "ece_ts": "ECE after TS", "temperature": "T",
    "nll": "NLL", "blank_ratio": "blank ratio", "entropy_blank": "entropy blank",
    "entropy_nonblank": "entropy non-blank",
}
#: Metrics checked for differences from the baseline.
COMPARED = ("acc", "cer", "ece", "ece_ts", "nll", "blank_ratio", "entropy_blank",
            "entropy_nonblank")


class ReportError(Exception):
    """The sweep folder holds nothing to report."""


@dataclass
class Run:
    """One training run of the sweep: its variant, seed, loss config and evaluation results."""

    path: Path
    variant: str
    seed: int | None
    loss: dict[str, Any]
    metrics: dict[str, dict[str, Any]]


@dataclass
class Summary:
    """Mean, sample standard deviation (NaN for one run) and count of one metric over seeds."""

    mean: float
    std: float
    count: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if not finite:
            return cls(float("nan"), float("nan"), 0)
        std = float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan")
        return cls(float(np.mean(finite)), std, len(finite))

    def __str__(self) -> str:
        if self.count == 0:
            return "n/a"
        return f"{self.mean:.4f}" if math.isnan(self.std) else f"{self.mean:.4f} ± {self.std:.4f}"


@dataclass
class Variant:
    """The runs of one loss variant."""

    name: str
    loss: dict[str, Any]
    runs: list[Run] = field(default_factory=list)

    def summary(self, split: str, metric: str) -> Summary:
        return Summary.of([run.metrics[split].get(metric) for run in self.runs
                           if split in run.metrics])

    @property
    def eps(self) -> float | None:
        return self.loss.get("eps")

    @property
    def form(self) -> str | None:
        return self.loss.get("form") if self.eps is not None else None


# ---------------------------------------------------------------------------------------------
# Reading the sweep


def _loss_parts(loss: dict[str, Any]) -> list[str]:
    """The loss class name and the settings that tell the study's variants apart."""
    name = str(loss.get("_target_", "loss")).rsplit(".", 1)[-1]
    keys = ("form", "eps", "gamma", "blank_weight")
    return [name, *(f"{key}={loss[key]}" for key in keys if key in loss)]


def describe_loss(loss: dict[str, Any]) -> str:
    """A short name for a loss config without ``study.variant``, e.g.
    "SmoothedCTCLoss form=targets eps=0.1"."""
    return " ".join(_loss_parts(loss))


def read_run(run_dir: Path) -> Run | None:
    """The run in ``run_dir`` (holding ``.hydra/config.yaml``); None when it wrote no metrics."""
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    metrics = {split: json.loads((run_dir / split / "metrics.json").read_text())
               for split in SETS if (run_dir / split / "metrics.json").is_file()}
    if not metrics:
        return None
    loss = OmegaConf.to_container(cfg.loss, resolve=True) if "loss" in cfg else {}
    variant = OmegaConf.select(cfg, "study.variant", default=None) or describe_loss(loss)
    return Run(run_dir, str(variant), cfg.get("seed"), loss, metrics)


def find_runs(sweep_dir: Path) -> tuple[list[Run], list[Path]]:
    """Every run under ``sweep_dir`` with metrics, and the run folders without any (failed runs)."""
    if not sweep_dir.is_dir():
        raise ReportError(f"sweep folder not found: {sweep_dir}")
    runs, empty = [], []
    for config in sorted(sweep_dir.rglob(".hydra/config.yaml")):
        run = read_run(config.parent.parent)
        if run is None:
            empty.append(config.parent.parent)
        else:
            runs.append(run)
    if not runs:
        raise ReportError(f"no run with val/ or shifted/ metrics.json under {sweep_dir}")
    return runs, empty


def group_runs(runs: Sequence[Run], baseline: str) -> list[Variant]:
    """Runs grouped by variant: the baseline first, then by loss class, form and eps."""
    variants: dict[str, Variant] = {}
    for run in runs:
        variants.setdefault(run.variant, Variant(run.variant, run.loss)).runs.append(run)

    def order(variant: Variant) -> tuple:
        return (variant.name != baseline, variant.eps is not None, variant.form or "",
                variant.eps or 0.0, variant.name)

    return sorted(variants.values(), key=order)


def pooled_predictions(variant: Variant, split: str) -> tuple[np.ndarray, np.ndarray]:
    """String confidences and exact-match flags (N,) of all seeds' ``predictions.csv``."""
    conf, correct = [], []
    for run in variant.runs:
        path = run.path / split / "predictions.csv"
        if not path.is_file():
            continue
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                conf.append(float(row["confidence"]))
                correct.append(float(row["prediction"] == row["label"]))
    return np.asarray(conf), np.asarray(correct)


# ---------------------------------------------------------------------------------------------
# Comparison


@dataclass(frozen=True)
class Difference:
    """A variant's mean minus the baseline's, and twice the standard error of that difference."""

    variant: str
    split: str
    metric: str
    difference: float
    two_se: float

    @property
    def exceeds_spread(self) -> bool:
        return abs(self.difference) > self.two_se


def compare(variant: Variant, baseline: Variant, split: str, metric: str) -> Difference | None:
    """The difference of means with 2 x its standard error; None without 2 runs on each side."""
    ours, theirs = variant.summary(split, metric), baseline.summary(split, metric)
    if ours.count < 2 or theirs.count < 2:
        return None
    two_se = 2 * math.sqrt(ours.std ** 2 / ours.count + theirs.std ** 2 / theirs.count)
    return Difference(variant.name, split, metric, ours.mean - theirs.mean, two_se)


# ---------------------------------------------------------------------------------------------
# Markdown


def results_table(variants: Sequence[Variant], split: str) -> str:
    """One Markdown table: a row per variant, mean ± sd over seeds per metric."""
    header = ["variant", "loss", "seeds", *COLUMNS.values()]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant in variants:
        seeds = sum(split in run.metrics for run in variant.runs)
        if not seeds:
            continue
        cells = [variant.name, ", ".join(_loss_parts(variant.loss)), str(seeds),
                 *(str(variant.summary(split, metric)) for metric in COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def differences_section(variants: Sequence[Variant], baseline: Variant) -> str:
    """The differences from the baseline that exceed the seed-to-seed spread, per set."""
    lines = []
    for split in SETS:
        found = [d for v in variants if v is not baseline for m in COMPARED
                 if (d := compare(v, baseline, split, m)) is not None]
        if not found:
            lines.append(f"- {split}: not enough seeds (2 per variant) to compare.")
            continue
        beyond = [d for d in found if d.exceeds_spread]
        lines.append(f"- {split}: {len(beyond)} of {len(found)} differences exceed the spread"
                     + (":" if beyond else "."))
        lines += [f"  - {d.variant}, {COLUMNS[d.metric]}: {d.difference:+.4f} (2 SE {d.two_se:.4f})"
                  for d in beyond]
    return "\n".join(lines)


def markdown(sweep_dir: Path, variants: Sequence[Variant], baseline: Variant,
             empty: Sequence[Path], plots: Sequence[Path]) -> str:
    runs = sum(len(v.runs) for v in variants)
    parts = [
        f"# Loss study: {sweep_dir.name}",
        (f"{runs} runs of {len(variants)} loss variants from `{sweep_dir}`; baseline "
        f"`{baseline.name}`. Values are mean ± sample standard deviation over seeds."),
        ("Confidence: exp(-CTC loss of the decoded string), the model's probability of the string "
        f"it outputs. ECE: {N_BINS} equal-width bins, exact-match accuracy. "
        "NLL: mean -log P(label) per line. TS: temperature scaling, T fitted on the validation set (so ECE after TS on val "
        "is in-sample). Entropies in nats over blank / non-blank frames (argmax)."),
    ]
    if empty:
        parts.append(f"Runs without metrics (failed or unfinished), left out: {len(empty)} "
                     f"({', '.join(str(p.relative_to(sweep_dir)) for p in empty)}).")
    for split, title in SETS.items():
        parts += [f"## {split}: {title}", results_table(variants, split)]
    parts += [
        "## Differences from the baseline beyond the seed-to-seed spread",
        (f"A difference of means counts when |mean - mean({baseline.name})| > 2 sqrt(s^2/n + "
        "s_b^2/n_b), twice the standard error of the difference (s: standard deviation over "
        "seeds). With a few seeds this is a screen, not a test at a stated level."),
        differences_section(variants, baseline),
        "## Plots",
        *(f"![{path.stem}]({path.name})" for path in plots),
    ]
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------
# Plots


def _new_figure(panels: int, size: tuple[float, float],
                per_row: int = 5) -> tuple[Figure, list[Axes]]:
    """A figure of ``panels`` axes of ``size`` inches, ``per_row`` to a row; unused slots hidden."""
    columns = min(panels, per_row)
    rows = -(-panels // columns)
    figure = Figure(figsize=(size[0] * columns, size[1] * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = list(figure.subplots(rows, columns, squeeze=False).flat)
    for unused in axes[panels:]:
        unused.set_visible(False)
    return figure, axes[:panels]


def _plot_against_eps(axes: Axes, variants: Sequence[Variant], split: str, metric: str,
                      style: str = "-", suffix: str = "") -> None:
    """One line per smoothing form (mean ± sd over seeds vs eps) and a horizontal line with a
    ±sd band for every variant without eps (the baseline and the other losses)."""
    forms = dict.fromkeys(v.form for v in variants if v.eps is not None)
    for form in forms:
        points = sorted((v.eps, v.summary(split, metric)) for v in variants if v.form == form)
        points = [(eps, s) for eps, s in points if s.count]
        if points:
            axes.errorbar([eps for eps, _ in points], [s.mean for _, s in points],
                          yerr=[0 if math.isnan(s.std) else s.std for _, s in points],
                          linestyle=style, marker="o", capsize=3, label=f"{form}{suffix}")
    for index, variant in enumerate(v for v in variants if v.eps is None):
        summary = variant.summary(split, metric)
        if not summary.count:
            continue
        colour = f"C{len(forms) + index}"
        axes.axhline(summary.mean, color=colour, linestyle=style, linewidth=1,
                     label=f"{variant.name}{suffix}")
        if not math.isnan(summary.std):
            axes.axhspan(summary.mean - summary.std, summary.mean + summary.std, color=colour,
                         alpha=0.12)


def plot_against_eps(variants: Sequence[Variant], metrics: dict[str, str], ylabel: str,
                     path: Path) -> Path:
    """A panel per evaluation set: each metric (key -> legend suffix) against eps."""
    figure, axes = _new_figure(len(SETS), (5.5, 4))
    for panel, split in zip(axes, SETS):
        for (metric, suffix), style in zip(metrics.items(), ("-", "--")):
            _plot_against_eps(panel, variants, split, metric, style, suffix)
        panel.set(title=split, xlabel="smoothing eps", ylabel=ylabel)
        panel.legend(fontsize=7)
    figure.savefig(path)
    return path


def plot_reliability(variants: Sequence[Variant], split: str, path: Path) -> Path | None:
    """Reliability diagrams side by side, one per variant, all seeds' predictions pooled."""
    pooled = [(v, *pooled_predictions(v, split)) for v in variants]
    pooled = [(v, conf, correct) for v, conf, correct in pooled if len(conf)]
    if not pooled:
        return None
    figure, axes = _new_figure(len(pooled), (2.6, 2.8))
    for panel, (variant, conf, correct) in zip(axes, pooled):
        bins = reliability_bins(conf, correct, N_BINS)
        filled = (bins.count > 0).numpy()
        lefts = bins.edges[:-1].numpy()[filled]
        panel.bar(lefts, bins.accuracy.numpy()[filled], width=1 / N_BINS, align="edge",
                  edgecolor="black", linewidth=0.5)
        panel.plot([0, 1], [0, 1], linestyle="--", color="gray")
        ece = expected_calibration_error(conf, correct, N_BINS)
        panel.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence")
        panel.set_title(f"{variant.name}\nECE {ece:.3f}, n={len(conf)}", fontsize=8)
    for panel in axes[::5]:
        panel.set_ylabel(f"accuracy ({split})")
    figure.savefig(path)
    return path


# ---------------------------------------------------------------------------------------------
# Entry point


def write_report(sweep_dir: str | Path, output_dir: str | Path | None = None,
                 baseline: str = "builtin") -> Path:
    """Read the sweep folder, write report.md and the plots; returns the Markdown path."""
    sweep_dir = Path(sweep_dir)
    runs, empty = find_runs(sweep_dir)
    variants = group_runs(runs, baseline)
    reference = next((v for v in variants if v.name == baseline), None)
    if reference is None:
        raise ReportError(f"baseline variant {baseline!r} not found; variants: "
                          f"{[v.name for v in variants]}")
    output_dir = Path(output_dir) if output_dir is not None else sweep_dir / "report"
    output_dir.mkdir(parents=True, exist_ok=True)
    plots = [
        plot_against_eps(variants, {"acc": ""}, "word accuracy",
                         output_dir / "accuracy_vs_eps.png"),
        plot_against_eps(variants, {"ece": "", "ece_ts": " after TS"}, "ECE",
                         output_dir / "ece_vs_eps.png"),
        *(plot_reliability(variants, split, output_dir / f"reliability_{split}.png")
          for split in SETS),
    ]
    path = output_dir / "report.md"
    path.write_text(markdown(sweep_dir, variants, reference, empty, [p for p in plots if p]))
    return path
