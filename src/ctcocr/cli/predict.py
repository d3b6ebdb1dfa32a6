"""ctcocr-predict: read text lines from image files or folders (``configs/predict.yaml``).

Prints ``path<TAB>text<TAB>confidence`` per image (or JSON lines with each character's pixel span
when ``format=json``) to stdout or ``output``; logs go to stderr and nothing else is written. A file
that cannot be read is reported and skipped; the run goes on and lists the failures at the end
(exit code 1). Example::

    ctcocr-predict ckpt_path=model.ckpt inputs=scans/lines/ decoder=beam format=json \
        boxes_dir=boxes/

PAGE and ALTO files (``.xml`` inputs, or folders holding them) are read line by line from their
page images (one row per TextLine, path ``file.xml#LINE_ID``), and with ``xml.output_dir`` written
back into copies of the files (:mod:`ctcocr.recognition.xml_predict`).

Fast start: a command line of plain settings with greedy decoding
(:func:`ctcocr.lite.command.parse_predict_args`) runs without Hydra, and for an ``.onnx`` file
without PyTorch (:class:`ctcocr.lite.OnnxReader`); anything else (``decoder=beam``, ``hydra.*``,
``--help``, ...) runs the Hydra app. Both give the same output.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from itertools import chain
from typing import Any

from ctcocr.lite.command import PredictOptions, parse_predict_args
from ctcocr.lite.files import Prediction, find_images, write_predictions
from ctcocr.xml_files import split_inputs

#: What the fast path reports in one line (exit code 2), as the Hydra app's user errors.
FAST_PATH_ERRORS = (FileNotFoundError, ValueError)


def _check_format(name: str) -> None:
    if name not in ("tsv", "json"):
        raise ValueError(f"format must be 'tsv' or 'json', got {name!r}")


def run(cfg: Any) -> int:
    """Recognize every image (the Hydra app's config); returns the number of files that could
    not be read."""
    from hydra.utils import instantiate
    from omegaconf import ListConfig

    from ctcocr.cli.common import configure
    from ctcocr.data.errors import DatasetError
    from ctcocr.recognition import load_recognizer, recognize
    from ctcocr.recognition.xml_predict import read_xml_files

    configure(cfg)
    _check_format(cfg.format)
    recognizer = load_recognizer(cfg.ckpt_path)
    decoder = instantiate(cfg.decoder, charset=recognizer.charset)
    inputs = list(cfg.inputs) if isinstance(cfg.inputs, ListConfig) else str(cfg.inputs)
    image_inputs, xml_files = split_inputs(inputs)
    if xml_files and cfg.get("boxes_dir"):
        raise DatasetError("boxes_dir draws on line images; PAGE/ALTO inputs give no boxes")
    paths = find_images(image_inputs)
    spans = cfg.format == "json" or bool(cfg.get("boxes_dir"))
    predictions = chain(
        recognize(recognizer, paths, decoder, cfg.batch_size, cfg.device, cfg.precision, spans),
        read_xml_files(xml_files, recognizer, decoder, cfg.xml, cfg.batch_size, cfg.device,
                       cfg.precision))
    return write_predictions(predictions, paths + xml_files, cfg.format == "json",
                             cfg.get("output"), cfg.get("boxes_dir"))


def _checkpoint_predictions(options: PredictOptions, paths: list, spans: bool
                            ) -> Iterator[Prediction]:
    """Greedy predictions of a checkpoint, without Hydra's config composition."""
    import torch

    from ctcocr.recognition.decoding import TextDecoder
    from ctcocr.recognition.predictor import recognize
    from ctcocr.recognition.recognizer import ModelFileError, load_recognizer

    if options.threads:
        torch.set_num_threads(options.threads)
    try:
        recognizer = load_recognizer(options.ckpt_path)
    except ModelFileError as error:  # reported in one line like the fast path's other errors
        raise ValueError(str(error)) from None
    return recognize(recognizer, paths, TextDecoder(recognizer.charset), options.batch_size,
                     options.device, options.precision, spans)


def run_fast(options: PredictOptions) -> int:
    """What :func:`run` does for a command line :func:`parse_predict_args` accepted (greedy
    decoding); an ``.onnx`` file runs without PyTorch. Returns the number of unreadable files."""
    _check_format(options.format)
    paths = find_images(options.inputs)
    spans = options.format == "json" or bool(options.boxes_dir)
    if str(options.ckpt_path).endswith(".onnx"):
        from ctcocr.lite.reader import OnnxReader

        reader = OnnxReader(options.ckpt_path, options.threads, options.batch_size)
        predictions = reader.predict_files(paths, spans)
    else:
        predictions = _checkpoint_predictions(options, paths, spans)
    return write_predictions(predictions, paths, options.format == "json", options.output,
                             options.boxes_dir)


def _fast_main(options: PredictOptions) -> int:
    """Exit code of :func:`run_fast`: 0, 1 (unreadable files) or 2 (bad input, one line)."""
    try:
        failures = run_fast(options)
    except FAST_PATH_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 1 if failures else 0


def _hydra_main() -> None:
    """The Hydra app: every option of ``configs/predict.yaml`` and Hydra's own flags."""
    try:
        import hydra

        from ctcocr.cli.common import user_errors
        from ctcocr.resources import CONFIG_DIR
    except ImportError as error:
        print(f"error: these options need the full install (pip install ctcocr), not the "
              f"inference-only one ({error})", file=sys.stderr)
        raise SystemExit(2) from None

    @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
    @user_errors
    def app(cfg: Any) -> None:
        if run(cfg):
            raise SystemExit(1)

    app()


def main() -> None:
    """The ``ctcocr-predict`` command: the fast path when it applies, else the Hydra app."""
    options = parse_predict_args(sys.argv[1:])
    if options is None or split_inputs(options.inputs)[1]:  # PAGE/ALTO inputs: the Hydra app
        _hydra_main()
    else:
        raise SystemExit(_fast_main(options))


if __name__ == "__main__":
    main()
