"""LMDB text-line datasets (deep-text-recognition-benchmark layout): reading and writing.

Keys: ``num-samples`` -> the count as ASCII digits; ``image-%09d`` -> the original encoded image
bytes; ``label-%09d`` -> the UTF-8 label; indices are 1-based.
"""

from __future__ import annotations

import io
import logging
import os
from collections import Counter
from pathlib import Path

import lmdb
from torch.utils.data import Dataset

from ctcocr.data.errors import BadImageError, BadLabelError, DatasetError
from ctcocr.data.folder import FolderDataset
from ctcocr.data.policy import UNREADABLE_IMAGE, UNREADABLE_LABEL, BadSamplePolicy, read_image
from ctcocr.data.sample import Sample

logger = logging.getLogger("ctcocr.data")

NUM_SAMPLES_KEY = b"num-samples"


def image_key(index: int) -> bytes:
    """Key of the 0-based sample ``index`` (stored 1-based)."""
    return b"image-%09d" % (index + 1)


def label_key(index: int) -> bytes:
    return b"label-%09d" % (index + 1)


_environments: dict[Path, tuple[int, lmdb.Environment]] = {}


def open_environment(root: Path) -> lmdb.Environment:
    """The read-only environment of ``root`` for this process, opened on first use.

    LMDB allows one open environment per database and process, and a handle must not be used
    across a fork: one inherited from the parent (DataLoader workers) is closed and reopened.
    """
    path = Path(root).resolve()
    pid, env = _environments.get(path, (None, None))
    if env is not None and pid != os.getpid():
        env.close()
        env = None
    if env is None:
        env = lmdb.open(
            str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=512
        )
        _environments[path] = (os.getpid(), env)
    return env


class LmdbDataset(Dataset):
    """An LMDB dataset folder (holding ``data.mdb``), opened read-only and without locks.

    The environment is opened lazily in each process that reads (DataLoader workers, DDP ranks).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not (self.root / "data.mdb").is_file():
            raise DatasetError(f"LMDB dataset not found: {self.root} (no data.mdb in it)")
        count = self._get(NUM_SAMPLES_KEY)
        if count is None or not count.isdigit():
            raise DatasetError(f"{self.root}: not a text-line LMDB dataset (no 'num-samples' key)")
        self._size = int(count)

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"LmdbDataset({str(self.root)!r}, {len(self)} samples)"

    def _get(self, key: bytes) -> bytes | None:
        with open_environment(self.root).begin(write=False) as txn:
            return txn.get(key)

    def _check_index(self, index: int) -> int:
        if not -self._size <= index < self._size:
            raise IndexError(f"index {index} out of range for {self._size} samples")
        return index % self._size

    def text(self, index: int) -> str:
        """The label of sample ``index`` (no image decoding)."""
        index = self._check_index(index)
        value = self._get(label_key(index))
        if value is None:
            raise BadLabelError(f"{self.source(index)}: {UNREADABLE_LABEL}: key missing")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as error:
            message = f"{self.source(index)}: {UNREADABLE_LABEL}: not UTF-8 ({error.reason})"
            raise BadLabelError(message) from None

    def source(self, index: int) -> str:
        """``root:image-000000001`` style name of sample ``index``."""
        return f"{self.root}:{image_key(index).decode()}"

    def __getitem__(self, index: int) -> Sample:
        index = self._check_index(index)
        source = self.source(index)
        data = self._get(image_key(index))
        if data is None:
            raise BadImageError(f"{source}: {UNREADABLE_IMAGE}: key missing")
        return Sample(read_image(io.BytesIO(data), source), self.text(index), source)


def folder_to_lmdb(
    input_dir: str | Path,
    output_dir: str | Path,
    gt_file: str = "gt.txt",
    on_bad_sample: BadSamplePolicy = "error",
) -> Counter[str]:
    """Convert a folder dataset (see :class:`FolderDataset`) to LMDB, keeping the encoded images.

    Every image is decoded once to check it; an unreadable one raises :class:`DatasetError` under
    ``"error"`` and is left out (counted) under ``"skip"``. Labels are copied as they are: the
    charset policy applies when the dataset is used. Returns counts: ``written`` and one key per
    skip reason.
    """
    folder = FolderDataset(input_dir, gt_file)
    output_dir = Path(output_dir)
    if (output_dir / "data.mdb").exists():
        raise DatasetError(f"{output_dir} already holds an LMDB database; choose a new folder")
    sizes = [_file_size(folder.root / entry.path) for entry in folder.entries]
    page = 4096
    map_size = sum((size // page + 2) * page for size in sizes) * 2 + (64 << 20)
    output_dir.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    env = lmdb.open(str(output_dir), map_size=map_size, subdir=True)
    txn = env.begin(write=True)
    try:
        for number, entry in enumerate(folder.entries):
            try:
                data = read_image_bytes(folder.root / entry.path, folder.source(number))
            except BadImageError as error:
                if on_bad_sample == "error":
                    raise
                logger.warning("skipped %s", error)
                counts[UNREADABLE_IMAGE] += 1
                continue
            index = counts["written"]
            txn.put(image_key(index), data)
            txn.put(label_key(index), entry.text.encode("utf-8"))
            counts["written"] += 1
            if counts["written"] % 1000 == 0:
                txn.commit()
                txn = env.begin(write=True)
        txn.put(NUM_SAMPLES_KEY, str(counts["written"]).encode())
        txn.commit()
    except BaseException:
        txn.abort()
        env.close()
        for name in ("data.mdb", "lock.mdb"):  # no half-written database left behind
            (output_dir / name).unlink(missing_ok=True)
        raise
    env.close()
    return counts


def read_image_bytes(path: Path, source: str) -> bytes:
    """The encoded bytes of an image file, after checking that they decode."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BadImageError(f"{source}: {UNREADABLE_IMAGE}: {error}") from None
    read_image(io.BytesIO(data), source)
    return data


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
