"""The bad-sample policy: unknown characters, empty labels, unreadable images, missing paths."""

from __future__ import annotations

import logging

import pytest
from torch.utils.data import DataLoader

from ctcocr.data.charset import Charset
from ctcocr.data.collate import LineCollate
from ctcocr.data.datamodule import LineDataModule, LineDataset, open_dataset
from ctcocr.data.errors import BadImageError, DatasetError
from ctcocr.data.folder import FolderDataset
from ctcocr.data.lmdb_dataset import LmdbDataset, folder_to_lmdb
from ctcocr.data.transforms import LineTransform

CHARSET = Charset("abc")


def _lines(root, policy: str, **kwargs) -> LineDataset:
    return LineDataset(FolderDataset(root), CHARSET, LineTransform(), policy, "train", **kwargs)


def test_unknown_character_error_names_file_line_and_character(folder_dataset):
    root, _ = folder_dataset(["ab", "abx", "c"])
    with pytest.raises(DatasetError) as caught:
        _lines(root, "error")
    message = str(caught.value)
    assert "gt.txt:2 (img/001.png)" in message and "'x'" in message
    assert "on_bad_sample=skip" in message and "\n" not in message


def test_unknown_character_skip_drops_counts_and_logs(folder_dataset, caplog):
    root, _ = folder_dataset(["ab", "abx", "c", "zz"])
    with caplog.at_level(logging.WARNING, logger="ctcocr.data"):
        lines = _lines(root, "skip")
    assert len(lines) == 2
    assert [item.text for item in lines] == ["ab", "c"]
    assert "2 of 4 samples" in caplog.text and "2 characters outside the charset" in caplog.text
    assert "gt.txt:2" in caplog.text and "gt.txt:4" in caplog.text


def test_empty_label_error_and_skip(folder_dataset, caplog):
    root, _ = folder_dataset(["a", "", "b"])
    with pytest.raises(DatasetError, match=r"gt\.txt:2 \(img/001\.png\): empty label"):
        _lines(root, "error")
    with caplog.at_level(logging.WARNING, logger="ctcocr.data"):
        assert len(_lines(root, "skip")) == 2
    assert "1 empty label" in caplog.text


def test_case_mapping_happens_before_the_check(folder_dataset):
    root, _ = folder_dataset(["ABC", "cab"])
    lines = LineDataset(FolderDataset(root), Charset("abc", case="lower"), LineTransform())
    assert [item.text for item in lines] == ["abc", "cab"]
    assert lines[0].target.tolist() == [1, 2, 3]


def test_label_length_limit(folder_dataset, caplog):
    root, _ = folder_dataset(["abcab", "ab"])
    with pytest.raises(DatasetError, match="label too long"):
        _lines(root, "error", max_label_length=4)
    assert len(_lines(root, "skip", max_label_length=4)) == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing"])
def test_unreadable_image_error_names_the_file(folder_dataset, damage):
    root, _ = folder_dataset(["a", "b", "c"], widths=[200, 200, 200])
    path = root / "img" / "001.png"
    if damage == "garbage":
        path.write_bytes(b"\x89PNG not really")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.unlink()
    lines = _lines(root, "error")  # labels are fine: images are only checked when loaded
    lines[0]
    with pytest.raises(BadImageError, match=r"gt\.txt:2 \(img/001\.png\): unreadable image"):
        lines[1]


def test_unreadable_image_skip_is_counted_in_the_batch(folder_dataset, caplog):
    root, _ = folder_dataset(["a", "b", "c"])
    (root / "img" / "001.png").write_bytes(b"garbage")
    lines = _lines(root, "skip")
    with caplog.at_level(logging.WARNING, logger="ctcocr.data"):
        batch = next(iter(DataLoader(lines, batch_size=3, collate_fn=LineCollate(32))))
    assert batch["num_skipped"] == 1
    assert batch["texts"] == ["a", "c"] and batch["images"].shape[0] == 2
    assert "img/001.png" in caplog.text


def test_worker_error_reaches_the_main_process_as_one_line(folder_dataset):
    root, _ = folder_dataset(["a", "b"])
    (root / "img" / "000.png").write_bytes(b"garbage")
    lines = _lines(root, "error")
    loader = DataLoader(lines, batch_size=2, num_workers=1, collate_fn=LineCollate(32))
    with pytest.raises(BadImageError) as caught:
        next(iter(loader))
    message = str(caught.value)
    assert message.startswith(str(root / "gt.txt") + ":1 (img/000.png): unreadable image")
    assert "\n" not in message and "Traceback" not in message


def test_lmdb_samples_are_named_by_key(tmp_path, folder_dataset):
    root, _ = folder_dataset(["a", "q"])
    folder_to_lmdb(root, tmp_path / "lmdb")
    expected = r"lmdb:image-000000002: characters outside the charset 'q'"
    with pytest.raises(DatasetError, match=expected):
        LineDataset(LmdbDataset(tmp_path / "lmdb"), CHARSET, LineTransform())


def test_missing_or_unknown_dataset_paths(tmp_path):
    with pytest.raises(DatasetError, match="dataset not found: .*nowhere"):
        open_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="neither a folder dataset"):
        open_dataset(tmp_path / "empty")


def test_all_skipped_is_an_error(folder_dataset):
    root, _ = folder_dataset(["x", "y"])
    datamodule = LineDataModule(CHARSET, str(root), str(root), on_bad_sample="skip", num_workers=0)
    with pytest.raises(DatasetError, match="train: no usable samples"):
        datamodule.setup("fit")


def lmdb_without_keys(tmp_path, folder_dataset, *keys: bytes):
    """A 4-line LMDB dataset with these keys deleted."""
    import lmdb

    root, _ = folder_dataset(["a", "b", "c", "ab"])
    folder_to_lmdb(root, tmp_path / "lmdb")
    with lmdb.open(str(tmp_path / "lmdb")) as env, env.begin(write=True) as txn:
        for key in keys:
            assert txn.delete(key)
    return tmp_path / "lmdb"


def test_missing_lmdb_keys_are_named_under_error(tmp_path, folder_dataset):
    path = lmdb_without_keys(tmp_path, folder_dataset, b"label-000000002")
    with pytest.raises(DatasetError, match=r"lmdb:image-000000002: unreadable label: key missing"):
        LineDataset(LmdbDataset(path), CHARSET, LineTransform(), "error", "train")


def test_missing_lmdb_keys_are_skipped_counted_and_named(tmp_path, folder_dataset, caplog):
    path = lmdb_without_keys(tmp_path, folder_dataset, b"label-000000002", b"image-000000003")
    with caplog.at_level(logging.WARNING, logger="ctcocr.data"):
        lines = LineDataset(LmdbDataset(path), CHARSET, LineTransform(), "skip", "train")
        batch = next(iter(DataLoader(lines, batch_size=4, collate_fn=LineCollate(32))))
    assert len(lines) == 3  # the unreadable label is dropped when labels are checked
    assert batch["num_skipped"] == 1  # the missing image when it is read
    assert sorted(batch["texts"]) == ["a", "ab"]
    assert "image-000000002: unreadable label: key missing" in caplog.text
    assert "image-000000003: unreadable image: key missing" in caplog.text


def test_a_wrong_path_fails_before_the_trainer_is_built(tmp_path, folder_dataset, monkeypatch):
    from lightning.pytorch import Trainer

    from ctcocr.cli.train import train
    from tests.conftest import TINY, compose_config

    root, _ = folder_dataset(["a", "b"])

    def no_trainer(*args, **kwargs):
        raise AssertionError("the trainer was built before the paths were checked")

    monkeypatch.setattr(Trainer, "__init__", no_trainer)
    for val, message in [(tmp_path / "nowhere", "dataset not found: .*nowhere"),
                         (tmp_path, "neither a folder dataset")]:
        cfg = compose_config("train", [*TINY, "data=folder", f"data.train=[{root},{val}]",
                                       f"data.val={root}"], tmp_path)
        with pytest.raises(DatasetError, match=message):
            train(cfg)
