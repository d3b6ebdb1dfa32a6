import pytest
import torch

from ctcocr.models import CRNN, SmallBackbone, VGGBackbone


@pytest.mark.parametrize("backbone", [SmallBackbone, VGGBackbone], ids=["small", "vgg"])
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
    backbone = SmallBackbone(height=64, height_reduction=reduction)
    assert backbone.output_lengths(torch.tensor([4, 100, 128, 401])).tolist() == [1, 25, 32, 100]
    features = backbone(torch.randn(2, 1, 64, 100))
    assert features.shape == (2, 256, 64 // reduction, 25)
    assert CRNN(backbone, num_classes=5)(torch.randn(2, 1, 64, 100)).shape == (25, 2, 5)
    with pytest.raises(ValueError, match=f"divisible by {reduction}"):
        SmallBackbone(height=40, height_reduction=reduction)


def test_bf16_autocast_gives_float32_log_probs():
    model = CRNN(SmallBackbone(), num_classes=5, hidden_size=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 1, 32, 40))
    assert out.dtype == torch.float32
