"""Unicode that makes labels differ where the text looks the same: one character written with
different code points, words mixing look-alike scripts, unusual spaces and invisible characters,
combining marks. Used by :mod:`ctcocr.data.check` on labels as written."""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterator

#: Scripts whose letters include look-alikes of each other (Latin a, Cyrillic а, Greek α ...).
LOOKALIKE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")
#: Unicode categories of spaces other than U+0020, line separators, control and format characters.
UNUSUAL_CATEGORIES = ("Zs", "Zl", "Zp", "Cc", "Cf")


def describe_character(char: str) -> str:
    """``'é' U+00E9 LATIN SMALL LETTER E WITH ACUTE``; the code points alone for a sequence."""
    codes = " ".join(f"U+{ord(c):04X}" for c in char)
    if len(char) != 1:
        return codes
    return f"{char!r} {codes} {unicodedata.name(char, '(unnamed)')}"


def _clusters(text: str) -> Iterator[str]:
    """Each character with the combining marks (categories M*) that follow it."""
    cluster = ""
    for char in text:
        if cluster and not unicodedata.category(char).startswith("M"):
            yield cluster
            cluster = ""
        cluster += char
    if cluster:
        yield cluster


def character_forms(text: str) -> Iterator[tuple[str, str]]:
    """(the character in NFC, the code points as written) for each character of ``text`` that has
    more than one canonical spelling: precomposed vs base + combining marks, or a singleton such as
    the Angstrom sign U+212B for U+00C5."""
    for cluster in _clusters(text):
        composed = unicodedata.normalize("NFC", cluster)
        if composed != cluster or unicodedata.normalize("NFD", cluster) != composed:
            yield composed, cluster


def _script(char: str) -> str | None:
    """LATIN, CYRILLIC or GREEK for a letter of that script, else None."""
    if not char.isalpha():
        return None
    script = unicodedata.name(char, "").split(" ", 1)[0]
    return script if script in LOOKALIKE_SCRIPTS else None


def mixed_script_words(text: str) -> Iterator[tuple[str, str]]:
    """(word, the letters of its minority scripts) for each whitespace-separated word whose
    letters come from more than one of Latin, Cyrillic and Greek: look-alikes typed by mistake
    ("Mоscow" with a Cyrillic о)."""
    for word in text.split():
        scripts = Counter(s for s in map(_script, word) if s is not None)
        if len(scripts) > 1:
            main = scripts.most_common(1)[0][0]
            yield word, "".join(c for c in word if _script(c) not in (None, main))


def unusual_characters(text: str) -> list[str]:
    """Spaces other than U+0020 (no-break, thin, ideographic ...), line separators, control and
    invisible format characters (zero-width space, joiners, byte order mark)."""
    return [c for c in text if c != " " and unicodedata.category(c) in UNUSUAL_CATEGORIES]


def has_stray_spaces(text: str) -> bool:
    """Whether ``text`` starts or ends with a space or holds two in a row."""
    return text != text.strip(" ") or "  " in text


def combining_marks(text: str) -> list[str]:
    """The combining marks (categories Mn, Mc, Me) of ``text``: classes of their own."""
    return [c for c in text if unicodedata.category(c).startswith("M")]
