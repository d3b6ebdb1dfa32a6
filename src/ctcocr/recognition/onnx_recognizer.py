"""Run a recognizer exported by ``ctcocr-export`` with ONNX Runtime: the ONNX file is enough.

The file holds the network (images and widths in, log-probabilities and frame counts out) and, in
its metadata, the charset, the preprocessing settings and the model config, so no checkpoint,
Lightning or Hydra is needed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch
from torch import Tensor

from ctcocr.data.charset import Charset
from ctcocr.data.transforms import LEGACY_PREPROCESSING

#: Key of the ONNX metadata entry (a JSON object) that makes an exported file self-contained.
METADATA_KEY = "ctcocr"
INPUT_NAMES = ("images", "widths")
OUTPUT_NAMES = ("log_probs", "lengths")


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
        threads: ONNX Runtime intra-op threads (None: its default, all cores).
        providers: ONNX Runtime execution providers (None: the CPU).
    """

    def __init__(
        self, path: str | Path, threads: int | None = None, providers: Sequence[str] | None = None
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=list(providers or ["CPUExecutionProvider"])
        )
        metadata = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in metadata:
            raise ValueError(
                f"{path}: no '{METADATA_KEY}' metadata; export the model with ctcocr-export"
            )
        info = json.loads(metadata[METADATA_KEY])
        self.path = path
        self.charset = Charset(chars=info["charset"]["chars"], case=info["charset"]["case"])
        self.preprocessing: dict[str, Any] = {**LEGACY_PREPROCESSING, **info["preprocessing"]}

    @property
    def height(self) -> int:
        """Height in pixels of the images the network reads."""
        return int(self.preprocessing["height"])

    def __repr__(self) -> str:
        return f"OnnxRecognizer({str(self.path)!r}, {self.charset!r}, {self.preprocessing})"

    def __call__(self, images: Tensor, widths: Tensor) -> tuple[Tensor, Tensor]:
        """Images (B, 1, H, W) float32 in [-1, 1] and true widths (B,) -> CPU tensors: log-probs
        (T, B, C) float32 and frames (B,) int64."""
        if images.dim() != 4 or tuple(images.shape[1:3]) != (1, self.height):
            raise ValueError(f"{self.path.name} reads images of shape (B, 1, {self.height}, W), "
                             f"got {tuple(images.shape)}")
        feeds = {
            "images": np.ascontiguousarray(images.detach().cpu().float().numpy()),
            "widths": np.ascontiguousarray(widths.detach().cpu().long().numpy()),
        }
        log_probs, lengths = self.session.run(list(OUTPUT_NAMES), feeds)
        return torch.from_numpy(log_probs), torch.from_numpy(lengths)
