"""Per-group metrics and the worst-lines picture of an evaluation report (as ``make eval-real``
gives them for data/real_lines), against brute-force counts on small hand-made sets."""

from __future__ import annotations

import csv
import random
import warnings
from pathlib import Path

import lightning
import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from ctcocr.cli.eval import run as run_eval
from ctcocr.data.folder import FolderDataset
from ctcocr.evaluation import (
    UNGROUPED,
    BatchOutputs,
    group_metrics,
    sample_group,
    worst_rows,
    write_worst_lines,
)
from ctcocr.metrics.alignment_plots import prediction_grid
from ctcocr.training.module import RecognizerModule
from tests.conftest import TINY, compose_config

HEIGHT = 32


def levenshtein(a: str, b: str) -> int:
    """Unit-cost edit distance by the textbook dynamic programme."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def write_lines(folder: Path, labels: dict[str, str]) -> Path:
    """A folder dataset: a white image with dark bars per ``relative/path.png`` and gt.txt."""
    for index, name in enumerate(labels):
        image = Image.new("L", (60 + 20 * index, HEIGHT), 255)
        for x in range(6, image.width - 6, 9):
            image.paste(0, (x, 8, x + 3 + index % 3, 24))
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        image.save(folder / name)
    (folder / "gt.txt").write_text("".join(f"{name}\t{text}\n" for name, text in labels.items()))
    return folder


def test_sample_group_is_the_first_folder_of_a_folder_datasets_image(tmp_path):
    labels = {"camera_book/p1.png": "a", "typewritten/x/y.png": "b", "top.png": "c",
              "scans (2)/p (3).png": "d"}
    folder = write_lines(tmp_path / "lines", labels)
    dataset = FolderDataset(folder)
    assert [sample_group(dataset.source(i)) for i in range(4)] == [
        "camera_book", "typewritten", UNGROUPED, "scans (2)"]
    assert sample_group("data/real_lines/gt.txt:7 (scanned_legal\\l07.png)") == "scanned_legal"
    for source in ("synthetic[seed=1, index=42, font=DejaVu Sans (Bold)]",
                   "/data/lmdb_set:image-000000001", "sample 0"):
        assert sample_group(source) == UNGROUPED


def random_rows(count: int, seed: int = 0) -> tuple[list[dict[str, str]], list[str]]:
    """Rows in 3 folder groups and synthetic ones, and each row's group; about 40% read exactly,
    the rest with a few random edits."""
    rng = random.Random(seed)
    rows, groups = [], []
    for index in range(count):
        label = "".join(rng.choices("abc d", k=rng.randint(1, 12))).strip() or "a"
        prediction = list(label)
        for _ in range(rng.choice([0, 0, 1, 2, 5])):
            position = rng.randint(0, len(prediction))
            prediction[position:position + rng.randint(0, 1)] = rng.choice(["", "x", "ab"])
        group = rng.choice(["alpha", "beta", "gamma", UNGROUPED])
        source = (f"synthetic[seed=0, index={index}, font=f]" if group == UNGROUPED
                  else f"/d/gt.txt:{index + 1} ({group}/{index}.png)")
        rows.append({"source": source, "label": label, "prediction": "".join(prediction)})
        groups.append(group)
    return rows, groups


def test_group_metrics_match_brute_force_counts():
    rows, row_groups = random_rows(300)
    groups = group_metrics(rows)
    assert list(groups) == ["alpha", "beta", "gamma", UNGROUPED]
    for name, values in groups.items():
        members = [row for row, group in zip(rows, row_groups) if group == name]
        edits = sum(levenshtein(row["prediction"], row["label"]) for row in members)
        exact = sum(row["prediction"] == row["label"] for row in members)
        assert values["samples"] == len(members) > 0
        assert values["acc"] == pytest.approx(exact / len(members))
        assert values["cer"] == pytest.approx(edits / sum(len(row["label"]) for row in members))
        assert 0 < values["acc"] < 1 and values["cer"] > 0
    assert sum(values["samples"] for values in groups.values()) == len(rows)


def batch_of(shades: list[float], widths: list[int]) -> BatchOutputs:
    """A batch whose kept images are each one flat shade (in [-1, 1]), padded to the widest."""
    images = torch.stack([torch.full((1, HEIGHT, max(widths)), shade) for shade in shades])
    empty = torch.zeros(0)
    return BatchOutputs(empty, empty, empty, empty, ["?"] * len(shades), ["?"] * len(shades),
                        images, torch.tensor(widths))


def test_worst_lines_picture_has_one_row_per_worst_line(tmp_path):
    outputs = [batch_of([-1.0, -0.5, 0.0], [40, 64, 48]), batch_of([0.5, 1.0], [80, 16])]
    rows = [{"label": label, "prediction": prediction} for label, prediction in
            [("abcd", "abcd"), ("abcd", "abxd"), ("ab", ""), ("abcd", "xbyd"), ("abc", "abc")]]
    assert worst_rows(rows, 10) == [2, 3, 1]  # CER 1, 0.5, 0.25; exact lines left out
    assert worst_rows(rows, 2) == [2, 3]

    assert write_worst_lines(tmp_path / "worst.png", outputs, rows, 2) == tmp_path / "worst.png"
    with Image.open(tmp_path / "worst.png") as picture:
        pixels = np.asarray(picture.convert("RGB"))
    one_row = prediction_grid(outputs[0].images[:1], outputs[0].widths[:1], ["x"], ["y"])
    assert pixels.shape[0] == 2 * one_row.size(1)
    # the rows are samples 2 and 3 (last of the first batch, first of the second) in that order
    images = torch.stack([torch.full((1, HEIGHT, 80), 0.0), torch.full((1, HEIGHT, 80), 0.5)])
    expected = prediction_grid(images, torch.tensor([48, 80]), ["", "xbyd"], ["ab", "abcd"])
    assert np.array_equal(pixels, expected.mul(255).round().permute(1, 2, 0).numpy())

    assert write_worst_lines(tmp_path / "none.png", outputs, rows, 0) is None
    assert not (tmp_path / "none.png").exists()
    outputs[1].images = outputs[1].images[:0]
    with pytest.raises(ValueError, match="not kept"):
        write_worst_lines(tmp_path / "lost.png", outputs, rows, 2)


def test_ctcocr_eval_reports_groups_and_worst_lines(tmp_path, capsys):
    """ctcocr-eval's run() on an untrained tiny checkpoint and a folder dataset of two kinds; T is
    fitted on the reported split, so the worst lines come from the outputs collected for T (more
    lines than the alignment picture keeps, nearly all of them wrong)."""
    module = RecognizerModule.from_train_config(compose_config("train", TINY, tmp_path))
    checkpoint = tmp_path / "model.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "pytorch-lightning_version": lightning.__version__}, checkpoint)
    texts = ["ab", "cab", "b a", "abc", "ca", "bb", "a", "cba", "ac", "b"]
    labels = {f"{'print' if i < 6 else 'scan'}/{i}.png": text for i, text in enumerate(texts)}
    folder = write_lines(tmp_path / "lines", labels)
    cfg = compose_config("eval", [f"ckpt_path={checkpoint}", "data=folder", f"data.val={folder}",
                                  "data.num_workers=0", "split=val", "temperature_split=val",
                                  "worst_lines=12", "extras.print_config=false"],
                         tmp_path / "eval")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an untrained model: T at the search edge
        metrics = run_eval(cfg)
    GlobalHydra.instance().clear()

    with open(tmp_path / "eval" / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(tmp_path / "eval" / "by_group.csv", newline="") as handle:
        groups = {row["group"]: row for row in csv.DictReader(handle)}
    assert list(groups) == ["print", "scan"] and metrics["samples"] == 10
    for name, row in groups.items():
        members = [r for r in rows if f"({name}/" in r["source"]]
        edits = sum(levenshtein(r["prediction"], r["label"]) for r in members)
        assert int(row["samples"]) == len(members) == (6 if name == "print" else 4)
        assert float(row["cer"]) == pytest.approx(edits / sum(len(r["label"]) for r in members))
        assert float(row["acc"]) == pytest.approx(
            sum(r["prediction"] == r["label"] for r in members) / len(members))
    table = capsys.readouterr().out.split("metrics by group:\n")[1].splitlines()
    assert [line.split()[0] for line in table] == ["group", "print", "scan", "all"]

    wrong = sum(row["prediction"] != row["label"] for row in rows)
    assert wrong > 0  # an untrained model
    one_row = prediction_grid(torch.zeros(1, 1, HEIGHT, 32), torch.tensor([32]), ["x"], ["y"])
    with Image.open(tmp_path / "eval" / "worst_lines.png") as picture:
        assert picture.height == wrong * one_row.size(1)
