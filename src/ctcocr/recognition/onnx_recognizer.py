"""Run a recognizer exported by ``ctcocr-export`` with ONNX Runtime, in PyTorch's terms: tensors in,
tensors out, a :class:`~ctcocr.data.charset.Charset`, so that evaluation and the decoders of
:mod:`ctcocr.recognition` take it like a checkpoint's recognizer. The session and the file's
metadata are :class:`ctcocr.lite.OnnxReader`'s (the torch-free reader of the same files).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import Tensor

from ctcocr.lite.reader import INPUT_NAMES, METADATA_KEY, OUTPUT_NAMES, OnnxReader

__all__ = ["INPUT_NAMES", "METADATA_KEY", "OUTPUT_NAMES", "OnnxRecognizer", "recognizer_metadata"]


def recognizer_metadata(metadata: dict[str, Any]) -> dict[str, str]:
    """A recognizer's :meth:`~ctcocr.recognition.recognizer.Recognizer.metadata` as the ONNX
    metadata entries that say how to feed the network and name its classes."""
    return {METADATA_KEY: json.dumps(metadata, ensure_ascii=False)}


class OnnxRecognizer:
    """An exported recognizer run by ONNX Runtime, used like
    :class:`~ctcocr.recognition.recognizer.Recognizer` for inference: the same call;
    ``charset`` and ``preprocessing`` come from the file.

    Args:
        path: an ``.onnx`` file written by ``ctcocr-export``.
        threads: batches that prediction runs at once (``parallel_batches``), one ONNX Runtime
            thread each (None: one per CPU core); a direct call runs one batch on one thread.
        providers: ONNX Runtime execution providers (None: the CPU).
    """

    def __init__(
        self, path: str | Path, threads: int | None = None, providers: Sequence[str] | None = None
    ) -> None:
        self.reader = OnnxReader(path, threads=threads, providers=providers)
        self.path = self.reader.path
        self.session = self.reader.session
        self.parallel_batches = self.reader.threads
        self.charset = instantiate(self.reader.metadata["charset"])
        self.preprocessing: dict[str, Any] = dict(self.reader.preprocessing)

    @property
    def height(self) -> int:
        """Height in pixels of the images the network reads."""
        return self.reader.height

    def __repr__(self) -> str:
        return f"OnnxRecognizer({str(self.path)!r}, {self.charset!r}, {self.preprocessing})"

    def __call__(self, images: Tensor, widths: Tensor) -> tuple[Tensor, Tensor]:
        """Images (B, 1, H, W) float32 in [-1, 1] and true widths (B,) -> CPU tensors: log-probs
        (T, B, C) float32 and frames (B,) int64."""
        log_probs, lengths = self.reader.run(images.detach().cpu().float().numpy(),
                                             widths.detach().cpu().long().numpy())
        return torch.from_numpy(log_probs), torch.from_numpy(lengths)
