"""Image -> text without Lightning: the recognizer and its checkpoint or ONNX file, decoders,
the sequence confidence, character spans, and reading image files.

The names are imported on first use (PEP 562), so that importing one module of this package (the
fast start of ``ctcocr-predict``) does not import the others; ``OnnxRecognizer`` needs onnxruntime,
an optional extra.
"""

from importlib import import_module

_MODULES = {
    "sequence_nll": "confidence",
    "string_confidence": "confidence",
    "Decoded": "decoding",
    "TextDecoder": "decoding",
    "character_spans": "decoding",
    "accelerator_device": "inference",
    "inference_context": "inference",
    "OnnxRecognizer": "onnx_recognizer",
    "Prediction": "predictor",
    "box_paths": "predictor",
    "draw_boxes": "predictor",
    "find_images": "predictor",
    "format_prediction": "predictor",
    "load_line": "predictor",
    "recognize": "predictor",
    "LineReader": "recognizer",
    "ModelFileError": "recognizer",
    "Recognizer": "recognizer",
    "load_recognizer": "recognizer",
}


def __getattr__(name: str) -> object:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)


__all__ = list(_MODULES)
