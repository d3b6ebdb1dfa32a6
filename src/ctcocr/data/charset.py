"""The character set: maps label text to CTC class ids (blank = 0) and back."""

from __future__ import annotations

import string
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from ctcocr.data.errors import DatasetError

Case = Literal["sensitive", "lower", "upper"]
UnicodeForm = Literal["NFC", "NFD", "NFKC", "NFKD"]
UNICODE_FORMS = ("NFC", "NFD", "NFKC", "NFKD")

#: Printable ASCII without tab/newline: digits, letters, punctuation, space (95 characters).
PRINTABLE = (
    string.digits + string.ascii_lowercase + string.ascii_uppercase + string.punctuation + " "
)


class Charset:
    """Class ids for CTC: the blank is 0, the characters are 1..N in the given order.

    Args:
        chars: the characters, in class order (duplicates are an error).
        file: a UTF-8 file with one character per line, used instead of ``chars``; a line holding a
            single space is the space character, empty lines are ignored.
        case: ``"sensitive"`` keeps labels as they are; ``"lower"``/``"upper"`` map labels (and
            ``chars``) to that case, so ``"A"`` and ``"a"`` become one class.
        unicode_normalization: the Unicode normal form (``"NFC"``, ``"NFD"``, ``"NFKC"``,
            ``"NFKD"``) labels and ``chars`` are brought to after the case mapping, so that a
            character typed precomposed or as base + combining mark is one class; None keeps the
            code points as they are. A character that normalizes to several code points (``"é"``
            under NFD) gives a class to each.
    """

    blank: int = 0

    def __init__(self, chars: str | None = None, file: str | None = None, case: Case = "sensitive",
                 unicode_normalization: UnicodeForm | None = "NFC"):
        if case not in ("sensitive", "lower", "upper"):
            raise ValueError(f"case must be 'sensitive', 'lower' or 'upper', got {case!r}")
        if unicode_normalization not in (*UNICODE_FORMS, None):
            raise ValueError(f"unicode_normalization must be one of {', '.join(UNICODE_FORMS)} or "
                             f"null, got {unicode_normalization!r}")
        if (chars is None) == (file is None):
            raise ValueError("give exactly one of chars= or file=")
        self.case: Case = case
        self.unicode_normalization: UnicodeForm | None = unicode_normalization
        raw = list(chars) if chars is not None else _read_charset_file(Path(file))
        duplicates = sorted(c for c, n in Counter(raw).items() if n > 1)
        if duplicates:
            raise ValueError(f"charset has duplicate characters: {''.join(duplicates)!r}")
        if not raw:
            raise ValueError("charset is empty")
        # Normalizing may merge characters ("Aa" under "lower", "Å" and the Angstrom sign under
        # NFC) or split them ("é" under NFD): keep each code point's first occurrence.
        self.characters: str = "".join(dict.fromkeys("".join(map(self.normalize, raw))))
        self._index = {c: i + 1 for i, c in enumerate(self.characters)}

    @property
    def num_classes(self) -> int:
        """Number of CTC classes including the blank: N + 1."""
        return len(self.characters) + 1

    def __len__(self) -> int:
        return len(self.characters)

    def __repr__(self) -> str:
        return (f"Charset({len(self.characters)} characters, case={self.case!r}, "
                f"unicode_normalization={self.unicode_normalization!r})")

    def to_config(self) -> dict[str, str | None]:
        """The characters themselves, not the file they came from: what checkpoints and ONNX
        files store, so that a model's classes never depend on a file outside it."""
        return {"_target_": f"{type(self).__module__}.{type(self).__qualname__}",
                "chars": self.characters, "case": self.case,
                "unicode_normalization": self.unicode_normalization}

    def normalize(self, text: str) -> str:
        """A label as the classes spell it: the case mapping, then the Unicode normal form. The one
        label normalization of training, evaluation and ``ctcocr-check-data``."""
        if self.case == "lower":
            text = text.lower()
        elif self.case == "upper":
            text = text.upper()
        if self.unicode_normalization is None:
            return text
        return unicodedata.normalize(self.unicode_normalization, text)

    def unknown(self, text: str) -> set[str]:
        """Characters of the normalized ``text`` that have no class."""
        return {c for c in self.normalize(text) if c not in self._index}

    def encode(self, text: str) -> list[int]:
        """Normalized ``text`` -> class ids in 1..N; ``ValueError`` names unknown characters."""
        normalized = self.normalize(text)
        try:
            return [self._index[c] for c in normalized]
        except KeyError:
            missing = "".join(sorted(self.unknown(normalized)))
            raise ValueError(f"characters {missing!r} of {text!r} are not in the charset") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Class ids -> text; blanks (0) are dropped, repeats are kept (no CTC collapsing here)."""
        chars = []
        for i in ids:
            i = int(i)
            if i == self.blank:
                continue
            if not 0 < i <= len(self.characters):
                raise ValueError(f"class id {i} is outside 0..{len(self.characters)}")
            chars.append(self.characters[i - 1])
        return "".join(chars)


def _read_charset_file(path: Path) -> list[str]:
    """One character per line; a line with one space is the space; empty lines are skipped. A
    character may be written decomposed (base + combining marks): the entries are kept as written,
    the charset normalizes them."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetError(f"charset file not found: {path}") from None
    chars = []
    for number, line in enumerate(lines, start=1):
        if line == "":
            continue
        if len(unicodedata.normalize("NFC", line)) != 1:
            raise DatasetError(f"{path}:{number}: expected one character per line, got {line!r}")
        chars.append(line)
    return chars
