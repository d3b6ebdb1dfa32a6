"""ONNX export: ONNX Runtime reproduces PyTorch's log-probs, frame counts and strings, and the
file alone is enough to recognize image files."""

from __future__ import annotations

import copy
from pathlib import Path

import onnx
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from lightning import Trainer
from PIL import Image, ImageDraw
from torch.utils.data import DataLoader

from ctcocr.cli.export import run
from ctcocr.recognition import Recognizer, TextDecoder, find_images, recognize
from ctcocr.recognition.export import ParityError, export_onnx, parity_error
from ctcocr.recognition.onnx_recognizer import METADATA_KEY, OnnxRecognizer
from ctcocr.training.module import RecognizerModule
from tests.conftest import compose_config

WIDTHS = [40, 97, 160, 333]


def tiny_module() -> RecognizerModule:
    backbone = {"_target_": "ctcocr.models.SmallBackbone", "channels": [4, 4, 8, 8, 8]}
    return RecognizerModule(
        charset={"_target_": "ctcocr.data.charset.Charset", "chars": "abC", "case": "lower"},
        model={"_target_": "ctcocr.models.CRNN", "hidden_size": 16, "backbone": backbone},
        preprocessing={"height": 32, "min_width": 32, "max_width": 1024, "normalize": True},
        loss={"_target_": "ctcocr.losses.CTCLoss"},
        optimizer={"_target_": "torch.optim.AdamW", "_partial_": True},
        channels_last=True,
    )


def random_batch(generator: torch.Generator) -> dict:
    return {"images": torch.rand(4, 1, 32, 64, generator=generator) * 2 - 1,
            "widths": torch.tensor([64, 60, 50, 40]),
            "targets": torch.tensor([[1, 2], [2, 3], [3, 0], [1, 0]]),
            "target_lengths": torch.tensor([2, 2, 1, 1]), "sources": ["a", "b", "c", "d"]}


def run_export(overrides: list[str], folder: Path) -> Path:
    """ctcocr-export with these command-line overrides."""
    cfg = compose_config("export", overrides, folder)
    try:
        return run(cfg)
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Recognizer, Path]:
    """A checkpoint after one training step (batch-norm statistics and weights moved), exported by
    the ctcocr-export entry point; returns the reloaded recognizer and the ONNX path."""
    folder = tmp_path_factory.mktemp("export")
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    module = tiny_module()
    trainer = Trainer(max_steps=1, accelerator="cpu", devices=1, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False)
    trainer.fit(module, DataLoader([random_batch(generator)], batch_size=None))
    with torch.no_grad():  # peaky outputs, so that decoding compares real strings, not near-ties
        module.recognizer.model.sequence[-1].projection.weight.mul_(30)
    checkpoint = folder / "tiny.ckpt"
    trainer.save_checkpoint(checkpoint)
    output = run_export([f"ckpt_path={checkpoint}"], folder)
    assert output == checkpoint.with_suffix(".onnx")
    return Recognizer.from_checkpoint(checkpoint), output


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("width", WIDTHS)
def test_onnx_runtime_matches_pytorch(exported, width, batch_size):
    module, path = exported
    recognizer = OnnxRecognizer(path, threads=1)
    generator = torch.Generator().manual_seed(width * 10 + batch_size)
    images = torch.rand(batch_size, 1, 32, width, generator=generator) * 2 - 1
    widths = torch.randint(1, width + 1, (batch_size,), generator=generator)
    widths[0] = width
    with torch.inference_mode():
        expected, expected_lengths = module(images, widths)
        decoded = TextDecoder(module.charset)(expected, expected_lengths)
    log_probs, lengths = recognizer(images, widths)
    assert log_probs.shape == expected.shape == (width // 4, batch_size, 4)
    torch.testing.assert_close(log_probs, expected, atol=1e-4, rtol=0)
    assert torch.equal(lengths, expected_lengths)
    onnx_decoded = TextDecoder(recognizer.charset)(log_probs, lengths)
    assert onnx_decoded.texts == decoded.texts
    assert any(decoded.texts), "an all-empty decoding would make the string comparison vacuous"
    torch.testing.assert_close(onnx_decoded.confidences, decoded.confidences, atol=1e-4,
                               rtol=1e-3)


def test_frame_counts_are_clamped_to_the_frames_like_pytorch(exported):
    module, path = exported
    images, widths = torch.zeros(2, 1, 32, 48), torch.tensor([48, 400])
    with torch.inference_mode():
        _, expected = module(images, widths)
    _, lengths = OnnxRecognizer(path)(images, widths)
    assert lengths.tolist() == expected.tolist() == [12, 12]


def test_metadata_rebuilds_charset_and_preprocessing(exported):
    module, path = exported
    recognizer = OnnxRecognizer(path)
    assert recognizer.charset.characters == module.charset.characters == "abc"
    assert recognizer.charset.case == "lower"
    assert recognizer.charset.encode("CAB") == module.charset.encode("CAB")
    assert recognizer.preprocessing == module.preprocessing
    assert recognizer.height == 32


def test_image_files_read_the_same_with_the_onnx_file_alone(exported, tmp_path):
    module, path = exported
    for index, (width, height) in enumerate([(120, 40), (300, 32), (61, 20)]):
        image = Image.new("L", (width, height), 255)
        ImageDraw.Draw(image).text((4, 2), "abc"[: index + 1] * 3, fill=0)
        image.save(tmp_path / f"line{index}.png")
    paths = find_images(str(tmp_path))
    expected = list(recognize(module, paths, TextDecoder(module.charset), batch_size=2))
    outputs = list(recognize(OnnxRecognizer(path), paths, TextDecoder(module.charset),
                             batch_size=2))
    assert [p.path for p in outputs] == [p.path for p in expected] == list(map(str, paths))
    assert [p.text for p in outputs] == [p.text for p in expected]
    assert any(p.text for p in expected), "an all-empty decoding would make this vacuous"
    torch.testing.assert_close(torch.tensor([p.confidence for p in outputs]),
                               torch.tensor([p.confidence for p in expected]),
                               atol=1e-4, rtol=1e-3)


def test_parity_error_detects_a_changed_model(exported):
    module, path = exported
    recognizer = OnnxRecognizer(path)
    assert parity_error(module, recognizer, [50, 90]) < 1e-4
    changed = copy.deepcopy(module)
    with torch.no_grad():
        changed.model.sequence[-1].projection.bias[0] += 0.5
    assert parity_error(changed, recognizer, [50]) > 0.1


def test_export_fails_loudly_when_parity_is_not_met(exported, tmp_path):
    _, path = exported
    overrides = [f"ckpt_path={path.with_suffix('.ckpt')}", f"output={tmp_path / 'out.onnx'}",
                 "atol=-1", "verify_widths=[64]"]
    message = r"out.onnx: ONNX Runtime differs from PyTorch by .* on widths \[64\]"
    with pytest.raises(ParityError, match=message):
        run_export(overrides, tmp_path)


def test_images_of_another_height_are_rejected(exported):
    _, path = exported
    message = r"tiny.onnx reads images of shape \(B, 1, 32, W\), got \(2, 1, 48, 90\)"
    with pytest.raises(ValueError, match=message):
        OnnxRecognizer(path)(torch.zeros(2, 1, 48, 90), torch.tensor([90, 90]))


def test_file_without_metadata_is_rejected(exported, tmp_path):
    _, path = exported
    model = onnx.load(str(path))
    del model.metadata_props[:]
    stripped = tmp_path / "stripped.onnx"
    onnx.save(model, str(stripped))
    with pytest.raises(ValueError, match=f"stripped.onnx: no '{METADATA_KEY}' metadata"):
        OnnxRecognizer(stripped)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        OnnxRecognizer(tmp_path / "nothing.onnx")
    with pytest.raises(FileNotFoundError, match="nothing.ckpt"):
        run_export([f"ckpt_path={tmp_path / 'nothing.ckpt'}"], tmp_path)


def test_export_writes_into_new_folders_with_a_chosen_opset(exported, tmp_path):
    module, _ = exported
    path = export_onnx(module, tmp_path / "new" / "model.onnx", opset=18)
    assert onnx.load(str(path)).opset_import[0].version == 18
    assert parity_error(module, OnnxRecognizer(path), [72]) < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("model", ["crnn_small", "crnn_vgg"])
def test_shipped_model_configs_export_with_parity(model, tmp_path):
    cfg = compose_config("train", [f"model={model}"], tmp_path)
    GlobalHydra.instance().clear()
    torch.manual_seed(0)
    recognizer = RecognizerModule.from_train_config(cfg).recognizer
    path = export_onnx(recognizer, tmp_path / f"{model}.onnx")
    assert parity_error(recognizer, OnnxRecognizer(path), WIDTHS) < 1e-4


def test_int8_export_is_a_smaller_readable_copy_close_to_pytorch(exported, tmp_path, capsys):
    module, path = exported
    output = tmp_path / "int8" / "model.int8.onnx"
    assert run_export([f"ckpt_path={path.with_suffix('.ckpt')}", f"output={output}",
                       "quantize=int8", "verify_widths=[64]"], tmp_path) == output
    assert "(int8: max |log-prob difference| to PyTorch" in capsys.readouterr().out
    quantized = onnx.load(str(output))
    assert {node.op_type for node in quantized.graph.node} & {"DynamicQuantizeLSTM",
                                                              "ConvInteger", "MatMulInteger"}
    recognizer = OnnxRecognizer(output)
    assert recognizer.charset.characters == module.charset.characters
    assert recognizer.preprocessing == module.preprocessing
    error = parity_error(module, recognizer, [48, 120])
    assert 0 < error < 1.0  # quantised, so not equal, yet close on these peaky outputs


def test_unknown_quantization_is_an_error(exported, tmp_path):
    _, path = exported
    with pytest.raises(ValueError, match="quantize must be null or one of int8, got 'int4'"):
        run_export([f"ckpt_path={path.with_suffix('.ckpt')}", "quantize=int4"], tmp_path)
