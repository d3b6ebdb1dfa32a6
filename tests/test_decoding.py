"""TextDecoder (greedy / beam / lexicon) and character spans in pixels."""

from __future__ import annotations

import pytest
import torch

from ctcocr.data.charset import Charset
from ctcocr.data.errors import DatasetError
from ctcocr.recognition.decoding import DEFAULT_OOV_PENALTY, TextDecoder, character_spans

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


WORDS_CHARSET = Charset("aehlop ")


def spread(frames: list[dict[str, float]], charset: Charset = WORDS_CHARSET) -> torch.Tensor:
    """(T, 1, C) log-probs: per frame the given probabilities of characters ("" is the blank),
    the rest of the mass spread evenly over the other classes."""
    probs = torch.zeros(len(frames), 1, charset.num_classes, dtype=torch.float64)
    for t, frame in enumerate(frames):
        ids = [charset.blank if c == "" else charset.encode(c)[0] for c in frame]
        rest = (1.0 - sum(frame.values())) / (charset.num_classes - len(frame))
        probs[t, 0] = rest
        probs[t, 0, ids] = torch.tensor(list(frame.values()), dtype=torch.float64)
    return probs.log()


def test_lexicon_corrects_near_misses_and_keeps_confident_oov_words(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("hello\nhelp\n")
    sure = [{"h": 0.9}, {"": 0.9}]
    hallo = [*sure, {"a": 0.55, "e": 0.4}, {"l": 0.9}, {"": 0.9}, {"l": 0.9}, {"o": 0.9}]
    halo = [*sure, {"a": 0.9}, {"": 0.9}, {"l": 0.9}, {"": 0.9}, {"o": 0.9}]
    log_probs = spread([*hallo, {" ": 0.9}, *halo])
    lengths = torch.tensor([log_probs.size(0)])

    def decode(**options) -> tuple[str, float]:
        decoded = TextDecoder(WORDS_CHARSET, kind="beam", lexicon=str(words), **options)(
            log_probs, lengths)
        return decoded.texts[0], float(decoded.confidences[0].log())

    assert TextDecoder(WORDS_CHARSET)(log_probs, lengths).texts == ["hallo halo"]
    strict_text, strict_log_p = decode(oov_penalty=None)
    assert strict_text.split()[0] == "hello" and strict_text.split()[1] in ("hello", "help")
    text, log_p = decode()  # the default penalty
    assert text == "hello halo"  # the near-miss is corrected, the confident reading kept
    assert log_p - strict_log_p > DEFAULT_OOV_PENALTY  # "halo" is far more probable than a word
    assert decode(oov_penalty=log_p - strict_log_p + 0.5)[0] == strict_text
    assert decode(oov_penalty=0.0)[0] == "hallo halo"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "greedy", "lexicon": "words.txt"}, "needs the beam decoder"),
        ({"kind": "greedy", "prior_weight": 0.3}, "needs the beam decoder"),
        ({"kind": "beam", "prior_weight": 0.3}, "prior_weight needs a lexicon"),
        ({"kind": "beam", "lexicon": "words.txt", "prior_weight": -0.3}, "prior_weight must be"),
        ({"kind": "beam", "beam_width": 0}, "beam_width must be >= 1"),
        ({"kind": "beam", "lexicon": "words.txt", "oov_penalty": -1.0}, "oov_penalty must be"),
        ({"kind": "beam", "oov_penalty": float("nan")}, "oov_penalty must be"),
        ({"kind": "viterbi"}, "greedy' or 'beam"),
    ],
)
def test_options_that_cannot_apply_raise(tmp_path, options, message):
    (tmp_path / "words.txt").write_text("cab\n")
    if "lexicon" in options:
        options = {**options, "lexicon": str(tmp_path / options["lexicon"])}
    with pytest.raises(ValueError, match=message):
        TextDecoder(CHARSET, **options)


def test_missing_lexicon_file(tmp_path):
    with pytest.raises(DatasetError, match="lexicon not found"):
        TextDecoder(CHARSET, kind="beam", lexicon=str(tmp_path / "missing.txt"))


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

    from ctcocr.resources import CONFIG_DIR

    config = OmegaConf.load(f"{CONFIG_DIR}/decoder/{name}.yaml")
    decoder = instantiate(config, charset=CHARSET)
    assert decoder.kind == name
    assert decoder(peaky([1, 0, 2]), torch.tensor([3])).texts == ["ab"]
    if name == "beam":  # the measured default travels with the config
        assert config.oov_penalty == DEFAULT_OOV_PENALTY
