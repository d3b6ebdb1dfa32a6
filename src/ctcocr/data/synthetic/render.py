"""Drawing a label as a clean printed text line: gray levels, margins, character spacing, and
the occasional underline, ruling line, speckles, cut-off neighbour line or text of the page's other
side showing through."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

Box = tuple[float, float, float, float]  # left, top, right, bottom


@lru_cache(maxsize=512)
def _line_extent(font: ImageFont.FreeTypeFont) -> tuple[int, int]:
    """(top, bottom) of the font's cap-to-descender line, relative to the pen position."""
    _, top, _, bottom = font.getbbox("Xg")
    return top, bottom


def _layout(text: str, font: ImageFont.FreeTypeFont, spacing: float) -> tuple[list[float], Box]:
    """Pen x of each drawn piece (one per character with extra spacing, else the whole text) and
    the ink box relative to the first pen position."""
    if not spacing:
        return [0.0], font.getbbox(text)
    xs = np.concatenate([[0.0], np.cumsum([font.getlength(c) + spacing for c in text[:-1]])])
    boxes = [font.getbbox(c) for c in text]
    box = (min(x + b[0] for x, b in zip(xs, boxes)), min(b[1] for b in boxes),
           max(x + b[2] for x, b in zip(xs, boxes)), max(b[3] for b in boxes))
    return xs.tolist(), box


def render_text(text: str, font: ImageFont.FreeTypeFont, rng: np.random.Generator,
                strength: float, alphabet: str) -> tuple[Image.Image, int, int]:
    """``text`` drawn in ``font`` -> (mode "L" image, background and ink gray levels).

    The crop is framed as line segmenters frame real lines: around the font's cap-to-descender
    height or around the text's own ink (so the baseline and x-height move within the crop),
    with uneven margins that now and then clip ascenders or descenders. ``strength`` (0 = clean)
    scales the chance of low contrast, of clipping and of clutter, which includes a cut-off line
    of random ``alphabet`` characters in the top or bottom margin.
    """
    size = font.size
    background = int(rng.integers(185, 256))
    low_contrast = rng.random() < 0.12 * strength
    contrast = rng.integers(50, 100) if low_contrast else rng.integers(130, background + 1)
    ink = background - int(contrast)
    spacing = float(rng.uniform(-0.03, 0.15)) * size if rng.random() < 0.2 else 0.0
    pieces, (left, top, right, bottom) = _layout(text, font, spacing)
    line_top, line_bottom = _line_extent(font)
    if rng.random() < 0.5:
        top, bottom = min(top, line_top), max(bottom, line_bottom)
    # Segmenters frame a line by its share of the line spacing or by a padded polygon: top and
    # bottom margins reach 0.7 of the font size, most often small (u^2 skews them low).
    margins = rng.uniform(0.0, 1.0, 4) ** [1, 2, 1, 2] * np.array([0.5, 0.7, 0.5, 0.7]) * size
    clip = rng.random(2) < 0.1 * strength  # a tight crop cuts into the ink, top or bottom
    margins[[1, 3]] = np.where(clip, -rng.uniform(0.0, 0.12, 2) * size, margins[[1, 3]])
    width = math.ceil(right - left + margins[0] + margins[2])
    height = math.ceil(bottom - top + margins[1] + margins[3])
    image = Image.new("L", (max(width, 1), max(height, 1)), background)
    if rng.random() < 0.15 * strength:
        _show_through(image, font, rng, background, alphabet)
    draw = ImageDraw.Draw(image)
    x0, y0 = margins[0] - left, margins[1] - top
    if spacing:
        for x, char in zip(pieces, text):
            draw.text((x0 + x, y0), char, font=font, fill=ink)
    else:
        draw.text((x0, y0), text, font=font, fill=ink)
    _clutter(image, rng, strength, ink, (x0 + left, y0 + line_top, x0 + right, y0 + line_bottom))
    if rng.random() < 0.3 * strength:
        _neighbour_line(image, font, rng, ink, alphabet, (max(margins[1], 0.0),
                                                          image.height - max(margins[3], 0.0)))
    return image, background, ink


def _neighbour_line(image: Image.Image, font: ImageFont.FreeTypeFont, rng: np.random.Generator,
                    ink: int, alphabet: str, text_rows: tuple[float, float]) -> None:
    """Random characters of the line above (below), whose bottom (top) edge ends inside the top
    (bottom) margin, as when a crop catches a neighbour's descenders (ascenders)."""
    line_top, line_bottom = _line_extent(font)
    fragment = _random_words(image.width, font, rng, alphabet)
    first_row, last_row = text_rows
    if rng.random() < 0.5:
        y = first_row * float(rng.uniform(0.2, 0.6)) - line_bottom
    else:
        y = last_row + (image.height - last_row) * float(rng.uniform(0.4, 0.8)) - line_top
    ImageDraw.Draw(image).text((-float(rng.uniform(0, font.size)), y), fragment, font=font,
                               fill=ink)


def _random_words(width: int, font: ImageFont.FreeTypeFont, rng: np.random.Generator,
                  alphabet: str) -> str:
    """Random ``alphabet`` characters, about one in six a space, enough to cover ``width`` pixels."""
    count = max(1, int(width / (0.45 * font.size)))
    chars = [alphabet[i] for i in rng.integers(len(alphabet), size=count)]
    return "".join(" " if space else char for char, space in zip(chars, rng.random(count) < 1 / 6))


def _show_through(image: Image.Image, font: ImageFont.FreeTypeFont, rng: np.random.Generator,
                  background: int, alphabet: str) -> None:
    """Fill the blank ``image`` with the page's other side seen through thin paper: blurred,
    mirrored lines of random characters at their own line pitch, 6-30 gray levels darker than
    ``background``."""
    mask = Image.new("L", image.size, 0)
    draw = ImageDraw.Draw(mask)
    pitch = font.size * float(rng.uniform(1.1, 1.6))
    y = -float(rng.uniform(0.0, pitch))
    while y < image.height:
        draw.text((-float(rng.uniform(0, font.size)), y),
                  _random_words(image.width + font.size, font, rng, alphabet), font=font, fill=255)
        y += pitch
    mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT).filter(
        ImageFilter.GaussianBlur(float(rng.uniform(0.6, 2.0))))
    depth = float(rng.uniform(6, 30)) / 255
    pixels = background - depth * np.asarray(mask, dtype=np.float32)
    image.paste(Image.fromarray(np.rint(pixels).astype(np.uint8)))


def _clutter(image: Image.Image, rng: np.random.Generator, strength: float, ink: int,
             line: Box) -> None:
    """Underline, a ruling line in the top or bottom margin, or speckles, each with a chance
    ~ ``strength``."""
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = line
    stroke = max(1, round((bottom - top) / 14))
    if rng.random() < 0.05 * strength:
        y = bottom - (bottom - top) * float(rng.uniform(0.1, 0.2))
        draw.line([(left, y), (right, y)], fill=ink, width=stroke)
    if rng.random() < 0.05 * strength:  # horizontal only: a vertical rule would read as "|" or "l"
        y = top * 0.5 if rng.random() < 0.5 else (bottom + image.height) * 0.5
        draw.line([(0, y), (image.width, y)], fill=ink, width=stroke)
    if rng.random() < 0.1 * strength:
        count = int(rng.integers(1, 4 + 8 * strength))
        xs, ys = rng.uniform(0, image.width, count), rng.uniform(0, image.height, count)
        radii = rng.uniform(0.3, 0.6 + 0.3 * strength, count)  # smaller than a period
        for x, y, r in zip(xs, ys, radii):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=ink)
