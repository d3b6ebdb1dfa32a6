"""Finding PAGE/ALTO XML files among paths, with pathlib alone (the fast start of
``ctcocr-predict`` checks its inputs with it before importing PyTorch)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def is_xml_file(path: Path) -> bool:
    return path.suffix.lower() == ".xml" and path.is_file()


def holds_xml(path: str | Path) -> bool:
    """Whether ``path`` is an XML file or a folder with an XML file somewhere below it."""
    path = Path(path)
    return is_xml_file(path) or (path.is_dir() and any(map(is_xml_file, path.rglob("*"))))


def find_xml_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """The XML files named by ``paths``: files as they are, folders searched recursively
    (sorted); FileNotFoundError for a path that does not exist."""
    found: list[Path] = []
    for item in [paths] if isinstance(paths, (str, Path)) else paths:
        path = Path(item)
        if path.is_dir():
            found += sorted(filter(is_xml_file, path.rglob("*")))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such XML file or folder: {path}")
    return found


def split_inputs(inputs: str | Iterable[str]) -> tuple[list[str], list[Path]]:
    """``ctcocr-predict``'s inputs -> (the line-image inputs, the XML files): a folder holding any
    XML file is read through its XML files (the images in it are their pages)."""
    items = [inputs] if isinstance(inputs, str) else [str(item) for item in inputs]
    xml_items = [item for item in items if holds_xml(item)]
    return [item for item in items if item not in xml_items], find_xml_files(xml_items)
