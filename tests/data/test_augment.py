"""Training-time augmentation of real lines: on for training, off for evaluation, deterministic
per (seed, epoch, index) in any worker, label-preserving, and stronger at each level."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image, ImageDraw

from ctcocr.data.augment import (
    AugmentedLines,
    LineAugment,
    SharedEpoch,
    elastic,
    jitter_margins,
    paper_and_ink,
)
from ctcocr.data.charset import Charset
from ctcocr.data.datamodule import LineDataModule
from ctcocr.data.errors import BadImageError
from ctcocr.data.folder import FolderDataset
from ctcocr.data.sample import Sample
from ctcocr.data.transforms import LineTransform
from ctcocr.resources import CONFIG_DIR

LEVELS = ("none", "light", "default", "strong")
DIGITS = Charset("0123456789")


def write_strips(root: Path, count: int, seed: int = 0) -> Path:
    """``count`` line images of dark strokes on gray paper (40 px high) and their gt.txt."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True)
    lines = []
    for number in range(count):
        label = "".join(str(digit) for digit in rng.integers(10, size=int(rng.integers(3, 7))))
        image = Image.new("L", (14 + 22 * len(label), 40), int(rng.integers(200, 250)))
        draw = ImageDraw.Draw(image)
        for position in range(len(label)):
            left = 8 + 22 * position + int(rng.integers(-2, 3))
            draw.ellipse((left, 8, left + 14, 32), outline=int(rng.integers(0, 60)), width=3)
            draw.line((left + 7, 6, left + int(rng.integers(0, 14)), 34), fill=20, width=2)
        image.save(root / "img" / f"{number:03d}.png")
        lines.append(f"img/{number:03d}.png\t{label}\n")
    (root / "gt.txt").write_text("".join(lines), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def strips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_strips(tmp_path_factory.mktemp("strips"), 24)


def augment_level(level: str) -> LineAugment | None:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        config = compose("train", overrides=[f"augment={level}"]).get("augment")
    return instantiate(config) if config else None


@pytest.mark.parametrize("level", LEVELS)
def test_each_level_composes_and_default_is_in_train_yaml(level):
    augment = augment_level(level)
    assert (augment is None) == (level == "none")
    if augment is not None:
        assert isinstance(augment, LineAugment)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        default = instantiate(compose("train").augment)
    assert default == augment_level("default")


def test_augmentation_is_on_for_training_and_off_for_evaluation(strips):
    datamodule = LineDataModule(DIGITS, train=strips, val=strips, num_workers=0, normalize=True,
                                train_augment=LineAugment())
    datamodule.setup("fit")
    plain = LineTransform(normalize=True)
    dataset = FolderDataset(strips)
    changed = 0
    for index in range(len(dataset)):
        expected = plain(dataset[index].image)[0]
        train, val = datamodule.datasets["train"][index], datamodule.datasets["val"][index]
        assert torch.equal(val.image, expected)
        assert train.text == val.text == dataset[index].text  # labels untouched
        assert train.image.shape[1] == 32  # the model height
        changed += train.image.shape != expected.shape or not torch.equal(train.image, expected)
    assert changed == len(dataset)


def test_synthetic_training_data_is_not_augmented_again():
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["data=tiny"])
    datamodule = instantiate(cfg.data, charset=DIGITS, train_augment=LineAugment())
    datamodule.setup("fit")
    plain = instantiate(cfg.data, charset=DIGITS)
    plain.setup("fit")
    for index in range(4):
        assert torch.equal(datamodule.datasets["train"][index].image,
                           plain.datasets["train"][index].image)


def _augmented_images(dataset: AugmentedLines, epoch: int) -> list[np.ndarray]:
    dataset.epoch.set(epoch)
    return [np.asarray(dataset[index].image) for index in range(len(dataset))]


def test_augmentation_is_a_function_of_seed_epoch_and_index(strips):
    epoch = SharedEpoch()
    dataset = AugmentedLines(FolderDataset(strips), LineAugment(), seed=3, epoch=epoch)
    first = _augmented_images(dataset, 1)
    again = [np.asarray(dataset[index].image) for index in reversed(range(len(dataset)))][::-1]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))  # order does not matter
    other_epoch = _augmented_images(dataset, 2)
    other_seed = _augmented_images(AugmentedLines(FolderDataset(strips), LineAugment(), 4,
                                                  SharedEpoch()), 1)
    for changed in (other_epoch, other_seed):
        differing = sum(a.shape != b.shape or not np.array_equal(a, b)
                        for a, b in zip(first, changed))
        assert differing >= len(first) - 1


def test_persistent_workers_see_each_epoch(strips):
    """Two persistent workers give, for every sample of every epoch, what the main process
    computes for (seed, epoch, index)."""
    datamodule = LineDataModule(DIGITS, train=strips, batch_size=4, num_workers=2, seed=5,
                                normalize=True, train_augment=LineAugment())
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    reference = datamodule.datasets["train"]
    index_of = {FolderDataset(strips).source(i): i for i in range(len(reference))}
    for epoch in (0, 1, 2):
        loader.batch_sampler.set_epoch(epoch)  # what Lightning does before each epoch
        seen = 0
        for batch in loader:
            datamodule.epoch.set(epoch)  # the main-process reference of this epoch
            for image, width, source in zip(batch["images"], batch["widths"], batch["sources"]):
                expected = reference[index_of[source]].image
                assert torch.equal(image[:, :, : int(width)], expected)
                seen += 1
        assert seen == len(reference)


def test_margins_change_without_cutting_ink():
    pixels = np.full((32, 80), 230, dtype=np.uint8)
    pixels[10:22, 20:50] = 10
    image = Image.fromarray(pixels)
    for seed in range(20):
        jittered = np.asarray(jitter_margins(image, np.random.default_rng(seed), 0.5, 230, 10))
        assert (jittered == 10).sum() == 12 * 30  # every ink pixel kept, none added
        assert set(np.unique(jittered)) == {10, 230}


def test_elastic_warp_without_displacement_is_the_identity():
    pixels = np.random.default_rng(0).integers(0, 256, (32, 70), dtype=np.uint8)
    image = Image.fromarray(pixels)
    assert np.array_equal(np.asarray(elastic(image, np.random.default_rng(1), 0.0, 255)), pixels)
    warped = np.asarray(elastic(image, np.random.default_rng(1), 2.0, 255))
    assert warped.shape == pixels.shape and not np.array_equal(warped, pixels)


def test_flat_images_are_left_alone():
    blank = Image.new("L", (50, 32), 200)
    assert paper_and_ink(blank) == (200, 200)
    assert LineAugment()(blank, np.random.default_rng(0)) is blank


def _change(augment: LineAugment | None, images: list[Image.Image], width: int = 128) -> float:
    """Mean absolute difference, in [-1, 1] units, between the prepared original and augmented
    images, both resized to ``width``, over 3 epochs of every image."""
    transform = LineTransform(normalize=True)
    total = []
    for epoch in range(3):
        for index, image in enumerate(images):
            changed = image if augment is None else \
                augment(image, np.random.default_rng([0, 0, epoch, index]))
            pair = [F.interpolate(transform(picture)[0][None], size=(32, width), mode="bilinear")
                    for picture in (image, changed)]
            total.append(float((pair[0] - pair[1]).abs().mean()))
    return float(np.mean(total))


def test_each_level_changes_images_more_than_the_previous(strips):
    images = [FolderDataset(strips)[index].image for index in range(len(FolderDataset(strips)))]
    changes = [_change(augment_level(level), images) for level in LEVELS]
    assert changes[0] == 0.0
    assert all(low < high for low, high in pairwise(changes)), changes


def test_an_empty_image_is_a_bad_image_naming_the_sample():
    class OneEmpty(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 1

        def __getitem__(self, index: int) -> Sample:
            return Sample(Image.new("L", (0, 32)), "12", "lines/gt.txt:7 (empty.png)")

    with pytest.raises(BadImageError, match=r"lines/gt.txt:7 \(empty.png\): the image is empty"):
        AugmentedLines(OneEmpty(), LineAugment(), 0, SharedEpoch())[0]
