"""ctcocr: text-line recognition with CRNN and a verified, fast family of CTC losses."""

__version__ = "0.1.0"
