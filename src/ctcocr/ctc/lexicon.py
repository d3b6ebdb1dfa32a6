"""Word knowledge for :func:`ctcocr.ctc.beam.prefix_beam_search`: a lexicon trie and a character
n-gram prior, both built from words already encoded as class ids (e.g. with ``Charset.encode``).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

Word = tuple[int, ...]
Encoder = Callable[[str], Sequence[int]]


def encode_words(
    words: Iterable[str], encode: Encoder, skip_unknown: bool = False, source: str = "words"
) -> list[Word]:
    """Strings -> class-id tuples; empty strings are dropped.

    Args:
        words: the words (or lines).
        encode: text -> class ids, raising ``ValueError`` for characters it cannot encode.
        skip_unknown: skip (and log the count of) words that ``encode`` rejects instead of raising.
        source: name used in messages, e.g. a file path.
    """
    encoded, skipped = [], 0
    for number, word in enumerate(words, start=1):
        if not word:
            continue
        try:
            encoded.append(tuple(encode(word)))
        except ValueError as error:
            if not skip_unknown:
                raise ValueError(f"{source}:{number}: cannot encode {word!r}: {error}") from None
            skipped += 1
    if skipped:
        log.warning("%s: skipped %d of %d words that cannot be encoded", source, skipped, number)
    return encoded


def read_words(path: str | Path, encode: Encoder, skip_unknown: bool = False) -> list[Word]:
    """A UTF-8 word list, one word per line (empty lines skipped) -> class-id tuples; errors name
    the file and line (see :func:`encode_words`)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"word list not found: {path}") from None
    return encode_words(lines, encode, skip_unknown, source=str(path))


def _check_words(words: Iterable[Sequence[int]], space: int | None) -> list[Word]:
    checked = [tuple(int(token) for token in word) for word in words]
    if space is not None:
        joined = [word for word in checked if space in word]
        if joined:
            raise ValueError(f"{len(joined)} words hold the space token {space}, e.g. {joined[0]}")
    return checked


class Lexicon:
    """Prefix trie over encoded words; constrains decoding to sequences of lexicon words.

    With ``space`` set, an output is valid when every part between space tokens is a word (so no
    leading, trailing or double spaces); without it, the whole output must be one entry.

    Args:
        words: encoded words (class-id sequences, no blank); duplicates are fine.
        space: class id of the word separator, or ``None``.
    """

    root: int = 0

    def __init__(self, words: Iterable[Sequence[int]], space: int | None = None):
        self.space = space
        self._children: list[dict[int, int]] = [{}]
        self._is_word: list[bool] = [False]
        words = _check_words(words, space)
        self.classes: frozenset[int] = frozenset(t for word in words for t in word) | (
            frozenset() if space is None else {space}
        )
        """Every class id the lexicon can emit (words and space)."""
        for word in words:
            node = self.root
            for token in word:
                node = self._children[node].setdefault(token, len(self._children))
                if node == len(self._children):
                    self._children.append({})
                    self._is_word.append(False)
            self._is_word[node] = True
        if not any(self._is_word):
            raise ValueError("the lexicon has no words")

    def __len__(self) -> int:
        """Number of distinct words."""
        return sum(self._is_word)

    def is_word(self, node: int) -> bool:
        """Whether the prefix at ``node`` ends a word (a valid end of output)."""
        return self._is_word[node]

    def step(self, node: int, token: int) -> int | None:
        """Node after appending ``token`` to the prefix at ``node``; ``None`` when no word fits."""
        if token == self.space:
            return self.root if self._is_word[node] else None
        return self._children[node].get(token)

    def allowed(self, node: int) -> list[int]:
        """Tokens that may follow the prefix at ``node``."""
        tokens = list(self._children[node])
        if self.space is not None and self._is_word[node]:
            tokens.append(self.space)
        return tokens


class CharNgramPrior:
    """Character n-gram model with add-k smoothing, estimated from encoded words.

    ``log P(c | h) = log((N(h, c) + k) / (N(h) + k V))`` with ``h`` the previous ``order - 1``
    tokens of the current word (padded with a start symbol at the start of a word) and ``V`` the
    number of non-blank classes. With ``space`` set, the context restarts after each space token
    and every training word is followed by a space event (so ``P(space | h)`` is the probability
    that a word ends after ``h``).

    Args:
        words: encoded words (class-id sequences, no blank).
        num_classes: C, number of classes including the blank.
        order: n of the n-gram (1 = unigram, 2 = bigram, ...).
        smoothing: k of add-k smoothing, > 0.
        blank: blank class id (never predicted; its entry is -inf).
        space: class id of the word separator, or ``None``.
    """

    _START = -1

    def __init__(
        self,
        words: Iterable[Sequence[int]],
        num_classes: int,
        order: int = 2,
        smoothing: float = 1.0,
        blank: int = 0,
        space: int | None = None,
    ):
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if not smoothing > 0:
            raise ValueError(f"smoothing must be > 0, got {smoothing}")
        self.num_classes, self.order, self.smoothing = num_classes, order, smoothing
        self.blank, self.space = blank, space
        self._counts: dict[Word, Counter[int]] = {}  # context -> next-token counts
        for word in _check_words(words, space):
            bad = [token for token in word if not 0 <= token < num_classes or token == blank]
            if bad:
                raise ValueError(f"word {word} holds ids outside 1..{num_classes - 1}: {bad}")
            events = word + ((space,) if space is not None else ())
            for i, token in enumerate(events):
                self._counts.setdefault(self.context(word[:i]), Counter())[token] += 1
        self._rows: dict[Word, np.ndarray] = {}

    def context(self, prefix: Sequence[int]) -> Word:
        """The last ``order - 1`` tokens of the current word of ``prefix``, start-padded."""
        if self.space is not None:
            word_start = 1 + max((i for i, t in enumerate(prefix) if t == self.space), default=-1)
            prefix = prefix[word_start:]
        width = self.order - 1
        padded = (self._START,) * width + tuple(prefix)
        return padded[len(padded) - width :] if width else ()

    def next_log_probs(self, prefix: Sequence[int]) -> np.ndarray:
        """(C,) float64 ``log P(c | prefix)`` for every class ``c``; -inf for the blank."""
        context = self.context(prefix)
        row = self._rows.get(context)
        if row is None:
            observed = self._counts.get(context, Counter())
            counts = np.zeros(self.num_classes)
            counts[list(observed)] = list(observed.values())
            denominator = counts.sum() + self.smoothing * (self.num_classes - 1)
            row = np.log((counts + self.smoothing) / denominator)
            row[self.blank] = -math.inf
            self._rows[context] = row
        return row

    def log_prob(self, tokens: Sequence[int]) -> float:
        """``log P(tokens)``: the sum of the per-token log-probabilities (no end-of-line term)."""
        return float(sum(self.next_log_probs(tokens[:i])[t] for i, t in enumerate(tokens)))
