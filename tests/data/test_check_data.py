"""ctcocr-check-data: what the data check finds, that it agrees with training, and the command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from ctcocr.cli.check_data import run
from ctcocr.data.charset import PRINTABLE, Charset
from ctcocr.data.check import (
    COMBINING_MARKS,
    CONFLICTING_DUPLICATES,
    DUPLICATES,
    MIXED_SCRIPTS,
    STRAY_SPACES,
    TOO_LONG_FOR_FRAMES,
    UNUSUAL_CHARACTERS,
    check_data,
    histogram,
)
from ctcocr.data.datamodule import LineDataModule
from ctcocr.data.lmdb_dataset import folder_to_lmdb
from ctcocr.data.policy import EMPTY_LABEL, UNKNOWN_CHARACTERS, UNREADABLE_IMAGE
from tests.conftest import compose_config

NFC_E = "\u00e9"  # é precomposed
NFD_E = "e\u0301"  # e + combining acute accent


def frames_of(widths: torch.Tensor) -> torch.Tensor:
    """A model that makes one frame of every 8 pixels."""
    return widths // 8


ABC = Charset("abc")


def _check(root_train, charset=ABC, val=None, policy="error", **kwargs):
    datamodule = LineDataModule(charset, train=str(root_train), val=val, on_bad_sample=policy,
                                num_workers=0, **kwargs)
    return check_data(datamodule, frames_of)


def test_bad_samples_are_counted_named_and_stop_training_under_error(folder_dataset):
    root, _ = folder_dataset(["ab", "abx", "", "c", "cab"])
    (root / "img" / "003.png").write_bytes(b"not an image")
    split = _check(root).splits["train"]
    assert (split.samples, split.usable) == (5, 2)
    assert {reason: f.count for reason, f in split.bad_samples.items()} == {
        UNKNOWN_CHARACTERS: 1, EMPTY_LABEL: 1, UNREADABLE_IMAGE: 1}
    assert "gt.txt:2 (img/001.png)" in split.bad_samples[UNKNOWN_CHARACTERS].examples[0]
    assert "gt.txt:4 (img/003.png)" in split.bad_samples[UNREADABLE_IMAGE].examples[0]
    assert split.stop.startswith("3 of 5 samples are bad")
    assert _check(root, policy="skip").splits["train"].stop is None


def test_no_usable_sample_stops_even_under_skip(folder_dataset):
    root, _ = folder_dataset(["x", ""])
    assert _check(root, policy="skip").stops == ["train: no usable samples"]


def test_usable_samples_are_those_training_keeps(folder_dataset):
    root, _ = folder_dataset(["ab", "abx", "", "c", "zz", "ba"])
    datamodule = LineDataModule(Charset("abc"), train=str(root), on_bad_sample="skip",
                                num_workers=0, max_label_length=1)
    usable = check_data(datamodule, frames_of).splits["train"].usable
    datamodule.setup("fit")
    assert usable == len(datamodule.datasets["train"]) == 1


def test_characters_outside_the_charset_counted_per_character(folder_dataset):
    root, _ = folder_dataset(["axx", "b", "x!"])
    characters = _check(root).splits["train"].characters[UNKNOWN_CHARACTERS]
    assert {name.split()[0]: f.count for name, f in characters.items()} == {"'x'": 3, "'!'": 1}
    x = next(f for name, f in characters.items() if name.startswith("'x'"))
    assert [example.split(" ")[0][-8:] for example in x.examples] == ["gt.txt:1", "gt.txt:3"]


def test_labels_needing_more_frames_than_their_width_gives(folder_dataset):
    # 40 px wide and 20 high -> 64 px at height 32 -> 8 frames of frames_of
    root, _ = folder_dataset(["aaaaa", "ababa", "abcabcab", "abcabcabc"], widths=[40] * 4)
    finding = _check(root).splits["train"].warnings[TOO_LONG_FOR_FRAMES]
    # "aaaaa" needs 5 + 4 repeats = 9 frames; "abcabcabc" 9; "ababa" 5 and "abcabcab" 8 fit
    assert finding.count == 2
    assert "gt.txt:1" in finding.examples[0] and "9 frames" in finding.examples[0]
    assert "gt.txt:4" in finding.examples[1]


def test_nfc_and_nfd_spellings_of_one_character_are_reported(folder_dataset):
    root, _ = folder_dataset([f"caf{NFC_E}", f"caf{NFD_E}", "cafe"])
    split = _check(root, Charset(f"acef{NFC_E}")).splits["train"]
    assert split.usable == 3 and not split.bad_samples  # both spellings normalize to one class
    (forms,) = split.character_forms.values()
    assert {written.split(" ", 1)[0]: f.examples for written, f in forms.items()} == {
        repr(NFC_E): [f"{root / 'gt.txt'}:1 (img/000.png)"],
        "U+0065": [f"{root / 'gt.txt'}:2 (img/001.png)"]}


def test_one_spelling_is_no_clash(folder_dataset):
    root, _ = folder_dataset([f"caf{NFD_E}", f"{NFD_E}a"])
    assert not _check(root, Charset(f"acef{NFC_E}")).splits["train"].character_forms


def test_look_alikes_unusual_spaces_and_combining_marks(folder_dataset):
    cyrillic_o = "\u043e"
    labels = [f"M{cyrillic_o}scow ok", "no\u00a0break", "q\u0307", " lead", "a\u200bb"]
    root, _ = folder_dataset(labels)
    split = _check(root, Charset("Mabcklnoqrsw ")).splits["train"]
    mixed = split.warnings[MIXED_SCRIPTS]
    assert mixed.count == 1 and "U+043E CYRILLIC SMALL LETTER O" in mixed.examples[0]
    unusual = {name.split()[1]: f.count for name, f in split.characters[UNUSUAL_CHARACTERS].items()}
    assert unusual == {"U+00A0": 1, "U+200B": 1}
    assert [name.split()[1] for name in split.characters[COMBINING_MARKS]] == ["U+0307"]
    assert split.warnings[STRAY_SPACES].examples == [f"{root / 'gt.txt'}:4 (img/003.png): ' lead'"]


def test_duplicate_images_within_and_across_splits(tmp_path, folder_dataset):
    train, _ = folder_dataset(["a", "b", "c"], name="train")
    val, _ = folder_dataset(["a", "b"], name="val", widths=[60, 61])
    shutil.copy(train / "img" / "000.png", train / "img" / "002.png")  # same pixels, label "c"
    shutil.copy(train / "img" / "001.png", val / "img" / "001.png")
    report = _check(train, val=str(val))
    warnings = report.splits["train"].warnings
    assert warnings[DUPLICATES].count == warnings[CONFLICTING_DUPLICATES].count == 1
    assert "'c'" in warnings[CONFLICTING_DUPLICATES].examples[0]
    also = report.splits["val"].warnings["images also in train"]
    assert also.count == 1 and "img/001.png" in also.examples[0]
    assert DUPLICATES not in report.splits["val"].warnings


def test_lmdb_samples_are_named_by_key_and_a_repeated_split_is_read_once(tmp_path, folder_dataset):
    root, _ = folder_dataset(["a", "x"])
    folder_to_lmdb(root, tmp_path / "lmdb")
    datamodule = LineDataModule(Charset("a"), train=str(tmp_path / "lmdb"),
                                val=str(tmp_path / "lmdb"), num_workers=0)
    report = check_data(datamodule, frames_of)
    assert list(report.splits) == ["train"] and report.same_as == {"val": "train"}
    assert report.splits["train"].bad_samples[UNKNOWN_CHARACTERS].examples[0].startswith(
        f"{tmp_path / 'lmdb'}:image-000000002")


@pytest.mark.parametrize("values", [[5], [3, 3, 4], list(range(7, 130, 3)), [0, 1000, 999]])
def test_histogram_bins_hold_every_value_once(values):
    summary = histogram(values, bins=10)
    bins = summary["bins"]
    assert len(bins) <= 10 and sum(count for _, _, count in bins) == len(values)
    for low, high, count in bins:
        assert count == sum(low <= v <= high for v in values)
    assert (summary["min"], summary["max"], summary["median"]) == (
        min(values), max(values), float(np.median(values)))


def test_json_report_in_process(tmp_path, folder_dataset, capsys):
    root, _ = folder_dataset(["ab", f"caf{NFD_E}"])
    cfg = compose_config("check_data", ["data=folder", f"data.train={root}", f"data.val={root}",
                                        "data.num_workers=0", "format=json", "progress=false"],
                         tmp_path)
    report = run(cfg)
    printed = json.loads(capsys.readouterr().out)
    assert printed["stops"] == report.stops == [
        "train: 1 of 2 samples are bad and data.on_bad_sample=error (skip would drop them)"]
    assert printed["settings"]["unicode_normalization"] == "NFC"
    assert printed["same_as"] == {"val": "train", "test": "train"}
    assert printed["splits"]["train"]["histograms"]["label length (characters)"]["max"] == 4


def test_command_prints_a_table_and_exits_2_when_training_would_stop(tmp_path, folder_dataset):
    root, _ = folder_dataset(["ab", "a\u00a0b", ""])
    command = [sys.executable, "-m", "ctcocr.cli.check_data", "data=folder", f"data.train={root}",
               f"data.val={root}", "data.num_workers=0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "STOPS" in result.stdout and f"{root / 'gt.txt'}:3 (img/002.png): empty label" in \
        result.stdout
    assert "U+00A0 NO-BREAK SPACE" in result.stdout and "Traceback" not in result.stderr
    assert "training would stop" in result.stdout
    skipped = subprocess.run([*command, "data.on_bad_sample=skip"], capture_output=True,
                             text=True, timeout=300, cwd=tmp_path, check=False)
    assert skipped.returncode == 0, skipped.stderr[-2000:]
    assert not list(tmp_path.glob("logs"))  # no run folder


def test_missing_dataset_is_a_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ctcocr.cli.check_data", "data=folder",
                             "data.train=/nonexistent/train", "data.val=/nonexistent/val"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            check=False)
    assert result.returncode == 2
    assert "error: dataset not found: /nonexistent/train" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_of_printable_labels_is_clean(folder_dataset):
    labels = [PRINTABLE[i:i + 6] for i in range(0, 60, 6)]
    labels = [label for label in labels if label == label.strip() and "  " not in label]
    root, _ = folder_dataset(labels, widths=[200] * len(labels))
    split = _check(root, Charset(PRINTABLE)).splits["train"]
    assert split.usable == split.samples == len(labels) and not split.warnings
    assert not split.characters and not split.character_forms and split.stop is None
