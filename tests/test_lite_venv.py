"""The inference-only install: a fresh venv with NumPy, Pillow and ONNX Runtime and ctcocr itself
installed without its dependencies (no torch, Lightning or Hydra) reads lines from an exported
model with ``ctcocr-predict`` and ``ctcocr.lite.OnnxReader``, the same texts as the checkpoint.

Slow (about 1-2 minutes, most of it pip); skipped when the package registry cannot be reached.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import venv
from pathlib import Path

import numpy as np
import pytest
import tomllib
import torch
from PIL import Image, ImageDraw

from ctcocr.recognition import Recognizer, TextDecoder, find_images, recognize
from ctcocr.recognition.export import export_onnx

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
#: The ``onnx`` extra of pyproject.toml: what the inference-only install needs.
LITE_REQUIREMENTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
    "optional-dependencies"]["onnx"]
OFFLINE_SIGNS = ("NewConnectionError", "Could not find a version", "No matching distribution",
                 "Temporary failure in name resolution", "Network is unreachable")
CHARSET = {"_target_": "ctcocr.data.charset.Charset", "chars": "elothrw d", "case": "sensitive"}
MODEL = {"_target_": "ctcocr.models.CRNN", "hidden_size": 16,
         "backbone": {"_target_": "ctcocr.models.SmallBackbone", "channels": [4, 4, 8, 8, 8]}}


def pip(python: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *arguments],
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def lite_venv(tmp_path_factory) -> Path:
    """A fresh venv with the inference-only install; its bin folder."""
    folder = tmp_path_factory.mktemp("lite_venv")
    venv.create(folder / "venv", with_pip=True)
    python = folder / "venv" / "bin" / "python"
    # pinned to this environment's versions, which pip's cache may hold
    names = [re.match(r"[A-Za-z0-9_.-]+", requirement).group() for requirement in LITE_REQUIREMENTS]
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in names]
    installed = pip(python, "install", "--quiet", *pins)
    if installed.returncode and any(sign in installed.stderr for sign in OFFLINE_SIGNS):
        pytest.skip(f"the package registry cannot be reached: {installed.stderr.strip()[-300:]}")
    assert installed.returncode == 0, installed.stderr[-3000:]
    source = folder / "source"  # the files a wheel is built from, not the whole checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    installed = pip(python, "install", "--quiet", "--no-deps", str(source))
    if installed.returncode and any(sign in installed.stderr for sign in OFFLINE_SIGNS):
        pytest.skip(f"the package registry cannot be reached: {installed.stderr.strip()[-300:]}")
    assert installed.returncode == 0, installed.stderr[-3000:]
    return python.parent


@pytest.fixture(scope="module")
def model_and_images(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """An exported random recognizer (peaky outputs), line images, and the texts the PyTorch
    recognizer reads from them."""
    folder = tmp_path_factory.mktemp("lite_model")
    torch.manual_seed(0)
    preprocessing = {"height": 32, "min_width": 32, "max_width": 800, "normalize": True}
    recognizer = Recognizer.from_config(CHARSET, MODEL, preprocessing).eval()
    with torch.no_grad():
        recognizer.model.sequence[-1].projection.weight.mul_(30)
    onnx_file = export_onnx(recognizer, folder / "model.onnx")
    images = folder / "images"
    images.mkdir()
    for index, text in enumerate(["hello world", "the other", "droll", "lower teeth"]):
        image = Image.new("L", (20 + 9 * len(text), 36 - 3 * index), 240)
        ImageDraw.Draw(image).text((6, 8), text, fill=30)
        image.save(images / f"{index}.png")
    paths = find_images(str(images))
    texts = [p.text for p in recognize(recognizer, paths, TextDecoder(recognizer.charset))]
    assert any(texts)
    return onnx_file, images, texts


def test_the_inference_install_has_no_torch_and_reads_like_the_checkpoint(lite_venv,
                                                                           model_and_images):
    onnx_file, images, texts = model_and_images
    python = lite_venv / "python"
    missing = subprocess.run(
        [str(python), "-c", ("import importlib.util as u; print([m for m in "
                             "('torch', 'lightning', 'hydra', 'torchvision') if u.find_spec(m)])")],
        capture_output=True, text=True, check=True)
    assert missing.stdout.strip() == "[]"
    result = subprocess.run([str(lite_venv / "ctcocr-predict"), f"ckpt_path={onnx_file}",
                             f"inputs={images}"], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [row[1] for row in rows] == texts
    assert all(0 <= float(row[2]) <= 1 for row in rows)
    api = subprocess.run(
        [str(python), "-c", ("import glob, json, sys\nfrom ctcocr.lite import OnnxReader\n"
                             "readings = OnnxReader(sys.argv[1]).read(sorted(glob.glob(sys.argv[2])),"
                             " spans=True)\n"
                             "print(json.dumps([[r.text, r.confidence, r.spans] for r in readings]))"),
         str(onnx_file), str(images / "*.png")],
        capture_output=True, text=True, timeout=120, check=False)
    assert api.returncode == 0, api.stderr[-3000:]
    readings = json.loads(api.stdout)
    assert [text for text, _, _ in readings] == texts
    np.testing.assert_allclose([conf for _, conf, _ in readings], [float(r[2]) for r in rows],
                               rtol=1e-5)
    assert [len(spans) for _, _, spans in readings] == [len(text) for text in texts]
    needs_torch = subprocess.run([str(lite_venv / "ctcocr-predict"), f"ckpt_path={onnx_file}",
                                  f"inputs={images}", "decoder=beam"],
                                 capture_output=True, text=True, timeout=120, check=False)
    assert needs_torch.returncode == 2
    assert needs_torch.stderr.startswith("error: these options need the full install")
