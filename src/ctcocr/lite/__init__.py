"""Torch-free inference: read text lines with an ONNX file from ``ctcocr-export`` using NumPy,
Pillow and ONNX Runtime only (``pip install ctcocr[onnx]``)::

    from ctcocr.lite import OnnxReader

    for reading in OnnxReader("model.onnx").read(["line.png"]):
        print(reading.text, reading.confidence)

The line preprocessing here is the one training uses (:mod:`ctcocr.lite.preprocess`), the decoding
greedy with the confidence ``exp(-CTC(text))`` of every ctcocr command (:mod:`ctcocr.lite.ctc`).
Nothing here imports PyTorch, Lightning or Hydra.
"""

from ctcocr.lite.pipeline import Reading


def __getattr__(name: str) -> object:
    """``OnnxReader`` is imported on first use: onnxruntime is an optional extra."""
    if name == "OnnxReader":
        from ctcocr.lite.reader import OnnxReader

        return OnnxReader
    raise AttributeError(name)


__all__ = ["OnnxReader", "Reading"]
