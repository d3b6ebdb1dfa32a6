"""The synthetic text-line dataset: every sample is a pure function of (seed, index)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ctcocr.data.sample import Sample
from ctcocr.data.synthetic.degrade import degrade
from ctcocr.data.synthetic.fonts import FontSet, FontSpec, load_font, split_fonts, usable_fonts
from ctcocr.data.synthetic.render import render_text
from ctcocr.data.synthetic.text import TextConfig, TextSampler

TEXT_STREAM, IMAGE_STREAM = 0, 1
# Font size / ``height`` (lines ~20-40 px at 32); even sizes only, to keep the face cache small.
MIN_SIZE_RATIO, MAX_SIZE_RATIO = 0.55, 1.05


class SyntheticLines(Dataset[Sample]):
    """``size`` printed text lines over the charset ``chars``, rendered on the fly.

    Sample ``index`` draws its label from a generator seeded with (seed, index, 0) and its
    rendering from (seed, index, 1), so it is the same in any process, worker or order, and
    ``text(index)`` is cheap. ``height`` is the nominal line height in pixels (font sizes are
    drawn from 0.55-1.05 times it); images vary in size, the model resizes them.
    ``fonts`` picks the "train", "heldout" (families never in "train") or "all" fonts;
    ``degradation`` scales the distortions (0 clean, 1 default, 2 heavy); ``system_fonts``
    adds the system's fonts to the built-in and committed ones.
    """

    def __init__(self, size: int, seed: int, chars: str, height: int = 32, fonts: FontSet = "train",
                 text: TextConfig | Mapping[str, Any] | None = None, degradation: float = 1.0,
                 system_fonts: bool = True):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if height < 8:
            raise ValueError(f"height must be >= 8 pixels, got {height}")
        if degradation < 0:
            raise ValueError(f"degradation must be >= 0, got {degradation}")
        self.size, self.seed, self.chars = size, seed, chars
        self.height, self.degradation = height, degradation
        self.sampler = TextSampler(chars, text)
        drawn = "".join(sorted(self.sampler.drawable))
        self.fonts: tuple[FontSpec, ...] = split_fonts(usable_fonts(drawn, system_fonts), fonts)

    def __len__(self) -> int:
        return self.size

    def _rng(self, index: int, stream: int) -> np.random.Generator:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for {self.size} synthetic samples")
        return np.random.default_rng([self.seed, index, stream])

    def _drawn_text(self, index: int) -> str:
        return self.sampler.sample(self._rng(index, TEXT_STREAM))

    def text(self, index: int) -> str:
        """The label of sample ``index``, without rendering it."""
        return self.sampler.label(self._drawn_text(index))

    def __getitem__(self, index: int) -> Sample:
        drawn = self._drawn_text(index)
        rng = self._rng(index, IMAGE_STREAM)
        spec = self.fonts[int(rng.integers(len(self.fonts)))]
        size = 2 * int(rng.integers(round(MIN_SIZE_RATIO * self.height / 2),
                                    round(MAX_SIZE_RATIO * self.height / 2) + 1))
        image, background, ink = render_text(drawn, load_font(spec, size), rng, self.degradation,
                                             self.sampler.alnum)
        image = degrade(image, rng, self.degradation, background, ink)
        source = f"synthetic[seed={self.seed}, index={index}, font={spec.name}]"
        return Sample(image, self.sampler.label(drawn), source)
