"""Data: charset, datasets (synthetic, folder, LMDB, PAGE/ALTO), bad-sample policy, transforms,
batching.

Names load on first use, so that reading a charset or a transform (what a checkpoint needs) does
not import Lightning through the data module.
"""

from __future__ import annotations

import importlib

_MODULES = {
    "Charset": "charset",
    "EncodedLine": "collate", "LineBatch": "collate", "LineCollate": "collate",
    "LineDataModule": "datamodule", "LineDataset": "datamodule", "open_dataset": "datamodule",
    "BadImageError": "errors", "DatasetError": "errors",
    "FolderDataset": "folder",
    "LmdbDataset": "lmdb_dataset", "folder_to_lmdb": "lmdb_dataset",
    "Sample": "sample",
    "BucketBatchSampler": "sampler", "EpochRandomSampler": "sampler",
    "LineTransform": "transforms",
    "XmlLineDataset": "xml_dataset",
}


def __getattr__(name: str) -> object:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)


__all__ = list(_MODULES)
