"""Data: charset, datasets (synthetic, folder, LMDB), bad-sample policy, transforms, batching."""

from ctcocr.data.charset import Charset
from ctcocr.data.collate import EncodedLine, LineBatch, LineCollate
from ctcocr.data.datamodule import LineDataModule, LineDataset, open_dataset
from ctcocr.data.errors import BadImageError, DatasetError
from ctcocr.data.folder import FolderDataset
from ctcocr.data.lmdb_dataset import LmdbDataset, folder_to_lmdb
from ctcocr.data.sample import Sample
from ctcocr.data.sampler import BucketBatchSampler, EpochRandomSampler
from ctcocr.data.transforms import LineTransform

__all__ = [
    "BadImageError",
    "BucketBatchSampler",
    "Charset",
    "DatasetError",
    "EncodedLine",
    "EpochRandomSampler",
    "FolderDataset",
    "LineBatch",
    "LineCollate",
    "LineDataModule",
    "LineDataset",
    "LineTransform",
    "LmdbDataset",
    "Sample",
    "folder_to_lmdb",
    "open_dataset",
]
