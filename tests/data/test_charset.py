"""Charset: class ids, case mapping, unknown characters, file charsets and the charset configs."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from ctcocr.data.charset import Charset
from ctcocr.data.errors import DatasetError
from ctcocr.resources import CONFIG_DIR

CONFIGS = Path(CONFIG_DIR)


def test_blank_is_zero_and_characters_follow_in_order():
    charset = Charset("xyz")
    assert charset.blank == 0
    assert charset.num_classes == 4
    assert charset.encode("zxy") == [3, 1, 2]
    assert charset.decode([3, 0, 1, 0, 0, 2, 2]) == "zxyy"  # blanks dropped, repeats kept


def test_round_trip_of_every_character():
    charset = Charset(string.printable[:94] + " ")
    text = charset.characters[::-1] * 2
    assert charset.decode(charset.encode(text)) == text


def test_case_mapping():
    lower = Charset("abc", case="lower")
    assert lower.normalize("AbC") == "abc"
    assert lower.encode("CAB") == [3, 1, 2]
    assert lower.unknown("ABD") == {"d"}
    upper = Charset("ABC", case="upper")
    assert upper.encode("cab") == [3, 1, 2]
    sensitive = Charset("abc")
    assert sensitive.unknown("Abc") == {"A"}


def test_case_mapping_merges_characters_keeping_first_position():
    charset = Charset("aAbB", case="lower")
    assert charset.characters == "ab"
    assert charset.num_classes == 3


def test_unknown_characters_are_named():
    charset = Charset("abc")
    assert charset.unknown("abxzx") == {"x", "z"}
    with pytest.raises(ValueError, match="'xz'"):
        charset.encode("abxzx")


def test_decode_rejects_ids_outside_the_classes():
    with pytest.raises(ValueError, match="outside"):
        Charset("ab").decode([1, 3])


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"chars": "a", "file": "x"}, {"chars": ""}, {"chars": "aba"}, {"chars": "a", "case": "x"}],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        Charset(**kwargs)


def test_file_charset_one_character_per_line(tmp_path):
    path = tmp_path / "chars.txt"
    path.write_text("a\n \n\nb\r\né\n", encoding="utf-8")
    charset = Charset(file=str(path))
    assert charset.characters == "a bé"
    assert charset.encode("é a") == [4, 2, 1]


def test_file_charset_errors_name_file_and_line(tmp_path):
    path = tmp_path / "chars.txt"
    path.write_text("a\nbc\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"chars\.txt:2"):
        Charset(file=str(path))
    with pytest.raises(DatasetError, match="missing.txt"):
        Charset(file=str(tmp_path / "missing.txt"))


def _compose_charset(name: str, overrides: list[str] | None = None) -> Charset:
    with initialize_config_dir(str(CONFIGS / "charset"), version_base="1.3"):
        return instantiate(compose(name, overrides=overrides or []))


def test_printable_config_is_printable_ascii():
    charset = _compose_charset("printable")
    expected = set(string.printable) - set("\t\n\r\x0b\x0c")
    assert set(charset.characters) == expected
    assert len(charset.characters) == len(expected) == 95
    assert charset.case == "sensitive"


def test_alnum_lower_config():
    charset = _compose_charset("alnum_lower")
    assert charset.characters == string.digits + string.ascii_lowercase
    assert charset.encode("Ab1") == charset.encode("ab1")


def test_file_config(tmp_path):
    path = tmp_path / "chars.txt"
    path.write_text("q\nr\n", encoding="utf-8")
    charset = _compose_charset("file", [f"file={path}"])
    assert charset.characters == "qr"
