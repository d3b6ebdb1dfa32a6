"""Inference speed of the CRNN models: PyTorch eager, ONNX Runtime and torch.compile on the CPU.

    python scripts/bench_infer.py --json bench_infer.json

For each model config (``configs/model/crnn_small.yaml``, ``crnn_vgg.yaml``), input size 32 x W
and thread count, reports throughput (lines per second at ``--batch-size``, median of
``--repeats`` timed batches) and batch-1 latency (median and 90th percentile of
``--latency-runs`` calls), each after warm-up. What is timed is the network and its frame
counting (images and widths in, log-probs and lengths out), not image loading or decoding. The
weights are random (speed does not depend on them); the charset is printable ASCII (96 classes).
Prints a Markdown table and writes every measurement with the environment (versions, CPU, load
average) to ``--json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnxruntime
import torch
from omegaconf import OmegaConf
from torch import Tensor

from ctcocr.recognition import OnnxRecognizer, Recognizer
from ctcocr.recognition.export import export_onnx
from ctcocr.resources import CONFIG_DIR

Forward = Callable[[Tensor, Tensor], Any]
ENGINES = ("eager", "eager_channels_last", "onnxruntime", "compile")


def build_module(model_name: str, height: int = 32) -> Recognizer:
    """A randomly initialised recognizer: ``configs/model/<model_name>.yaml``, printable charset."""
    configs = Path(CONFIG_DIR)
    composed = OmegaConf.create({
        "data": {"height": height},
        "model": OmegaConf.load(configs / "model" / f"{model_name}.yaml"),
        "charset": OmegaConf.load(configs / "charset" / "printable.yaml"),
    })
    resolved = OmegaConf.to_container(composed, resolve=True)
    preprocessing = {"height": height, "min_width": 32, "max_width": 1024}
    return Recognizer.from_config(resolved["charset"], resolved["model"], preprocessing).eval()


def timed_runs(
    forward: Forward, images: Tensor, widths: Tensor, warmup: int, runs: int
) -> list[float]:
    """Seconds per call of ``forward(images, widths)``: ``runs`` calls after ``warmup`` calls."""
    times = []
    with torch.inference_mode():
        for index in range(warmup + runs):
            start = time.perf_counter()
            forward(images, widths)
            if index >= warmup:
                times.append(time.perf_counter() - start)
    return times


def measure(
    forward: Forward, reference: Forward, width: int, args: argparse.Namespace
) -> dict[str, float]:
    """Throughput at ``args.batch_size`` and batch-1 latency of one engine at input size 32 x W.

    ``first_call_s`` is the first batch-1 call, which includes torch.compile's compilation;
    ``max_abs_diff_vs_eager`` compares the batch's log-probs with ``reference``'s."""
    generator = torch.Generator().manual_seed(0)
    batch = torch.rand(args.batch_size, 1, 32, width, generator=generator) * 2 - 1
    widths = torch.full((args.batch_size,), width)
    single, one_width = batch[:1].clone(), widths[:1].clone()
    first_call = timed_runs(forward, single, one_width, warmup=0, runs=1)[0]
    batch_times = timed_runs(forward, batch, widths, args.warmup, args.repeats)
    latencies = timed_runs(forward, single, one_width, 5 * args.warmup, args.latency_runs)
    with torch.inference_mode():
        difference = (forward(batch, widths)[0] - reference(batch, widths)[0]).abs().max()
    return {
        "lines_per_s": args.batch_size / statistics.median(batch_times),
        "latency_ms_median": 1e3 * statistics.median(latencies),
        "latency_ms_p90": 1e3 * statistics.quantiles(latencies, n=10)[-1],
        "first_call_s": first_call,
        "max_abs_diff_vs_eager": float(difference),
    }


def engines(
    module: Recognizer, onnx_path: Path, threads: int, names: list[str]
) -> dict[str, Forward]:
    """Each engine's forward for ``module`` (and its ONNX export) on ``threads`` threads."""
    forwards: dict[str, Forward] = {"eager": module}
    if "eager_channels_last" in names:
        channels_last = copy.deepcopy(module).to(memory_format=torch.channels_last)
        forwards["eager_channels_last"] = lambda images, widths: channels_last(
            images.contiguous(memory_format=torch.channels_last), widths)
    if "onnxruntime" in names:
        forwards["onnxruntime"] = OnnxRecognizer(onnx_path, threads=threads)
    if "compile" in names:
        # Compiled kernels are specialised to the thread count: compile afresh for each. Dynamic
        # shapes: one compilation serves every width and batch size > 1, as variable lines need.
        torch._dynamo.reset()
        forwards["compile"] = torch.compile(module, dynamic=True)
    return {name: forwards[name] for name in names}


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def environment() -> dict[str, Any]:
    return {
        "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(), "cpu": cpu_name(), "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(), "weights": "random (speed does not depend on them)",
        "timed": "network + frame counting (no image loading, no decoding)",
    }


def markdown(rows: list[dict[str, Any]], batch_size: int) -> str:
    lines = [(f"| model | params | input | threads | engine | lines/s (batch {batch_size}) "
             "| batch-1 latency ms (median) | p90 ms | first call s | max abs diff vs eager |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['params'] / 1e6:.2f}M | 32x{row['width']} | {row['threads']} "
            f"| {row['engine']} | {row['lines_per_s']:.1f} | {row['latency_ms_median']:.2f} "
            f"| {row['latency_ms_p90']:.2f} | {row['first_call_s']:.2f} "
            f"| {row['max_abs_diff_vs_eager']:.1e} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["crnn_small", "crnn_vgg"])
    parser.add_argument("--widths", nargs="+", type=int, default=[128, 256])
    parser.add_argument("--threads", nargs="+", default=["1", "all"],
                        help="thread counts; 'all' = every core")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2, help="warm-up batches (x5 for batch 1)")
    parser.add_argument("--repeats", type=int, default=5, help="timed batches of --batch-size")
    parser.add_argument("--latency-runs", type=int, default=50, help="timed batch-1 calls")
    parser.add_argument("--json", type=Path, default=Path("bench_infer.json"))
    args = parser.parse_args(argv)
    thread_counts = [(os.cpu_count() or 1) if value == "all" else int(value)
                     for value in args.threads]
    rows = []
    env = environment()
    with tempfile.TemporaryDirectory() as folder:
        for model_name in args.models:
            torch.manual_seed(0)
            module = build_module(model_name)
            onnx_path = export_onnx(module, Path(folder) / f"{model_name}.onnx")
            params = sum(p.numel() for p in module.parameters())
            for threads in thread_counts:
                torch.set_num_threads(threads)
                for engine, forward in engines(module, onnx_path, threads, args.engines).items():
                    for width in args.widths:
                        result = measure(forward, module, width, args)
                        rows.append({"model": model_name, "params": params, "width": width,
                                     "threads": threads, "engine": engine, **result})
                        print(markdown(rows[-1:], args.batch_size).splitlines()[-1], flush=True)
    env["load_average_end"] = os.getloadavg()
    table = markdown(rows, args.batch_size)
    print(f"\n{table}\n\nload average at start {env['load_average']}, "
          f"at end {env['load_average_end']}")
    settings = vars(args) | {"json": str(args.json)}
    report = {"environment": env, "settings": settings, "results": rows}
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
