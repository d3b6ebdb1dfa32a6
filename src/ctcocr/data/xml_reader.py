"""Reading PAGE and ALTO files: parsing them, telling the format by the root element's namespace,
and loading the page image they describe (finding them: :mod:`ctcocr.xml_files`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from lxml import etree
from PIL import Image

from ctcocr.data.alto_xml import ALTO_NAMESPACE_PREFIX, ALTO_NAMESPACES, read_alto_xml
from ctcocr.data.errors import BadImageError, DatasetError
from ctcocr.data.layout import LayoutFormat, PageLayout
from ctcocr.data.page_xml import PAGE_NAMESPACE_PREFIX, PAGE_NAMESPACES, read_page_xml
from ctcocr.data.policy import read_image

XmlFormat = Literal["auto", "page", "alto"]


class NotLayoutXmlError(DatasetError):
    """An XML file that is neither PAGE nor ALTO (e.g. a METS file beside them)."""


def parse_xml(path: Path) -> etree._ElementTree:
    """The parsed file (no entity expansion, no network); DatasetError naming the file and
    lxml's line number when it is not well-formed."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        return etree.parse(str(path), parser)
    except etree.XMLSyntaxError as error:
        raise DatasetError(f"{path}:{error.lineno}: malformed XML: {error.msg}") from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot read: {error}") from None


def detect_format(path: Path, tree: etree._ElementTree) -> LayoutFormat:
    """"page" or "alto" from the root element's namespace; NotLayoutXmlError otherwise."""
    root = tree.getroot()
    namespace = etree.QName(root).namespace or ""
    if namespace in PAGE_NAMESPACES:
        return "page"
    if namespace in ALTO_NAMESPACES:
        return "alto"
    for prefix, name in ((PAGE_NAMESPACE_PREFIX, "PAGE"), (ALTO_NAMESPACE_PREFIX, "ALTO")):
        if namespace.startswith(prefix):
            raise DatasetError(f"{path}: unsupported {name} version (namespace {namespace})")
    raise NotLayoutXmlError(f"{path}: neither PAGE nor ALTO XML (root element {root.tag})")


def read_layout(path: str | Path, format: XmlFormat = "auto") -> PageLayout:
    """Parse a PAGE or ALTO file; ``format`` "page" or "alto" insists on one. Raises DatasetError
    naming the file (and line), MissingImageError when its page image does not exist."""
    path = Path(path)
    if format not in ("auto", "page", "alto"):
        raise ValueError(f"format must be 'auto', 'page' or 'alto', got {format!r}")
    tree = parse_xml(path)
    found = detect_format(path, tree)
    if format != "auto" and found != format:
        raise DatasetError(f"{path}: expected {format.upper()} XML, found {found.upper()}")
    return read_page_xml(path, tree) if found == "page" else read_alto_xml(path, tree)


def load_page_image(
    xml_path: Path, image_path: Path, declared_size: tuple[int, int] | None
) -> Image.Image:
    """The page image of ``xml_path`` in mode "L"; BadImageError naming the XML and the image when
    it cannot be decoded or its size differs from ``declared_size`` (the XML's, if any)."""
    source = f"{xml_path}: page image {image_path}"
    image = read_image(image_path, source)
    if declared_size is not None and image.size != declared_size:
        width, height = declared_size
        raise BadImageError(f"{source} is {image.width}x{image.height} pixels, the XML says "
                            f"{width}x{height}")
    return image
