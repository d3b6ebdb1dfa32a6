"""Transforms, collate, width bucketing and the LightningDataModule with the tiny config."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.fabric.utilities.data import _replace_dunder_methods
from lightning.pytorch.utilities.data import _update_dataloader
from PIL import Image
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, SequentialSampler

from ctcocr.data.charset import Charset
from ctcocr.data.collate import EncodedLine, LineCollate
from ctcocr.data.datamodule import LineDataModule
from ctcocr.data.folder import FolderDataset
from ctcocr.data.lmdb_dataset import folder_to_lmdb
from ctcocr.data.sampler import BucketBatchSampler, EpochRandomSampler
from ctcocr.data.transforms import LineTransform
from ctcocr.resources import CONFIG_DIR

CONFIGS = Path(CONFIG_DIR)
CONTRACT_KEYS = {"images", "widths", "targets", "target_lengths", "texts", "sources", "num_skipped"}
BATCH_KEYS = CONTRACT_KEYS | {"num_squeezed"}


def _line(width: int, target: list[int], value: float = 0.0, border: float = 1.0) -> EncodedLine:
    image = torch.full((1, 8, width), value)
    image[0, 0], image[0, -1], image[0, :, 0], image[0, :, -1] = border, border, border, border
    return EncodedLine(image, torch.tensor(target), "t" * len(target), f"src{width}", False)


# --- transforms ---


def test_transform_keeps_aspect_ratio_and_scales_to_minus_one_one():
    array = np.full((16, 50), 255, dtype=np.uint8)
    array[4:12, 10:40] = 0
    image, squeezed = LineTransform(height=32, min_width=8, max_width=400)(Image.fromarray(array))
    assert image.shape == (1, 32, 100) and image.dtype == torch.float32 and not squeezed
    assert image.max() == 1.0 and image.min() == -1.0
    assert image[0, 16, 50] == -1.0 and image[0, 0, 0] == 1.0


def test_transform_squeezes_wide_and_pads_narrow_images_with_background():
    transform = LineTransform(height=32, min_width=8, max_width=64)
    wide, squeezed = transform(Image.new("L", (400, 32), 200))
    assert wide.shape == (1, 32, 64) and squeezed
    array = np.full((32, 10), 255, dtype=np.uint8)
    array[:, 4] = 0  # a dark stroke; the border is white
    narrow, squeezed = LineTransform(height=32, min_width=48, max_width=64)(Image.fromarray(array))
    assert narrow.shape == (1, 32, 48) and not squeezed
    assert torch.all(narrow[..., 10:] == 1.0)
    assert torch.all(narrow[..., 4] == -1.0)


def test_transform_converts_color_images_to_grayscale():
    image, _ = LineTransform(height=16)(Image.new("RGB", (40, 16), (255, 255, 255)))
    assert image.shape == (1, 16, 40) and torch.all(image == 1.0)


# --- collate ---


def test_collate_pads_images_and_targets():
    lines = [_line(20, [1, 2], -0.5, border=0.25), None, _line(37, [3, 1, 4, 1]), _line(5, [2])]
    batch = LineCollate(height=8, width_multiple=16)(lines)
    assert set(batch) == BATCH_KEYS
    assert batch["images"].shape == (3, 1, 8, 48) and batch["images"].dtype == torch.float32
    assert batch["widths"].tolist() == [20, 37, 5] and batch["widths"].dtype == torch.int64
    assert batch["targets"].tolist() == [[1, 2, 0, 0], [3, 1, 4, 1], [2, 0, 0, 0]]
    assert batch["target_lengths"].tolist() == [2, 4, 1]
    assert batch["target_lengths"].dtype == batch["targets"].dtype == torch.int64
    assert batch["num_skipped"] == 1 and batch["sources"] == ["src20", "src37", "src5"]
    for row, line in enumerate(line for line in lines if line is not None):
        width = line.image.shape[-1]
        assert torch.equal(batch["images"][row, :, :, :width], line.image)
    assert torch.all(batch["images"][0, :, :, 20:] == 0.25)  # padded with that image's background
    assert torch.all(batch["images"][1, :, :, 37:] == 1.0)


def test_collate_of_only_skipped_samples_is_an_empty_batch():
    batch = LineCollate(height=8)([None, None])
    assert batch["images"].shape == (0, 1, 8, 0) and batch["targets"].shape == (0, 0)
    assert batch["num_skipped"] == 2


# --- bucketing ---


def _padding(batches: list[list[int]], lengths: list[int]) -> int:
    """Padded positions when each batch is padded to its longest member."""
    return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)


def test_bucketing_reduces_padding_and_keeps_every_index_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, size=1000).tolist()
    data = range(len(lengths))
    sampler = EpochRandomSampler(data, seed=3)
    bucketed = list(BucketBatchSampler(sampler, 32, False, lengths, chunk_size=256))
    plain = list(BatchSampler(sampler, 32, False))
    assert sorted(i for batch in bucketed for i in batch) == list(data)
    evaluation = BucketBatchSampler(SequentialSampler(data), 32, False, lengths, shuffle=False)
    assert len(bucketed) == len(plain) == len(evaluation) == len(list(evaluation))
    assert _padding(bucketed, lengths) < 0.25 * _padding(plain, lengths)


def test_bucketing_is_deterministic_per_seed_and_epoch():
    lengths = [i % 17 for i in range(300)]

    def epoch(seed: int, number: int) -> list[list[int]]:
        inner = EpochRandomSampler(range(300), seed=seed)
        sampler = BucketBatchSampler(inner, 16, False, lengths, 64, seed=seed)
        sampler.set_epoch(number)
        return list(sampler)

    assert epoch(0, 1) == epoch(0, 1)
    assert epoch(0, 1) != epoch(0, 2)
    assert epoch(0, 1) != epoch(5, 1)


def test_lightning_injects_a_distributed_sampler_into_the_bucket_sampler():
    lengths = [i % 13 for i in range(103)]
    data = list(range(103))
    with _replace_dunder_methods(DataLoader, "dataset"), _replace_dunder_methods(BatchSampler):
        batch_sampler = BucketBatchSampler(EpochRandomSampler(data), 8, False, lengths, 32)
        loader = DataLoader(data, batch_sampler=batch_sampler)
    seen, counts = [], []
    for rank in range(2):
        sampler = DistributedSampler(data, num_replicas=2, rank=rank, shuffle=True, seed=0)
        ranked = _update_dataloader(loader, sampler)
        assert isinstance(ranked.batch_sampler, BucketBatchSampler)
        batches = [batch.tolist() for batch in ranked]
        counts.append(len(batches))
        seen += [i for batch in batches for i in batch]
        unbucketed = [list(batch) for batch in BatchSampler(sampler, 8, False)]
        assert _padding(batches, lengths) < _padding(unbucketed, lengths)
    assert counts[0] == counts[1]  # equal step counts on every rank: no DDP hang
    assert set(seen) == set(data)


# --- the data module ---


def _configured_datamodule(
    overrides: list[str] | None = None, name: str = "tiny"
) -> tuple[LineDataModule, Charset]:
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        data = compose(f"data/{name}", overrides=overrides or []).data
        charset = instantiate(compose("charset/printable").charset)
    return instantiate(data, charset=charset), charset


def test_tiny_config_batches_follow_the_contract():
    sizes = {"train": 16, "val": 6, "test": 6}
    overrides = ["data.batch_size=4"] + [f"data.{split}.size={n}" for split, n in sizes.items()]
    datamodule, charset = _configured_datamodule(overrides)
    datamodule.setup("fit")
    # the synthetic factory was completed with the charset's characters
    assert datamodule.datasets["train"].datasets[0].dataset.chars == charset.characters
    loaders = {"train": datamodule.train_dataloader(), "val": datamodule.val_dataloader()}
    for split, loader in loaders.items():
        total = 0
        for batch in loader:
            assert set(batch) == BATCH_KEYS
            size = batch["images"].shape[0]
            total += size
            assert batch["images"].shape[1:3] == (1, 32) and batch["images"].shape[3] % 16 == 0
            assert batch["images"].shape[3] >= batch["widths"].max() >= batch["widths"].min() >= 32
            assert batch["targets"].shape == (size, batch["target_lengths"].max())
            for row in range(size):
                ids = batch["targets"][row, : batch["target_lengths"][row]].tolist()
                assert charset.decode(ids) == batch["texts"][row]
            assert batch["num_skipped"] == 0
        assert total == sizes[split]
    datamodule.setup("test")
    assert sum(batch["images"].shape[0] for batch in datamodule.test_dataloader()) == sizes["test"]
    predicted = [text for batch in datamodule.predict_dataloader() for text in batch["texts"]]
    assert predicted == [datamodule.datasets["test"][i].text for i in range(sizes["test"])]


def test_several_datasets_are_concatenated(tmp_path, folder_dataset):
    first, _ = folder_dataset(["ab", "b"], name="first")
    second, _ = folder_dataset(["ba", "a", "aa"], name="second")
    folder_to_lmdb(second, tmp_path / "second_lmdb")
    def factory(chars: str) -> FolderDataset:  # like a Hydra `_partial_: true` dataset
        assert chars == "ab"
        return FolderDataset(first)

    datamodule = LineDataModule(Charset("ab"), train=[str(first), str(tmp_path / "second_lmdb")],
                                val=[factory], batch_size=2, num_workers=0)
    datamodule.setup("fit")
    texts = sorted(text for batch in datamodule.train_dataloader() for text in batch["texts"])
    assert texts == sorted(["ab", "b", "ba", "a", "aa"])
    sources = [source for batch in datamodule.val_dataloader() for source in batch["sources"]]
    assert len(sources) == 2 and all("first" in source for source in sources)


class _RecordingModule(L.LightningModule):
    """Records the samples each rank trains on, per epoch, into ``out_dir``."""

    def __init__(self, out_dir: str):
        super().__init__()
        self.out_dir = out_dir
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[str] = []
        self.validated: list[str] = []

    def training_step(self, batch, batch_index):
        self.seen += batch["sources"]
        return (self.weight * batch["images"].mean()).sum()

    def validation_step(self, batch, batch_index):
        self.validated += batch["sources"]

    def on_validation_epoch_end(self):
        path = Path(self.out_dir) / f"rank{self.global_rank}_val.txt"
        path.write_text("\n".join(self.validated))

    def on_train_epoch_end(self):
        path = Path(self.out_dir) / f"rank{self.global_rank}_epoch{self.current_epoch}.txt"
        path.write_text("\n".join(self.seen))
        self.seen = []

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.slow
def test_ddp_ranks_share_out_each_epoch(tmp_path, folder_dataset):
    labels = ["a" * (1 + i % 7) for i in range(40)]
    root, _ = folder_dataset(labels)
    datamodule = LineDataModule(Charset("a"), str(root), str(root), batch_size=4, num_workers=0)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=2,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(_RecordingModule(str(tmp_path)), datamodule=datamodule)
    orders = {}
    for epoch in range(2):
        ranks = [(tmp_path / f"rank{r}_epoch{epoch}.txt").read_text().split("\n") for r in range(2)]
        assert len(ranks[0]) == len(ranks[1]) == 20
        assert set(ranks[0]) | set(ranks[1]) == {FolderDataset(root).source(i) for i in range(40)}
        orders[epoch] = ranks[0]
    assert orders[0] != orders[1]  # reshuffled each epoch
    validated = [(tmp_path / f"rank{r}_val.txt").read_text().split("\n") for r in range(2)]
    assert len(validated[0]) == len(validated[1]) == 20
    assert set(validated[0]).isdisjoint(validated[1])


PATH_CONFIGS = ("folder", "page", "alto")  # the data configs that read datasets from paths


@pytest.mark.parametrize("name", sorted(path.stem for path in (CONFIGS / "data").glob("*.yaml")))
def test_data_configs_instantiate_without_a_charset_of_their_own(name):
    overrides = ["data.height=48"]
    if name in PATH_CONFIGS:
        overrides += ["data.train=/data/train", "data.val=[/data/a,/data/b]"]
    datamodule, charset = _configured_datamodule(overrides, name)
    assert datamodule.charset is charset
    assert datamodule.eval_transform.height == 48
    if name in PATH_CONFIGS:
        assert datamodule.specs["train"] == "/data/train"
        assert list(datamodule.specs["val"]) == ["/data/a", "/data/b"]
        assert list(datamodule.specs["test"]) == ["/data/a", "/data/b"]  # test defaults to val
        return
    for split in ("train", "val", "test"):
        factory = datamodule.specs[split]
        assert factory.keywords["height"] == 48 and "chars" not in factory.keywords
    shifted = name == "synth_shifted"
    assert datamodule.specs["val"].keywords["fonts"] == ("heldout" if shifted else "all")
    assert datamodule.specs["train"].keywords["fonts"] == ("train" if shifted else "all")
    assert datamodule.eval_transform.normalize and datamodule.train_transform.normalize
    assert datamodule.specs["test"].keywords.get("degradation", 1.0) == (2.0 if shifted else 1.0)
    assert datamodule.specs["train"].keywords.get("degradation", 1.0) == 1.0


def test_overfitting_uses_the_same_batches_every_epoch(folder_dataset):
    root, _ = folder_dataset(["a" * (1 + i % 5) for i in range(24)])
    datamodule = LineDataModule(Charset("a"), str(root), str(root), batch_size=4, num_workers=0)
    datamodule.trainer = L.Trainer(overfit_batches=2, logger=False, enable_checkpointing=False)
    datamodule.setup("fit")

    def first_batches(epoch: int) -> list[list[str]]:
        loader = datamodule.train_dataloader()
        loader.batch_sampler.set_epoch(epoch)
        return [batch["sources"] for batch, _ in zip(loader, range(2))]

    assert first_batches(0) == first_batches(1)
    datamodule.trainer = None
    assert first_batches(0) != first_batches(1)


def test_transparent_images_are_drawn_on_white():
    rgba = Image.new("RGBA", (20, 16), (0, 0, 0, 0))  # fully transparent black
    rgba.paste((0, 0, 0, 255), (5, 0, 10, 16))  # an opaque black stroke
    image, _ = LineTransform(height=16, min_width=8)(rgba)
    assert torch.all(image[..., :5] == 1.0) and torch.all(image[..., 5:10] == -1.0)
