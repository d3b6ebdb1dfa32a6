"""Line-length excerpts of running prose, as a line segmenter cuts them out of a page."""

from __future__ import annotations

import gzip
from functools import lru_cache

import numpy as np

from ctcocr.resources import CORPUS_FILE


@lru_cache(maxsize=1)
def load_corpus() -> str:
    """The committed prose corpus as one string, paragraphs separated by newlines."""
    if not CORPUS_FILE.is_file():
        raise FileNotFoundError(f"prose corpus {CORPUS_FILE} is missing")
    with gzip.open(CORPUS_FILE, "rt", encoding="ascii") as file:
        return file.read()


class ProseExcerpts:
    """Draws excerpts of ``length`` (min, max) characters that start and end at word boundaries
    inside one paragraph of ``text`` (default: the committed corpus)."""

    def __init__(self, length: tuple[int, int], text: str | None = None):
        if not 1 <= length[0] <= length[1]:
            raise ValueError(f"length must be (min, max) with 1 <= min <= max, got {length}")
        self.length = length
        self.text = load_corpus() if text is None else text
        codes = np.frombuffer(self.text.encode("ascii"), dtype=np.uint8)
        gaps = np.flatnonzero((codes == ord(" ")) | (codes == ord("\n"))) + 1
        self._starts = np.concatenate([[0], gaps[gaps < len(codes)]])

    def sample(self, rng: np.random.Generator) -> str:
        """One excerpt: whole words, at most ``length[1]`` characters (only a first word longer
        than that is cut), at least ``length[0]`` unless its paragraph ends first."""
        start = int(self._starts[rng.integers(len(self._starts))])
        target = int(rng.integers(self.length[0], self.length[1] + 1))
        end = self.text.find("\n", start)
        paragraph = self.text[start:end if end >= 0 else len(self.text)]
        if len(paragraph) <= target:
            return paragraph
        cut = paragraph.rfind(" ", 0, target + 1)
        if cut > 0:
            return paragraph[:cut]
        return paragraph.split(" ", 1)[0][: self.length[1]]
