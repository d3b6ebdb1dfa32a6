"""The synthetic line renderer: determinism, charset, fonts, degradation, DataLoader use."""

from __future__ import annotations

import re
import string
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFont
from torch.utils.data import DataLoader

from ctcocr.data.sample import Sample
from ctcocr.data.synthetic import SyntheticLines, TextSampler, split_fonts, usable_fonts
from ctcocr.data.synthetic.corpus import ProseExcerpts, load_corpus
from ctcocr.data.synthetic.degrade import affine, curve
from ctcocr.data.synthetic.fonts import BUILTIN, SYSTEM_FONT_DIRS, font_problem
from ctcocr.data.synthetic.render import _show_through
from ctcocr.data.synthetic.text import TextConfig

CHARS = string.digits + string.ascii_letters + string.punctuation + " "


def lines(**kwargs) -> SyntheticLines:
    """A small dataset over the built-in and committed fonts only (fast, same on every machine)."""
    options = {"size": 64, "seed": 3, "chars": CHARS, "system_fonts": False} | kwargs
    return SyntheticLines(**options)


def test_sample_is_a_pure_function_of_seed_and_index():
    first, second = lines(), lines()
    for index in (0, 5, 63):
        a, b, again = first[index], second[index], first[index]
        assert isinstance(a, Sample) and a.image.mode == "L"
        assert a.text == b.text == again.text == first.text(index)
        assert a.image.tobytes() == b.image.tobytes() == again.image.tobytes()
        assert a.image.size == b.image.size


def test_different_seeds_give_different_samples():
    a, b = lines(seed=1), lines(seed=2)
    assert [a.text(i) for i in range(32)] != [b.text(i) for i in range(32)]
    assert a[0].image.tobytes() != b[0].image.tobytes()


def test_labels_are_nonempty_stripped_and_within_the_charset():
    for chars in (CHARS, "0123456789", "abcdefghijklmnopqrstuvwxyz "):
        data = lines(size=400, chars=chars)
        for index in range(len(data)):
            text = data.text(index)
            assert text and text == text.strip() and len(text) <= TextConfig().max_length, text
            assert set(text) <= set(chars), (chars, text)


def test_text_mix_contains_every_kind():
    data = lines(size=2000)
    texts = [data.text(i) for i in range(len(data))]
    assert any(" " in t for t in texts)
    assert any(t.isdigit() for t in texts)
    assert any(t.isalpha() and t.isupper() and len(t) > 1 for t in texts)
    assert any(t.isalpha() and t[0].isupper() and t[1:].islower() for t in texts)
    assert any(t.isalpha() and t.islower() for t in texts)


def test_code_lines_hold_dotted_names_calls_and_operators_within_the_charset():
    code_only = {"line": 0, "word": 0, "random": 0, "number": 0, "phrase": 0, "code": 1}
    sampler = TextSampler(CHARS, code_only)
    texts = [sampler.sample(np.random.default_rng([7, i])) for i in range(300)]
    assert all(set(t) <= set(CHARS) and len(t) <= TextConfig().max_length for t in texts)
    assert sum(re.search(r"[a-z]\.[a-z]", t) is not None for t in texts) > 100
    assert sum(re.search(r"\w\(.*\)", t) is not None for t in texts) > 60
    assert sum("=" in t for t in texts) > 60
    assert any("_" in t for t in texts) and any(re.search(r"[a-z][A-Z]", t) for t in texts)
    no_symbols = TextSampler(string.ascii_lowercase + " ", code_only)
    labels = [no_symbols.label(no_symbols.sample(np.random.default_rng(i))) for i in range(50)]
    assert all(set(label) <= set(string.ascii_lowercase + " ") for label in labels)


def test_most_lines_are_prose_excerpts_of_line_length():
    data = lines(size=300)
    texts = [data.text(i) for i in range(len(data))]
    corpus = load_corpus().lower()  # heading lines are the corpus's words in capitals
    prose = [t for t in texts if t.lower() in corpus and " " in t]
    assert len(prose) > 0.5 * len(texts)
    low, high = TextConfig().line_length
    assert np.median([len(t) for t in prose]) >= (low + high) / 2 - 5
    assert max(len(t) for t in prose) <= high


def test_excerpts_are_whole_words_of_one_paragraph():
    text = "alpha beta gamma delta\nepsilon zeta eta theta iota\nsupercalifragilistic"
    excerpts = ProseExcerpts((5, 12), text)
    words = set(text.split())
    rng = np.random.default_rng(0)
    drawn = [excerpts.sample(rng) for _ in range(300)]
    assert all("\n" not in d and 1 <= len(d) <= 12 for d in drawn)
    cut = [d for d in drawn if d not in words and " " not in d]
    assert cut and all("supercalifragilistic".startswith(d) for d in cut)  # a long word is cut
    assert all(set(d.split()) <= words for d in drawn if d not in cut)
    assert {d.split()[0] for d in drawn} >= {"alpha", "gamma", "epsilon", "iota"}


def test_heading_lines_are_set_in_capitals_or_title_case():
    prose_only = {"line": 1, "word": 0, "random": 0, "number": 0, "phrase": 0, "code": 0,
                  "line_numbers": 0.0}
    upper = TextSampler(CHARS, prose_only | {"line_upper": 1.0, "line_title": 0.0})
    title = TextSampler(CHARS, prose_only | {"line_upper": 0.0, "line_title": 1.0})
    plain = TextSampler(CHARS, prose_only | {"line_upper": 0.0, "line_title": 0.0})
    for i in range(40):
        text = plain.sample(np.random.default_rng(i))
        assert upper.sample(np.random.default_rng(i)) == text.upper()
        assert title.sample(np.random.default_rng(i)).split() == [w[:1].upper() + w[1:]
                                                                   for w in text.split()]


def test_line_numbers_put_a_number_into_an_excerpt():
    with_numbers = {"line": 1.0, "word": 0, "random": 0, "number": 0, "phrase": 0,
                    "line_numbers": 1.0}
    sampler = TextSampler(CHARS, with_numbers)
    rng = np.random.default_rng(1)
    texts = [sampler.sample(rng) for _ in range(50)]
    assert all(any(c.isdigit() for c in t) for t in texts)


def test_charset_without_lowercase_gets_uppercase_words():
    words_only = {"line": 0, "word": 1.0, "random": 0, "number": 0, "phrase": 0, "case_fold": False}
    sampler = TextSampler(string.ascii_uppercase, words_only)
    rng = np.random.default_rng(0)
    words = [sampler.sample(rng) for _ in range(50)]
    assert all(w.isupper() and w.isalpha() and sampler.label(w) == w for w in words)


def test_case_fold_draws_both_cases_and_labels_in_the_charset_case():
    chars = string.digits + string.ascii_lowercase
    sampler = TextSampler(chars)
    rng = np.random.default_rng(0)
    drawn = [sampler.sample(rng) for _ in range(300)]
    assert any(c.isupper() for text in drawn for c in text)
    assert all(sampler.label(text) == text.lower() for text in drawn)
    data = lines(size=40, chars=chars)
    assert all(set(data[i].text) <= set(chars) and data[i].text == data.text(i) for i in range(40))


@pytest.mark.parametrize("text, message", [
    ({"words": 1.0}, "unknown text config keys"),
    ({"word": -1.0}, "weights must be >= 0"),
    ({"line": 0, "word": 0, "random": 0, "number": 0, "phrase": 0, "code": 0}, "one > 0"),
    ({"line_length": [30, 20]}, "line_length"),
    ({"line_numbers": 2.0}, "line_numbers"),
    ({"line_upper": 0.6, "line_title": 0.6}, "line_title"),
    ({"case_weights": {"lower": 0}}, "case_weights"),
    ({"random_length": [3, 2]}, "random_length"),
])
def test_invalid_text_config_is_rejected(text, message):
    with pytest.raises(ValueError, match=message):
        lines(text=text)


def test_index_out_of_range_raises_index_error():
    with pytest.raises(IndexError, match="out of range"):
        lines(size=4)[4]


def symbol_font_path() -> str | None:
    for folder in SYSTEM_FONT_DIRS:
        for name in ("StandardSymbolsPS.otf", "D050000L.otf"):
            found = next(folder.rglob(name), None) if folder.is_dir() else None
            if found:
                return str(found)
    return None


def test_font_filter_keeps_builtin_and_rejects_a_symbol_font():
    assert BUILTIN in usable_fonts(CHARS, system=False)
    assert font_problem(ImageFont.load_default(size=40), CHARS) is None
    path = symbol_font_path()
    if path is None:
        pytest.skip("no symbol font on this system")
    assert "do not look like letters" in font_problem(ImageFont.truetype(path, 40), CHARS)


class OneGlyphFont(ImageFont.FreeTypeFont):
    """A face that draws "I" for every character but its .notdef (so no glyph looks missing)."""

    def __init__(self):
        self.base = ImageFont.load_default(size=40)

    def _char(self, text: str) -> str:
        return text if text == "\U0010fffd" else "I"

    def getbbox(self, text, *args, **kwargs):
        return self.base.getbbox(self._char(text), *args, **kwargs)

    def getmask2(self, text, *args, **kwargs):
        return self.base.getmask2(self._char(text), *args, **kwargs)


def test_font_filter_rejects_a_font_drawing_one_glyph_for_everything():
    assert "distinct glyphs" in font_problem(OneGlyphFont(), CHARS)


def test_font_filter_rejects_missing_glyphs():
    assert "no glyph" in font_problem(ImageFont.load_default(size=40), CHARS + "\u4e2d")


def test_heldout_and_train_fonts_are_disjoint_families():
    fonts = usable_fonts(CHARS, system=False)
    train, heldout = split_fonts(fonts, "train"), split_fonts(fonts, "heldout")
    assert train and heldout and BUILTIN in train
    assert not {f.family for f in train} & {f.family for f in heldout}
    assert set(train) | set(heldout) == set(fonts) == set(split_fonts(fonts, "all"))
    heldout_data = lines(fonts="heldout")
    assert set(heldout_data.fonts) == set(heldout)
    used = {heldout_data[i].source.split("font=")[1].rstrip("]") for i in range(6)}
    assert used <= {f.name for f in heldout}


def test_degradation_changes_the_images():
    clean, heavy = lines(degradation=0.0), lines(degradation=2.0)
    assert [clean.text(i) for i in range(8)] == [heavy.text(i) for i in range(8)]
    differ = [clean[i].image.tobytes() != heavy[i].image.tobytes() for i in range(8)]
    assert all(differ)


def test_clean_image_is_dark_text_on_light_background():
    image = np.asarray(lines(degradation=0.0)[0].image, dtype=float)
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    assert np.median(border) > image.min() + 100


def test_show_through_is_faint_mirrored_text_over_the_whole_line():
    image = Image.new("L", (400, 40), 200)
    _show_through(image, ImageFont.load_default(size=24), np.random.default_rng(3), 200,
                  string.ascii_letters)
    pixels = np.asarray(image, dtype=int)
    assert pixels.max() <= 200 and pixels.min() >= 200 - 30  # never darker than 30 levels
    shaded = pixels < 200 - 2
    assert 0.05 < shaded.mean() < 0.8
    assert shaded[:, :200].any() and shaded[:, 200:].any()  # across the whole width


def collate(samples: list[Sample]) -> list[Sample]:
    return samples


def test_works_in_a_dataloader_with_two_workers():
    data = lines(size=8)
    loader = DataLoader(data, batch_size=4, num_workers=2, collate_fn=collate)
    got = [sample for batch in loader for sample in batch]
    assert [s.text for s in got] == [data.text(i) for i in range(8)]
    assert all(isinstance(s.image, Image.Image) for s in got)
    assert got[5].image.tobytes() == data[5].image.tobytes()


def test_affine_is_exact_at_identity_and_keeps_all_ink():
    image = Image.new("L", (120, 30), 255)
    image.paste(0, (2, 2, 118, 28))
    assert affine(image, 0.0, 0.0, 1.0, fill=255).tobytes() == image.tobytes()
    ink = 255.0 - np.asarray(image, dtype=float)
    moved = 255.0 - np.asarray(affine(image, 2.0, 0.15, 1.1, fill=255), dtype=float)
    assert moved.sum() == pytest.approx(1.1 * ink.sum(), rel=0.02)
    assert moved[0].max() < 255 and moved[:, 0].max() < 255  # nothing pushed past the edges


def test_curve_shifts_columns_and_is_exact_at_zero_amplitude():
    image = Image.new("L", (100, 40), 255)
    image.paste(0, (0, 18, 100, 22))  # a horizontal bar
    assert curve(image, 0.0, 0.3, 1.0, fill=255).tobytes() == image.tobytes()
    bent = np.asarray(curve(image, 6.0, 0.0, 0.5, fill=255))
    rows = [int(np.flatnonzero(bent[:, x] == 0)[0]) for x in range(100)]
    assert rows[0] == 18 and max(rows) == 24  # a half period of a sine: down by 6 in the middle
    assert (bent == 0).sum() == 400  # nothing pushed past the edges


def test_the_prose_corpus_holds_no_line_of_the_real_development_set():
    """The real lines measure generalisation: none may be in the text the renderer draws."""
    gt = Path(__file__).parents[2] / "data" / "real_lines" / "gt.txt"
    labels = [line.split("\t", 1)[1] for line in gt.read_text(encoding="utf-8").splitlines()]
    corpus = " ".join(load_corpus().split())
    assert len(labels) >= 150
    leaked = [label for label in labels if " ".join(label.split()) in corpus]
    assert not leaked
