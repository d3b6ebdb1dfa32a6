"""Whole-process speed of ``ctcocr-predict`` (checkpoint, ONNX, 8-bit ONNX) beside Tesseract.

    python scripts/bench_predict.py --ckpt path/to/best.ckpt [--onnx m.onnx] [--int8 m.int8.onnx] \
        [--images data/real_lines] [--lines 70] [--runs 3] [--json bench_predict.json]

Each engine reads the first ``--lines`` lines of ``--images`` (a folder dataset: ``gt.txt``) as
one command in a fresh process, as a user would run it: ``ctcocr-predict ckpt_path=MODEL
inputs=FOLDER output=FILE``, and Tesseract (when installed) as one ``tesseract IMAGE stdout
--psm 7`` process per line with ``OMP_THREAD_LIMIT=1``. Reported per engine, median of
``--runs`` runs after one warm-up run: the wall time for one line (start-up) and for all lines,
the steady time per line ``(wall(M) - wall(N)) / (M - N)`` on ``--steady-lines`` M (the
dataset's lines repeated as new files; without it ``(wall(N) - wall(1)) / (N - 1)``) and its lines
per second, the CPU
seconds (user + system) of both runs, the peak resident memory of the process (Tesseract: of its
largest process), and the CER of the predictions against ``gt.txt``. Without ``--onnx``/``--int8`` the checkpoint is exported to a
temporary folder with ``ctcocr-export`` (``quantize=int8`` for the 8-bit file). Prints a Markdown
table; ``--json`` writes every run with the environment (CPU count, load average, versions).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import onnxruntime
from rapidfuzz.distance import Levenshtein

import ctcocr

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def copy_lines(images: Path, count: int, folder: Path) -> dict[str, str]:
    """The first ``count`` lines of the folder dataset ``images`` copied flat into ``folder``
    (the dataset's lines again, as new files, where it has fewer); returns file name -> label."""
    lines = (images / "gt.txt").read_text(encoding="utf-8").splitlines()
    labels = {}
    for index in range(count):
        name, label = lines[index % len(lines)].split("\t", 1)
        copy = f"r{index // len(lines)}_" if index >= len(lines) else ""
        target = folder / (copy + name.replace("/", "_"))
        shutil.copyfile(images / name, target)
        labels[target.name] = label
    return labels


def predict_command(model: Path, folder: Path, output: Path) -> list[str]:
    return [str(BIN / "ctcocr-predict"), f"ckpt_path={model}", f"inputs={folder}",
            f"output={output}"]


def run_ctcocr(model: Path, folder: Path, work: Path) -> tuple[Timing, dict[str, str]]:
    """The timing and file name -> text of one ctcocr-predict run."""
    output = work / "out.tsv"
    timing, _ = timed_isolated(predict_command(model, folder, output))
    texts = {}
    for line in output.read_text(encoding="utf-8").splitlines():
        path, text, _ = line.split("\t")
        texts[Path(path).name] = text
    return timing, texts


class Timing(NamedTuple):
    """One process (or the sum of one process per line): wall seconds, peak resident KiB, CPU
    seconds (user + system, all threads; less disturbed than the wall time on a shared machine)."""

    wall: float
    peak_kib: int
    cpu: float


def timed_isolated(command: list[str], env: dict[str, str] | None = None
                   ) -> tuple[Timing, str]:
    """Run ``command`` from a helper process, so that the peak memory is this command's alone
    (``RUSAGE_CHILDREN`` keeps the largest child ever waited for); its wall seconds (measured in
    the helper, so the helper's own start is not counted), peak memory, CPU time, and stdout."""
    helper = ("import json, resource, subprocess, sys, time\n"
              "start = time.perf_counter()\n"
              "result = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True)\n"
              "wall = time.perf_counter() - start\n"
              "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
              "print(json.dumps([wall, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, "
              "result.returncode, result.stdout, result.stderr[-2000:]]))\n")
    done = subprocess.run([sys.executable, "-c", helper, json.dumps(command)], env=env,
                          capture_output=True, text=True, check=True)
    wall, peak, cpu, code, stdout, stderr = json.loads(done.stdout)
    if code:
        raise RuntimeError(f"{' '.join(command)} failed ({code}): {stderr}")
    return Timing(wall, peak, cpu), stdout


def run_tesseract(folder: Path, work: Path) -> tuple[Timing, dict[str, str]]:
    """One ``tesseract IMAGE stdout --psm 7`` process per image, one thread each, one after the
    other: the summed wall and CPU seconds with the largest process's peak, file name -> text."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    timings, texts = [], {}
    for image in sorted(folder.iterdir()):
        timing, stdout = timed_isolated(["tesseract", str(image), "stdout", "--psm", "7"], env)
        timings.append(timing)
        texts[image.name] = stdout.strip()
    return Timing(sum(t.wall for t in timings), max(t.peak_kib for t in timings),
                  sum(t.cpu for t in timings)), texts


def cer(texts: dict[str, str], labels: dict[str, str]) -> float:
    """Character error rate of ``texts`` against ``labels`` (edits / label characters)."""
    edits = sum(Levenshtein.distance(texts.get(name, ""), label) for name, label in labels.items())
    return edits / max(1, sum(map(len, labels.values())))


def measure(run: Any, folders: dict[int, Path], labels: dict[str, str], runs: int, work: Path,
            steady_lines: int | None = None) -> dict[str, Any]:
    """Median figures of one engine: one warm-up run, then ``runs`` runs on 1 and N lines (and on
    ``steady_lines`` M, which then give the steady time per line)."""
    run(folders[1], work)
    one = [run(folders[1], work) for _ in range(runs)]
    full = [run(folders[len(labels)], work) for _ in range(runs)]
    start_up = statistics.median(timing.wall for timing, _ in one)
    wall = statistics.median(timing.wall for timing, _ in full)
    steady = (wall - start_up) / max(1, len(labels) - 1)
    many = []
    if steady_lines:
        many = [run(folders[steady_lines], work)[0].wall for _ in range(runs)]
        steady = (statistics.median(many) - wall) / (steady_lines - len(labels))
    return {
        "start_up_s": start_up,
        "wall_s": wall,
        "steady_ms_per_line": 1000 * steady,
        "lines_per_s": 1 / steady if steady > 0 else float("inf"),
        "peak_mib": max(timing.peak_kib for timing, _ in full) / 1024,
        "cpu_s": statistics.median(timing.cpu for timing, _ in full),
        "start_up_cpu_s": statistics.median(timing.cpu for timing, _ in one),
        "cer": cer(full[-1][1], labels),
        "runs_wall_s": [timing.wall for timing, _ in full],
        "runs_start_up_s": [timing.wall for timing, _ in one],
        "runs_steady_lines_wall_s": many,
    }


def export(ckpt: Path, output: Path, quantize: bool) -> Path:
    command = [str(BIN / "ctcocr-export"), f"ckpt_path={ckpt}", f"output={output}"]
    subprocess.run(command + (["quantize=int8"] if quantize else []), check=True,
                   capture_output=True)
    return output


def table(results: dict[str, dict[str, Any]], lines: int) -> str:
    header = (f"| engine | start-up, 1 line (s) | {lines} lines (s) | steady ms/line | lines/s "
              f"| CPU s, 1 / {lines} lines | peak MiB | CER |")
    rows = [header, "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        rows.append(f"| {name} | {r['start_up_s']:.2f} | {r['wall_s']:.2f} | "
                    f"{r['steady_ms_per_line']:.1f} | {r['lines_per_s']:.0f} | "
                    f"{r['start_up_cpu_s']:.2f} / {r['cpu_s']:.2f} | "
                    f"{r['peak_mib']:.0f} | {100 * r['cer']:.2f}% |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", type=Path, required=True, help="a checkpoint of ctcocr-train")
    parser.add_argument("--onnx", type=Path, help="its ONNX export (default: exported here)")
    parser.add_argument("--int8", type=Path, help="its 8-bit export (default: exported here)")
    parser.add_argument("--images", type=Path, default=ROOT / "data" / "real_lines")
    parser.add_argument("--lines", type=int, default=70)
    parser.add_argument("--steady-lines", type=int,
                        help="also time this many lines (> --lines) for the steady time per line "
                             "of ctcocr's engines")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engines", default="ckpt,onnx,int8,tesseract",
                        help="comma-separated subset of ckpt,onnx,int8,tesseract")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    engines = args.engines.split(",")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folders = {1: work / "one", args.lines: work / "all"}
        if args.steady_lines:
            folders[args.steady_lines] = work / "many"
        for count, folder in folders.items():
            folder.mkdir()
            copied = copy_lines(args.images, count, folder)
            if count == args.lines:
                labels = copied
        models = {"ckpt": args.ckpt}
        if "onnx" in engines:
            models["onnx"] = args.onnx or export(args.ckpt, work / "model.onnx", False)
        if "int8" in engines:
            models["int8"] = args.int8 or export(args.ckpt, work / "model.int8.onnx", True)
        results: dict[str, dict[str, Any]] = {}
        for name in [engine for engine in engines if engine in models]:
            model = models[name]
            results[f"ctcocr-predict {name}"] = measure(
                lambda folder, out, model=model: run_ctcocr(model, folder, out),
                folders, labels, args.runs, work, args.steady_lines)
        if "tesseract" in engines and shutil.which("tesseract"):
            results["tesseract --psm 7, 1 process/line"] = measure(
                run_tesseract, folders, labels, args.runs, work)
    print(table(results, args.lines))
    if args.json:
        environment = {
            "cpus": os.cpu_count(), "load_average_before": load_before,
            "load_average_after": os.getloadavg(), "platform": platform.platform(),
            "python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
            "ctcocr": ctcocr.__version__, "images": str(args.images), "lines": args.lines,
            "runs": args.runs, "steady_lines": args.steady_lines, "ckpt": str(args.ckpt),
        }
        args.json.write_text(json.dumps({"environment": environment, "results": results},
                                        indent=2))


if __name__ == "__main__":
    main()
