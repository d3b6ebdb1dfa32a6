"""Training images per second through the data loader at each augmentation level.

    python scripts/bench_augment.py /work/digits/train --workers 2 --batches 40 --repeats 5

Reads a folder or LMDB dataset with the training loader of ``LineDataModule`` (decode, augment,
prepare, batch), one untimed warm-up pass, then the median of ``--repeats`` timed passes over
``--batches`` batches each (a new epoch each pass, so new augmentations).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from ctcocr.data.charset import Charset
from ctcocr.data.datamodule import LineDataModule
from ctcocr.resources import CONFIG_DIR

LEVELS = ("none", "light", "default", "strong")


def augment_level(level: str) -> object:
    """The LineAugment (or None) that ``augment=<level>`` configures."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        config = compose("train", overrides=[f"augment={level}"]).get("augment")
    return instantiate(config) if config else None


def images_per_second(datamodule: LineDataModule, batches: int, epoch: int) -> float:
    """Images per second over the first ``batches`` training batches of ``epoch``."""
    loader = datamodule.train_dataloader()
    loader.batch_sampler.set_epoch(epoch)
    started, count = time.perf_counter(), 0
    for number, batch in enumerate(loader):
        if number == batches:
            break
        count += len(batch["texts"])
    return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a folder (gt.txt) or LMDB training set")
    parser.add_argument("--levels", nargs="+", default=list(LEVELS), choices=LEVELS)
    parser.add_argument("--workers", type=int, default=2, help="loader worker processes")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    charset = Charset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,-")
    print(f"| augment | images/s (median of {args.repeats}) | min | max |")
    print("|---|---|---|---|")
    for level in args.levels:
        datamodule = LineDataModule(charset, train=args.dataset, batch_size=args.batch_size,
                                    num_workers=args.workers, normalize=True,
                                    persistent_workers=False, on_bad_sample="skip",
                                    train_augment=augment_level(level))
        datamodule.setup("fit")
        images_per_second(datamodule, args.batches, epoch=0)  # warm-up: workers, caches
        rates = [images_per_second(datamodule, args.batches, epoch) for epoch in
                 range(1, args.repeats + 1)]
        print(f"| {level} | {statistics.median(rates):.0f} | {min(rates):.0f} | {max(rates):.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
