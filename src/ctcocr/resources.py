"""Files shipped inside the package: the Hydra configs, the committed fonts, the word list and the prose corpus.

They are found through :mod:`importlib.resources`, so an installed wheel works like a checkout.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

_ROOT = Path(str(files("ctcocr")))

#: The Hydra config tree (``train.yaml``, ``eval.yaml``, ... and one folder per config group).
CONFIG_DIR = str(_ROOT / "configs")
#: Openly licensed fonts for the synthetic renderer (see its README.md for their licences).
FONT_DIR = _ROOT / "resources" / "fonts"
#: Every second ASCII alphabetic word of SCOWL's american-english list (``words.LICENSE``).
WORDS_FILE = _ROOT / "resources" / "words.txt"
#: Public-domain English prose, one paragraph a line (``corpus.LICENSE``; scripts/build_corpus.py).
CORPUS_FILE = _ROOT / "resources" / "corpus.txt.gz"
