"""The fast start of ``ctcocr-predict``: its common command lines read without Hydra.

``ctcocr-predict ckpt_path=... inputs=... [output=] [format=] [boxes_dir=] [batch_size=]
[threads=] [device=] [precision=] [decoder=greedy]`` with plain values (a path, a number, ``null``,
a quoted string, a list ``[a,b]`` of plain values) is parsed here, with the defaults of
``configs/predict.yaml``; any other argument (``decoder=beam``, ``decoder.*``, ``hydra.*``, ``-m``,
``--help``, interpolations, ...) makes :func:`parse_predict_args` return None, and the command runs
as the Hydra app it always was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: An unquoted value the fast path takes as it is (anything else is left to Hydra's grammar).
_PLAIN = re.compile(r"[A-Za-z0-9_./~+@:%-]+")
_QUOTED = re.compile(r"""'([^'\\]*)'|"([^"\\]*)\"""")
_KEYS = {"ckpt_path", "inputs", "output", "format", "boxes_dir", "batch_size", "threads",
         "device", "precision", "decoder", "task_name", "extras.print_config"}


@dataclass
class PredictOptions:
    """The settings of ``configs/predict.yaml`` that the fast path reads (same defaults)."""

    ckpt_path: str
    inputs: str | list[str]
    output: str | None = None
    format: str = "tsv"
    boxes_dir: str | None = None
    batch_size: int = 32
    threads: int | None = None
    device: str = "cpu"
    precision: str = "32-true"


def _value(text: str) -> str | None:
    """A plain or quoted value -> its string (None for ``null``); raises ValueError otherwise."""
    quoted = _QUOTED.fullmatch(text)
    if quoted:
        return quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
    if text == "null":
        return None
    if not _PLAIN.fullmatch(text):
        raise ValueError(text)
    return text


def _list(text: str) -> list[str]:
    """``[a,b]`` of plain or quoted values without commas -> the strings."""
    if not (text.startswith("[") and text.endswith("]")):
        raise ValueError(text)
    items = [_value(item.strip()) for item in text[1:-1].split(",")] if text[1:-1] else []
    if any(item is None for item in items):
        raise ValueError(text)
    return items  # type: ignore[return-value]


def parse_predict_args(argv: list[str]) -> PredictOptions | None:
    """``key=value`` arguments -> the options, or None when one of them needs Hydra (an
    option the fast path lacks, a value beyond its plain grammar, a missing required key)."""
    settings: dict[str, str | list[str] | None] = {}
    for argument in argv:
        key, equals, text = argument.partition("=")
        if not equals or key not in _KEYS or key in settings:
            return None
        try:
            settings[key] = _list(text) if key == "inputs" and text.startswith("[") else _value(text)
        except ValueError:
            return None
    if settings.pop("decoder", "greedy") != "greedy":
        return None
    if settings.pop("extras.print_config", "false") != "false":
        return None
    settings.pop("task_name", None)
    if not settings.get("ckpt_path") or not settings.get("inputs"):
        return None
    for key in ("batch_size", "threads"):
        if settings.get(key) is not None:
            if not str(settings[key]).isdigit():
                return None
            settings[key] = int(settings[key])  # type: ignore[arg-type]
    if any(key in settings and settings[key] is None for key in ("format", "device", "precision")):
        return None
    return PredictOptions(**settings)  # type: ignore[arg-type]
