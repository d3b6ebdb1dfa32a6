"""The torch-free ONNX reader and the fast start of ctcocr-predict: the same texts, confidences and
character spans as the checkpoint read by PyTorch, without importing torch, Lightning or Hydra."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from ctcocr.lite.command import PredictOptions, parse_predict_args
from ctcocr.lite.files import find_images
from ctcocr.recognition import Recognizer, TextDecoder, recognize
from ctcocr.recognition.export import export_onnx
from tests.conftest import compose_config

pytest.importorskip("onnxruntime")
from ctcocr.lite.reader import OnnxReader

REAL_LINES = Path(__file__).resolve().parents[1] / "data" / "real_lines"
CHARSET = {"_target_": "ctcocr.data.charset.Charset", "chars": "aeinorst ", "case": "lower"}
MODEL = {"_target_": "ctcocr.models.CRNN", "hidden_size": 16,
         "backbone": {"_target_": "ctcocr.models.SmallBackbone", "channels": [4, 4, 8, 8, 8]}}
PREPROCESSING = {"height": 32, "min_width": 32, "max_width": 600, "normalize": True}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    """A random recognizer saved as ctcocr-train saves checkpoints (peaky outputs, so that
    decoding compares real strings) and its ONNX export."""
    folder = tmp_path_factory.mktemp("lite")
    torch.manual_seed(0)
    recognizer = Recognizer.from_config(CHARSET, MODEL, PREPROCESSING)
    with torch.no_grad():
        recognizer.model.sequence[-1].projection.weight.mul_(30)
    checkpoint = folder / "model.ckpt"
    torch.save({"hyper_parameters": {"charset": CHARSET, "model": MODEL,
                                     "preprocessing": PREPROCESSING},
                "state_dict": {f"recognizer.{k}": v for k, v in recognizer.state_dict().items()}},
               checkpoint)
    return checkpoint, export_onnx(recognizer.eval(), folder / "model.onnx")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Real lines of each kind of document, one unreadable file and one tiny image."""
    folder = tmp_path_factory.mktemp("images")
    names = [line.split("\t")[0] for line in
             (REAL_LINES / "gt.txt").read_text(encoding="utf-8").splitlines() if line]
    for name in names[::12]:
        (folder / name.replace("/", "_")).write_bytes((REAL_LINES / name).read_bytes())
    Image.new("L", (9, 5), 255).save(folder / "tiny.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return folder


def test_onnx_reader_reads_like_the_checkpoint(models, images):
    checkpoint, onnx_file = models
    recognizer = Recognizer.from_checkpoint(checkpoint)
    paths = find_images(str(images))
    expected = list(recognize(recognizer, paths, TextDecoder(recognizer.charset), batch_size=5,
                              spans=True))
    outputs = list(OnnxReader(onnx_file, threads=1, batch_size=4).predict_files(paths, spans=True))
    assert [p.path for p in outputs] == [p.path for p in expected] == list(map(str, paths))
    assert [p.error is None for p in outputs] == [p.error is None for p in expected]
    assert sum(p.error is not None for p in outputs) == 1 and "broken.png" in outputs[0].error
    read = [(p, q) for p, q in zip(outputs, expected) if p.error is None]
    assert [p.text for p, _ in read] == [q.text for _, q in read]
    assert sum(bool(p.text) for p, _ in read) >= 10, "mostly empty strings would make this vacuous"
    np.testing.assert_allclose([p.confidence for p, _ in read], [q.confidence for _, q in read],
                               atol=1e-4, rtol=0)
    for p, q in read:
        np.testing.assert_allclose(np.array(p.spans).reshape(-1), np.array(q.spans).reshape(-1),
                                   atol=1e-6)


def test_read_takes_images_or_files_in_any_batching(models, images):
    _, onnx_file = models
    paths = [path for path in find_images(str(images)) if path.name != "broken.png"]
    by_files = OnnxReader(onnx_file, batch_size=32).read(paths)
    pictures = [Image.open(path) for path in paths]
    by_images = OnnxReader(onnx_file, batch_size=1).read(pictures, spans=True)
    assert [r.text for r in by_images] == [r.text for r in by_files]
    np.testing.assert_allclose([r.confidence for r in by_images],
                               [r.confidence for r in by_files], atol=1e-5)
    assert all(0 <= r.confidence <= 1 for r in by_files)
    for reading, picture in zip(by_images, pictures):
        assert len(reading.spans) == len(reading.text)
        assert all(0 <= x0 < x1 <= picture.width * 1.0001 for x0, x1 in reading.spans)
    with pytest.raises(ValueError, match="broken.png: cannot read the image"):
        OnnxReader(onnx_file).read([images / "broken.png"])


def test_bad_model_files_are_named(models, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        OnnxReader(tmp_path / "nothing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.onnx: not a readable ONNX file"):
        OnnxReader(tmp_path / "junk.onnx")


def test_fast_path_defaults_are_the_predict_config(tmp_path):
    cfg = compose_config("predict", ["ckpt_path=m.onnx", "inputs=x"], tmp_path)
    GlobalHydra.instance().clear()
    options = parse_predict_args(["ckpt_path=m.onnx", "inputs=x"])
    assert asdict(options) == {key: cfg[key] for key in asdict(options)}
    assert cfg.decoder.kind == "greedy" and not cfg.extras.print_config


@pytest.mark.parametrize("argv,expected", [
    (["ckpt_path=a b.onnx", "inputs=x"], None),  # a space: left to Hydra's grammar
    (["ckpt_path='a b.onnx'", "inputs=[x,'y z']", "batch_size=4", "output=null"],
     PredictOptions("a b.onnx", ["x", "y z"], batch_size=4)),
    (["ckpt_path=m.ckpt", "inputs=d/", "decoder=greedy", "format=json", "threads=2",
      "boxes_dir=b", "device=cpu"],
     PredictOptions("m.ckpt", "d/", format="json", threads=2, boxes_dir="b")),
])
def test_plain_command_lines_take_the_fast_path(argv, expected):
    assert parse_predict_args(argv) == expected


@pytest.mark.parametrize("extra", [
    "decoder=beam", "decoder.lexicon=w.txt", "hydra.run.dir=x", "--help", "-m", "batch_size=x",
    "inputs=a,b", "output=${oc.env:HOME}", "+foo=1", "extras.print_config=true", "format=null",
    "inputs=[a,[b]]", "ckpt_path=other.onnx",
])
def test_anything_else_goes_to_hydra(extra):
    assert parse_predict_args(["ckpt_path=m.onnx", "inputs=x"]) is not None
    assert parse_predict_args(["ckpt_path=m.onnx", "inputs=x", extra]) is None
    assert parse_predict_args(["inputs=x"]) is None  # ckpt_path is required


def run_predict(*arguments: str) -> subprocess.CompletedProcess:
    """ctcocr-predict in a fresh interpreter; stderr ends with the frameworks it imported."""
    code = ("import sys\nfrom ctcocr.cli import predict\nsys.argv[1:] = sys.argv[1:]\n"
            "try:\n    predict.main()\nfinally:\n"
            "    print('imported:', sorted(m for m in ('torch', 'lightning', 'hydra')"
            " if m in sys.modules), file=sys.stderr)\n")
    return subprocess.run([sys.executable, "-c", code, *arguments], capture_output=True,
                          text=True, timeout=300, check=False)


def test_predict_on_an_onnx_file_starts_without_torch_and_prints_what_hydra_prints(
        models, images, tmp_path):
    checkpoint, onnx_file = models
    fast = run_predict(f"ckpt_path={onnx_file}", f"inputs={images}", "format=json")
    full = run_predict(f"ckpt_path={onnx_file}", f"inputs={images}", "format=json",
                       f"hydra.run.dir={tmp_path}")
    assert fast.returncode == full.returncode == 1  # the broken file
    assert "imported: []" in fast.stderr
    assert "imported: ['hydra', 'lightning', 'torch']" in full.stderr
    assert "1 of " in fast.stderr and "broken.png" in fast.stderr
    rows = [json.loads(line) for line in fast.stdout.splitlines()]
    expected = [json.loads(line) for line in full.stdout.splitlines()]
    assert [(r["path"], r["text"], [c["char"] for c in r["chars"]]) for r in rows] == [
        (r["path"], r["text"], [c["char"] for c in r["chars"]]) for r in expected]
    np.testing.assert_allclose([r["confidence"] for r in rows],
                               [r["confidence"] for r in expected], atol=1e-4)
    ckpt = run_predict(f"ckpt_path={checkpoint}", f"inputs={images}", "format=json")
    assert [json.loads(line)["text"] for line in ckpt.stdout.splitlines()] == [
        r["text"] for r in rows]


def test_predict_on_a_checkpoint_starts_without_lightning(models, images):
    checkpoint, _ = models
    result = run_predict(f"ckpt_path={checkpoint}", f"inputs={images}")
    assert "imported: ['hydra', 'torch']" in result.stderr  # hydra: the model config's targets


def test_fast_path_errors_are_one_line(tmp_path):
    result = run_predict(f"ckpt_path={tmp_path / 'none.onnx'}", f"inputs={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ONNX model not found") and "Traceback" not in result.stderr
    result = run_predict(f"ckpt_path={tmp_path / 'none.onnx'}", f"inputs={tmp_path / 'nothing'}")
    assert result.returncode == 2 and "error: no such image file or folder" in result.stderr
