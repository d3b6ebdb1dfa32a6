"""Unicode normalization of labels and charsets: one place (Charset.normalize), NFC by default."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from ctcocr.ctc.loss import ctc_loss
from ctcocr.data.charset import Charset
from ctcocr.data.datamodule import LineDataModule, LineDataset
from ctcocr.data.errors import DatasetError
from ctcocr.data.folder import FolderDataset
from ctcocr.data.transforms import LineTransform
from ctcocr.models import CRNN, SmallBackbone
from ctcocr.resources import CONFIG_DIR

NFC_LABEL = "caf\u00e9 \u00c5ngstr\u00f6m"  # é, Å, ö precomposed
NFD_LABEL = unicodedata.normalize("NFD", NFC_LABEL)


def test_the_fixture_labels_differ_in_code_points_only():
    assert NFC_LABEL != NFD_LABEL and len(NFD_LABEL) == len(NFC_LABEL) + 3


def test_nfd_label_encodes_like_its_nfc_form():
    charset = Charset("acfgmnorst \u00e9\u00c5\u00f6")
    assert charset.unicode_normalization == "NFC"
    assert charset.encode(NFD_LABEL) == charset.encode(NFC_LABEL)
    assert len(charset.encode(NFD_LABEL)) == len(NFC_LABEL)
    assert not charset.unknown(NFD_LABEL)


def test_without_normalization_the_combining_marks_are_unknown():
    charset = Charset("acfgmnorst \u00e9\u00c5\u00f6", unicode_normalization=None)
    assert charset.unknown(NFD_LABEL) == {"A", "e", "\u0301", "\u030a", "\u0308"}
    assert charset.normalize(NFD_LABEL) == NFD_LABEL


def test_nfd_charset_has_a_class_per_code_point():
    charset = Charset("e\u00e9", unicode_normalization="NFD")
    assert charset.characters == "e\u0301"
    assert charset.encode("\u00e9") == charset.encode("e\u0301") == [1, 2]


def test_compatibility_forms():
    assert Charset("fi", unicode_normalization="NFKC").encode("\ufb01") == [1, 2]  # ligature fi
    assert Charset("fi").unknown("\ufb01") == {"\ufb01"}  # NFC keeps the ligature


def test_case_mapping_then_normalization():
    charset = Charset("\u00e9", case="lower")
    assert charset.encode("E\u0301") == [1]  # É decomposed, lower-cased, composed


def test_unknown_form_is_an_error():
    with pytest.raises(ValueError, match="unicode_normalization"):
        Charset("a", unicode_normalization="nfc")


def test_charset_file_lines_in_either_form_are_normalized(tmp_path):
    path = tmp_path / "chars.txt"
    path.write_text("a\n\u00e9\ne\u0301\n\u212b\n", encoding="utf-8")  # é twice, Angstrom sign
    assert Charset(file=str(path)).characters == "a\u00e9\u00c5"
    assert Charset(file=str(path), unicode_normalization="NFD").characters == "ae\u0301A\u030a"
    unnormalized = Charset(file=str(path), unicode_normalization=None)
    assert unnormalized.characters == "a\u00e9e\u0301\u212b"
    path.write_text("a\nab\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"chars\.txt:2"):
        Charset(file=str(path))


def test_to_config_round_trip_keeps_the_form():
    charset = Charset("ab\u00e9", unicode_normalization="NFD")
    config = charset.to_config()
    rebuilt = instantiate(config)
    assert config["unicode_normalization"] == "NFD"
    assert (rebuilt.characters, rebuilt.unicode_normalization) == (charset.characters, "NFD")


@pytest.mark.parametrize("name", ["printable", "alnum_lower", "file"])
def test_charset_configs_default_to_nfc_and_accept_null(tmp_path, name):
    (tmp_path / "chars.txt").write_text("a\n", encoding="utf-8")
    overrides = [f"file={tmp_path / 'chars.txt'}"] if name == "file" else []
    with initialize_config_dir(str(Path(CONFIG_DIR) / "charset"), version_base="1.3"):
        assert instantiate(compose(name, overrides=overrides)).unicode_normalization == "NFC"
        disabled = instantiate(compose(name, overrides=[*overrides, "unicode_normalization=null"]))
    assert disabled.unicode_normalization is None


def _write_folder(root: Path, labels: list[str]) -> Path:
    """Identical striped images, one per label."""
    from PIL import Image

    (root / "img").mkdir(parents=True)
    lines = []
    for number, label in enumerate(labels):
        image = Image.new("L", (160, 32), 255)
        for x in range(4, 156, 7 + number % 3):
            image.paste(0, (x, 6, x + 2, 26))
        image.save(root / "img" / f"{number}.png")
        lines.append(f"img/{number}.png\t{label}\n")
    (root / "gt.txt").write_text("".join(lines), encoding="utf-8")
    return root


def test_nfd_labels_train_like_nfc_labels(tmp_path):
    """The same images with NFC and NFD labels give the same batches and the same loss."""
    charset = Charset("acfgmnorst \u00e9\u00c5\u00f6")
    labels = [NFC_LABEL, "caf\u00e9", "\u00c5rst"]
    nfc = _write_folder(tmp_path / "nfc", labels)
    nfd = _write_folder(tmp_path / "nfd", [unicodedata.normalize("NFD", s) for s in labels])
    batches, losses = [], []
    for root in (nfc, nfd):
        datamodule = LineDataModule(charset, train=str(root), batch_size=3, num_workers=0)
        datamodule.setup("fit")
        batch = next(iter(datamodule.train_dataloader()))
        torch.manual_seed(0)
        model = CRNN(SmallBackbone(channels=(4, 4, 8, 8, 8)), charset.num_classes, hidden_size=8)
        log_probs = model(batch["images"], batch["widths"])
        lengths = model.output_lengths(batch["widths"])
        losses.append(ctc_loss(log_probs, batch["targets"], lengths, batch["target_lengths"]))
        batches.append(batch)
    assert batches[0]["texts"] == batches[1]["texts"]
    assert NFC_LABEL in batches[1]["texts"]
    assert torch.equal(batches[0]["targets"], batches[1]["targets"])
    assert torch.equal(losses[0], losses[1])


def test_line_dataset_of_nfd_labels_has_nfc_texts(tmp_path):
    root = _write_folder(tmp_path / "nfd", [NFD_LABEL])
    lines = LineDataset(FolderDataset(root), Charset("acfgmnorst \u00e9\u00c5\u00f6"),
                        LineTransform())
    assert lines[0].text == NFC_LABEL
