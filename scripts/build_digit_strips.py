"""Build a small real handwritten digit-string set in the folder format (gt.txt), for measuring
training on small real data.

    pip install scikit-learn   # only for this script (its bundled digits; no download)
    python scripts/build_digit_strips.py --output /work/digits

Source: scikit-learn's bundled copy of the UCI "Optical Recognition of Handwritten Digits" test
set (1,797 real digits, 8x8 pixels of ink counts 0-16, written by 13 people). The copy has no
writer ids, so the split is by digit image: the first ``--train-share`` of the images (in file
order) compose the training strips, the rest the test strips, so a test strip never holds a digit
image seen in training. The source is 8x8: upscaled digits are smooth blobs, not pen strokes.

Each strip holds 3-8 digits, each upscaled to 18-28 pixels, with random spacing (slight overlap
allowed), baseline jitter and margins, dark ink on light paper, 32 pixels high. Writes
``OUTPUT/{train,test}/gt.txt`` with ``images/NNNNNN.png`` and ``OUTPUT/digits.txt`` (the charset).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

HEIGHT = 32
MIN_DIGITS, MAX_DIGITS = 3, 8
MIN_SIZE, MAX_SIZE = 18, 28  # digit height in pixels after upscaling
SOURCE_LEVELS = 16.0  # the source's pixels count 0-16 "on" pixels of a 4x4 block


def digit_ink(image: np.ndarray, size: int, width_ratio: float) -> np.ndarray:
    """An 8x8 digit of ink counts (0-16) -> (size, round(size * width_ratio)) ink in [0, 1]."""
    source = Image.fromarray((image / SOURCE_LEVELS).astype(np.float32), mode="F")
    width = max(4, round(size * width_ratio))
    return np.clip(np.asarray(source.resize((width, size), Image.Resampling.BICUBIC)), 0.0, 1.0)


def compose_strip(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 8, 8) digits -> (HEIGHT, W) uint8 strip: dark ink on light paper."""
    inks, lefts, tops = [], [], []
    cursor = int(rng.integers(2, 10))
    for image in digits:
        size = int(rng.integers(MIN_SIZE, MAX_SIZE + 1))
        ink = digit_ink(image, size, float(rng.uniform(0.7, 1.0)))
        top = (HEIGHT - size) // 2 + int(rng.integers(-2, 3))
        inks.append(ink)
        lefts.append(cursor)
        tops.append(min(max(top, 0), HEIGHT - size))
        cursor += ink.shape[1] + int(rng.integers(-2, 7))
    width = max(left + ink.shape[1] for left, ink in zip(lefts, inks)) + int(rng.integers(2, 10))
    canvas = np.zeros((HEIGHT, width), dtype=np.float32)
    for ink, left, top in zip(inks, lefts, tops):
        region = canvas[top : top + ink.shape[0], left : left + ink.shape[1]]
        np.maximum(region, ink, out=region)
    paper = float(rng.uniform(215, 250))
    dark = float(rng.uniform(10, 70))
    pixels = paper - (paper - dark) * canvas + rng.normal(0.0, 2.0, canvas.shape)
    return np.clip(pixels, 0, 255).round().astype(np.uint8)


def write_split(folder: Path, images: np.ndarray, labels: np.ndarray, count: int,
                rng: np.random.Generator) -> None:
    """``count`` strips of random digits from ``images`` into ``folder`` (gt.txt + images/)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for number in range(count):
        chosen = rng.integers(len(images), size=int(rng.integers(MIN_DIGITS, MAX_DIGITS + 1)))
        name = f"images/{number:06d}.png"
        Image.fromarray(compose_strip(images[chosen], rng)).save(folder / name)
        lines.append(f"{name}\t{''.join(str(label) for label in labels[chosen])}\n")
    (folder / "gt.txt").write_text("".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="new folder (outside git)")
    parser.add_argument("--train", type=int, default=20000, help="training strips")
    parser.add_argument("--test", type=int, default=1000, help="test strips")
    parser.add_argument("--train-share", type=float, default=0.8,
                        help="share of the digit images (in file order) for training")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from sklearn.datasets import load_digits  # the script's own dependency, not the package's

    digits = load_digits()
    cut = round(args.train_share * len(digits.images))
    rng = np.random.default_rng(args.seed)
    write_split(args.output / "train", digits.images[:cut], digits.target[:cut], args.train, rng)
    write_split(args.output / "test", digits.images[cut:], digits.target[cut:], args.test, rng)
    (args.output / "digits.txt").write_text("".join(f"{d}\n" for d in range(10)), encoding="utf-8")
    print(f"{args.output}: {args.train} training strips from digit images 0-{cut - 1}, "
          f"{args.test} test strips from digit images {cut}-{len(digits.images) - 1}")


if __name__ == "__main__":
    main()
