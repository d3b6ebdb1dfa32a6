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


def test_a_zero_byte_image_follows_the_policy(folder_dataset, caplog):
    root, _ = folder_dataset(["a", "b", "c"])
    (root / "img" / "001.png").write_bytes(b"")
    with pytest.raises(BadImageError, match=r"gt\.txt:2 \(img/001\.png\): unreadable image"):
        _lines(root, "error")[1]
    with caplog.at_level(logging.WARNING, logger="ctcocr.data"):
        batch = next(iter(DataLoader(_lines(root, "skip"), batch_size=3,
                                     collate_fn=LineCollate(32))))
    assert batch["num_skipped"] == 1 and batch["texts"] == ["a", "c"]
    assert "img/001.png" in caplog.text


def test_undecodable_lmdb_label_bytes_follow_the_policy(tmp_path, folder_dataset, caplog):
    import lmdb

    path = lmdb_without_keys(tmp_path, folder_dataset)
    with lmdb.open(str(path)) as env, env.begin(write=True) as txn:
        txn.put(b"label-000000003", b"\xff\xfe")
    with pytest.raises(DatasetError, match=r"image-000000003: unreadable label"):
        LineDataset(LmdbDataset(path), CHARSET, LineTransform(), "error", "train")
    with caplog.at_level(logging.WARNING, logger="ctcocr.data"):
        lines = LineDataset(LmdbDataset(path), CHARSET, LineTransform(), "skip", "train")
    assert len(lines) == 3
    assert "1 unreadable label" in caplog.text


def test_skipped_labels_are_counted_by_split_and_reason(folder_dataset):
    root, _ = folder_dataset(["a", "", "bx", "c", "zz"])
    datamodule = LineDataModule(CHARSET, str(root), str(root), on_bad_sample="skip",
                                max_label_length=1, num_workers=0)
    datamodule.setup("fit")
    assert datamodule.skipped_labels() == {
        "train/skipped/empty_label": 1, "train/skipped/characters_outside_the_charset": 2,
        "val/skipped/empty_label": 1, "val/skipped/characters_outside_the_charset": 2}


def test_training_writes_the_skip_counts_into_the_run_metrics(tmp_path, folder_dataset):
    import json

    from ctcocr.cli.train import train
    from tests.conftest import TINY, compose_config

    root, _ = folder_dataset(["ab", "", "ab\u00e9", "ba", "abc", "cab"])
    cfg = compose_config("train", [*TINY, "data=folder", f"data.train={root}", f"data.val={root}",
                                   "data.on_bad_sample=skip", "data.num_workers=0", "test=false",
                                   "logger=csv"], tmp_path)
    train(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["train/skipped/empty_label"] == 1
    assert metrics["train/skipped/characters_outside_the_charset"] == 1
    logged = (tmp_path / "csv" / "metrics.csv").read_text()
    assert "train/skipped/empty_label" in logged


def test_an_unwritable_run_folder_is_one_line_before_anything_runs(tmp_path):
    import subprocess
    import sys

    from ctcocr.cli.run_dir import unwritable_reason

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert unwritable_reason(blocker / "run") == f"{blocker} is a file, not a folder"
    assert unwritable_reason(tmp_path / "new" / "run") is None
    result = subprocess.run([sys.executable, "-m", "ctcocr.cli.train", f"hydra.run.dir={blocker}/run"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: cannot write the run folder {blocker}/run: "
                                     f"{blocker} is a file, not a folder")
