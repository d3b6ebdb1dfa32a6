"""The LightningDataModule: user and synthetic datasets -> checked, encoded, bucketed batches."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, DataLoader, Dataset, SequentialSampler

from ctcocr.data.augment import EpochLoader, LineAugment, SharedEpoch, augmented
from ctcocr.data.charset import Charset
from ctcocr.data.collate import EncodedLine, LineCollate
from ctcocr.data.errors import BadImageError, DatasetError
from ctcocr.data.folder import FolderDataset
from ctcocr.data.lmdb_dataset import LmdbDataset
from ctcocr.data.policy import BadSamplePolicy, check_policy, scan_labels
from ctcocr.data.sample import Sample
from ctcocr.data.sampler import BucketBatchSampler, EpochRandomSampler, ResumableDataLoader
from ctcocr.data.transforms import LineTransform
from ctcocr.data.xml_dataset import XmlLineDataset
from ctcocr.xml_files import holds_xml

logger = logging.getLogger("ctcocr.data")

#: What ``train``/``val``/``test`` accept: a dataset, a path to a folder (gt.txt) or LMDB dataset,
#: a factory called as ``factory(chars=charset.characters)`` (Hydra ``_partial_: true``), or a list.
DatasetSpec = Dataset | str | Path | Callable[..., Dataset] | Sequence[Any]


def sample_source(dataset: Dataset) -> Callable[[int], str]:
    """``dataset.source`` where it has one, else the source of the loaded sample (slow)."""
    source = getattr(dataset, "source", None)
    return source if callable(source) else lambda index: dataset[index].source


def load_line(dataset: Dataset, index: int, transform: LineTransform) -> tuple[Sample, Tensor, bool]:
    """Sample ``index`` of ``dataset``, its prepared (1, H, W) image and whether it was squeezed;
    an image that cannot be read or prepared raises :class:`BadImageError` naming the sample."""
    sample = dataset[index]
    try:
        image, squeezed = transform(sample.image)
    except ValueError as error:  # e.g. an empty image
        raise BadImageError(f"{sample.source}: {error}") from None
    return sample, image, squeezed


class LineDataset(Dataset):
    """The samples of ``dataset`` whose labels pass the policy, as :class:`EncodedLine` items.

    Labels are checked once here through the cheap ``dataset.text(index)``; under ``"skip"`` an
    unreadable image found on access gives None (dropped and counted by the collate function).
    """

    def __init__(
        self,
        dataset: Dataset,
        charset: Charset,
        transform: LineTransform,
        on_bad_sample: BadSamplePolicy = "error",
        name: str = "data",
        max_label_length: int | None = None,
    ):
        if not callable(getattr(dataset, "text", None)):
            raise TypeError(f"{type(dataset).__name__} has no text(index) method giving the label")
        self.dataset = dataset
        self.charset = charset
        self.transform = transform
        self.on_bad_sample = check_policy(on_bad_sample)
        self.indices, self.lengths, self.skipped = scan_labels(
            name,
            len(dataset),
            dataset.text,
            sample_source(dataset),
            charset,
            self.on_bad_sample,
            max_label_length,
        )
        self._reported: set[str] = set()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> EncodedLine | None:
        try:
            sample, image, squeezed = load_line(self.dataset, self.indices[index], self.transform)
        except BadImageError as error:
            if self.on_bad_sample == "error":
                raise
            if str(error) not in self._reported:  # once per sample and process (worker)
                self._reported.add(str(error))
                logger.warning("skipped %s", error)
            return None
        text = self.charset.normalize(sample.text)
        try:
            target = torch.tensor(self.charset.encode(text), dtype=torch.long)
        except ValueError as error:  # the label changed since the scan
            raise DatasetError(f"{sample.source}: {error}") from None
        return EncodedLine(image, target, text, sample.source, squeezed)


def _describe(dataset: Dataset) -> str:
    """The dataset's repr where it has one, else its class name (for log and error messages)."""
    has_repr = type(dataset).__repr__ is not object.__repr__
    return repr(dataset) if has_repr else type(dataset).__name__


def dataset_kind(path: str | Path) -> type[Dataset]:
    """LMDB if ``path`` holds ``data.mdb``, a folder dataset if it holds ``gt.txt``, PAGE/ALTO
    lines if it is an XML file or a folder with XML files below it; else a DatasetError naming
    the path."""
    path = Path(path)
    if (path / "data.mdb").is_file():
        return LmdbDataset
    if (path / "gt.txt").is_file():
        return FolderDataset
    if holds_xml(path):
        return XmlLineDataset
    if not path.exists():
        raise DatasetError(f"dataset not found: {path}")
    raise DatasetError(f"{path}: neither a folder dataset (gt.txt) nor an LMDB dataset (data.mdb) "
                       "nor PAGE/ALTO XML files")


def open_dataset(path: str | Path, **xml_options: Any) -> Dataset:
    """The LMDB, folder or XML dataset at ``path`` (see :func:`dataset_kind`); ``xml_options``
    go to :class:`XmlLineDataset`."""
    kind = dataset_kind(path)
    return kind(path, **xml_options) if kind is XmlLineDataset else kind(path)


def _items(spec: DatasetSpec) -> list[Any]:
    """The parts of a dataset spec (a list is concatenated)."""
    return list(spec) if isinstance(spec, Sequence) and not isinstance(spec, str) else [spec]


class LineDataModule(L.LightningDataModule):
    """Text-line batches (see :class:`ctcocr.data.collate.LineBatch`) for training and evaluation.

    Args:
        charset: the label classes; labels are case-normalized and encoded with it.
        train, val, test: a :data:`DatasetSpec` each (a list is concatenated); ``test`` defaults to
            none and ``predict`` to ``test``.
        height, min_width, max_width, normalize: image preparation (see :class:`LineTransform`).
        width_multiple: batch widths are rounded up to a multiple of this.
        batch_size, eval_batch_size: training and evaluation batch sizes (eval defaults to train).
        on_bad_sample: ``"error"`` or ``"skip"`` (see :mod:`ctcocr.data.policy`).
        bucket_chunk: training and evaluation batches come from chunks of about this many samples
            sorted by label length; a value <= batch_size turns bucketing off.
        max_label_length: longer labels are bad samples (None: no limit).
        seed: the training order depends only on ``seed`` and the epoch.
        train_augment: augmentation of the training images of every dataset but synthetic ones,
            a pure function of (seed, dataset part, epoch, index) (see :mod:`ctcocr.data.augment`).
        xml: options of the PAGE/ALTO XML datasets among the paths (``format``, ``margin``,
            ``deskew_min_degrees``, ``page_cache_mb``: see :class:`XmlLineDataset`).
    """

    def __init__(
        self,
        charset: Charset,
        train: DatasetSpec | None = None,
        val: DatasetSpec | None = None,
        test: DatasetSpec | None = None,
        predict: DatasetSpec | None = None,
        height: int = 32,
        min_width: int = 32,
        max_width: int = 1024,
        normalize: bool = False,
        width_multiple: int = 16,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 1,
        on_bad_sample: BadSamplePolicy = "error",
        bucket_chunk: int = 512,
        max_label_length: int | None = None,
        seed: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool | None = None,
        train_augment: LineAugment | None = None,
        xml: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        self.charset = charset
        predict = test if predict is None else predict
        self.specs = {"train": train, "val": val, "test": test, "predict": predict}
        self.train_transform = LineTransform(height, min_width, max_width, normalize)
        self.eval_transform = LineTransform(height, min_width, max_width, normalize)
        self.train_augment = train_augment
        self.epoch = SharedEpoch()
        self.collate = LineCollate(height, width_multiple)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.on_bad_sample = check_policy(on_bad_sample)
        self.xml_options = dict(xml or {})
        self.bucket_chunk = bucket_chunk
        self.max_label_length = max_label_length
        self.seed = seed
        self.pin_memory = pin_memory
        self.persistent_workers = (
            num_workers > 0 if persistent_workers is None else persistent_workers
        )
        self.datasets: dict[str, ConcatDataset] = {}
        self.lengths: dict[str, list[int]] = {}
        self.skipped: dict[str, Counter[str]] = {}

    def setup(self, stage: str | None = None) -> None:
        """Build and check the datasets a stage needs (once each)."""
        needed = {
            "fit": ["train", "val"],
            "validate": ["val"],
            "test": ["test"],
            "predict": ["predict"],
        }
        for split in needed.get(stage or "", ["train", "val", "test"]):
            if split not in self.datasets and self.specs[split] is not None:
                self._prepare(split)

    def check_paths(self) -> None:
        """Raise DatasetError for any configured dataset path that is missing or not a dataset,
        without reading it: the entry points call this before building anything else."""
        for spec in self.specs.values():
            for item in _items(spec) if spec is not None else []:
                if isinstance(item, (str, Path)):
                    dataset_kind(item)

    def _prepare(self, split: str) -> None:
        transform = self.train_transform if split == "train" else self.eval_transform
        augment = self.train_augment if split == "train" else None
        parts = [
            LineDataset(
                augmented(dataset, augment, self.seed, self.epoch, number),
                self.charset,
                transform,
                self.on_bad_sample,
                name,
                self.max_label_length,
            )
            for number, (name, dataset) in enumerate(self.split_datasets(split).items())
        ]
        if not sum(len(part) for part in parts):
            raise DatasetError(f"{split}: no usable samples")
        self.datasets[split] = ConcatDataset(parts)
        self.lengths[split] = [length for part in parts for length in part.lengths]
        self.skipped[split] = sum((part.skipped for part in parts), Counter())

    def skipped_labels(self) -> dict[str, int]:
        """Samples dropped for their labels under ``on_bad_sample="skip"`` in the splits prepared
        so far, by split and reason: ``{"train/skipped/empty_label": 3, ...}`` (unreadable images
        are counted per batch instead: ``train/skipped_samples``)."""
        return {f"{split}/skipped/{reason.replace(' ', '_')}": count
                for split, counts in self.skipped.items() for reason, count in counts.items()}

    def split_datasets(self, split: str) -> dict[str, Dataset]:
        """The datasets configured for ``split`` by name (``"train[0] FolderDataset(...)"``),
        opened and unchecked; none when the split has no data."""
        spec = self.specs[split]
        datasets = self._as_datasets(spec) if spec is not None else []
        return {f"{split}[{number}] {_describe(dataset)}": dataset
                for number, dataset in enumerate(datasets)}

    def _as_datasets(self, spec: DatasetSpec) -> list[Dataset]:
        datasets = []
        for item in _items(spec):
            if isinstance(item, (str, Path)):
                item = open_dataset(item, on_bad_sample=self.on_bad_sample, **self.xml_options)
            elif not isinstance(item, Dataset) and callable(item):
                item = item(chars=self.charset.characters)
            datasets.append(item)
        return datasets

    def _dataset(self, split: str) -> ConcatDataset:
        if split not in self.datasets:
            if self.specs[split] is None:
                raise DatasetError(f"no {split} data configured")
            self._prepare(split)
        return self.datasets[split]

    def _loader(self, dataset: Dataset, loader: type[DataLoader] = DataLoader,
                **batching: Any) -> DataLoader:
        return loader(
            dataset,
            collate_fn=self.collate,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
            **batching,
        )

    def _bucketed(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self._dataset(split)
        sampler = EpochRandomSampler(dataset, self.seed) if shuffle else SequentialSampler(dataset)
        batch_size = self.batch_size if split == "train" else self.eval_batch_size
        batch_sampler = BucketBatchSampler(
            sampler, batch_size, False, self.lengths[split], self.bucket_chunk, shuffle, self.seed
        )
        if split == "train" and self.train_augment is not None:
            return self._loader(dataset, EpochLoader, batch_sampler=batch_sampler, epoch=self.epoch)
        return self._loader(dataset, ResumableDataLoader, batch_sampler=batch_sampler)

    def train_dataloader(self) -> DataLoader:
        """Shuffled bucketed batches; fixed ones under ``Trainer(overfit_batches=...)``.

        Lightning turns shuffling off for overfitting only when it sees a random ``sampler``, and
        the loader's ``sampler`` is a sequential placeholder beside a batch sampler: do it here.
        """
        overfitting = self.trainer is not None and bool(self.trainer.overfit_batches)
        return self._bucketed("train", shuffle=not overfitting)

    def val_dataloader(self) -> DataLoader:
        return self._bucketed("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._bucketed("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """Batches in dataset order (no bucketing), so predictions line up with the inputs."""
        return self._loader(self._dataset("predict"), batch_size=self.eval_batch_size)
