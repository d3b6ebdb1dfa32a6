"""Lines of program text as manuals and reports print them: dotted names, calls with keyword
arguments, assignments, comparisons, paths and format strings, built from dictionary words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

LITERALS = ("None", "True", "False", "0", "1", "-1", "0.5", "100", "''", "[]", "{}")
OPERATORS = (" = ", " == ", " != ", " += ", " < ", " >= ", "=")


def choice(rng: np.random.Generator, items: Sequence[Any]) -> Any:
    """One of ``items``, uniformly."""
    return items[int(rng.integers(len(items)))]


def identifier(rng: np.random.Generator, words: Sequence[str]) -> str:
    """A name: a word, two words in camelCase or snake_case, or a short name with a digit."""
    first, second = choice(rng, words).lower(), choice(rng, words).lower()
    style = rng.random()
    if style < 0.35:
        name = first
    elif style < 0.6:
        name = first + second[:1].upper() + second[1:]
    elif style < 0.8:
        name = f"{first}_{second}"
    else:
        name = first[: int(rng.integers(1, 4))]
    return name + str(int(rng.integers(0, 10))) if rng.random() < 0.2 else name


def value(rng: np.random.Generator, words: Sequence[str]) -> str:
    """An argument or right-hand side: a literal, a number, a name or a quoted word."""
    kind = rng.random()
    if kind < 0.3:
        return choice(rng, LITERALS)
    if kind < 0.55:
        return str(int(rng.integers(0, 1000))) if rng.random() < 0.7 else f"{rng.random() * 10:.2f}"
    if kind < 0.8:
        return identifier(rng, words)
    quote = choice(rng, "'\"")
    return f"{quote}{choice(rng, words).lower()}{quote}"


def dotted(rng: np.random.Generator, words: Sequence[str]) -> str:
    """One to three names joined by dots."""
    return ".".join(identifier(rng, words) for _ in range(int(rng.integers(1, 4))))


def call(rng: np.random.Generator, words: Sequence[str]) -> str:
    """``name.method(arg, key=value, ...)``."""
    arguments = []
    for _ in range(int(rng.integers(0, 5))):
        keyword = rng.random() < 0.4
        arguments.append(f"{identifier(rng, words)}={value(rng, words)}" if keyword
                         else value(rng, words))
    separator = ", " if rng.random() < 0.8 else ","
    return f"{dotted(rng, words)}({separator.join(arguments)})"


def statement(rng: np.random.Generator, words: Sequence[str]) -> str:
    """A call, an assignment, a condition, a path or a formatted string."""
    kind = rng.random()
    if kind < 0.4:
        return call(rng, words)
    if kind < 0.7:
        right = call(rng, words) if rng.random() < 0.4 else value(rng, words)
        return f"{dotted(rng, words)}{choice(rng, OPERATORS)}{right}"
    if kind < 0.8:
        return f"if {dotted(rng, words)}{choice(rng, OPERATORS[1:])}{value(rng, words)}:"
    if kind < 0.9:
        parts = [identifier(rng, words) for _ in range(int(rng.integers(1, 4)))]
        root = choice(rng, ("~/.", "/usr/", "./", ""))
        return root + "/".join(parts) + choice(rng, (".py", ".txt", ".cfg", "/", ""))
    fields = ": ".join(choice(rng, ("%s", "%d", "%r", "{}")) for _ in range(int(rng.integers(1, 3))))
    names = ", ".join(identifier(rng, words) for _ in range(int(rng.integers(1, 3))))
    return f'"{fields}" % ({names})'


def code_line(rng: np.random.Generator, words: Sequence[str], max_length: int) -> str:
    """Statements joined by spaces up to about ``max_length`` characters (at least one)."""
    text = statement(rng, words)
    while rng.random() < 0.3:
        more = statement(rng, words)
        if len(text) + 1 + len(more) > max_length:
            break
        text = f"{text} {more}"
    return text
