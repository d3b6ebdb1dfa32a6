"""ctcocr-report: summarise a loss-study sweep folder (:mod:`ctcocr.evaluation.sweep_report`).

Example::

    ctcocr-report logs/loss_study/multiruns/2026-11-22_13-00-00 [--output DIR] [--baseline builtin]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ctcocr.evaluation.sweep_report import ReportError, write_report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ctcocr-report", description="Summarise a loss-study sweep folder in Markdown and PNG plots.")
    parser.add_argument("sweep_dir", type=Path, help="the multirun folder of a loss study")
    parser.add_argument("--output", type=Path, default=None, help="default: <sweep_dir>/report")
    parser.add_argument("--baseline", default="builtin", help="the variant compared against")
    args = parser.parse_args(argv)
    try:
        path = write_report(args.sweep_dir, args.output, args.baseline)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
