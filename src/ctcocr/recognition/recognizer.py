"""A trained network with everything it needs to read lines: its charset and its preprocessing.

Plain PyTorch: a checkpoint written by ``ctcocr-train`` is read without Lightning, and it is
self-contained (the characters themselves, the preprocessing settings and the model config), so it
loads from any directory and no file outside it can change its classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
from hydra.utils import instantiate
from torch import Tensor, nn

from ctcocr.data.charset import Charset
from ctcocr.data.transforms import LEGACY_PREPROCESSING

#: The preprocessing settings a recognizer carries: the arguments of
#: :class:`~ctcocr.data.transforms.LineTransform`.
PREPROCESSING_KEYS = ("height", "min_width", "max_width", "normalize")
#: Prefix of the recognizer's weights in a training checkpoint's state dict.
STATE_PREFIX = "recognizer."


class ModelFileError(Exception):
    """A checkpoint or ONNX file that is not a ctcocr recognizer; the message names the file."""


class LineReader(Protocol):
    """What inference needs of a recognizer, PyTorch or ONNX Runtime."""

    charset: Charset
    preprocessing: dict[str, Any]
    parallel_batches: int
    """Batches that prediction runs at once."""

    def __call__(self, images: Tensor, widths: Tensor) -> tuple[Tensor, Tensor]: ...


class Recognizer(nn.Module):
    """The network, its charset and its preprocessing.

    Args:
        model: images (B, 1, H, W) -> log-probabilities (T, B, C), with ``output_lengths(widths)``.
        charset: the classes (``model`` scores ``charset.num_classes`` of them).
        preprocessing: ``LineTransform``'s settings (``height``, ``min_width``, ``max_width``,
            ``normalize``; a missing ``normalize`` means False, as in files saved before it).
        model_config: the Hydra config that built ``model`` (stored in checkpoints and ONNX files).
    """

    #: Prediction runs one batch at a time on PyTorch's intra-op threads: two batches at once
    #: measured slower (4.71 against 4.45 ms a line on 2 cores).
    parallel_batches = 1

    def __init__(self, model: nn.Module, charset: Charset, preprocessing: Mapping[str, Any],
                 model_config: Mapping[str, Any]) -> None:
        super().__init__()
        preprocessing = {**LEGACY_PREPROCESSING, **preprocessing}
        missing = sorted(set(PREPROCESSING_KEYS) - set(preprocessing))
        if missing:
            raise ValueError(f"preprocessing lacks {missing}")
        height = getattr(getattr(model, "backbone", None), "height", preprocessing["height"])
        if height != preprocessing["height"]:
            raise ValueError(f"the model reads images {height} px high, the preprocessing makes "
                             f"them {preprocessing['height']} px high")
        self.model = model
        self.charset = charset
        self.preprocessing = {key: preprocessing[key] for key in PREPROCESSING_KEYS}
        self.model_config = dict(model_config)

    @classmethod
    def from_config(cls, charset: Mapping[str, Any], model: Mapping[str, Any],
                    preprocessing: Mapping[str, Any]) -> Recognizer:
        """Build a fresh recognizer from its three configs (Hydra ``_target_`` dicts for the
        charset and the model)."""
        built = instantiate(dict(charset))
        network = instantiate(dict(model), num_classes=built.num_classes)
        return cls(network, built, preprocessing, model)

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> Recognizer:
        """The recognizer of a checkpoint written by ``ctcocr-train``, in eval mode on the CPU."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unpickling failure means a bad file
            raise ModelFileError(f"{path}: not a readable checkpoint ({error})") from None
        hparams = checkpoint.get("hyper_parameters", {}) if isinstance(checkpoint, dict) else {}
        missing = [key for key in ("charset", "model", "preprocessing") if key not in hparams]
        if missing:
            raise ModelFileError(f"{path}: not a ctcocr checkpoint (no {', '.join(missing)})")
        recognizer = cls.from_config(hparams["charset"], hparams["model"], hparams["preprocessing"])
        weights = {key[len(STATE_PREFIX):]: value for key, value in checkpoint["state_dict"].items()
                   if key.startswith(STATE_PREFIX)}
        recognizer.load_state_dict(weights)
        return recognizer.eval()

    @property
    def height(self) -> int:
        """Height in pixels of the images the network reads."""
        return int(self.preprocessing["height"])

    def metadata(self) -> dict[str, Any]:
        """What makes a saved model self-contained: charset, preprocessing and model configs."""
        return {"charset": self.charset.to_config(), "preprocessing": dict(self.preprocessing),
                "model": dict(self.model_config)}

    def forward(self, images: Tensor, widths: Tensor) -> tuple[Tensor, Tensor]:
        """Images (B, 1, H, W) and true widths (B,) -> log-probs (T, B, C) and frames (B,)."""
        log_probs = self.model(images, widths)
        lengths = self.model.output_lengths(widths).clamp_max(log_probs.size(0))
        return log_probs, lengths


def load_recognizer(path: str | Path) -> LineReader:
    """A checkpoint written by ``ctcocr-train`` or an ONNX file written by ``ctcocr-export``."""
    if str(path).endswith(".onnx"):
        from ctcocr.recognition.onnx_recognizer import OnnxRecognizer  # onnxruntime is optional

        return OnnxRecognizer(path)
    return Recognizer.from_checkpoint(path)
