"""Image -> text without Lightning: the recognizer and its checkpoint or ONNX file, decoders,
the sequence confidence, character spans, and reading image files."""

from ctcocr.recognition.confidence import sequence_nll, string_confidence
from ctcocr.recognition.decoding import Decoded, TextDecoder, character_spans
from ctcocr.recognition.inference import accelerator_device, inference_context
from ctcocr.recognition.predictor import (
    Prediction,
    box_paths,
    draw_boxes,
    find_images,
    format_prediction,
    load_line,
    recognize,
)
from ctcocr.recognition.recognizer import (
    LineReader,
    ModelFileError,
    Recognizer,
    load_recognizer,
)


def __getattr__(name: str) -> object:
    """``OnnxRecognizer`` is imported on first use: onnxruntime is an optional extra."""
    if name == "OnnxRecognizer":
        from ctcocr.recognition.onnx_recognizer import OnnxRecognizer

        return OnnxRecognizer
    raise AttributeError(name)


__all__ = [
    "Decoded",
    "LineReader",
    "ModelFileError",
    "OnnxRecognizer",
    "Prediction",
    "Recognizer",
    "TextDecoder",
    "accelerator_device",
    "box_paths",
    "character_spans",
    "draw_boxes",
    "find_images",
    "format_prediction",
    "inference_context",
    "load_line",
    "load_recognizer",
    "recognize",
    "sequence_nll",
    "string_confidence",
]
