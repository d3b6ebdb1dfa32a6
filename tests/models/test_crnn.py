import io
import warnings

import pytest
import torch
from torch import Tensor, nn

from ctcocr.models import CRNN, SmallBackbone, VGGBackbone
from ctcocr.models.crnn import reverse_within_lengths

BACKBONES = pytest.mark.parametrize("backbone", [SmallBackbone, VGGBackbone], ids=["small", "vgg"])


def random_model(backbone: type, dtype: torch.dtype = torch.float32) -> CRNN:
    """An eval-mode CRNN with random weights and batch-norm statistics (not the identity); the small
    backbone's with the shortcut from the features to the scores, as its default config has it."""
    torch.manual_seed(0)
    model = CRNN(backbone(), num_classes=11, hidden_size=16, num_layers=2, dropout=0.3,
                 shortcut=backbone is SmallBackbone)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    return model.to(dtype).eval()


def padded_batch(widths: list[int], width: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Images (B, 1, 32, max width) of the true widths, and the same right-padded to ``width`` with
    random values (B, 1, 32, width)."""
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(len(widths), 1, 32, max(widths), generator=generator, dtype=dtype) * 2 - 1
    batch = torch.randn(len(widths), 1, 32, width, generator=generator, dtype=dtype) * 3
    for row, true_width in enumerate(widths):
        batch[row, :, :, :true_width] = images[row, :, :, :true_width]
    return images, batch


@BACKBONES
def test_frames_of_each_width_match_running_it_alone(backbone):
    torch.manual_seed(0)
    model = CRNN(backbone(), num_classes=11, hidden_size=16).eval()
    widths = [9, 31, 64, 100, 157]
    for width in widths:
        log_probs = model(torch.randn(1, 1, 32, width))
        assert log_probs.shape == (int(model.output_lengths(torch.tensor([width]))), 1, 11)
    padded = torch.randn(len(widths), 1, 32, max(widths))
    out = model(padded)
    assert out.shape[:2] == (int(model.output_lengths(torch.tensor([max(widths)]))), len(widths))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(out.shape[:2]))


def test_paper_size_model_matches_crnn():
    model = CRNN(VGGBackbone(), num_classes=37, hidden_size=256)
    parameters = sum(p.numel() for p in model.parameters())
    assert 8.2e6 < parameters < 8.4e6
    assert model(torch.randn(1, 1, 32, 100)).shape[0] == 26


@pytest.mark.parametrize("reduction", [16, 32])
def test_small_backbone_reduces_width_by_four_and_height_as_configured(reduction):
    backbone = SmallBackbone(height=64, channels=(4, 4, 8, 8, 12), height_reduction=reduction)
    assert backbone.output_lengths(torch.tensor([4, 100, 128, 401])).tolist() == [1, 25, 32, 100]
    features = backbone(torch.randn(2, 1, 64, 100))
    assert features.shape == (2, 12, 64 // reduction, 25)
    assert CRNN(backbone, num_classes=5)(torch.randn(2, 1, 64, 100)).shape == (25, 2, 5)
    with pytest.raises(ValueError, match=f"divisible by {reduction}"):
        SmallBackbone(height=40, height_reduction=reduction)


def test_bf16_autocast_gives_float32_log_probs():
    model = CRNN(SmallBackbone(), num_classes=5, hidden_size=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 1, 32, 40), torch.tensor([40, 23]))
    assert out.dtype == torch.float32


def test_reverse_within_lengths_reverses_each_sample_alone_and_keeps_the_padding():
    sequence = torch.arange(4.0)[:, None, None].expand(4, 4, 1)
    reversed_ = reverse_within_lengths(sequence, torch.tensor([4, 3, 1, 9]))
    assert reversed_[..., 0].T.tolist() == [[3, 2, 1, 0], [2, 1, 0, 3], [0, 1, 2, 3], [3, 2, 1, 0]]
    assert torch.equal(reverse_within_lengths(sequence, None), sequence.flip(0))


@BACKBONES
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_each_line_scores_the_same_alone_and_in_a_padded_batch(backbone, dtype):
    model = random_model(backbone, dtype)
    widths = [4, 13, 31, 64, 99]
    images, batch = padded_batch(widths, 112, dtype)
    true_widths = torch.tensor(widths)
    lengths = model.output_lengths(true_widths).tolist()
    tolerance = 1e-4 if dtype == torch.float32 else 1e-9
    with torch.no_grad():
        batched, unmasked = model(batch, true_widths), model(batch)
        alone = [model(images[row : row + 1, :, :, :width], true_widths[row : row + 1])[:, 0]
                 for row, width in enumerate(widths)]
    for row, length in enumerate(lengths):
        assert alone[row].shape[0] == length
        torch.testing.assert_close(batched[:length, row], alone[row], atol=tolerance, rtol=0)
    # Without the widths the padding does change a line's scores: the comparison above has teeth.
    assert (unmasked[: lengths[3], 3] - alone[3]).abs().max() > 100 * tolerance


def test_shortcut_adds_a_linear_map_of_the_column_features():
    model = random_model(SmallBackbone, torch.float64)
    last = model.sequence[-1].projection
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        images = torch.rand(2, 1, 32, 40, dtype=torch.float64)
        features = model.backbone(images)  # (B, C, 1, W)
        columns = features.flatten(1, 2).permute(2, 0, 1)  # (W, B, C)
        expected = torch.log_softmax(columns @ model.shortcut.weight.T + model.shortcut.bias, -1)
        torch.testing.assert_close(model(images), expected.float())


@BACKBONES
def test_output_lengths_count_the_frames_of_a_lone_image(backbone):
    model = backbone().eval()
    widths = [*range(4, 24), 63, 64, 65, 99, 100, 101, 157, 256, 257, 401]
    with torch.no_grad():
        frames = [model(torch.randn(1, 1, 32, width)).shape[-1] for width in widths]
    assert model.output_lengths(torch.tensor(widths)).tolist() == frames
    assert model.output_lengths(torch.tensor([1])).tolist() == [1]


@BACKBONES
def test_onnx_export_takes_widths_and_matches_pytorch(backbone):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = random_model(backbone)
    file = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation and tracer warnings
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.randn(2, 1, 32, 64), torch.tensor([64, 40])), file, dynamo=False,
            opset_version=17, input_names=["images", "widths"], output_names=["log_probs"],
            dynamic_axes={"images": {0: "batch", 3: "width"}, "widths": {0: "batch"},
                          "log_probs": {0: "frames", 1: "batch"}})
    session = onnxruntime.InferenceSession(file.getvalue(), providers=["CPUExecutionProvider"])
    widths = [160, 17, 99, 5]
    _, batch = padded_batch(widths, 176, torch.float32)
    true_widths = torch.tensor(widths)
    (log_probs,) = session.run(None, {"images": batch.numpy(), "widths": true_widths.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(log_probs), model(batch, true_widths),
                                   atol=1e-4, rtol=0)
