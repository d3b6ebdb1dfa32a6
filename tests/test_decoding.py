"""TextDecoder (greedy / beam / lexicon) and character spans in pixels."""

from __future__ import annotations

import pytest
import torch

from ctcocr.data.charset import Charset
from ctcocr.data.policy import DatasetError
from ctcocr.decoding import TextDecoder, character_spans

CHARSET = Charset("abc ")


def peaky(frames: list[int], num_classes: int = 5, peak: float = 8.0) -> torch.Tensor:
    """(T, 1, C) log-probs whose per-frame argmax is ``frames``."""
    logits = torch.zeros(len(frames), 1, num_classes)
    logits[torch.arange(len(frames)), 0, torch.tensor(frames)] = peak
    return logits.log_softmax(-1)


def test_greedy_and_beam_agree_on_confident_frames():
    log_probs = peaky([1, 1, 0, 2, 0, 3, 3])  # "a", "b", "c"
    lengths = torch.tensor([7])
    greedy = TextDecoder(CHARSET)(log_probs, lengths)
    beam = TextDecoder(CHARSET, kind="beam", beam_width=5)(log_probs, lengths)
    assert greedy.texts == beam.texts == ["abc"]
    assert 0.0 < float(beam.confidences[0]) <= 1.0
    assert float(beam.confidences[0]) >= float(greedy.confidences[0])  # all alignments >= one path


def test_lexicon_turns_an_almost_word_into_the_word(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("cab\nbad\nzzz\n")  # "bad" and "zzz" cannot be spelled: skipped
    logits = torch.zeros(3, 1, 5)
    logits[0, 0, 3], logits[1, 0, 1], logits[2, 0, 1] = 5.0, 5.0, 5.0  # greedy reads "ca"
    logits[2, 0, 2] = 4.0  # ... but "cab" is nearly as likely at the last frame
    log_probs = logits.log_softmax(-1)
    lengths = torch.tensor([3])
    assert TextDecoder(CHARSET)(log_probs, lengths).texts == ["ca"]
    assert TextDecoder(CHARSET, kind="beam", lexicon=str(words))(log_probs, lengths).texts == ["cab"]


def test_decoder_configuration_errors(tmp_path):
    with pytest.raises(DatasetError, match="lexicon not found"):
        TextDecoder(CHARSET, kind="beam", lexicon=str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="needs the beam decoder"):
        TextDecoder(CHARSET, kind="greedy", lexicon=str(tmp_path / "x.txt"))
    with pytest.raises(ValueError, match="greedy' or 'beam"):
        TextDecoder(CHARSET, kind="viterbi")


def test_character_spans_follow_the_frames_that_emit_each_character():
    # 8 frames over a 32-pixel-wide input: 4 pixels per frame. "a" on frames 1-2, "b" on frame 5.
    log_probs = peaky([0, 1, 1, 0, 0, 2, 0, 0])
    spans = character_spans(log_probs, torch.tensor([8]), [[1, 2]], torch.tensor([32]))
    assert spans == [[(4.0, 12.0), (20.0, 24.0)]]
    # the same frames read at half the sample's length: padding frames past it are ignored
    half = character_spans(log_probs, torch.tensor([6]), [[1, 2]], torch.tensor([24]))
    assert half == [[(4.0, 12.0), (20.0, 24.0)]]


@pytest.mark.parametrize("name", ["greedy", "beam"])
def test_decoder_configs_instantiate(name):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from ctcocr.train import CONFIG_DIR

    decoder = instantiate(OmegaConf.load(f"{CONFIG_DIR}/decoder/{name}.yaml"), charset=CHARSET)
    assert decoder.kind == name
    assert decoder(peaky([1, 0, 2]), torch.tensor([3])).texts == ["ab"]
