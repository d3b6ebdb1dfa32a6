"""PAGE XML (PRImA's page content schema, 2013-07-15 to 2019-07-15): the lines of one page.

Every ``TextLine`` of the ``Page`` (in any region, nested or not) in document order; its polygon
from ``Coords/@points``, its baseline from ``Baseline/@points``, its text from the ``Unicode`` of
its main ``TextEquiv``: the one with the lowest ``@index`` (the schema's rule for several
TextEquivs), else the first one; a line with no TextEquiv or an empty Unicode has text "". The
page image is ``Page/@imageFilename`` (see :func:`~ctcocr.data.layout.resolve_image`).
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from ctcocr.data.errors import DatasetError
from ctcocr.data.layout import (
    LayoutLine,
    PageLayout,
    element_source,
    parse_points,
    resolve_image,
)

PAGE_NAMESPACE_PREFIX = "http://schema.primaresearch.org/PAGE/gts/pagecontent/"
#: The versions read (the later ones only add elements and attributes the lines do not use).
PAGE_VERSIONS = ("2013-07-15", "2016-07-15", "2017-07-15", "2018-07-15", "2019-07-15")
PAGE_NAMESPACES = frozenset(PAGE_NAMESPACE_PREFIX + version for version in PAGE_VERSIONS)


def main_text_equiv(line: etree._Element, namespace: str) -> etree._Element | None:
    """The TextEquiv child with the lowest integer ``@index``; without any index, the first."""
    equivs = line.findall(f"{{{namespace}}}TextEquiv")

    def rank(item: tuple[int, etree._Element]) -> tuple[int, int, int]:
        position, equiv = item
        try:
            return 0, int(equiv.get("index", "")), position
        except ValueError:
            return 1, 0, position

    return min(enumerate(equivs), key=rank)[1] if equivs else None


def read_page_xml(xml_path: Path, tree: etree._ElementTree) -> PageLayout:
    """The page image and lines of a parsed PAGE file (namespace already checked)."""
    namespace = etree.QName(tree.getroot()).namespace
    page = tree.getroot().find(f"{{{namespace}}}Page")
    if page is None or not page.get("imageFilename"):
        raise DatasetError(f"{xml_path}: PAGE XML without a Page element naming its image")
    try:
        size = (int(page.get("imageWidth", "")), int(page.get("imageHeight", "")))
    except ValueError:
        size = None
    image_path = resolve_image(xml_path, page.get("imageFilename"))
    elements = list(page.iter(f"{{{namespace}}}TextLine"))
    lines = [_read_line(xml_path, element, namespace) for element in elements]
    return PageLayout(xml_path, "page", tree, image_path, size, lines, elements)


def _read_line(xml_path: Path, element: etree._Element, namespace: str) -> LayoutLine:
    line_id = element.get("id", "")
    source = element_source(xml_path, element, line_id)
    coords = element.find(f"{{{namespace}}}Coords")
    polygon = parse_points(None if coords is None else coords.get("points"), source, "Coords")
    baseline_element = element.find(f"{{{namespace}}}Baseline")
    baseline = (None if baseline_element is None
                else parse_points(baseline_element.get("points"), source, "Baseline"))
    equiv = main_text_equiv(element, namespace)
    text = "" if equiv is None else equiv.findtext(f"{{{namespace}}}Unicode") or ""
    return LayoutLine(line_id, element.sourceline, polygon, baseline, text)
