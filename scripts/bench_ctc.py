"""Benchmark ctcocr's CTC loss against torch's built-in on CPU (or CUDA with --device cuda).

Times forward (no grad) and forward+backward (gradient w.r.t. log_probs) of both, interleaved in
one process, median over --repeats after --warmup, at each thread count. Inputs are float32:
"random" = log_softmax(randn); "confident" = log_softmax of randn plus --scale on the classes
of a random plausible alignment of the target (peaky, like a trained model).

Peak memory: for each implementation, a fresh subprocess allocates the inputs, resets the
kernel's peak-RSS mark (/proc/self/clear_refs), runs one forward+backward and reports the peak
resident set size (VmHWM) minus the resident size before the call: the most memory the call held
at once (the output gradient, saved tensors, temporaries and the reused work buffers of the
custom loss), as the OS sees it. Linux and CPU only.

    python scripts/bench_ctc.py --json bench_ctc.json
    python scripts/bench_ctc.py --shapes 128x256x32:60 --repeats 5 --threads 1 --no-memory
    python scripts/bench_ctc.py --device cuda --triton --no-memory  # custom = the Triton kernels
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ctcocr.ctc.loss import ctc_loss

DEFAULT_SHAPES = "128x256x32:60,32x256x37:10,256x64x100:100,64x32x6000:20"
IMPLEMENTATIONS: dict[str, Callable[..., torch.Tensor]] = {
    "builtin": F.ctc_loss,
    "custom": ctc_loss,
}


@dataclass(frozen=True)
class Shape:
    frames: int
    batch: int
    classes: int
    target_length: int

    @classmethod
    def parse(cls, text: str) -> Shape:
        dims, target_length = text.split(":")
        frames, batch, classes = (int(d) for d in dims.split("x"))
        return cls(frames, batch, classes, int(target_length))

    def __str__(self) -> str:
        return f"{self.frames}x{self.batch}x{self.classes} L={self.target_length}"

    def spec(self) -> str:
        """The command-line form, TxBxC:L."""
        return f"{self.frames}x{self.batch}x{self.classes}:{self.target_length}"


def make_inputs(
    shape: Shape, kind: str, scale: float, device: str, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """log_probs (T, B, C) float32, padded targets (B, L), input and target lengths (B,)."""
    gen = torch.Generator().manual_seed(seed)
    frames, batch, classes, length = shape.frames, shape.batch, shape.classes, shape.target_length
    targets = torch.randint(1, classes, (batch, length), generator=gen)
    logits = torch.randn(frames, batch, classes, generator=gen)
    if kind == "confident":
        for b in range(batch):  # label i occupies a random span; blanks elsewhere
            starts = torch.randperm(frames, generator=gen)[:length].sort().values
            path = torch.zeros(frames, dtype=torch.long)
            for i, start in enumerate(starts.tolist()):
                end = starts[i + 1].item() if i + 1 < length else frames
                span = int(torch.randint(1, max(2, (end - start) // 2 + 1), (), generator=gen))
                path[start : start + span] = targets[b, i]
            logits[torch.arange(frames), b, path] += scale
    log_probs = logits.log_softmax(-1).to(device)
    lengths = (torch.full((batch,), frames), torch.full((batch,), length))
    return log_probs, targets.to(device), *(x.to(device) for x in lengths)


def time_call(fn: Callable[[], None], device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1000


def bench_case(shape: Shape, kind: str, args: argparse.Namespace) -> dict[str, float]:
    inputs = make_inputs(shape, kind, args.scale, args.device)
    log_probs, targets, input_lengths, target_lengths = inputs
    leaf = log_probs.clone().requires_grad_(True)
    calls = {}
    for name, loss_fn in IMPLEMENTATIONS.items():
        def forward(loss_fn=loss_fn) -> None:
            with torch.no_grad():
                loss_fn(log_probs, targets, input_lengths, target_lengths)

        def forward_backward(loss_fn=loss_fn) -> None:
            loss_fn(leaf, targets, input_lengths, target_lengths).backward()
            leaf.grad = None

        calls[f"{name}_fwd"], calls[f"{name}_fwdbwd"] = forward, forward_backward
    times: dict[str, list[float]] = {key: [] for key in calls}
    for repeat in range(args.warmup + args.repeats):
        for key, call in calls.items():  # interleaved, so load changes hit both alike
            elapsed = time_call(call, args.device)
            if repeat >= args.warmup:
                times[key].append(elapsed)
    return {f"{key}_ms": statistics.median(values) for key, values in times.items()}


def peak_memory_mb(shape: Shape, kind: str, implementation: str, scale: float) -> float:
    """Peak RSS growth (MB) of one forward+backward, measured in a fresh subprocess."""
    command = [sys.executable, __file__, "--peak-memory-child", shape.spec(), kind, implementation]
    command += ["--scale", str(scale)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def _peak_memory_child(shape: Shape, kind: str, implementation: str, scale: float) -> None:
    torch.set_num_threads(1)
    log_probs, targets, input_lengths, target_lengths = make_inputs(shape, kind, scale, "cpu")
    leaf = log_probs.clone().requires_grad_(True)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # peak RSS := current RSS
    before = _status_kib("VmRSS")
    IMPLEMENTATIONS[implementation](leaf, targets, input_lengths, target_lengths).backward()
    print((_status_kib("VmHWM") - before) / 1024)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help="TxBxC:L, comma separated")
    parser.add_argument("--inputs", default="random,confident", help="random and/or confident")
    parser.add_argument("--scale", type=float, default=8.0, help="logit boost of confident inputs")
    parser.add_argument("--threads", default=f"1,{torch.get_num_threads()}", help="comma separated")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak memory runs")
    parser.add_argument("--triton", action="store_true", help="custom = the Triton kernels (CUDA)")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--peak-memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_memory_child:
        shape, kind, implementation = args.peak_memory_child
        _peak_memory_child(Shape.parse(shape), kind, implementation, args.scale)
        return

    if args.triton:
        if args.device != "cuda":
            parser.error("--triton needs --device cuda")
        IMPLEMENTATIONS["custom"] = functools.partial(ctc_loss, implementation="triton")
    shapes = [Shape.parse(s) for s in args.shapes.split(",")]
    kinds = args.inputs.split(",")
    results = []
    header = (
        f"{'threads':>7} {'shape':>20} {'input':>9}"
        f" | {'fwd builtin':>11} {'custom':>8} {'ratio':>6}"
        f" | {'f+b builtin':>11} {'custom':>8} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for shape in shapes:
            for kind in kinds:
                row = {"threads": threads, "shape": str(shape), "input": kind}
                row.update(bench_case(shape, kind, args))
                row["fwd_ratio"] = row["builtin_fwd_ms"] / row["custom_fwd_ms"]
                row["fwdbwd_ratio"] = row["builtin_fwdbwd_ms"] / row["custom_fwdbwd_ms"]
                results.append(row)
                print(
                    f"{threads:>7} {shape!s:>20} {kind:>9} | {row['builtin_fwd_ms']:>11.1f}"
                    f" {row['custom_fwd_ms']:>8.1f} {row['fwd_ratio']:>6.2f} |"
                    f" {row['builtin_fwdbwd_ms']:>11.1f} {row['custom_fwdbwd_ms']:>8.1f}"
                    f" {row['fwdbwd_ratio']:>6.2f}",
                    flush=True,
                )
    memory = []
    if not args.no_memory and args.device == "cpu":
        print("\npeak RSS growth of one forward+backward (MB, fresh process, 1 thread)")
        for shape in shapes:
            for kind in kinds:
                entry = {"shape": str(shape), "input": kind}
                for name in IMPLEMENTATIONS:
                    entry[f"{name}_mb"] = peak_memory_mb(shape, kind, name, args.scale)
                memory.append(entry)
                print(f"{shape!s:>20} {kind:>9} | builtin {entry['builtin_mb']:8.1f}"
                      f" | custom {entry['custom_mb']:8.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            report = {"torch": torch.__version__, "custom": "triton" if args.triton else "torch",
                      "timings": results, "peak_memory": memory}  # fmt: skip
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
