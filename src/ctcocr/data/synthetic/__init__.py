"""Synthetic printed text lines rendered with Pillow: the embedded default dataset."""

from ctcocr.data.synthetic.dataset import SyntheticLines
from ctcocr.data.synthetic.fonts import FontSpec, split_fonts, usable_fonts
from ctcocr.data.synthetic.text import TextConfig, TextSampler

__all__ = ["FontSpec", "SyntheticLines", "TextConfig", "TextSampler", "split_fonts", "usable_fonts"]
