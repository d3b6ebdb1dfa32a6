"""Label samplers: line-length excerpts of prose, dictionary words, random strings, number-like
tokens, short phrases and program text, all restricted to a charset.

The committed ``ctcocr/resources/words.txt`` (every second ASCII alphabetic word of SCOWL's american-english
list, see ``words.LICENSE`` beside it) is always used; the system dictionary is merged in when present
and enabled (it changes which words a seed draws, so switch it off for results that must match
across machines).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ctcocr.data.synthetic.code import choice, code_line
from ctcocr.data.synthetic.corpus import ProseExcerpts
from ctcocr.resources import WORDS_FILE

SYSTEM_WORDS_FILE = Path("/usr/share/dict/words")
CASES = ("lower", "capitalized", "upper")
PUNCTUATED = ("{}.", "{},", "{}:", "{};", "{}!", "{}?", "({})", '"{}"', "'{}'", "{}'s", "{}-")


@dataclass(frozen=True)
class TextConfig:
    """What the labels look like. Weights need not sum to 1; a kind the charset cannot express
    (phrases without a space, numbers without digits) gets weight 0. With ``case_fold``, a
    charset holding one case of a letter (e.g. lower-case only) still gets both cases drawn, and
    labels are mapped to the charset's case (the case-insensitive convention)."""

    line: float = 0.6
    word: float = 0.15
    random: float = 0.05
    number: float = 0.1
    phrase: float = 0.05
    code: float = 0.05
    case_weights: Mapping[str, float] = field(
        default_factory=lambda: {"lower": 0.6, "capitalized": 0.25, "upper": 0.15})
    punctuation: float = 0.15
    random_length: tuple[int, int] = (1, 10)
    # share of random strings drawn from every symbol (punctuation included), the rest alphanumeric
    random_symbols: float = 0.15
    phrase_words: tuple[int, int] = (2, 3)
    # prose excerpts: characters per line, and the share of lines with a number put in
    line_length: tuple[int, int] = (8, 48)
    line_numbers: float = 0.15
    # shares of the excerpts set as headings are: all capitals, or every word capitalized
    line_upper: float = 0.05
    line_title: float = 0.05
    max_length: int = 80
    system_dict: bool = True
    case_fold: bool = True

    def __post_init__(self) -> None:
        kinds = (self.line, self.word, self.random, self.number, self.phrase, self.code)
        if min(kinds) < 0 or max(kinds) <= 0:
            raise ValueError(f"text kind weights must be >= 0 with one > 0, got {kinds}")
        unknown_cases = set(self.case_weights) - set(CASES)
        if unknown_cases or min(self.case_weights.values(), default=0) < 0 or not any(
                self.case_weights.get(c, 0) > 0 for c in CASES):
            raise ValueError(f"case_weights needs weights >= 0 for {CASES}, one > 0; "
                             f"got {dict(self.case_weights)}")
        if not 1 <= self.random_length[0] <= self.random_length[1]:
            raise ValueError(f"random_length must be (min, max) with 1 <= min <= max, "
                             f"got {self.random_length}")
        if not 1 <= self.phrase_words[0] <= self.phrase_words[1]:
            raise ValueError(f"phrase_words must be (min, max) with 1 <= min <= max, "
                             f"got {self.phrase_words}")
        if not 1 <= self.line_length[0] <= self.line_length[1]:
            raise ValueError(f"line_length must be (min, max) with 1 <= min <= max, "
                             f"got {self.line_length}")
        shares = (self.punctuation, self.random_symbols, self.line_numbers, self.line_upper,
                  self.line_title)
        if self.max_length < 1 or not all(0 <= share <= 1 for share in shares) or \
                self.line_upper + self.line_title > 1:
            raise ValueError(f"need max_length >= 1 and punctuation, random_symbols, line_numbers, "
                             f"line_upper, line_title in [0, 1] (the last two summing to at most "
                             f"1), got {self.max_length}, {shares}")

    @classmethod
    def of(cls, value: TextConfig | Mapping[str, Any] | None) -> TextConfig:
        """A TextConfig from itself, a dict of fields (e.g. a Hydra node) or None (defaults)."""
        if value is None or isinstance(value, TextConfig):
            return value or cls()
        unknown = set(value) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown text config keys {sorted(unknown)}")
        merged = {**asdict(cls()), **dict(value)}
        merged["random_length"] = tuple(merged["random_length"])
        merged["phrase_words"] = tuple(merged["phrase_words"])
        merged["line_length"] = tuple(merged["line_length"])
        merged["case_weights"] = dict(merged["case_weights"])
        return cls(**merged)


@lru_cache(maxsize=2)
def load_words(system_dict: bool) -> tuple[str, ...]:
    """Sorted unique words (letters only) of the committed list, plus the system dictionary."""
    if not WORDS_FILE.is_file():
        raise FileNotFoundError(f"word list {WORDS_FILE} is missing")
    files = [WORDS_FILE]
    if system_dict and SYSTEM_WORDS_FILE.is_file():
        files.append(SYSTEM_WORDS_FILE)
    words = set()
    for path in files:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            word = line.strip()
            if word.isalpha():
                words.add(word)
    return tuple(sorted(words))


@lru_cache(maxsize=8)
def usable_words(chars: frozenset[str], max_length: int, system_dict: bool) -> tuple[str, ...]:
    """The words of at most ``max_length`` letters that ``chars`` can spell in some case."""
    return tuple(w for w in load_words(system_dict)
                 if len(w) <= max_length and any(set(_case(w, c)) <= chars for c in CASES))


def _case(word: str, case: str) -> str:
    if case == "upper":
        return word.upper()
    if case == "capitalized":
        return word[:1].upper() + word[1:]
    return word.lower()


def _cumulative(weights: list[float]) -> np.ndarray:
    return np.cumsum(np.asarray(weights, dtype=float))


def _pick(rng: np.random.Generator, cumulative: np.ndarray) -> int:
    """An index drawn with probability proportional to the weights behind ``cumulative``."""
    return int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))


def _case_partners(chars: frozenset[str]) -> dict[str, str]:
    """Other-case letter -> its partner, for the letters that have one case in ``chars``."""
    partners = {}
    for char in sorted(chars):
        for other in (char.upper(), char.lower()):
            if len(other) == 1 and other != char and other not in chars:
                partners[other] = char
    return partners


class TextSampler:
    """Draws texts to render over ``chars`` (plus, with ``case_fold``, the other case of its
    single-case letters) from a numpy Generator, and maps them to labels over ``chars``; the same
    generator state gives the same text."""

    def __init__(self, chars: str, config: TextConfig | Mapping[str, Any] | None = None):
        self.config = TextConfig.of(config)
        partners = _case_partners(frozenset(chars)) if self.config.case_fold else {}
        self._label_table = str.maketrans(partners)
        self.drawable = frozenset(chars) | set(partners)
        symbols = sorted(self.drawable - set(string.whitespace))
        if not symbols:
            raise ValueError(f"charset {chars!r} has no printable character")
        self.symbols = "".join(symbols)
        self.alnum = "".join(c for c in self.symbols if c.isalnum()) or self.symbols
        self.digits = "".join(c for c in self.symbols if c in string.digits)
        self.words = usable_words(self.drawable, self.config.max_length, self.config.system_dict)
        spaced = " " in self.drawable
        self.excerpts = ProseExcerpts(self.config.line_length) if self.config.line and spaced \
            else None
        kinds: dict[str, tuple[float, Callable[[np.random.Generator], str]]] = {
            "line": (self.config.line if spaced else 0.0, self._line),
            "word": (self.config.word if self.words else 0.0, self._word),
            "random": (self.config.random, self._random),
            "number": (self.config.number if self.digits else 0.0, self._number),
            "phrase": (self.config.phrase if self.words and spaced else 0.0,
                       self._phrase),
            "code": (self.config.code if self.words and spaced else 0.0, self._code),
        }
        self._kinds = [draw for weight, draw in kinds.values() if weight > 0]
        if not self._kinds:
            raise ValueError(f"charset {chars!r} can express none of the text kinds weighted > 0 "
                             f"in {self.config}")
        self._kind_weights = _cumulative([weight for weight, _ in kinds.values() if weight > 0])
        self._case_weights = _cumulative([self.config.case_weights.get(c, 0.0) for c in CASES])
        low, high = self.config.random_length
        self._random_length = (min(low, self.config.max_length), min(high, self.config.max_length))

    def _fits(self, text: str) -> bool:
        return set(text) <= self.drawable

    def _cased(self, word: str, case: str) -> str:
        """``word`` in ``case`` when the charset has it, else in the first case it has."""
        for candidate in (case, *CASES):
            cased = _case(word, candidate)
            if self._fits(cased):
                return cased
        raise AssertionError(f"{word!r} was kept but fits no case")

    def _punctuated(self, rng: np.random.Generator, word: str) -> str:
        """``word`` with, at the configured rate, punctuation as in running text (when it fits)."""
        if rng.random() >= self.config.punctuation:
            return word
        text = choice(rng, PUNCTUATED).format(word)
        return text if self._fits(text) and len(text) <= self.config.max_length else word

    def _word(self, rng: np.random.Generator) -> str:
        word = self._cased(choice(rng, self.words), CASES[_pick(rng, self._case_weights)])
        return self._punctuated(rng, word)

    def _random(self, rng: np.random.Generator) -> str:
        pool = self.symbols if rng.random() < self.config.random_symbols else self.alnum
        length = int(rng.integers(self._random_length[0], self._random_length[1] + 1))
        return "".join(choice(rng, pool) for _ in range(length))

    def _number(self, rng: np.random.Generator) -> str:
        year, month, day = rng.integers(1900, 2040), rng.integers(1, 13), rng.integers(1, 29)
        amount = rng.integers(0, 10 ** int(rng.integers(1, 7)))
        candidates = (
            f"{amount}",
            f"{amount:,}",
            f"{amount / 100:.2f}",
            f"${amount / 100:,.2f}",
            f"{rng.integers(0, 101)}%",
            f"{day:02d}/{month:02d}/{year}",
            f"{year}-{month:02d}-{day:02d}",
            f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}",
            f"{rng.integers(100, 1000)}-{rng.integers(0, 10000):04d}",
            f"#{rng.integers(1, 1000)}",
            f"-{amount / 10:.1f}",
        )
        text = choice(rng, candidates)
        return text if self._fits(text) else "".join(c for c in text if c in self.digits)

    def _line(self, rng: np.random.Generator) -> str:
        """A prose excerpt; at the configured rates one of its words becomes a number and the
        line is set in capitals or with every word capitalized. Characters the charset cannot
        draw are dropped."""
        words = self.excerpts.sample(rng).split()
        if words and rng.random() < self.config.line_numbers:
            words[int(rng.integers(len(words)))] = self._number(rng)
        heading = rng.random()
        if heading < self.config.line_upper:
            words = [_case(word, "upper") for word in words]
        elif heading < self.config.line_upper + self.config.line_title:
            words = [_case(word, "capitalized") for word in words]
        kept = ("".join(c for c in w if c in self.drawable) for w in words)
        return " ".join(w for w in kept if w)

    def _code(self, rng: np.random.Generator) -> str:
        """Program text (:func:`~ctcocr.data.synthetic.code.code_line`) without the characters
        the charset cannot draw."""
        text = code_line(rng, self.words, self.config.max_length)
        return "".join(c for c in text if c in self.drawable)

    def _phrase(self, rng: np.random.Generator) -> str:
        count = int(rng.integers(self.config.phrase_words[0], self.config.phrase_words[1] + 1))
        case = CASES[_pick(rng, self._case_weights)]
        words = [choice(rng, self.words) for _ in range(count)]
        cased = [self._cased(w, case if i == 0 or case == "upper" else "lower")
                 for i, w in enumerate(words)]
        cased = [self._punctuated(rng, w) for w in cased]
        while len(cased) > 1 and len(" ".join(cased)) > self.config.max_length:
            cased.pop()
        return " ".join(cased)

    def label(self, text: str) -> str:
        """The label of a sampled ``text``: its characters mapped into the charset."""
        return text.translate(self._label_table)

    def sample(self, rng: np.random.Generator) -> str:
        """One text to draw: stripped, non-empty, at most ``max_length`` characters of
        ``drawable`` (the charset and, with ``case_fold``, its letters' other case)."""
        text = self._kinds[_pick(rng, self._kind_weights)](rng)
        text = text[: self.config.max_length].strip()
        return text or choice(rng, self.alnum)
