"""Tesseract on a folder dataset, scored like ``ctcocr-eval``: CER and exact match overall and per
group (an image's first folder), as a Markdown table, to put beside a ctcocr model's figures.

Each image is read as one text line (``--psm 7``, the ``eng`` model of the installed Tesseract).
Tesseract writes typographic characters that the ASCII transcriptions of data/real_lines write
plainly (see its README): curly quotes, dashes and ligatures are mapped the same way first.

    python scripts/eval_tesseract.py data/real_lines --json tesseract.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from ctcocr.data.folder import FolderDataset
from ctcocr.evaluation.metrics import group_metrics
from ctcocr.metrics import TextMetrics

ASCII = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                       "\u2013": "-", "\u2014": "-", "\ufb01": "fi", "\ufb02": "fl",
                       "\ufb00": "ff", "\ufb03": "ffi", "\ufb04": "ffl"})


def read_line(image: Path, psm: int) -> str:
    """Tesseract's reading of one line image, whitespace collapsed, typography as ASCII."""
    result = subprocess.run(["tesseract", str(image), "stdout", "--psm", str(psm), "-l", "eng"],
                            capture_output=True, text=True, check=True)
    return " ".join(result.stdout.translate(ASCII).split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder dataset (images and gt.txt)")
    parser.add_argument("--psm", type=int, default=7, help="Tesseract page segmentation mode")
    parser.add_argument("--json", type=Path, default=None, help="write the metrics here")
    args = parser.parse_args()
    if shutil.which("tesseract") is None:
        sys.exit("tesseract is not installed (Debian: apt-get install tesseract-ocr)")
    dataset = FolderDataset(args.folder)
    rows = []
    for index in range(len(dataset)):
        image = dataset.root / dataset.entries[index].path
        rows.append({"source": dataset.source(index), "label": dataset.text(index),
                     "prediction": read_line(image, args.psm)})
    overall = TextMetrics(sync_on_compute=False)
    overall.update([r["prediction"] for r in rows], [r["label"] for r in rows])
    groups = {"all": {"samples": len(rows), **overall.compute()}} | group_metrics(rows)
    print("| set | lines | CER | exact |\n|---|---|---|---|")
    for name, metrics in groups.items():
        print(f"| {name} | {metrics['samples']} | {100 * float(metrics['cer']):.2f}% "
              f"| {100 * float(metrics['acc']):.1f}% |")
    if args.json:
        args.json.write_text(json.dumps({name: {key: float(value) for key, value in m.items()}
                                         for name, m in groups.items()}, indent=2))


if __name__ == "__main__":
    main()
