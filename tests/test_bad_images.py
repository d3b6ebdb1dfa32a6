"""Images of every kind users feed a recognizer: read correctly, or reported per file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ctcocr.data.charset import Charset
from ctcocr.data.datamodule import LineDataset
from ctcocr.data.errors import DatasetError
from ctcocr.data.sample import Sample
from ctcocr.data.transforms import LineTransform
from ctcocr.recognition import TextDecoder, recognize
from ctcocr.training.module import RecognizerModule
from tests.test_module import CONFIGS


def dark_bar_on_light(mode: str) -> Image.Image:
    """A 120x40 light image with a dark bar, in ``mode``, at that mode's own value range."""
    pixels = np.full((40, 120), 0.9)
    pixels[15:25, 20:100] = 0.1
    if mode in ("I;16", "I"):
        image = Image.fromarray((pixels * 65535).astype(np.uint16))
        return image if mode == "I;16" else image.convert("I")
    if mode == "F":
        return Image.fromarray(pixels.astype(np.float32))
    gray = Image.fromarray((pixels * 255).astype(np.uint8))
    if mode == "RGBA":  # text on a transparent background: drawn on white
        rgba = gray.convert("RGBA")
        rgba.putalpha(Image.fromarray(np.where(pixels < 0.5, 255, 0).astype(np.uint8)))
        return rgba
    return gray.convert(mode)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "1", "CMYK", "I;16", "I", "F"])
def test_every_pixel_format_keeps_dark_text_on_a_light_background(mode):
    tensor, squeezed = LineTransform(height=32)(dark_bar_on_light(mode))
    assert tensor.shape == (1, 32, 96) and not squeezed
    assert float(tensor[0, 16, 48]) < -0.5, "the text became light"
    assert float(tensor[0, 2, 5]) > 0.5, "the background became dark"


def test_sizes_far_from_a_text_line():
    transform = LineTransform(height=32, min_width=32, max_width=1024)
    assert transform(Image.new("L", (1, 1), 255))[0].shape == (1, 32, 32)
    huge, squeezed = transform(Image.new("L", (40000, 40), 255))
    assert huge.shape == (1, 32, 1024) and squeezed
    assert transform(Image.new("L", (2, 3000), 255))[0].shape == (1, 32, 32)
    with pytest.raises(ValueError, match="empty"):
        transform(Image.new("L", (0, 12)))


def test_predict_goes_on_past_bad_files_and_names_them(tmp_path):
    files = {}
    for mode in ("L", "RGBA", "P", "I;16", "F"):
        files[mode] = tmp_path / f"{mode.replace(';', '_')}.{'tiff' if mode == 'F' else 'png'}"
        dark_bar_on_light(mode).save(files[mode])
    Image.new("L", (20000, 32), 255).save(tmp_path / "huge.png")
    truncated = tmp_path / "truncated.png"
    dark_bar_on_light("L").save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:60])
    (tmp_path / "not_an_image.jpg").write_text("hello")
    paths = sorted(tmp_path.iterdir())
    recognizer = RecognizerModule(**CONFIGS).recognizer
    results = {p.path: p for p in recognize(recognizer, paths, TextDecoder(recognizer.charset),
                                            batch_size=3)}
    assert set(results) == {str(p) for p in paths}
    failed = {path for path, result in results.items() if result.error}
    assert failed == {str(truncated), str(tmp_path / "not_an_image.jpg")}
    assert str(truncated) in results[str(truncated)].error
    assert all(isinstance(results[str(files[m])].text, str) for m in files)


class OneGoodOneEmpty(torch.utils.data.Dataset):
    """Line 1 is a normal image, line 2 decodes to no pixels at all."""

    def __len__(self) -> int:
        return 2

    def text(self, index: int) -> str:
        return "ab"

    def source(self, index: int) -> str:
        return f"lines.txt:{index + 1}"

    def __getitem__(self, index: int) -> Sample:
        return Sample(Image.new("L", (60, 30) if index == 0 else (0, 7), 255), "ab", self.source(index))


def test_an_empty_image_in_a_dataset_follows_the_bad_sample_policy(caplog):
    charset, transform = Charset("ab"), LineTransform()
    with pytest.raises(DatasetError, match=r"lines.txt:2: the image is empty"):
        LineDataset(OneGoodOneEmpty(), charset, transform, on_bad_sample="error")[1]
    skipping = LineDataset(OneGoodOneEmpty(), charset, transform, on_bad_sample="skip")
    assert skipping[0] is not None and skipping[1] is None
    assert "lines.txt:2" in caplog.text
