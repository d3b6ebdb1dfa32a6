"""The NumPy line preparation (ctcocr.lite.preprocess) gives exactly the tensors of the torchvision
implementation training used before it, on real and synthetic lines and odd pixel formats, and
batches them as LineCollate does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from PIL import Image

from ctcocr.data.charset import PRINTABLE
from ctcocr.data.collate import EncodedLine, LineCollate
from ctcocr.data.synthetic.dataset import SyntheticLines
from ctcocr.data.transforms import LineTransform
from ctcocr.lite.preprocess import (
    normalize_contrast,
    pad_batch,
    prepare_line,
    to_grayscale,
    width_batches,
)

REAL_LINES = Path(__file__).resolve().parents[1] / "data" / "real_lines"
SETTINGS = [
    {"height": 32, "min_width": 32, "max_width": 1024, "normalize": True},
    {"height": 48, "min_width": 64, "max_width": 300, "normalize": False},
]


def reference(image: Image.Image, height: int, min_width: int, max_width: int,
              normalize: bool) -> torch.Tensor:
    """The torchvision LineTransform of ctcocr before the NumPy port: (1, height, W)."""
    image = to_grayscale(image)
    if normalize:
        image = normalize_contrast(image)
    natural = max(1, round(image.width * height / image.height))
    resized = TF.resize(image, [height, min(natural, max_width)], antialias=True)
    tensor = TF.pil_to_tensor(resized).float().div_(127.5).sub_(1.0)
    missing = min_width - tensor.size(-1)
    if missing <= 0:
        return tensor
    border = torch.cat([tensor[0, 0], tensor[0, -1], tensor[0, :, 0], tensor[0, :, -1]])
    return F.pad(tensor, (0, missing), value=float(border.median()))


def real_lines() -> list[Image.Image]:
    names = [line.split("\t")[0] for line in
             (REAL_LINES / "gt.txt").read_text(encoding="utf-8").splitlines() if line]
    images = []
    for name in names:
        with Image.open(REAL_LINES / name) as image:
            images.append(image.copy())
    return images


def synthetic_lines(count: int = 40) -> list[Image.Image]:
    lines = SyntheticLines(count, seed=7, chars=PRINTABLE)
    return [lines[index].image for index in range(count)]


def odd_images() -> list[Image.Image]:
    """Pixel formats and sizes the reader must take: colour, transparency, 16-bit, float,
    narrower than min_width, wider than max_width, one pixel high."""
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (30, 90), dtype=np.uint8)
    rgba = np.dstack([gray, gray, gray, rng.integers(0, 256, (30, 90), dtype=np.uint8)])
    return [
        Image.fromarray(gray).convert("RGB"),
        Image.fromarray(rgba, "RGBA"),
        Image.fromarray(gray.astype(np.uint16) * 257).convert("I;16"),
        Image.fromarray(gray.astype(np.float32) / 255.0, "F"),
        Image.fromarray(gray[:, :10]),
        Image.fromarray(rng.integers(0, 256, (20, 2000), dtype=np.uint8)),
        Image.fromarray(gray[:1]),
    ]


@pytest.fixture(scope="module")
def images() -> dict[str, list[Image.Image]]:
    return {"real": real_lines(), "synthetic": synthetic_lines(), "odd": odd_images()}


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("kind", ["real", "synthetic", "odd"])
def test_prepared_lines_equal_the_torchvision_transform(images, kind, settings):
    assert len(images[kind]) >= 7
    for image in images[kind]:
        line = prepare_line(image, **settings)
        expected = reference(image, **settings)
        assert line.pixels.dtype == np.float32
        assert torch.equal(torch.from_numpy(line.pixels)[None], expected)
        natural = max(1, round(image.width * settings["height"] / image.height))
        assert line.squeezed == (natural > settings["max_width"])
        assert line.scale == pytest.approx(image.width / min(natural, settings["max_width"]))


def test_line_transform_is_the_numpy_preparation(images):
    transform = LineTransform(**SETTINGS[0])
    for image in images["real"][:20]:
        tensor, squeezed = transform(image)
        line = prepare_line(image, **SETTINGS[0])
        assert torch.equal(tensor, torch.from_numpy(line.pixels)[None])
        assert squeezed == line.squeezed


def test_batches_are_padded_like_the_training_collate(images):
    lines = [prepare_line(image, **SETTINGS[0]).pixels for image in images["real"][:9]]
    batch, widths = pad_batch(lines)
    encoded = [EncodedLine(torch.from_numpy(line)[None], torch.zeros(0, dtype=torch.long), "", "",
                           False) for line in lines]
    expected = LineCollate(height=32)(encoded)
    assert batch.shape[-1] % 16 == 0 and batch.shape[-1] >= max(widths)
    assert torch.equal(torch.from_numpy(batch), expected["images"])
    assert widths.tolist() == expected["widths"].tolist()


def test_width_batches_group_similar_widths_and_cover_every_line():
    widths = [300, 40, 500, 41, 299, 502, 100]
    batches = width_batches(widths, 3)
    assert sorted(index for batch in batches for index in batch) == list(range(len(widths)))
    assert [[widths[index] for index in batch] for batch in batches] == [
        [40, 41, 100], [299, 300, 500], [502]]
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        width_batches(widths, 0)
