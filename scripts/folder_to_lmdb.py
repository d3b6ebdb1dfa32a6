"""Convert a folder dataset (images + gt.txt with `path<TAB>label` lines) to an LMDB dataset.

    python scripts/folder_to_lmdb.py --input data/my_lines --output data/my_lines_lmdb

The LMDB holds the original encoded image bytes under deep-text-recognition-benchmark's keys.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ctcocr.data.errors import DatasetError
from ctcocr.data.lmdb_dataset import folder_to_lmdb
from ctcocr.data.policy import UNREADABLE_IMAGE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="folder with the images and the label file")
    parser.add_argument("--output", required=True, help="new folder for the LMDB database")
    parser.add_argument("--gt", default="gt.txt", help="label file in --input (default: gt.txt)")
    parser.add_argument(
        "--on-bad-sample", choices=["error", "skip"], default="error",
        help="unreadable images: stop (default) or leave them out, counted",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        counts = folder_to_lmdb(args.input, args.output, args.gt, args.on_bad_sample)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    written, skipped = counts["written"], counts[UNREADABLE_IMAGE]
    print(f"wrote {written} samples to {args.output}; skipped {skipped} unreadable images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
