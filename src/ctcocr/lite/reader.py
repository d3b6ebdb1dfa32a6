"""Read text lines with an ONNX file from ``ctcocr-export``, in NumPy and ONNX Runtime alone.

The file holds the network (``images`` (B, 1, H, W) float32 in [-1, 1] and ``widths`` (B,) int64
in; ``log_probs`` (T, B, C) float32 and ``lengths`` (B,) int64 out) and, in its metadata, the
charset, the preprocessing settings and the model config, so neither a checkpoint nor PyTorch is
needed. Decoding is greedy; the confidence is ``exp(-CTC(text))`` as for every ctcocr command.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from PIL import Image

from ctcocr.lite.ctc import greedy_tokens, string_confidences, token_spans
from ctcocr.lite.files import Prediction, read_line
from ctcocr.lite.pipeline import Reading, predict_files, read_lines
from ctcocr.lite.preprocess import PreparedLine, prepare_line, preprocessing_settings

#: Key of the ONNX metadata entry (a JSON object) that makes an exported file self-contained.
METADATA_KEY = "ctcocr"
INPUT_NAMES = ("images", "widths")
OUTPUT_NAMES = ("log_probs", "lengths")


def cpu_count() -> int:
    """CPU cores this process may run on (its affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def session_options() -> onnxruntime.SessionOptions:
    """ONNX Runtime settings for the CPU: one thread per run (runs go in parallel instead: on 2
    cores, two single-threaded batches at once read 1.25x as many lines per second as one batch
    on two threads, ``scripts/bench_predict.py``), every graph optimisation."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class OnnxReader:
    """An exported recognizer run by ONNX Runtime, with the torch-free preprocessing and decoding.

    Example::

        reader = OnnxReader("model.onnx")
        for reading in reader.read(["line1.png", "line2.png"]):
            print(reading.text, reading.confidence)

    Args:
        path: an ``.onnx`` file written by ``ctcocr-export``.
        threads: batches run at once, one thread each (None: one per CPU core).
        batch_size: lines per network call (lines of similar width are batched together).
        providers: ONNX Runtime execution providers (None: the CPU).
    """

    def __init__(self, path: str | Path, threads: int | None = None, batch_size: int = 32,
                 providers: Sequence[str] | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads}")
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), session_options(),
                providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as error:  # noqa: BLE001 - ONNX Runtime raises its own exception types
            raise ValueError(f"{path}: not a readable ONNX file ({error})") from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in metadata:
            raise ValueError(
                f"{path}: no '{METADATA_KEY}' metadata; export the model with ctcocr-export"
            )
        self.path = path
        self.batch_size = batch_size
        self.threads = threads or cpu_count()
        self.metadata: dict[str, Any] = json.loads(metadata[METADATA_KEY])
        self.characters: str = self.metadata["charset"]["chars"]
        self.preprocessing = preprocessing_settings(self.metadata["preprocessing"])

    @property
    def height(self) -> int:
        """Height in pixels of the images the network reads."""
        return int(self.preprocessing["height"])

    def __repr__(self) -> str:
        return (f"OnnxReader({str(self.path)!r}, {len(self.characters)} characters, "
                f"{self.preprocessing})")

    def run(self, images: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Images (B, 1, H, W) float32 in [-1, 1] and true widths (B,) -> log-probs (T, B, C)
        float32 and valid frames (B,) int64."""
        if images.ndim != 4 or tuple(images.shape[1:3]) != (1, self.height):
            raise ValueError(f"{self.path.name} reads images of shape (B, 1, {self.height}, W), "
                             f"got {tuple(images.shape)}")
        feeds = {"images": np.ascontiguousarray(images, dtype=np.float32),
                 "widths": np.ascontiguousarray(widths, dtype=np.int64)}
        log_probs, lengths = self.session.run(list(OUTPUT_NAMES), feeds)
        return log_probs, lengths

    def decode(self, tokens: Iterable[int]) -> str:
        """Class ids 1..N -> text."""
        return "".join(self.characters[token - 1] for token in tokens)

    def read_batch(self, images: np.ndarray, widths: np.ndarray, spans: bool = False
                   ) -> list[Reading]:
        """One padded batch -> a :class:`~ctcocr.lite.pipeline.Reading` per image, spans in
        network-input pixels (from the Viterbi alignment of the decoded string)."""
        log_probs, lengths = self.run(images, widths)
        tokens = greedy_tokens(log_probs, lengths)
        confidences = string_confidences(log_probs, lengths, tokens).tolist()
        located: list[Any] = [None] * len(tokens)
        if spans:
            pixels_per_frame = (np.asarray(widths, dtype=np.float64)
                                / np.maximum(lengths, 1)).tolist()
            located = [[(first * step, (last + 1) * step) for first, last in frames]
                       for frames, step in zip(token_spans(log_probs, lengths, tokens),
                                               pixels_per_frame)]
        return [Reading(self.decode(ids), confidence, boxes)
                for ids, confidence, boxes in zip(tokens, confidences, located)]

    def prepare(self, image: Image.Image | str | Path) -> PreparedLine:
        """A PIL image or an image file -> the line as the network reads it."""
        if isinstance(image, Image.Image):
            return prepare_line(image, **self.preprocessing)
        return read_line(Path(image), self.preprocessing)

    def read(self, images: Iterable[Image.Image | str | Path], spans: bool = False
             ) -> list[Reading]:
        """Read PIL images or image files (a file that cannot be read raises ValueError naming
        it); readings in the input order, spans in the original images' pixels."""
        lines = [self.prepare(image) for image in images]
        return read_lines(lines, self.read_batch, self.batch_size, spans, self.threads)

    def predict_files(self, paths: Sequence[Path], spans: bool = False) -> Iterator[Prediction]:
        """One prediction per file, in order; unreadable files give one with ``error`` set."""
        return predict_files(paths, self.preprocessing, self.read_batch, self.batch_size, spans,
                             self.threads)
