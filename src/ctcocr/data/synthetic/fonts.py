"""Font discovery, the filter that keeps fonts drawing the charset as real letters, and the
deterministic train / heldout split by font family.

Fonts come from Pillow's built-in scalable font (always present), the committed ``ctcocr/resources/fonts/``
and, optionally, the system font folders. A font is usable for a charset when

* every non-space character of the charset has a glyph (its bitmap is neither empty nor the
  font's ``.notdef`` box),
* its letters and digits are drawn distinctly (not one box or symbol repeated), and
* its letters look like letters: each letter's glyph, cropped and scaled to a small square, has
  the same letter (case-insensitive) as its nearest neighbour among reference glyphs drawn with
  the built-in font and a few committed fonts (upright and italic). Symbol and dingbat faces,
  which draw Greek letters or ornaments for ASCII codes, fail this.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ctcocr.resources import FONT_DIR

log = logging.getLogger(__name__)

SYSTEM_FONT_DIRS = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path.home() / ".local" / "share" / "fonts",
    Path.home() / ".fonts",
)
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
REFERENCE_FONT_FILES = ("Caladea-Regular.ttf", "Caladea-Italic.ttf", "Roboto-Italic.ttf")
CHECK_SIZE = 40
MIN_SHAPE_MATCH = 0.5
MIN_DISTINCT = 0.9
HELDOUT_FRACTION = 0.2

FontSet = Literal["train", "heldout", "all"]


@dataclass(frozen=True)
class FontSpec:
    """A font face: its file name, family name and path (None for Pillow's built-in font)."""

    name: str
    family: str
    path: str | None = None


def _open_font(path: str | None, size: int) -> ImageFont.FreeTypeFont:
    if path is None:
        font = ImageFont.load_default(size=size)
        if not isinstance(font, ImageFont.FreeTypeFont):
            raise RuntimeError("Pillow's built-in scalable font needs Pillow >= 10.1 with FreeType")
        return font
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


BUILTIN = FontSpec(name="builtin", family=_open_font(None, CHECK_SIZE).getname()[0])


@lru_cache(maxsize=512)  # about 0.2 MB each
def load_font(spec: FontSpec, size: int) -> ImageFont.FreeTypeFont:
    """The face of ``spec`` at ``size`` pixels, cached per process."""
    return _open_font(spec.path, size)


def font_files(system: bool = True) -> list[Path]:
    """Committed fonts, then system fonts; one file per file name (the committed copy wins)."""
    dirs = [FONT_DIR, *(SYSTEM_FONT_DIRS if system else ())]
    seen: dict[str, Path] = {}
    for folder in dirs:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in FONT_SUFFIXES and path.is_file():
                seen.setdefault(path.name.lower(), path)
    return list(seen.values())


def _glyph(font: ImageFont.FreeTypeFont, char: str) -> Image.Image:
    """The glyph of ``char``, white on black, in its bounding box (at least 1x1)."""
    left, top, right, bottom = font.getbbox(char)
    image = Image.new("L", (max(right - left, 1), max(bottom - top, 1)), 0)
    ImageDraw.Draw(image).text((-left, -top), char, font=font, fill=255)
    return image


def _shape_feature(glyph: Image.Image, side: int = 16) -> np.ndarray:
    """Glyph -> (side * side,) unit vector: cropped to its ink, centred in a square, downscaled,
    blurred."""
    glyph = glyph.crop(glyph.getbbox())
    width, height = glyph.size
    square = Image.new("L", (max(width, height),) * 2, 0)
    square.paste(glyph, ((square.width - width) // 2, (square.height - height) // 2))
    small = square.resize((side, side), Image.Resampling.BOX).filter(ImageFilter.GaussianBlur(1))
    vector = np.asarray(small, dtype=np.float64).ravel()
    vector = vector - vector.mean()
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else vector


def _letters(chars: str) -> str:
    return "".join(sorted({c for c in chars if c.isascii() and c.isalpha()}))


@lru_cache(maxsize=8)
def _reference_features(letters: str) -> np.ndarray:
    """(R * len(letters), D) shape features of ``letters`` in the reference faces."""
    paths = [str(FONT_DIR / name) for name in REFERENCE_FONT_FILES]
    fonts = [_open_font(path, CHECK_SIZE) for path in [None, *filter(os.path.isfile, paths)]]
    return np.stack([_shape_feature(_glyph(font, c)) for font in fonts for c in letters])


def font_problem(font: ImageFont.FreeTypeFont, chars: str) -> str | None:
    """Why ``font`` cannot draw ``chars`` as text, or None when it can."""
    def bitmap(glyph: Image.Image) -> tuple:
        return glyph.size, glyph.tobytes()

    notdef = bitmap(_glyph(font, "\U0010fffd"))
    glyphs = {c: _glyph(font, c) for c in sorted(set(chars)) if not c.isspace()}
    bitmaps = {c: bitmap(g) for c, g in glyphs.items()}
    missing = [c for c, g in glyphs.items() if g.getbbox() is None or bitmaps[c] == notdef]
    if missing:
        return f"no glyph for {''.join(missing[:20])!r}"
    alnum = [c for c in glyphs if c.isascii() and c.isalnum()]
    distinct = len({bitmaps[c] for c in alnum})
    if alnum and distinct < MIN_DISTINCT * len(alnum):
        return f"only {distinct} distinct glyphs for {len(alnum)} letters and digits"
    letters = _letters(chars)
    if len(letters) >= 5:
        features = np.stack([_shape_feature(glyphs[c]) for c in letters])
        # Broadcast products, not a BLAS matmul: tiny, and BLAS threads stall on a busy machine.
        similarity = (features[:, None, :] * _reference_features(letters)[None]).sum(axis=-1)
        nearest = similarity.argmax(axis=1) % len(letters)
        match = np.mean([letters[j].lower() == c.lower() for j, c in zip(nearest, letters)])
        if match < MIN_SHAPE_MATCH:
            return f"letters do not look like letters ({match:.0%} match the reference shapes)"
    return None


@lru_cache(maxsize=8)
def usable_fonts(chars: str, system: bool = True) -> tuple[FontSpec, ...]:
    """The built-in font and every committed (and system) font that draws ``chars``; cached."""
    specs = []
    for path in [None, *map(str, font_files(system))]:
        label = path or "Pillow's built-in font"
        try:
            font = _open_font(path, CHECK_SIZE)
            problem = font_problem(font, chars)
        except (OSError, ValueError) as error:
            problem = f"cannot be read ({error})"
        if problem:
            log.info("font %s skipped: %s", label, problem)
            continue
        family = font.getname()[0]
        specs.append(BUILTIN if path is None else FontSpec(Path(path).name, family, path))
    if not specs:
        raise RuntimeError(f"no font can draw the charset {chars!r}")
    log.info("%d usable fonts for a charset of %d characters", len(specs), len(chars))
    return tuple(specs)


def split_fonts(fonts: tuple[FontSpec, ...], which: FontSet) -> tuple[FontSpec, ...]:
    """The ``train``, ``heldout`` or ``all`` part of ``fonts``, split by whole families.

    Families are sorted by the SHA-1 of their name and held out in that order until they hold
    ``HELDOUT_FRACTION`` of the faces; the built-in font's family is never held out.
    """
    if which == "all":
        return fonts
    if which not in ("train", "heldout"):
        raise ValueError(f"fonts must be 'train', 'heldout' or 'all', got {which!r}")
    families = sorted({f.family for f in fonts if f.family != BUILTIN.family},
                      key=lambda name: hashlib.sha1(name.encode("utf-8")).digest())
    heldout: set[str] = set()
    for name in families:
        if sum(f.family in heldout for f in fonts) >= HELDOUT_FRACTION * len(fonts):
            break
        heldout.add(name)
    part = tuple(f for f in fonts if (f.family in heldout) == (which == "heldout"))
    if not part:
        raise ValueError(f"no {which} fonts among {len(fonts)} usable fonts")
    return part
