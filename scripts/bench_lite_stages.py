"""Where a line's CPU time goes in the torch-free ONNX path, stage by stage, in one process.

    python scripts/bench_lite_stages.py model.onnx [--images data/real_lines] [--repeats 7] \
        [--baseline-ctc other/ctcocr/lite/ctc.py]

On one thread (ONNX Runtime and NumPy), for every line of ``gt.txt`` under ``--images``: opening
and decoding the image file, preparing it (``prepare_line``), the network on batches of similar
width (``--batch-size``), greedy decoding, the CTC confidence and the character spans. Prints the
median over ``--repeats`` passes (after one warm-up pass) of each stage's CPU milliseconds per
line, and their total without the spans (what ``ctcocr-predict`` computes unless asked for
spans). ``--baseline-ctc`` times another file's ``greedy_tokens``/``sequence_nll``/``token_spans``
(e.g. ``git show REV:src/ctcocr/lite/ctc.py > old_ctc.py``) side by side with the installed ones,
in alternation, after checking that both give the same results.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from PIL import Image

from ctcocr.lite import ctc
from ctcocr.lite.preprocess import pad_batch, prepare_line, width_batches
from ctcocr.lite.reader import OnnxReader

ROOT = Path(__file__).resolve().parents[1]


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("baseline_ctc", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cpu_ms_per_line(work: Callable[[], Any], lines: int) -> float:
    start = time.process_time()
    work()
    return (time.process_time() - start) * 1e3 / lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("onnx", type=Path)
    parser.add_argument("--images", type=Path, default=ROOT / "data" / "real_lines")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline-ctc", type=Path)
    args = parser.parse_args()

    reader = OnnxReader(args.onnx, threads=1, batch_size=args.batch_size)
    paths = [args.images / line.split("\t")[0] for line in
             (args.images / "gt.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    settings = reader.preprocessing
    images = [Image.open(path).copy() for path in paths]
    prepared = [prepare_line(image, **settings) for image in images]
    batches = [pad_batch([prepared[i].pixels for i in indices])
               for indices in width_batches([p.pixels.shape[-1] for p in prepared],
                                            args.batch_size)]
    outputs = [reader.run(images_, widths) for images_, widths in batches]
    decoded = [(lp, lengths, ctc.greedy_tokens(lp, lengths)) for lp, lengths in outputs]

    def decoding(module: ModuleType) -> dict[str, Callable[[], Any]]:
        return {
            "greedy decoding": lambda: [module.greedy_tokens(lp, n) for lp, n, _ in decoded],
            "CTC confidence": lambda: [module.sequence_nll(lp, n, t) for lp, n, t in decoded],
            "character spans": lambda: [module.token_spans(lp, n, t) for lp, n, t in decoded],
        }

    stages: dict[str, Callable[[], Any]] = {
        "open and decode the file": lambda: [Image.open(path).load() for path in paths],
        "prepare (prepare_line)": lambda: [prepare_line(image, **settings) for image in images],
        "network (ONNX Runtime)": lambda: [reader.run(i, w) for i, w in batches],
        **decoding(ctc),
    }
    if args.baseline_ctc:
        baseline = load_module(args.baseline_ctc)
        for lp, lengths, tokens in decoded:
            assert baseline.greedy_tokens(lp, lengths) == tokens
            np.testing.assert_allclose(baseline.sequence_nll(lp, lengths, tokens),
                                       ctc.sequence_nll(lp, lengths, tokens), rtol=1e-9)
            assert baseline.token_spans(lp, lengths, tokens) == ctc.token_spans(lp, lengths,
                                                                                 tokens)
        stages |= {f"{name} (baseline)": work for name, work in decoding(baseline).items()}

    times: dict[str, list[float]] = {name: [] for name in stages}
    for repeat in range(args.repeats + 1):
        for name, work in stages.items():
            spent = cpu_ms_per_line(work, len(paths))
            if repeat:
                times[name].append(spent)
    print(f"{len(paths)} lines of {args.images}, {args.onnx.name}, batches of {args.batch_size}, "
          f"one thread, median of {args.repeats} passes")
    print("| stage | CPU ms/line |\n|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.3f} |")
    plain = [name for name in stages if "(baseline)" not in name and name != "character spans"]
    total = sum(statistics.median(times[name]) for name in plain)
    print(f"| total of a plain ctcocr-predict (no spans) | {total:.2f} |")


if __name__ == "__main__":
    main()
