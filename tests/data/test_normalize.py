"""Contrast normalisation: polarity, full range, and one transform for every path that reads
images (training, evaluation, prediction, ONNX)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image, ImageDraw, ImageOps

from ctcocr.data.charset import Charset
from ctcocr.data.datamodule import LineDataModule
from ctcocr.data.folder import FolderDataset
from ctcocr.data.transforms import LineTransform, normalize_contrast
from ctcocr.evaluation.sets import split_loader
from ctcocr.recognition import Recognizer
from ctcocr.recognition.predictor import load_line

PREPROCESSING = {"height": 32, "min_width": 32, "max_width": 1024, "normalize": True}


def printed_line(paper: int = 235, ink: int = 40, size: tuple[int, int] = (160, 30)) -> Image.Image:
    """Dark bars like letters on paper, with noise so that every gray level between occurs."""
    image = Image.new("L", size, paper)
    draw = ImageDraw.Draw(image)
    for x in range(6, size[0] - 12, 14):
        draw.rectangle([x, 6, x + 5, size[1] - 8], fill=ink)
    noise = np.random.default_rng(0).normal(0, 3, (size[1], size[0]))
    return Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8))


def test_ink_goes_to_black_and_paper_to_white():
    out = np.asarray(normalize_contrast(printed_line(paper=170, ink=120)))
    assert np.median(out) == 255
    assert np.percentile(out, 1) == 0


def test_light_text_on_dark_paper_is_inverted():
    line = printed_line()
    normal = np.asarray(normalize_contrast(line), dtype=int)
    inverted = np.asarray(normalize_contrast(ImageOps.invert(line)), dtype=int)
    assert np.median(inverted) == 255  # the paper is white again
    assert np.abs(inverted - normal).mean() < 2  # and the page reads as the original one


def test_contrast_does_not_change_the_normalised_image():
    strong = np.asarray(normalize_contrast(printed_line(paper=250, ink=10)), dtype=int)
    faint = np.asarray(normalize_contrast(printed_line(paper=200, ink=140)), dtype=int)
    assert np.abs(strong - faint).mean() < 6


def test_a_blank_image_is_left_alone():
    blank = Image.new("L", (50, 20), 200)
    assert normalize_contrast(blank).tobytes() == blank.tobytes()


def write_lines(folder) -> list:
    """Three line images of different polarity and contrast, with a gt.txt."""
    images = {"dark.png": printed_line(), "light.png": ImageOps.invert(printed_line()),
              "faint.png": printed_line(paper=190, ink=150, size=(230, 44))}
    for name, image in images.items():
        image.save(folder / name)
    (folder / "gt.txt").write_text("".join(f"{name}\tab\n" for name in images))
    return [folder / name for name in images]


@pytest.mark.parametrize("normalize", [True, False])
def test_training_evaluation_and_prediction_prepare_images_alike(tmp_path, normalize):
    paths = write_lines(tmp_path)
    preprocessing = PREPROCESSING | {"normalize": normalize}
    charset = {"_target_": "ctcocr.data.charset.Charset", "chars": "ab"}
    model = {"_target_": "ctcocr.models.CRNN", "hidden_size": 8,
             "backbone": {"_target_": "ctcocr.models.SmallBackbone", "channels": [4, 4, 4, 4, 4]}}
    recognizer = Recognizer.from_config(charset, model, preprocessing)
    predicted = [load_line(path, LineTransform(**recognizer.preprocessing))[0].image
                 for path in paths]
    data = OmegaConf.create({"_target_": "ctcocr.data.datamodule.LineDataModule",
                             "val": str(tmp_path), "batch_size": 4, "num_workers": 0,
                             "bucket_chunk": 0, "height": 8, "normalize": not normalize})
    evaluated = next(iter(split_loader(data, recognizer, "val")))  # the recognizer's settings win
    module = LineDataModule(Charset("ab"), train=FolderDataset(tmp_path), **preprocessing)
    trained = [module.train_transform(Image.open(path))[0] for path in paths]
    rows = {source.split("(")[-1].rstrip(")"): row for row, source in
            enumerate(evaluated["sources"])}  # "gt.txt:1 (dark.png)"
    for path, expected, train in zip(paths, predicted, trained):
        row = rows[path.name]
        width = int(evaluated["widths"][row])
        torch.testing.assert_close(evaluated["images"][row, :, :, :width], expected)
        torch.testing.assert_close(train, expected)
    dark, light = predicted[0], predicted[1]
    assert torch.allclose(dark, light, atol=0.05) == normalize


def test_recognizers_saved_before_normalisation_existed_read_without_it():
    charset = {"_target_": "ctcocr.data.charset.Charset", "chars": "ab"}
    model = {"_target_": "ctcocr.models.CRNN", "hidden_size": 8,
             "backbone": {"_target_": "ctcocr.models.SmallBackbone", "channels": [4, 4, 4, 4, 4]}}
    old = {key: value for key, value in PREPROCESSING.items() if key != "normalize"}
    recognizer = Recognizer.from_config(charset, model, old)
    assert recognizer.preprocessing == old | {"normalize": False}
    assert not LineTransform(**recognizer.preprocessing).normalize
