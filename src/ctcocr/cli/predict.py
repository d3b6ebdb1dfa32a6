"""ctcocr-predict: read text lines from image files or folders (``configs/predict.yaml``).

Prints ``path<TAB>text<TAB>confidence`` per image (or JSON lines with each character's pixel span
when ``format=json``) to stdout or ``output``; logs go to stderr and nothing else is written. A file
that cannot be read is reported and skipped; the run goes on and lists the failures at the end
(exit code 1). Example::

    ctcocr-predict ckpt_path=model.ckpt inputs=scans/lines/ decoder=beam format=json \
        boxes_dir=boxes/
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig

from ctcocr.cli.common import configure, user_errors
from ctcocr.recognition import (
    box_paths,
    draw_boxes,
    find_images,
    format_prediction,
    load_recognizer,
    recognize,
)
from ctcocr.resources import CONFIG_DIR


def run(cfg: DictConfig) -> int:
    """Recognize every image; returns the number of files that could not be read."""
    configure(cfg)
    if cfg.format not in ("tsv", "json"):
        raise ValueError(f"format must be 'tsv' or 'json', got {cfg.format!r}")
    recognizer = load_recognizer(cfg.ckpt_path)
    decoder = instantiate(cfg.decoder, charset=recognizer.charset)
    inputs = list(cfg.inputs) if isinstance(cfg.inputs, ListConfig) else str(cfg.inputs)
    paths = find_images(inputs)
    boxes = None
    if cfg.get("boxes_dir"):
        boxes = dict(zip(map(str, paths), box_paths(paths, Path(cfg.boxes_dir))))
    spans = cfg.format == "json" or boxes is not None
    failures = []
    with contextlib.ExitStack() as stack:
        output = (stack.enter_context(open(cfg.output, "w", encoding="utf-8"))
                  if cfg.get("output") else sys.stdout)
        for prediction in recognize(recognizer, paths, decoder, cfg.batch_size, cfg.device,
                                    cfg.precision, spans):
            if prediction.error:
                failures.append(prediction.error)
                continue
            print(format_prediction(prediction, cfg.format == "json"), file=output)
            if boxes is not None:
                draw_boxes(prediction, boxes[prediction.path])
    if failures:
        print(f"{len(failures)} of {len(paths)} files could not be read:", file=sys.stderr)
        for reason in failures:
            print(f"  {reason}", file=sys.stderr)
    return len(failures)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
@user_errors
def main(cfg: DictConfig) -> None:
    if run(cfg):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
