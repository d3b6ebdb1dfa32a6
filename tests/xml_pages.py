"""Test fixtures: page images drawn with Pillow, and PAGE / ALTO XML describing their lines,
written to the published schemas (PAGE 2013-07-15 and 2019-07-15, ALTO v2, v3 and v4)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from lxml import etree
from PIL import Image, ImageDraw, ImageFont

PAGE_2013 = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15"
PAGE_2019 = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
ALTO = {version: f"http://www.loc.gov/standards/alto/ns-v{version}#" for version in (2, 3, 4)}
PAPER, INK = 230, 20
PAD = 4  # paper around the text inside a line's polygon


@dataclass
class DrawnLine:
    """A line drawn on a page: its polygon and baseline in page pixels, and the line drawn
    alone, unrotated (``tile``, mode "L"), as the reference for cut-out images."""

    id: str
    text: str
    polygon: np.ndarray  # (4, 2) x, y
    baseline: np.ndarray  # (2, 2) x, y
    tile: Image.Image


def _rotate_points(points: np.ndarray, angle: float, old: tuple[int, int],
                   new: tuple[int, int]) -> np.ndarray:
    """Where points of an image of size ``old`` land after ``Image.rotate(angle, expand=True)``
    (counter-clockwise on screen) gives an image of size ``new``."""
    theta = math.radians(angle)
    dx, dy = (points - np.array(old) / 2).T
    x = math.cos(theta) * dx + math.sin(theta) * dy
    y = -math.sin(theta) * dx + math.cos(theta) * dy
    return np.stack([x, y], axis=1) + np.array(new) / 2


def draw_page(lines: Sequence[tuple[str, str, float]], size: tuple[int, int] = (640, 420),
              font_size: int = 22) -> tuple[Image.Image, list[DrawnLine]]:
    """A page (mode "L", paper gray ``PAPER``) with one line per (id, text, angle in degrees,
    counter-clockwise on screen) stacked from the top; text "" leaves the line blank."""
    font = ImageFont.load_default(size=font_size)
    ascent, descent = font.getmetrics()
    page = Image.new("L", size, PAPER)
    drawn, top = [], 12
    for line_id, text, angle in lines:
        width = max(int(font.getlength(text or "blank line")), 40) + 2 * PAD
        tile = Image.new("L", (width, ascent + descent + 2 * PAD), PAPER)
        ImageDraw.Draw(tile).text((PAD, PAD), text, font=font, fill=INK)
        corners = np.array([[0, 0], [tile.width, 0], [tile.width, tile.height], [0, tile.height]],
                           dtype=np.float64)
        baseline = np.array([[PAD, PAD + ascent], [tile.width - PAD, PAD + ascent]], np.float64)
        rotated = tile.rotate(angle, Image.Resampling.BILINEAR, expand=True, fillcolor=PAPER)
        shape = Image.new("L", tile.size, 255).rotate(angle, expand=True, fillcolor=0)
        offset = np.array([30, top], dtype=np.float64)
        page.paste(rotated, tuple(offset.astype(int)), shape)
        polygon = _rotate_points(corners, angle, tile.size, rotated.size) + offset
        baseline = _rotate_points(baseline, angle, tile.size, rotated.size) + offset
        drawn.append(DrawnLine(line_id, text, polygon, baseline, tile))
        top += rotated.height + 14
    return page, drawn


def _element(namespace: str, tag: str, parent: etree._Element | None = None,
             **attrib: str) -> etree._Element:
    """A ``tag`` element of ``namespace`` (the default namespace of a new root)."""
    if parent is None:
        return etree.Element(f"{{{namespace}}}{tag}", attrib, nsmap={None: namespace})
    return etree.SubElement(parent, f"{{{namespace}}}{tag}", attrib)


def _points(points: np.ndarray, separator: str = ",") -> str:
    return " ".join(f"{round(x)}{separator}{round(y)}" for x, y in points.clip(min=0))


def page_xml(image_name: str, size: tuple[int, int], lines: Sequence[DrawnLine],
             namespace: str = PAGE_2019,
             text_equivs: dict[str, list[tuple[str | None, str]]] | None = None) -> bytes:
    """PAGE XML for ``lines`` in one TextRegion. Each line gets one TextEquiv with its text (none
    when the text is empty), or ``text_equivs[id]``: (index or None, text) TextEquivs in order."""
    E = partial(_element, namespace)
    root = E("PcGts")
    metadata = E("Metadata", root)
    for tag, text in (("Creator", "ctcocr tests"), ("Created", "2026-01-01T00:00:00"),
                      ("LastChange", "2026-01-01T00:00:00")):
        E(tag, metadata).text = text
    page = E("Page", root, imageFilename=image_name, imageWidth=str(size[0]),
             imageHeight=str(size[1]))
    region = E("TextRegion", page, id="r1")
    everything = np.concatenate([line.polygon for line in lines])
    low, high = everything.min(axis=0), everything.max(axis=0)
    E("Coords", region, points=_points(np.array([low, [high[0], low[1]], high, [low[0], high[1]]])))
    for line in lines:
        element = E("TextLine", region, id=line.id)
        E("Coords", element, points=_points(line.polygon))
        E("Baseline", element, points=_points(line.baseline))
        equivs = (text_equivs or {}).get(line.id, [(None, line.text)] if line.text else [])
        for index, text in equivs:
            equiv = E("TextEquiv", element, **({} if index is None else {"index": index}))
            E("Unicode", equiv).text = text
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def alto_xml(image_name: str, size: tuple[int, int], lines: Sequence[DrawnLine],
             version: int = 4, unit: str = "pixel", dpi: float = 300.0) -> bytes:
    """ALTO XML for ``lines`` in one TextBlock: words as String elements with SP between them.
    v2 gives boxes only (its TextLine has no Shape) and a one-value BASELINE; v3 adds polygons;
    v4 adds BASELINE points (ALTO 4.2). ``unit`` "mm10" or "inch1200" converts the pixels with
    ``dpi``."""
    namespace = ALTO[version]
    factor = {"pixel": 1.0, "mm10": 254.0 / dpi, "inch1200": 1200.0 / dpi}[unit]

    def number(value: float) -> str:
        return f"{value * factor:.2f}"
    E = partial(_element, namespace)

    def box(points: np.ndarray) -> dict[str, str]:
        low, high = points.min(axis=0), points.max(axis=0)
        return {"HPOS": number(low[0]), "VPOS": number(low[1]),
                "WIDTH": number(high[0] - low[0]), "HEIGHT": number(high[1] - low[1])}

    root = E("alto")
    description = E("Description", root)
    E("MeasurementUnit", description).text = unit
    E("fileName", E("sourceImageInformation", description)).text = image_name
    page = E("Page", E("Layout", root), ID="p1", PHYSICAL_IMG_NR="1",
             WIDTH=number(size[0]), HEIGHT=number(size[1]))
    everything = np.concatenate([line.polygon for line in lines])
    block = E("TextBlock", E("PrintSpace", page, **box(everything)), ID="b1", **box(everything))
    for line in lines:
        baseline = (number(line.baseline[:, 1].mean()) if version < 4 else
                    " ".join(f"{number(x)},{number(y)}" for x, y in line.baseline))
        element = E("TextLine", block, ID=line.id, BASELINE=baseline, **box(line.polygon))
        if version >= 3:
            polygon = " ".join(f"{number(x)},{number(y)}" for x, y in line.polygon)
            E("Polygon", E("Shape", element), POINTS=polygon)
        for position, word in enumerate(line.text.split() or [""]):
            if position:
                E("SP", element)
            E("String", element, CONTENT=word)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def write_page(folder: Path, name: str, lines: Sequence[tuple[str, str, float]],
               kind: str = "page2019", **xml_options) -> tuple[Path, list[DrawnLine]]:
    """Draw a page, save it as ``folder/name.png`` and its XML as ``folder/name.xml``; ``kind``
    is "page2013", "page2019", "alto2", "alto3" or "alto4"."""
    folder.mkdir(parents=True, exist_ok=True)
    page, drawn = draw_page(lines)
    dpi = xml_options.get("dpi", 300.0)
    page.save(folder / f"{name}.png", dpi=(dpi, dpi))
    if kind.startswith("page"):
        xml_options.pop("dpi", None)
        namespace = PAGE_2013 if kind == "page2013" else PAGE_2019
        xml = page_xml(f"{name}.png", page.size, drawn, namespace, **xml_options)
    else:
        xml = alto_xml(f"{name}.png", page.size, drawn, int(kind[-1]), **xml_options)
    (folder / f"{name}.xml").write_bytes(xml)
    return folder / f"{name}.xml", drawn
