"""Train, eval and predict end to end through the real entry points, on a tiny config."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from ctcocr.data.charset import PRINTABLE
from tests.conftest import TINY


def run(module: str, *overrides: str, check: bool = True,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", module, *overrides], capture_output=True, check=False,
                            text=True, timeout=300, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"{module} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """One tiny training run, shared by the tests of this file; its charset comes from a file
    given by a path relative to the folder it was started in (``charset.txt`` beside the run)."""
    out = tmp_path_factory.mktemp("train")
    (out / "charset.txt").write_text("\n".join(PRINTABLE) + "\n", encoding="utf-8")
    run("ctcocr.cli.train", *TINY, "logger=csv", "charset=file", "charset.file=charset.txt",
        "hydra.run.dir=.", cwd=out)
    return out


def predictions(result: subprocess.CompletedProcess) -> list[list[str]]:
    """ctcocr-predict's TSV rows from its stdout."""
    return [line.split("\t") for line in result.stdout.splitlines()]


def write_folder_dataset(folder: Path, labels: dict[str, str]) -> Path:
    """A folder dataset: one white image with dark bars per label, and gt.txt."""
    folder.mkdir(parents=True)
    lines = []
    for index, (name, label) in enumerate(labels.items()):
        image = Image.new("L", (60 + 25 * index, 32), 255)
        for x in range(6, image.width - 6, 9):
            image.paste(0, (x, 8, x + 3 + index % 3, 24))
        image.save(folder / name)
        lines.append(f"{name}\t{label}")
    (folder / "gt.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_checkpoints_carry_their_charset_and_load_anywhere(trained_run, tmp_path):
    """Editing the charset file after training, or predicting from another folder, changes
    nothing: the checkpoint holds the characters, not the file's path."""
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    stored = torch.load(checkpoint, map_location="cpu", weights_only=True)["hyper_parameters"]
    assert stored["charset"]["chars"] == PRINTABLE and "file" not in stored["charset"]
    assert stored["preprocessing"] == {"height": 32, "min_width": 32, "max_width": 1024,
                                       "normalize": True}
    images = tmp_path / "images"
    write_folder_dataset(images, {"a.png": "x", "b.png": "y"})
    before = run("ctcocr.cli.predict", f"ckpt_path={checkpoint}", f"inputs={images}", cwd=tmp_path)
    (trained_run / "charset.txt").write_text("\n".join(reversed(PRINTABLE)) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    after = run("ctcocr.cli.predict", f"ckpt_path={checkpoint}", f"inputs={images}", cwd=elsewhere)
    assert predictions(after) == predictions(before) and len(predictions(before)) == 2


def test_predict_prints_only_tsv_and_writes_nothing(trained_run, tmp_path):
    images = write_folder_dataset(tmp_path / "images", {"a.png": "x", "b.png": "y"})
    result = run("ctcocr.cli.predict", f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}",
                 f"inputs={images}", cwd=tmp_path)
    rows = predictions(result)
    assert [Path(row[0]).name for row in rows] == ["a.png", "b.png"]
    assert all(len(row) == 3 and 0.0 <= float(row[2]) <= 1.0 for row in rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


def test_predict_and_eval_report_the_same_confidence(trained_run, tmp_path):
    labels = {f"{i}.png": text for i, text in enumerate(["ab", "c", "abc", "ba", "a"])}
    folder = write_folder_dataset(tmp_path / "lines", labels)
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    predicted = run("ctcocr.cli.predict", f"ckpt_path={checkpoint}", f"inputs={folder}",
                    "batch_size=2", cwd=tmp_path)
    run("ctcocr.cli.eval", f"ckpt_path={checkpoint}", "data=folder", f"data.val={folder}",
        "split=val", "temperature_split=null", "extras.print_config=false",
        f"hydra.run.dir={tmp_path / 'eval'}")
    with open(tmp_path / "eval" / "predictions.csv", newline="") as handle:
        # a folder dataset's sources read "gt.txt:LINE (IMAGE)"
        evaluated = {row["source"].rsplit("(", 1)[1].rstrip(")"): row
                     for row in csv.DictReader(handle)}
    assert len(evaluated) == len(labels)
    for path, text, confidence in predictions(predicted):
        row = evaluated[Path(path).name]
        assert row["prediction"] == text
        # compared as log-probabilities: an untrained model's confidences are tiny
        assert math.log(float(row["confidence"])) == pytest.approx(math.log(float(confidence)),
                                                                   abs=1e-3)


def test_train_writes_checkpoints_logs_and_test_report(trained_run):
    checkpoints = sorted(p.name for p in (trained_run / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in checkpoints and any(name.startswith("best-") for name in checkpoints)
    metrics = json.loads((trained_run / "test" / "metrics.json").read_text())
    assert {"acc", "acc_ci", "cer", "ned", "samples"} <= set(metrics)
    assert metrics["samples"] == 32
    logged = (trained_run / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss", "train/ctc", "val/acc", "val/cer", "lr-AdamW"} <= set(logged)


def test_eval_writes_metrics_and_per_sample_predictions(trained_run, tmp_path):
    result = run("ctcocr.cli.eval", f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}",
                 "data=tiny", "split=val", "extras.print_config=false",
                 f"hydra.run.dir={tmp_path}")
    assert "val metrics" in result.stdout
    with open(tmp_path / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 32
    assert {"source", "label", "prediction", "confidence"} <= set(rows[0])
    assert all(0.0 <= float(row["confidence"]) <= 1.0 for row in rows)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    exact = sum(row["prediction"] == row["label"] for row in rows) / len(rows)
    assert metrics["acc"] == pytest.approx(exact)


def test_predict_reads_a_folder_and_reports_bad_files(trained_run, tmp_path):
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    Image.new("L", (90, 30), 255).save(images / "a.png")
    Image.new("RGB", (50, 40), "white").save(images / "sub" / "b.jpg")
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    output = tmp_path / "out.tsv"
    result = run("ctcocr.cli.predict", f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}",
                 f"inputs={images}", f"output={output}", f"hydra.run.dir={tmp_path / 'run'}",
                 check=False)
    assert result.returncode == 1
    assert "1 of 3 files could not be read" in result.stderr and "broken.png" in result.stderr
    lines = output.read_text().splitlines()
    assert sorted(Path(line.split("\t")[0]).name for line in lines) == ["a.png", "b.jpg"]


@pytest.mark.parametrize("module,overrides,message", [
    ("ctcocr.cli.eval", ["ckpt_path=/nonexistent/model.ckpt"], "checkpoint not found"),
    # the decoder group reaches ctcocr-eval: its lexicon is opened
    ("ctcocr.cli.eval", ["ckpt_path={checkpoint}", "decoder=beam", "decoder.lexicon=/nonexistent/words.txt"],
     "lexicon not found: /nonexistent/words.txt"),
    ("ctcocr.cli.train", [*TINY, "data=folder", "data.train=/nonexistent/train", "data.val=/nonexistent/val"],
     "dataset not found: /nonexistent/train"),
])
def test_missing_paths_give_one_line_errors(module, overrides, message, trained_run, tmp_path):
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    overrides = [override.format(checkpoint=checkpoint) for override in overrides]
    result = run(module, *overrides, f"hydra.run.dir={tmp_path}", check=False)
    assert result.returncode == 2
    assert f"error: {message}" in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_json_gives_character_spans_inside_the_image_and_draws_boxes(trained_run, tmp_path):
    image_path = tmp_path / "line.png"
    Image.new("L", (150, 45), 255).save(image_path)
    output, boxes = tmp_path / "out.jsonl", tmp_path / "boxes"
    run("ctcocr.cli.predict", f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", f"inputs={image_path}",
        "decoder=beam", "format=json", f"boxes_dir={boxes}", f"output={output}",
        f"hydra.run.dir={tmp_path / 'run'}")
    (record,) = [json.loads(line) for line in output.read_text().splitlines()]
    assert record["path"] == str(image_path)
    assert "".join(c["char"] for c in record["chars"]) == record["text"]
    assert all(0 <= c["x0"] < c["x1"] <= 150 for c in record["chars"])
    with Image.open(boxes / "line.png.png") as drawn:
        assert drawn.size == (150, 45)


def test_predict_reads_the_same_text_from_the_checkpoint_and_its_onnx_export(trained_run, tmp_path):
    pytest.importorskip("onnxruntime")
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    onnx_file = tmp_path / "model.onnx"
    run("ctcocr.cli.export", f"ckpt_path={checkpoint}", f"output={onnx_file}", f"hydra.run.dir={tmp_path / 'x'}")
    images = tmp_path / "images"
    images.mkdir()
    for index, width in enumerate((70, 180)):
        Image.new("L", (width, 32), 255).save(images / f"{index}.png")
    outputs = {}
    for model in (checkpoint, onnx_file):
        output = tmp_path / f"{model.suffix[1:]}.tsv"
        run("ctcocr.cli.predict", f"ckpt_path={model}", f"inputs={images}", f"output={output}",
            f"hydra.run.dir={tmp_path / model.suffix[1:]}")
        outputs[model.suffix] = [line.split("\t") for line in output.read_text().splitlines()]
    assert [row[:2] for row in outputs[".ckpt"]] == [row[:2] for row in outputs[".onnx"]]
    assert [float(r[2]) for r in outputs[".ckpt"]] == pytest.approx([float(r[2]) for r in outputs[".onnx"]], abs=1e-4)
