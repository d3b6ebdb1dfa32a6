"""Run a recognizer exported by ``ctcocr-export`` with ONNX Runtime: the ONNX file is enough.

The file holds the network (images and widths in, log-probabilities and frame counts out) and, in
its metadata, the charset and the input height, so no checkpoint, Lightning or Hydra is needed.
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
from ctcocr.decoding import TextDecoder

#: Key of the ONNX metadata entry (a JSON object) that makes an exported file self-contained.
METADATA_KEY = "ctcocr"
INPUT_NAMES = ("images", "widths")
OUTPUT_NAMES = ("log_probs", "lengths")


def recognizer_metadata(
    charset: Charset, height: int, model_config: dict[str, Any]
) -> dict[str, str]:
    """The ONNX metadata entries that say how to feed the network and name its classes."""
    info = {"characters": charset.characters, "case": charset.case, "blank": charset.blank,
            "height": height, "model": model_config}
    return {METADATA_KEY: json.dumps(info, ensure_ascii=False)}


class OnnxRecognizer:
    """An exported recognizer run by ONNX Runtime, used like ``RecognizerModule`` for inference:
    the same call, ``decode`` and ``predict_step``; ``charset`` and ``height`` come from the file.

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
        self.charset = Charset(chars=info["characters"], case=info["case"])
        self.height: int = info["height"]

    def __repr__(self) -> str:
        return f"OnnxRecognizer({str(self.path)!r}, {self.charset!r}, height={self.height})"

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

    def decode(self, log_probs: Tensor, lengths: Tensor) -> tuple[list[str], Tensor]:
        """Greedy strings and path confidences (B,) for log-probs (T, B, C)."""
        decoded = TextDecoder(self.charset)(log_probs, lengths)
        return decoded.texts, decoded.confidences

    def predict_step(self, batch: dict[str, Any], batch_idx: int = 0) -> dict[str, Any]:
        """A :class:`~ctcocr.data.collate.LineBatch` -> what ``RecognizerModule.predict_step``
        returns: sources, texts, predictions and confidences (B,)."""
        predictions, confidences = self.decode(*self(batch["images"], batch["widths"]))
        return {"sources": batch["sources"], "texts": batch.get("texts"),
                "predictions": predictions, "confidences": confidences}
