"""Text lines of PAGE or ALTO XML files, cut from their page images (Transkribus, eScriptorium,
kraken and OCR-D ground truth)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from PIL import Image
from torch.utils.data import Dataset

from ctcocr.data.errors import BadImageError
from ctcocr.data.layout import LayoutLine, MissingImageError
from ctcocr.data.line_cut import LineCutter
from ctcocr.data.policy import BadSamplePolicy, check_policy
from ctcocr.data.sample import Sample
from ctcocr.data.xml_reader import NotLayoutXmlError, XmlFormat, load_page_image, read_layout
from ctcocr.xml_files import find_xml_files

logger = logging.getLogger("ctcocr.data")
_EXAMPLES_SHOWN = 5


class PageRef(NamedTuple):
    """Where a page's lines come from."""

    xml_path: Path
    image_path: Path
    declared_size: tuple[int, int] | None


class PageCache:
    """The most recently used decoded page images of this process, up to ``max_bytes`` in all.

    A copy made for a DataLoader worker (fork or pickle) starts empty, so each worker holds its
    own pages and memory stays at most ``max_bytes`` per process.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._pages: OrderedDict[int, Image.Image] = OrderedDict()
        self._bytes = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"max_bytes": self.max_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["max_bytes"])

    def get(self, key: int, load: Callable[[], Image.Image]) -> Image.Image:
        """The cached page ``key``, or ``load()``'s result (cached if it fits)."""
        if key in self._pages:
            self._pages.move_to_end(key)
            return self._pages[key]
        page = load()
        size = page.width * page.height * len(page.getbands())
        if size > self.max_bytes:
            return page
        while self._bytes + size > self.max_bytes:
            _, old = self._pages.popitem(last=False)
            self._bytes -= old.width * old.height * len(old.getbands())
        self._pages[key] = page
        self._bytes += size
        return page


class XmlLineDataset(Dataset):
    """The TextLines of PAGE or ALTO files, each cut from its page image by :class:`LineCutter`.

    Files are parsed once at construction (their lines, polygons and texts are kept, not their
    trees); page images are decoded on access, and the last few are kept in a :class:`PageCache`.
    Lines without text are left to the data module's label policy (an empty label: a counted skip
    or an error naming the file, line and id); a page whose image is missing is an error under
    ``on_bad_sample="error"`` and a counted, logged skip of the page under ``"skip"``; malformed
    XML is always an error naming the file and line.

    Args:
        path: an XML file, or a folder searched recursively for ``*.xml`` (files there that are
            neither PAGE nor ALTO, like METS files, are skipped with a warning).
        format: "auto" (by the root element's namespace), "page" or "alto".
        margin, deskew_min_degrees: see :class:`LineCutter`.
        page_cache_mb: decoded page images kept per process (a 300 dpi A4 page in gray is ~9 MB).
        on_bad_sample: "error" or "skip" (for missing page images).
    """

    def __init__(
        self,
        path: str | Path,
        format: XmlFormat = "auto",
        margin: int = 4,
        deskew_min_degrees: float | None = 3.0,
        page_cache_mb: float = 256,
        on_bad_sample: BadSamplePolicy = "error",
    ):
        self.root = Path(path)
        self.cutter = LineCutter(margin, deskew_min_degrees)
        self.cache = PageCache(int(page_cache_mb * 2**20))
        self.pages: list[PageRef] = []
        self.lines: list[tuple[int, LayoutLine]] = []
        policy = check_policy(on_bad_sample)
        skipped: dict[str, list[str]] = {"page image missing": [], "not PAGE or ALTO": []}
        files = find_xml_files(self.root)
        for xml_path in files:
            try:
                layout = read_layout(xml_path, format)
            except MissingImageError as error:
                if policy == "error":
                    raise
                skipped["page image missing"].append(str(error))
                continue
            except NotLayoutXmlError as error:
                if not self.root.is_dir():
                    raise
                skipped["not PAGE or ALTO"].append(str(error))
                continue
            self.lines += [(len(self.pages), line) for line in layout.lines]
            self.pages.append(PageRef(xml_path, layout.image_path, layout.image_size))
        for reason, errors in skipped.items():
            if errors:
                more = "; ..." if len(errors) > _EXAMPLES_SHOWN else ""
                shown = "; ".join(errors[:_EXAMPLES_SHOWN]) + more
                logger.warning("%s: skipped %d of %d XML files (%s): %s", self.root, len(errors),
                               len(files), reason, shown)

    def __len__(self) -> int:
        return len(self.lines)

    def __repr__(self) -> str:
        return f"XmlLineDataset({str(self.root)!r}, {len(self)} lines of {len(self.pages)} pages)"

    def text(self, index: int) -> str:
        """The label of line ``index`` (no image decoding)."""
        return self.lines[index][1].text

    def source(self, index: int) -> str:
        """``file.xml:LINE (TextLine ID)`` of line ``index``."""
        page, line = self.lines[index]
        return f"{self.pages[page].xml_path}:{line.xml_line} (TextLine {line.id})"

    def __getitem__(self, index: int) -> Sample:
        page_number, line = self.lines[index]
        page = self.cache.get(page_number, lambda: load_page_image(*self.pages[page_number]))
        source = self.source(index)
        try:
            image = self.cutter(page, line.polygon, line.baseline)
        except ValueError as error:
            raise BadImageError(f"{source}: {error}") from None
        return Sample(image, line.text, source)
