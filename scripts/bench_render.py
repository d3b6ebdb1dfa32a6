"""Rendering speed of the synthetic line renderer (one process, one core), to check that it is
not the training bottleneck: lines per second by degradation strength, and the mean text length
and image width at the model's height.

    python scripts/bench_render.py --lines 500 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import string
import time

import torch

from ctcocr.data.synthetic import SyntheticLines

PRINTABLE = string.digits + string.ascii_letters + string.punctuation + " "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--height", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| degradation | lines/s (median of repeats) | ms a line | characters a line "
          "| width at the model's height |\n|---|---|---|---|---|")
    for strength in (0.0, 1.0, 2.0):
        data = SyntheticLines(size=10**6, seed=0, chars=PRINTABLE, height=args.height,
                              fonts="all", degradation=strength)
        data[0]  # font discovery and caches, outside the timing
        rates, lengths, widths = [], [], []
        for repeat in range(args.repeats):
            start = time.perf_counter()
            samples = [data[repeat * args.lines + i] for i in range(args.lines)]
            rates.append(args.lines / (time.perf_counter() - start))
            lengths += [len(s.text) for s in samples]
            widths += [s.image.width * args.height / s.image.height for s in samples]
        rate = statistics.median(rates)
        print(f"| {strength:g} | {rate:.0f} | {1000 / rate:.2f} | {statistics.mean(lengths):.1f} "
              f"| {statistics.mean(widths):.0f} px |")


if __name__ == "__main__":
    main()
