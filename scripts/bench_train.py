"""Training throughput of the default recipe under different thread / loader-worker settings
(and the backbone layout).

    python scripts/bench_train.py --steps 160 --repeats 2

Runs the real ``ctcocr-train`` (default experiment, no validation, no checkpoints) for
``--steps`` optimizer steps per setting, settings interleaved ``--repeats`` times, and reads the
wall time of every logged ``train/loss`` from the TensorBoard events: seconds per step is the
median over logging intervals after the first ``--warmup`` steps, then the median over repeats;
lines per second count every training process's batch (DDP trains 2 batches per step).
Extra Hydra overrides for every run go after ``--``. Prints a Markdown table and writes every
measurement with the machine's load average to ``--json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

LOG_EVERY = 10
DDP_CPU = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
           "trainer.sync_batchnorm=false"]
# name -> (Hydra overrides, extra environment, training processes)
SETTINGS: dict[str, tuple[list[str], dict[str, str], int]] = {
    "1 thread + 1 worker": (["threads=1", "data.num_workers=1"], {}, 1),
    "2 threads, rendering in the main process": (["threads=2", "data.num_workers=0"], {}, 1),
    "2 threads + 1 worker": (["threads=2", "data.num_workers=1"], {}, 1),
    "2 threads, rendering in the main process, two-row backbone (height_reduction 16)": (
        ["threads=2", "data.num_workers=0", "model.backbone.height_reduction=16"], {}, 1),
    "DDP: 2 processes x 1 thread, rendering in each": (
        [*DDP_CPU, "threads=1", "data.num_workers=0"], {}, 2),
}


def seconds_per_step(run_dir: Path, warmup: int) -> float:
    """Median wall seconds per optimizer step between logged ``train/loss`` points after ``warmup``."""
    (events,) = run_dir.rglob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events.parent))
    accumulator.Reload()
    points = [(e.step, e.wall_time) for e in accumulator.Scalars("train/loss") if e.step >= warmup]
    if len(points) < 3:
        raise RuntimeError(f"too few logged steps after warm-up in {run_dir}")
    return statistics.median((t1 - t0) / (s1 - s0) for (s0, t0), (s1, t1) in itertools.pairwise(points))


def run_setting(overrides: list[str], env: dict[str, str], steps: int, extra: list[str],
                folder: Path) -> None:
    command = [sys.executable, "-m", "ctcocr.cli.train", "test=false", "logger=tensorboard",
               f"trainer.max_steps={steps}", "trainer.limit_val_batches=0",
               "trainer.num_sanity_val_steps=0", f"trainer.log_every_n_steps={LOG_EVERY}",
               "trainer.max_time=null", "callbacks=none", f"hydra.run.dir={folder}",
               *overrides, *extra]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env},
                            check=False)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=160)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run (after --)")
    args = parser.parse_args()

    measured: dict[str, list[float]] = {name: [] for name in args.settings}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for index, name in enumerate(args.settings):
                folder = Path(tmp) / f"{repeat}_{index}"
                overrides, env, _ = SETTINGS[name]
                run_setting(overrides, env, args.steps, args.overrides, folder)
                measured[name].append(seconds_per_step(folder, args.warmup))
                print(f"repeat {repeat}: {name}: {measured[name][-1]:.3f} s/step", flush=True)
    def lines_per_second(name: str) -> float:
        return SETTINGS[name][2] / statistics.median(measured[name])  # x batch size

    print(f"\nload average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs\n")
    print("| setting | s/step (median) | lines/s vs first |\n|---|---|---|")
    for name, values in measured.items():
        ratio = lines_per_second(name) / lines_per_second(args.settings[0])
        print(f"| {name} | {statistics.median(values):.3f} | {ratio:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps({"measured": measured, "steps": args.steps,
                                         "overrides": args.overrides,
                                         "loadavg": os.getloadavg()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
