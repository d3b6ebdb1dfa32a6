"""Folder (gt.txt) and LMDB datasets: parsing, round trips through the conversion, clear errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import DataLoader

from ctcocr.data.errors import BadImageError, DatasetError
from ctcocr.data.folder import FolderDataset
from ctcocr.data.lmdb_dataset import LmdbDataset, folder_to_lmdb, open_environment

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "folder_to_lmdb.py"
LABELS = ["hello", "a b\tc", "Ünïcode", "x"]


def _load_script():
    spec = importlib.util.spec_from_file_location("folder_to_lmdb_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_folder_dataset_reads_labels_and_pixels(folder_dataset):
    root, arrays = folder_dataset(LABELS)
    dataset = FolderDataset(root)
    assert len(dataset) == len(LABELS)
    for index, (label, array) in enumerate(zip(LABELS, arrays)):
        sample = dataset[index]
        assert dataset.text(index) == sample.text == label
        assert sample.image.mode == "L"
        np.testing.assert_array_equal(np.asarray(sample.image), array)
        assert sample.source.endswith(f"gt.txt:{index + 1} (img/{index:03d}.png)")


def test_label_file_conventions(folder_dataset):
    root, _ = folder_dataset(["a", "b"])
    (root / "gt.txt").write_bytes(b"\xef\xbb\xbfimg/000.png\t x y \r\n\r\nimg/001.png\tb\tc\n\n")
    dataset = FolderDataset(root)
    # byte order mark, CRLF, blank lines, spaces and tabs inside labels
    assert [dataset.text(i) for i in range(len(dataset))] == [" x y ", "b\tc"]
    assert dataset.source(1).endswith("gt.txt:3 (img/001.png)")


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [(b"img/000.png\ta\nimg/001.png b\n", 2, "no tab"), (b"\tlabel\n", 1, "empty image path"),
     (b"img/000.png\ta\n\xff\xfe\tb\n", 2, "UTF-8")],
)
def test_malformed_lines_name_file_and_line(folder_dataset, content, line, message):
    root, _ = folder_dataset(["a", "b"])
    (root / "gt.txt").write_bytes(content)
    with pytest.raises(DatasetError, match=message) as caught:
        FolderDataset(root)
    assert f"gt.txt:{line}:" in str(caught.value)


def test_missing_paths_give_one_line_errors(tmp_path, folder_dataset):
    for dataset_type in (FolderDataset, LmdbDataset):
        with pytest.raises(DatasetError, match="nowhere") as caught:
            dataset_type(tmp_path / "nowhere")
        assert "\n" not in str(caught.value)
    root, _ = folder_dataset(["a"])
    with pytest.raises(DatasetError, match="labels.txt"):
        FolderDataset(root, gt_file="labels.txt")


def test_missing_image_is_a_bad_image_naming_the_line(folder_dataset):
    root, _ = folder_dataset(["a", "b"])
    (root / "img" / "001.png").unlink()
    dataset = FolderDataset(root)
    dataset[0]
    with pytest.raises(BadImageError, match=r"gt\.txt:2 \(img/001\.png\)"):
        dataset[1]


def test_lmdb_round_trip_keeps_bytes_labels_and_pixels(tmp_path, folder_dataset):
    root, arrays = folder_dataset(LABELS)
    counts = folder_to_lmdb(root, tmp_path / "lmdb")
    assert counts["written"] == len(LABELS)
    dataset = LmdbDataset(tmp_path / "lmdb")
    folder = FolderDataset(root)
    assert len(dataset) == len(LABELS)
    for index, array in enumerate(arrays):
        sample = dataset[index]
        assert dataset.text(index) == sample.text == LABELS[index]
        np.testing.assert_array_equal(np.asarray(sample.image), array)
        assert sample.source.endswith(f"image-{index + 1:09d}")
    with open_environment(tmp_path / "lmdb").begin() as txn:
        assert txn.get(b"num-samples") == str(len(LABELS)).encode()
        assert txn.get(b"image-000000001") == (root / folder.entries[0].path).read_bytes()
        assert txn.get(b"label-000000002") == LABELS[1].encode("utf-8")
    with pytest.raises(IndexError):
        dataset[len(LABELS)]


def test_lmdb_dataset_in_worker_processes_and_twice_in_one(tmp_path, folder_dataset):
    root, _ = folder_dataset(LABELS)
    folder_to_lmdb(root, tmp_path / "lmdb")
    dataset = LmdbDataset(tmp_path / "lmdb")
    dataset[0]  # opens the environment in this process before the workers fork
    loader = DataLoader(dataset, batch_size=None, num_workers=2, collate_fn=lambda s: s.text)
    assert list(loader) == LABELS
    assert LmdbDataset(tmp_path / "lmdb").text(3) == LABELS[3]  # a second dataset on the same files


def test_conversion_of_corrupt_image_error_or_skip(tmp_path, folder_dataset):
    root, _ = folder_dataset(LABELS)
    (root / "img" / "002.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"gt\.txt:3 \(img/002\.png\)"):
        folder_to_lmdb(root, tmp_path / "strict")
    assert not (tmp_path / "strict" / "data.mdb").exists()  # nothing half-written left behind
    counts = folder_to_lmdb(root, tmp_path / "lenient", on_bad_sample="skip")
    assert counts["written"] == len(LABELS) - 1
    assert counts["unreadable image"] == 1
    dataset = LmdbDataset(tmp_path / "lenient")
    assert [dataset.text(i) for i in range(len(dataset))] == [LABELS[0], LABELS[1], LABELS[3]]


def test_conversion_refuses_to_overwrite(tmp_path, folder_dataset):
    root, _ = folder_dataset(["a"])
    folder_to_lmdb(root, tmp_path / "lmdb")
    with pytest.raises(DatasetError, match="already"):
        folder_to_lmdb(root, tmp_path / "lmdb")


def test_script_converts_and_reports(tmp_path, folder_dataset, capsys):
    root, _ = folder_dataset(LABELS)
    script = _load_script()
    assert script.main(["--input", str(root), "--output", str(tmp_path / "out")]) == 0
    assert f"wrote {len(LABELS)} samples" in capsys.readouterr().out
    assert [LmdbDataset(tmp_path / "out").text(i) for i in range(len(LABELS))] == LABELS
    assert script.main(["--input", str(tmp_path / "nowhere"), "--output", str(tmp_path / "x")]) == 1
    error = capsys.readouterr().err
    assert "nowhere" in error and "Traceback" not in error
