"""Writing recognized text back into PAGE and ALTO files, as copies in an output folder.

PAGE: each TextLine's TextEquivs are replaced by one ``TextEquiv/@conf`` with the text in its
``Unicode``, placed where the schema wants it (after Coords, Baseline and Words, before
TextStyle, UserDefined and Labels); Word-level TextEquivs are left as they were; the Metadata's
LastChange becomes the time of writing. ALTO: each TextLine's String, SP and HYP children are
replaced by one ``String/@CONTENT`` per space-separated word with ``@WC`` (the line's confidence),
an ``SP`` between words (one String with CONTENT="" for an empty reading); its Shape stays.
The image reference is rewritten relative to the copy when the copy's folder would not find the
image by the original name, and the copy is indented anew (whitespace between elements only).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from lxml import etree

from ctcocr.data.errors import DatasetError
from ctcocr.data.layout import MissingImageError, PageLayout, resolve_image

#: TextLine children that come after TextEquiv in the PAGE schema.
PAGE_AFTER_TEXT_EQUIV = ("TextStyle", "UserDefined", "Labels")
ALTO_TEXT_CHILDREN = ("String", "SP", "HYP")


def _local_name(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def set_line_text(layout: PageLayout, index: int, text: str, confidence: float) -> None:
    """Write ``text`` with ``confidence`` (0..1) into the TextLine of ``layout.lines[index]``."""
    element = layout.elements[index]
    namespace = etree.QName(element).namespace
    replaced = ("TextEquiv",) if layout.format == "page" else ALTO_TEXT_CHILDREN
    for child in list(element):
        if _local_name(child) in replaced:
            element.remove(child)
    if layout.format == "page":
        equiv = etree.SubElement(element, f"{{{namespace}}}TextEquiv", conf=f"{confidence:.4f}")
        etree.SubElement(equiv, f"{{{namespace}}}Unicode").text = text
        later = [child for child in element if _local_name(child) in PAGE_AFTER_TEXT_EQUIV]
        if later:
            later[0].addprevious(equiv)
        return
    for position, word in enumerate(text.split() or [""]):
        if position:
            etree.SubElement(element, f"{{{namespace}}}SP")
        etree.SubElement(element, f"{{{namespace}}}String", CONTENT=word, WC=f"{confidence:.4f}")


def _image_reference(layout: PageLayout) -> tuple[etree._Element, str | None]:
    """The element naming the page image and the attribute holding the name (None: its text)."""
    root = layout.tree.getroot()
    ns = etree.QName(root).namespace
    if layout.format == "page":
        return root.find(f"{{{ns}}}Page"), "imageFilename"
    return root.find(f"{{{ns}}}Description/{{{ns}}}sourceImageInformation/{{{ns}}}fileName"), None


def save_layout(layout: PageLayout, path: Path) -> Path:
    """Write ``layout``'s tree to ``path`` (UTF-8), its image reference still finding the page
    image from there."""
    element, attribute = _image_reference(layout)
    name = (element.get(attribute) if attribute else element.text or "").strip()
    try:
        found = resolve_image(path, name).resolve() == layout.image_path.resolve()
    except MissingImageError:
        found = False
    if not found:
        relative = os.path.relpath(layout.image_path.resolve(), path.parent.resolve())
        if attribute:
            element.set(attribute, relative)
        else:
            element.text = relative
    if layout.format == "page":
        root = layout.tree.getroot()
        ns = etree.QName(root).namespace
        last_change = root.find(f"{{{ns}}}Metadata/{{{ns}}}LastChange")
        if last_change is not None:
            last_change.text = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    path.parent.mkdir(parents=True, exist_ok=True)
    etree.indent(layout.tree)  # whitespace between elements only; texts stay as they are
    layout.tree.write(str(path), xml_declaration=True, encoding="UTF-8")
    return path


def output_paths(xml_paths: Sequence[Path], folder: Path, overwrite: bool = False) -> list[Path]:
    """Where the copies go: each file's path below the inputs' common folder, inside ``folder``.
    A copy that would replace its own input is a DatasetError unless ``overwrite``."""
    if not xml_paths:
        return []
    resolved = [path.resolve() for path in xml_paths]
    root = Path(os.path.commonpath([path.parent for path in resolved]))
    outputs = [folder / path.relative_to(root) for path in resolved]
    replaced = [str(path) for path, output in zip(resolved, outputs) if output.resolve() == path]
    if replaced and not overwrite:
        raise DatasetError(f"xml.output_dir={folder} would overwrite the input {replaced[0]}; "
                           "choose another folder or set xml.overwrite=true")
    return outputs
