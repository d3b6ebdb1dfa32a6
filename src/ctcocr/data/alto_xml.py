"""ALTO XML (v2, v3, v4): the lines of one page.

Every ``TextLine`` of ``Layout`` in document order; its polygon from ``Shape/Polygon/@POINTS``, or
its box (``HPOS``, ``VPOS``, ``WIDTH``, ``HEIGHT``) where it has no polygon; its baseline from
``@BASELINE`` (a list of points, or, before ALTO 4.2, one y value giving a level line across the
box); its text from its children in order: ``String/@CONTENT`` as it is, one space per ``SP``, and
the ``HYP`` character. The page image is ``Description/sourceImageInformation/fileName``.

Coordinates are in ``Description/MeasurementUnit``: ``pixel`` as they are; ``mm10`` (1/10 mm,
the ALTO default when the element is missing) and ``inch1200`` are converted with the page image's
resolution (its DPI tag), and an image without one is a DatasetError. The page size
(``Layout/Page/@WIDTH``, ``@HEIGHT``) is compared with the image's only for pixel units.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from lxml import etree
from PIL import Image

from ctcocr.data.errors import DatasetError
from ctcocr.data.layout import (
    LayoutLine,
    PageLayout,
    element_source,
    parse_points,
    resolve_image,
)

ALTO_NAMESPACE_PREFIX = "http://www.loc.gov/standards/alto/"
ALTO_NAMESPACES = frozenset(f"{ALTO_NAMESPACE_PREFIX}ns-v{version}#" for version in (2, 3, 4))
#: Units per inch of ALTO's measurement units.
UNITS_PER_INCH = {"mm10": 254.0, "inch1200": 1200.0}
BOX_ATTRIBUTES = ("HPOS", "VPOS", "WIDTH", "HEIGHT")


def read_alto_xml(xml_path: Path, tree: etree._ElementTree) -> PageLayout:
    """The page image and lines of a parsed ALTO file (namespace already checked)."""
    root = tree.getroot()
    ns = etree.QName(root).namespace
    name = root.findtext(f"{{{ns}}}Description/{{{ns}}}sourceImageInformation/{{{ns}}}fileName")
    if not name or not name.strip():
        raise DatasetError(f"{xml_path}: ALTO without Description/sourceImageInformation/fileName")
    image_path = resolve_image(xml_path, name.strip())
    unit = (root.findtext(f"{{{ns}}}Description/{{{ns}}}MeasurementUnit") or "mm10").strip()
    scale = _pixels_per_unit(unit, image_path, xml_path)
    elements = list(root.iter(f"{{{ns}}}TextLine"))
    lines = [_read_line(xml_path, element, ns, scale, number)
             for number, element in enumerate(elements, start=1)]
    page = root.find(f"{{{ns}}}Layout/{{{ns}}}Page")
    size = _page_size(page) if page is not None and unit == "pixel" else None
    return PageLayout(xml_path, "alto", tree, image_path, size, lines, elements)


def _pixels_per_unit(unit: str, image_path: Path, xml_path: Path) -> np.ndarray:
    """(2,) x and y factors from the file's unit to image pixels."""
    if unit == "pixel":
        return np.ones(2)
    if unit not in UNITS_PER_INCH:
        raise DatasetError(f"{xml_path}: unknown ALTO MeasurementUnit {unit!r}")
    try:
        with Image.open(image_path) as image:
            dpi = image.info.get("dpi")
    except OSError as error:
        raise DatasetError(f"{xml_path}: cannot read page image {image_path}: {error}") from None
    if not dpi or min(dpi) <= 0:
        raise DatasetError(
            f"{xml_path}: coordinates in {unit} need the page image's resolution, and "
            f"{image_path} stores none (write <MeasurementUnit>pixel</MeasurementUnit> if they "
            "are pixels)"
        )
    return np.asarray(dpi, dtype=np.float64)[:2] / UNITS_PER_INCH[unit]


def _page_size(page: etree._Element) -> tuple[int, int] | None:
    """The page's WIDTH and HEIGHT (in pixels), None where either is missing or not a number."""
    try:
        width, height = float(page.get("WIDTH", "")), float(page.get("HEIGHT", ""))
    except ValueError:
        return None
    return round(width), round(height)


def _box(
    element: etree._Element, source: str, scale: np.ndarray
) -> tuple[float, ...] | None:
    """(HPOS, VPOS, WIDTH, HEIGHT) in pixels, None where any is missing; DatasetError naming
    ``source`` where one is not a number."""
    values = [element.get(name) for name in BOX_ATTRIBUTES]
    if None in values:
        return None
    try:
        x, y, width, height = (float(value) for value in values)
    except ValueError:
        raise DatasetError(f"{source}: bad box {dict(zip(BOX_ATTRIBUTES, values))}") from None
    return x * scale[0], y * scale[1], width * scale[0], height * scale[1]


def _read_line(
    xml_path: Path, element: etree._Element, ns: str, scale: np.ndarray, number: int
) -> LayoutLine:
    line_id = element.get("ID") or f"line{number}"
    source = element_source(xml_path, element, line_id)
    box = _box(element, source, scale)
    polygon_element = element.find(f"{{{ns}}}Shape/{{{ns}}}Polygon")
    if polygon_element is not None:
        polygon = parse_points(polygon_element.get("POINTS"), source, "Polygon POINTS") * scale
    elif box is not None:
        x, y, width, height = box
        polygon = np.array([[x, y], [x + width, y], [x + width, y + height], [x, y + height]])
    else:
        raise DatasetError(f"{source}: neither Shape/Polygon nor HPOS/VPOS/WIDTH/HEIGHT")
    return LayoutLine(line_id, element.sourceline, polygon, _baseline(element, source, scale, box),
                      _text(element))


def _baseline(
    element: etree._Element, source: str, scale: np.ndarray, box: tuple[float, ...] | None
) -> np.ndarray | None:
    value = element.get("BASELINE")
    if value is None:
        return None
    numbers = value.replace(",", " ").split()
    if len(numbers) == 1:  # ALTO before 4.2: the baseline's y
        if box is None:
            return None
        try:
            y = float(numbers[0]) * scale[1]
        except ValueError:
            raise DatasetError(f"{source}: bad BASELINE {value!r}") from None
        return np.array([[box[0], y], [box[0] + box[2], y]])
    return parse_points(value, source, "BASELINE") * scale


def _text(element: etree._Element) -> str:
    parts = []
    for child in element:
        name = etree.QName(child).localname if isinstance(child.tag, str) else ""
        if name in ("String", "HYP"):
            parts.append(child.get("CONTENT", ""))
        elif name == "SP":
            parts.append(" ")
    return "".join(parts)
