"""Evaluate a recognizer on a dataloader: text metrics, sequence confidences and their calibration,
alignment behaviour, post-hoc temperature scaling, per-sample predictions, and the report files.

Three sequence confidences are computed for every sample (``log_probs`` (T, B, C) of one batch):

- ``confidence``: ``exp(-CTC(decoded string))``, the model's probability of the string it outputs,
  summed over all its alignments. This one feeds the calibration metrics (ECE, MCE, Brier, AUROC)
  and temperature scaling.
- ``path_confidence``: the product of the greedy path's frame maxima (one alignment only).
- ``kept_confidence``: the mean of the frame maxima of the frames that emitted a kept character.

The other two are reported beside it (``ece_path``, ``ece_kept``, ``auroc_path``, ``auroc_kept``).
Correctness is the exact (case-sensitive) string match.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from lightning import Callback, LightningModule, Trainer
from omegaconf import DictConfig
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from ctcocr.ctc.decode import greedy_decode, pad_tokens
from ctcocr.data.charset import Charset
from ctcocr.data.policy import DatasetError
from ctcocr.metrics import (
    TextMetrics,
    apply_temperature,
    brier_score,
    error_detection_auroc,
    expected_calibration_error,
    fit_temperature,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_diagram,
)
from ctcocr.metrics.frames import SUM_NAMES, frame_means, frame_sums

if TYPE_CHECKING:
    from ctcocr.decoding import TextDecoder
    from ctcocr.module import RecognizerModule

log = logging.getLogger(__name__)

N_BINS = 15
ROW_FIELDS = ["source", "label", "prediction", "confidence", "path_confidence", "kept_confidence",
              "gt_nll"]
#: Samples drawn in ``alignments.png`` of a report.
ALIGNMENT_SAMPLES = 8


def accelerator_device(accelerator: str) -> str:
    """The one device to evaluate on for a trainer accelerator: the first GPU, or the CPU."""
    return "cuda" if accelerator in ("gpu", "cuda") else "cpu"


def inference_context(device: str, precision: str | int) -> contextlib.AbstractContextManager:
    """No autograd, and bfloat16 autocast when the run's precision is a bf16 one."""
    autocast = torch.autocast(torch.device(device).type, dtype=torch.bfloat16,
                              enabled=str(precision).startswith("bf16"))
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    stack.enter_context(autocast)
    return stack


def load_module(ckpt_path: str | Path) -> RecognizerModule:
    """A trained recognizer from a checkpoint written by ctcocr-train, in eval mode on the CPU."""
    from ctcocr.module import RecognizerModule

    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"checkpoint not found: {ckpt_path}")
    return RecognizerModule.load_from_checkpoint(ckpt_path, map_location="cpu").eval()


def _to_device(batch: dict[str, Any], device: str) -> dict[str, Any]:
    return {**batch, "images": batch["images"].to(device), "widths": batch["widths"].to(device)}


# ---------------------------------------------------------------------------------------------
# Per-sample scores


@dataclass(frozen=True)
class SequenceScores:
    """Decoded strings of a batch with their three confidences, each (B,) float64 on the CPU."""

    tokens: list[list[int]]
    confidence: Tensor
    path_confidence: Tensor
    kept_confidence: Tensor


def sequence_nll(log_probs: Tensor, lengths: Tensor, targets: Tensor, target_lengths: Tensor,
                 blank: int = 0) -> Tensor:
    """-log P(target | image) summed over alignments, per sample (B,) float64; +inf where the
    target cannot be emitted in its frames.

    log_probs: (T, B, C) log-probabilities; lengths: (B,); targets: padded (B, L);
    target_lengths: (B,).
    """
    return F.ctc_loss(log_probs.detach().double(), targets.long(), lengths.long(),
                      target_lengths.long(), blank=blank, reduction="none",
                      zero_infinity=False).cpu()


def string_confidence(log_probs: Tensor, lengths: Tensor, tokens: list[list[int]],
                      blank: int = 0) -> Tensor:
    """``exp(-CTC(string))`` of each decoded string, (B,) float64: its probability summed over
    all its alignments. log_probs (T, B, C), lengths (B,)."""
    decoded, decoded_lengths = pad_tokens(tokens, log_probs.device)
    return torch.exp(-sequence_nll(log_probs, lengths, decoded, decoded_lengths, blank))


def sequence_scores(log_probs: Tensor, lengths: Tensor, blank: int = 0,
                    decoder: TextDecoder | None = None) -> SequenceScores:
    """Decoded strings (greedy, or ``decoder``'s) and their three confidences (see the module
    docstring) for (T, B, C); the path and kept confidences are always the greedy path's."""
    greedy = greedy_decode(log_probs, lengths, blank)
    tokens = greedy.tokens if decoder is None else decoder(log_probs, lengths).tokens
    return SequenceScores(
        tokens=tokens,
        confidence=string_confidence(log_probs, lengths, tokens, blank),
        path_confidence=greedy.path_confidence.double().cpu(),
        kept_confidence=greedy.mean_kept_confidence.double().cpu(),
    )


# ---------------------------------------------------------------------------------------------
# Collected outputs of a split


@dataclass
class BatchOutputs:
    """One batch's model outputs on the CPU: log_probs (T, B, C) float32, lengths (B,),
    targets (B, L), target_lengths (B,), texts and sources (B); images (b, 1, H, W) and widths (b,)
    only for the first ``b`` samples kept for pictures (b may be 0)."""

    log_probs: Tensor
    lengths: Tensor
    targets: Tensor
    target_lengths: Tensor
    texts: list[str]
    sources: list[str]
    images: Tensor
    widths: Tensor


def collect_outputs(
    module: RecognizerModule, loader: Iterable[dict[str, Any]], device: str = "cpu",
    precision: str | int = "32-true", keep_images: int = ALIGNMENT_SAMPLES,
) -> list[BatchOutputs]:
    """Run the model over ``loader`` and keep every batch's log-probabilities (renormalised in
    float32 after bf16 autocast) and labels; images of the first ``keep_images`` samples."""
    module = module.to(device).eval()
    outputs = []
    with inference_context(device, precision):
        for batch in loader:
            if not batch["texts"]:
                continue  # every sample of this batch was skipped by the bad-sample policy
            moved = _to_device(batch, device)
            log_probs, lengths = module(moved["images"], moved["widths"])
            kept = max(0, keep_images - sum(len(o.texts) for o in outputs))
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


# ---------------------------------------------------------------------------------------------
# Metrics


def calibration_metrics(conf: Tensor, correct: Tensor, suffix: str = "") -> dict[str, float]:
    """ECE, MCE (15 equal-width bins), Brier score and error-detection AUROC of (N,) confidences."""
    return {f"ece{suffix}": expected_calibration_error(conf, correct, N_BINS),
            f"mce{suffix}": maximum_calibration_error(conf, correct, N_BINS),
            f"brier{suffix}": brier_score(conf, correct),
            f"auroc{suffix}": error_detection_auroc(conf, correct)}


def _mean_finite_nll(nll: Tensor) -> tuple[float, int]:
    """Mean ground-truth NLL over the samples that can emit their label, and how many cannot."""
    finite = torch.isfinite(nll)
    value = negative_log_likelihood(-nll[finite]) if finite.any() else float("nan")
    return value, int((~finite).sum())


def evaluate_outputs(
    outputs: Sequence[BatchOutputs], charset: Charset, temperature: float | None = None,
    decoder: TextDecoder | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics and per-sample rows of collected outputs.

    Metrics: ``acc, acc_ci, cer, ned, samples``; calibration of ``confidence`` (``ece, mce, brier,
    auroc``) and ECE/AUROC of the other confidences; ``nll`` (mean ground-truth NLL per line over
    the ``infeasible``-excluded samples); the frame statistics ``blank_ratio, entropy_blank,
    entropy_nonblank, peakiness, mean_blank_posterior``; with ``temperature``: ``temperature`` and
    ``ece_ts, mce_ts, brier_ts, auroc_ts, nll_ts`` at that temperature (predictions do not change).
    Strings are decoded greedily, or by ``decoder`` (e.g. beam search with a lexicon).
    """
    blank = charset.blank
    rows: list[dict[str, Any]] = []
    text_metrics = TextMetrics(sync_on_compute=False)  # one process evaluates, also after DDP
    sums = dict.fromkeys(SUM_NAMES, torch.zeros((), dtype=torch.float64))
    tempered_conf, tempered_nll = [], []
    for batch in outputs:
        scores = sequence_scores(batch.log_probs, batch.lengths, blank, decoder)
        predictions = [charset.decode(tokens) for tokens in scores.tokens]
        nll = sequence_nll(batch.log_probs, batch.lengths, batch.targets, batch.target_lengths,
                           blank)
        text_metrics.update(predictions, batch.texts)
        for name, value in frame_sums(batch.log_probs, batch.lengths, blank).items():
            sums[name] = sums[name] + value
        for b, prediction in enumerate(predictions):
            rows.append({"source": batch.sources[b], "label": batch.texts[b],
                         "prediction": prediction,
                         "confidence": float(scores.confidence[b]),
                         "path_confidence": float(scores.path_confidence[b]),
                         "kept_confidence": float(scores.kept_confidence[b]),
                         "gt_nll": float(nll[b])})
        if temperature is not None:
            tempered = apply_temperature(batch.log_probs, temperature)
            tempered_conf.append(string_confidence(tempered, batch.lengths, scores.tokens, blank))
            tempered_nll.append(sequence_nll(tempered, batch.lengths, batch.targets,
                                             batch.target_lengths, blank))
    metrics: dict[str, Any] = {name: float(value) for name, value in text_metrics.compute().items()}
    metrics["samples"] = len(rows)
    correct = torch.tensor([row["prediction"] == row["label"] for row in rows], dtype=torch.float64)
    column = {name: torch.tensor([row[name] for row in rows], dtype=torch.float64)
              for name in ("confidence", "path_confidence", "kept_confidence", "gt_nll")}
    metrics.update(calibration_metrics(column["confidence"], correct))
    for name, suffix in (("path_confidence", "_path"), ("kept_confidence", "_kept")):
        metrics[f"ece{suffix}"] = expected_calibration_error(column[name], correct, N_BINS)
        metrics[f"auroc{suffix}"] = error_detection_auroc(column[name], correct)
    metrics["nll"], metrics["infeasible"] = _mean_finite_nll(column["gt_nll"])
    metrics.update(frame_means(sums))
    if temperature is not None:
        conf = torch.cat(tempered_conf)
        for row, value in zip(rows, conf.tolist()):
            row["confidence_ts"] = value
        metrics["temperature"] = temperature
        metrics.update(calibration_metrics(conf, correct, "_ts"))
        metrics["nll_ts"], _ = _mean_finite_nll(torch.cat(tempered_nll))
    return metrics, rows


def evaluate(
    module: RecognizerModule, loader: Iterable[dict[str, Any]], device: str = "cpu",
    precision: str | int = "32-true", temperature: float | None = None,
    decoder: TextDecoder | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Predict every sample of ``loader``; return :func:`evaluate_outputs`'s metrics and rows."""
    outputs = collect_outputs(module, loader, device, precision, keep_images=0)
    return evaluate_outputs(outputs, module.charset, temperature, decoder)


# ---------------------------------------------------------------------------------------------
# Report files


def write_report(
    output_dir: str | Path, metrics: dict[str, Any], rows: list[dict[str, Any]]
) -> Path:
    """Write ``metrics.json``, ``predictions.csv`` and the reliability diagram(s)
    (``reliability.png``, and ``reliability_ts.png`` after temperature scaling) into
    ``output_dir``; returns the JSON path."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    fields = [name for name in [*ROW_FIELDS, "confidence_ts"] if rows and name in rows[0]]
    with open(output_dir / "predictions.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields or ROW_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    if rows:
        correct = [float(row["prediction"] == row["label"]) for row in rows]
        reliability_diagram([row["confidence"] for row in rows], correct, N_BINS,
                            title="string confidence", path=output_dir / "reliability.png")
        if "confidence_ts" in rows[0]:
            title = f"after temperature scaling, T = {metrics['temperature']:.3g}"
            reliability_diagram([row["confidence_ts"] for row in rows], correct, N_BINS,
                                title=title, path=output_dir / "reliability_ts.png")
    return path


def write_alignments(path: str | Path, outputs: Sequence[BatchOutputs], charset: Charset,
                     count: int = ALIGNMENT_SAMPLES) -> Path | None:
    """Alignment pictures (:func:`ctcocr.visualize.alignment_figure`) of the first ``count`` kept
    samples, as a PNG; None when no images were kept."""
    from ctcocr.visualize import alignment_figure

    batch = outputs[0]
    count = min(count, batch.images.size(0))
    if count == 0:
        return None
    figure = alignment_figure(batch.images[:count], batch.widths[:count],
                              batch.log_probs[:, :count], batch.lengths[:count],
                              batch.targets[:count], batch.target_lengths[:count], charset)
    figure.savefig(path)
    return Path(path)


def format_metrics(metrics: dict[str, Any]) -> str:
    """One line per metric, for the terminal."""
    return "\n".join(f"{name:>20s}: {value:.4f}" if isinstance(value, float)
                     else f"{name:>20s}: {value}" for name, value in metrics.items())


def evaluate_and_report(module: RecognizerModule, loader: Iterable[dict[str, Any]],
                        output_dir: str | Path, device: str = "cpu",
                        precision: str | int = "32-true", temperature: float | None = None,
                        outputs: Sequence[BatchOutputs] | None = None,
                        decoder: TextDecoder | None = None) -> dict[str, Any]:
    """Evaluate (or score already ``outputs`` collected from ``loader``) and write every report
    file into ``output_dir``: metrics.json, predictions.csv, reliability PNGs, alignments.png."""
    if outputs is None:
        outputs = collect_outputs(module, loader, device, precision)
    metrics, rows = evaluate_outputs(outputs, module.charset, temperature, decoder)
    report = write_report(output_dir, metrics, rows)
    write_alignments(Path(output_dir) / "alignments.png", outputs, module.charset)
    log.info("wrote %s", report)
    return metrics


# ---------------------------------------------------------------------------------------------
# Validation-time calibration (logged by the LightningModule)


class CalibrationStatistics(Metric):
    """Accumulates string confidences, exact-match flags, ground-truth NLLs and frame sums over
    batches (gathered across processes under DDP).

    ``compute()`` returns ``ece`` and ``brier`` of the string confidence, ``nll`` (mean per line
    over samples that can emit their label) and the frame statistics of
    :mod:`ctcocr.metrics.frames`; NaN before any sample.
    """

    full_state_update = False
    higher_is_better = None
    is_differentiable = False

    def __init__(self, blank: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.blank = blank
        for name in ("confidence", "correct", "nll"):
            self.add_state(name, default=[], dist_reduce_fx="cat")
        for name in SUM_NAMES:
            self.add_state(f"frame_{name}", default=torch.tensor(0.0, dtype=torch.float64),
                           dist_reduce_fx="sum")

    def update(self, log_probs: Tensor, lengths: Tensor, targets: Tensor, target_lengths: Tensor,
               predictions: Sequence[str], labels: Sequence[str]) -> None:
        """One batch: log_probs (T, B, C), lengths (B,), padded targets (B, L), target_lengths (B,),
        and the B decoded strings and labels."""
        log_probs = log_probs.detach().float().log_softmax(-1)
        scores = sequence_scores(log_probs, lengths, self.blank)
        self.confidence.append(scores.confidence.to(self.device))
        self.correct.append(torch.tensor([p == t for p, t in zip(predictions, labels)],
                                         dtype=torch.float64, device=self.device))
        nll = sequence_nll(log_probs, lengths, targets, target_lengths, self.blank)
        self.nll.append(nll.to(self.device))
        for name, value in frame_sums(log_probs, lengths, self.blank).items():
            setattr(self, f"frame_{name}", getattr(self, f"frame_{name}") + value.to(self.device))

    def compute(self) -> dict[str, float]:
        frames = frame_means({name: getattr(self, f"frame_{name}") for name in SUM_NAMES})
        if len(self.confidence) == 0:  # a list before any update, a tensor once gathered
            return {"ece": float("nan"), "brier": float("nan"), "nll": float("nan"), **frames}
        conf, correct = dim_zero_cat(self.confidence), dim_zero_cat(self.correct)
        return {"ece": expected_calibration_error(conf, correct, N_BINS),
                "brier": brier_score(conf, correct),
                "nll": _mean_finite_nll(dim_zero_cat(self.nll))[0], **frames}


# ---------------------------------------------------------------------------------------------
# Several evaluation sets after training (the loss study), and ctcocr-eval


def split_loader(data: DictConfig, charset: Charset, split: str) -> Iterable[dict[str, Any]]:
    """The ``split`` ("val" or "test") loader of a data config, built for ``charset``."""
    if split not in ("val", "test"):
        raise DatasetError(f"split must be 'val' or 'test', got {split!r}")
    datamodule = instantiate(data, charset=charset, train=None)  # evaluation reads no training data
    datamodule.setup("validate" if split == "val" else "test")
    return datamodule.val_dataloader() if split == "val" else datamodule.test_dataloader()


def evaluate_sets(module: RecognizerModule, sets: dict[str, Iterable[dict[str, Any]]],
                  output_dirs: dict[str, str | Path], device: str = "cpu",
                  precision: str | int = "32-true",
                  temperature_set: str | None = None,
                  decoder: TextDecoder | None = None) -> dict[str, dict[str, Any]]:
    """Evaluate ``module`` on each named loader of ``sets`` that has an entry in ``output_dirs``
    and write its report files there (:func:`evaluate_and_report`).

    With ``temperature_set`` (a name in ``sets``, reported or not), T is fitted on that set's
    outputs first and every reported set is also scored at T (when T cannot be fitted, a warning
    says why and the reports leave the ``_ts`` metrics out). Strings are decoded greedily, or by
    ``decoder``. Returns the metrics by set name.
    """
    if temperature_set is not None and temperature_set not in sets:
        raise ValueError(f"temperature_set {temperature_set!r} is not one of {sorted(sets)}")
    collected: dict[str, list[BatchOutputs]] = {}
    temperature = None
    if temperature_set is not None:
        collected[temperature_set] = collect_outputs(module, sets[temperature_set], device,
                                                     precision)
        try:
            temperature = fit_outputs_temperature(collected[temperature_set], module.charset.blank)
            log.info("temperature fitted on %s: %.4f", temperature_set, temperature)
        except ValueError as error:  # e.g. no label of the set fits its frames: report without T
            log.warning("temperature scaling skipped: %s", error)
    results = {}
    for name, output_dir in output_dirs.items():
        results[name] = evaluate_and_report(module, sets[name], output_dir, device, precision,
                                            temperature, collected.pop(name, None), decoder)
        print(f"{name} metrics ({output_dir}):\n{format_metrics(results[name])}")
    return results


class EvaluateBestCheckpoint(Callback):
    """After ``fit``, on the main process: evaluate the best checkpoint (the trainer's first
    ModelCheckpoint; the last weights without one) on several data sets, each written to
    ``output_dir/<name>`` by :func:`evaluate_sets`.

    Args:
        sets: name -> ``{data: <data config>, split: val | test}``.
        output_dir: the run folder.
        temperature_set: the set whose outputs fit temperature scaling's T (None: no scaling).

    Give it ``_recursive_: false`` in its Hydra config so the data configs arrive unbuilt.
    """

    def __init__(
        self, sets: DictConfig, output_dir: str, temperature_set: str | None = "val"
    ) -> None:
        super().__init__()
        self.sets = sets
        self.output_dir = output_dir
        self.temperature_set = temperature_set

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        module = load_module(best) if best else pl_module
        log.info("evaluating %s", best or "the last weights")
        loaders = {name: split_loader(spec.data, module.charset, spec.split)
                   for name, spec in self.sets.items()}
        was_training = module.training
        output_dirs = {name: Path(self.output_dir) / name for name in loaders}
        evaluate_sets(module, loaders, output_dirs, str(trainer.strategy.root_device),
                      trainer.precision, self.temperature_set)
        module.train(was_training)
