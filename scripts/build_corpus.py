"""Build ``src/ctcocr/resources/corpus.txt.gz``: public-domain English prose, one paragraph a line,
in printable ASCII, from which the synthetic lines draw their text.

Sources (NLTK's data folder layout, e.g. from a checkout of the nltk repository's ``corpora``):
two Project Gutenberg novels by G. K. Chesterton (their Gutenberg header and licence footer
removed) and the US presidential inaugural addresses (US government works).

Usage: python scripts/build_corpus.py CORPORA_DIR [--out PATH]
"""

from __future__ import annotations

import argparse
import gzip
import re
import string
from pathlib import Path

from ctcocr.resources import CORPUS_FILE

GUTENBERG = ("chesterton-brown.txt", "chesterton-ball.txt")
TYPOGRAPHY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                            "\u2013": "-", "\u2014": "-", "_": None})
MIN_PARAGRAPH = 40


def gutenberg_body(text: str) -> str:
    """The book between Project Gutenberg's START and END markers."""
    start = re.search(r"^\*\*\* ?START OF .*$", text, re.M)
    end = re.search(r"^\*\*\* ?END OF .*$", text, re.M)
    if not (start and end):
        raise ValueError("no Project Gutenberg START/END markers")
    return text[start.end():end.start()]


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, each on one line, in printable ASCII."""
    printable = set(string.printable) - set("\t\r\x0b\x0c")
    result = []
    for block in re.split(r"\n\s*\n", text.translate(TYPOGRAPHY)):
        paragraph = " ".join(block.split())
        if len(paragraph) >= MIN_PARAGRAPH and set(paragraph) <= printable:
            result.append(paragraph)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", type=Path, help="folder with gutenberg/ and inaugural/")
    parser.add_argument("--out", type=Path, default=CORPUS_FILE)
    args = parser.parse_args()
    kept: list[str] = []
    for name in GUTENBERG:
        text = (args.corpora / "gutenberg" / name).read_text(encoding="latin-1")
        kept += paragraphs(gutenberg_body(text))
    for path in sorted((args.corpora / "inaugural").glob("*.txt")):
        # one address a file, paragraphs are single lines
        kept += paragraphs(path.read_text(encoding="latin-1").replace("\n", "\n\n"))
    with gzip.open(args.out, "wt", encoding="ascii") as out:
        out.write("\n".join(kept) + "\n")
    print(f"{len(kept)} paragraphs, {sum(map(len, kept))} characters -> {args.out}")


if __name__ == "__main__":
    main()
