"""A folder of images with a ``gt.txt`` label file (deep-text-recognition-benchmark convention).

Each non-empty line of the label file is ``relative/image/path<TAB>label``; paths are relative to
the dataset folder, labels may contain spaces (everything after the first tab).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from torch.utils.data import Dataset

from ctcocr.data.errors import DatasetError
from ctcocr.data.policy import read_image
from ctcocr.data.sample import Sample


class LabelLine(NamedTuple):
    """One entry of a label file."""

    line: int  # 1-based line number in the label file
    path: str  # image path relative to the dataset folder
    text: str


def read_label_file(path: Path) -> list[LabelLine]:
    """Parse ``path<TAB>label`` lines; raises :class:`DatasetError` naming the file and line."""
    if not path.is_file():
        raise DatasetError(f"label file not found: {path}")
    entries = []
    raw_lines = path.read_bytes().split(b"\n")
    for number, raw in enumerate(raw_lines, start=1):
        raw = raw.removesuffix(b"\r")
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # UTF-8 byte order mark
        if not raw:
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DatasetError(f"{path}:{number}: not valid UTF-8 ({error.reason})") from None
        image_path, tab, text = line.partition("\t")
        if not tab:
            raise DatasetError(f"{path}:{number}: expected 'image_path<TAB>label', found no tab")
        if not image_path.strip():
            raise DatasetError(f"{path}:{number}: empty image path")
        entries.append(LabelLine(number, image_path, text))
    return entries


class FolderDataset(Dataset):
    """Images under ``root`` labelled by ``root/gt_file``.

    Labels are read once at construction; images are decoded on access. Problems with labels
    (empty, unknown characters) are left to the data module's policy; a missing folder or label
    file, or a malformed line, raises :class:`DatasetError`.
    """

    def __init__(self, root: str | Path, gt_file: str = "gt.txt"):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder not found: {self.root}")
        self.label_file = self.root / gt_file
        self.entries = read_label_file(self.label_file)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"FolderDataset({str(self.root)!r}, {len(self)} samples)"

    def text(self, index: int) -> str:
        """The label of sample ``index`` (no image decoding)."""
        return self.entries[index].text

    def source(self, index: int) -> str:
        """``label_file:line (image path)`` of sample ``index``."""
        entry = self.entries[index]
        return f"{self.label_file}:{entry.line} ({entry.path})"

    def __getitem__(self, index: int) -> Sample:
        entry = self.entries[index]
        source = self.source(index)
        return Sample(read_image(self.root / entry.path, source), entry.text, source)
