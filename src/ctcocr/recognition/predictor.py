"""Read text lines from image files with a PyTorch recognizer (or the torch wrapper of an ONNX
file): the files are read, prepared and batched by :mod:`ctcocr.lite.pipeline`, the network runs
in PyTorch, any :class:`~ctcocr.recognition.decoding.TextDecoder` decodes, and each character is
located; unreadable files are reported, not fatal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from ctcocr.data.collate import EncodedLine
from ctcocr.data.transforms import LineTransform
from ctcocr.lite.files import (  # noqa: F401 - part of this module's interface
    IMAGE_SUFFIXES,
    Prediction,
    box_paths,
    draw_boxes,
    find_images,
    format_prediction,
    read_line,
)
from ctcocr.lite.pipeline import Reading, predict_files
from ctcocr.recognition.decoding import TextDecoder, character_spans
from ctcocr.recognition.inference import inference_context, on_device
from ctcocr.recognition.recognizer import LineReader


def load_line(path: Path, transform: LineTransform) -> tuple[EncodedLine, float]:
    """An image file -> an unlabelled line ready for batching, prepared as prediction prepares it
    (with ``transform``'s settings; its augmentation is not applied), and the factor from
    network-input pixels back to the file's pixels; raises ValueError naming the file."""
    line = read_line(path, {"height": transform.height, "min_width": transform.min_width,
                            "max_width": transform.max_width, "normalize": transform.normalize})
    image = torch.from_numpy(line.pixels)[None]
    return EncodedLine(image, torch.zeros(0, dtype=torch.long), "", str(path), line.squeezed), \
        line.scale


def batch_reader(recognizer: LineReader, decoder: TextDecoder, device: str = "cpu",
                 precision: str = "32-true") -> Callable[[np.ndarray, np.ndarray, bool],
                                                         list[Reading]]:
    """``read_batch(images, widths, locate)``: a padded batch (B, 1, H, W) and its widths (B,) ->
    readings, with character spans in input pixels when ``locate``; ``recognizer`` must already be
    on ``device`` (:func:`on_device`)."""

    def read_batch(images: np.ndarray, widths: np.ndarray, locate: bool) -> list[Reading]:
        true_widths = torch.from_numpy(widths)
        with inference_context(device, precision):
            log_probs, lengths = recognizer(torch.from_numpy(images).to(device),
                                            true_widths.to(device))
        log_probs = log_probs.float()
        decoded = decoder(log_probs, lengths)
        boxes = (character_spans(log_probs, lengths, decoded.tokens, true_widths) if locate
                 else [None] * len(decoded.texts))
        return [Reading(text, confidence, box) for text, confidence, box
                in zip(decoded.texts, decoded.confidences.tolist(), boxes)]

    return read_batch


def recognize(
    recognizer: LineReader,
    paths: list[Path],
    decoder: TextDecoder,
    batch_size: int = 32,
    device: str = "cpu",
    precision: str = "32-true",
    spans: bool = False,
) -> Iterator[Prediction]:
    """Recognize each image with a checkpoint's recognizer (on ``device`` at ``precision``) or an
    ONNX file (CPU), in the order of ``paths``; unreadable files give a Prediction with ``error``
    set. Lines of similar width are batched together, ``recognizer.parallel_batches`` at a time,
    and files are read in a thread."""
    recognizer = on_device(recognizer, device)
    read_batch = batch_reader(recognizer, decoder, device, precision)
    return predict_files(paths, recognizer.preprocessing, read_batch, batch_size, spans,
                         recognizer.parallel_batches)
