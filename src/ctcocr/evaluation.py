"""Evaluate a recognizer on a dataloader: metrics, per-sample predictions, and the report files."""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from ctcocr.metrics import TextMetrics
from ctcocr.module import RecognizerModule


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


def predict_batches(
    module: RecognizerModule, batches: Iterable[dict[str, Any]], device: str = "cpu",
    precision: str | int = "32-true",
) -> Iterator[dict[str, Any]]:
    """Run ``module.predict_step`` on each batch on one device; yields its per-batch outputs."""
    module = module.to(device).eval()
    with inference_context(device, precision):
        for index, batch in enumerate(batches):
            moved = {**batch, "images": batch["images"].to(device), "widths": batch["widths"].to(device)}
            yield module.predict_step(moved, index)


def evaluate(
    module: RecognizerModule, loader: Iterable[dict[str, Any]], device: str = "cpu",
    precision: str | int = "32-true",
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Predict every sample; return metrics and rows (source, label, prediction, confidence)."""
    rows = []
    for batch in predict_batches(module, loader, device, precision):
        for source, label, prediction, confidence in zip(
            batch["sources"], batch["texts"], batch["predictions"], batch["confidences"].tolist()
        ):
            rows.append({"source": source, "label": label, "prediction": prediction,
                         "confidence": confidence})
    metrics = TextMetrics(sync_on_compute=False)  # one process evaluates, also after a DDP fit
    metrics.update([row["prediction"] for row in rows], [row["label"] for row in rows])
    results: dict[str, Any] = {name: float(value) for name, value in metrics.compute().items()}
    results["samples"] = len(rows)
    return results, rows


def write_report(output_dir: str | Path, metrics: dict[str, Any], rows: list[dict[str, Any]]) -> Path:
    """Write ``metrics.json`` and ``predictions.csv`` into ``output_dir``; returns the JSON path."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    with open(output_dir / "predictions.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["source", "label", "prediction", "confidence"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def format_metrics(metrics: dict[str, Any]) -> str:
    """One line per metric, for the terminal."""
    return "\n".join(f"{name:>10s}: {value:.4f}" if isinstance(value, float) else f"{name:>10s}: {value}"
                     for name, value in metrics.items())
