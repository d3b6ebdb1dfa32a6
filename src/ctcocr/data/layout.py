"""What the PAGE and ALTO readers give: a page's image and its text lines, in image pixels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from lxml import etree

from ctcocr.data.errors import BadImageError, DatasetError

LayoutFormat = Literal["page", "alto"]


class MissingImageError(BadImageError):
    """The page image an XML file names does not exist; the message names both."""


@dataclass(frozen=True)
class LayoutLine:
    """One TextLine.

    id: the element's id (``line<N>``, 1-based, where an ALTO line has none).
    xml_line: the element's line number in the XML file.
    polygon: (N, 2) float64 x, y in page-image pixels (ALTO: the box when there is no polygon).
    baseline: (M, 2) float64 x, y in page-image pixels, or None.
    text: the line's text ("" when it has none).
    """

    id: str
    xml_line: int
    polygon: np.ndarray
    baseline: np.ndarray | None
    text: str


@dataclass
class PageLayout:
    """A parsed PAGE or ALTO file: its tree (for writing back), its page image and its lines.

    ``elements[i]`` is the TextLine element that ``lines[i]`` was read from; ``image_size`` is
    the page size in pixels the XML declares (None where it declares none).
    """

    xml_path: Path
    format: LayoutFormat
    tree: etree._ElementTree
    image_path: Path
    image_size: tuple[int, int] | None
    lines: list[LayoutLine]
    elements: list[etree._Element]

    def source(self, index: int) -> str:
        """``file.xml:LINE (TextLine ID)`` of line ``index``, for messages."""
        line = self.lines[index]
        return f"{self.xml_path}:{line.xml_line} (TextLine {line.id})"


def element_source(xml_path: Path, element: etree._Element, line_id: str) -> str:
    """``file.xml:LINE (TextLine ID)`` of an element, for messages while reading it."""
    return f"{xml_path}:{element.sourceline} (TextLine {line_id})"


def parse_points(text: str | None, source: str, what: str = "points") -> np.ndarray:
    """``"x1,y1 x2,y2 ..."`` or ``"x1 y1 x2 y2 ..."`` -> (N, 2) float64; DatasetError naming
    ``source`` when it is missing or not pairs of numbers."""
    values = (text or "").replace(",", " ").split()
    try:
        numbers = [float(value) for value in values]
    except ValueError:
        numbers = []
    if not numbers or len(numbers) % 2:
        raise DatasetError(f"{source}: bad or missing {what} {text!r}")
    return np.asarray(numbers, dtype=np.float64).reshape(-1, 2)


def image_candidates(xml_path: Path, name: str) -> list[Path]:
    """Where the image ``name`` of ``xml_path`` may lie: relative to the XML file's folder, then
    to the folder above it (Transkribus exports keep the XML in ``page/`` beside the images, OCR-D
    workspaces name images from the workspace root); an absolute name as it is."""
    candidates = [xml_path.parent / name, xml_path.parent.parent / name]
    return list(dict.fromkeys(candidates))


def resolve_image(xml_path: Path, name: str) -> Path:
    """The existing file among :func:`image_candidates`; MissingImageError naming the XML and the
    image path otherwise."""
    candidates = image_candidates(xml_path, name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = " nor ".join(str(candidate) for candidate in candidates)
    raise MissingImageError(f"{xml_path}: page image not found: {tried}")
