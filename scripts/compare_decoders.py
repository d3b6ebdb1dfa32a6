"""What beam search and a lexicon change: one checkpoint, several decoders, per kind of text.

The network runs once per batch; each decoder reads the same log-probabilities. With the synthetic
data (the default), each of the renderer's text kinds (prose lines, dictionary words, phrases,
numbers, random strings) is its own set of lines, beside the renderer's default mix of them; any
other data config is one set. Prints a Markdown table of exact-match word accuracy per set and decoder (with the
decoding speed) and writes every metric (accuracy exact and case-insensitive, CER, lines/s) as
JSON. Decoders: greedy, beam, beam + lexicon restricted to its words (``oov_penalty`` null), beam +
lexicon with each ``--oov-penalty``, and beam + lexicon + trigram prior at the first penalty.
Example::

    python scripts/compare_decoders.py --ckpt best.ckpt --json decoders.json
    python scripts/compare_decoders.py --ckpt best.ckpt --oov-penalty 2 4 6 8 12 --size 1000
    python scripts/compare_decoders.py --ckpt best.ckpt --data folder --override data.val=/my/val

Without --lexicon, the lexicon is the vocabulary the synthetic renderer draws words from, in the
three cases it renders them (lower, Capitalized, UPPER).
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from ctcocr.data.synthetic.text import load_words
from ctcocr.evaluation import split_loader
from ctcocr.metrics import TextMetrics
from ctcocr.recognition import Recognizer, TextDecoder, inference_context
from ctcocr.recognition.decoding import DEFAULT_OOV_PENALTY
from ctcocr.resources import CONFIG_DIR

#: The renderer's text kinds (``TextConfig`` weights); "mixed" keeps the data config's own mix.
KINDS = ("line", "word", "phrase", "number", "random", "code")


def renderer_vocabulary(path: Path) -> Path:
    """Write the synthetic renderer's words, in its three cases, one per line."""
    words = load_words(system_dict=True)
    cased = {v for w in words for v in (w.lower(), w.capitalize(), w.upper())}
    path.write_text("\n".join(sorted(cased)))
    return path


def text_sets(data: DictConfig, split: str, kinds: list[str], size: int | None
              ) -> dict[str, DictConfig]:
    """Data configs by set name: one per text kind (synthetic data only) or the data as it is."""
    if "SyntheticLines" not in str(data[split].get("_target_", "")):
        return {"data": data}
    sets = {}
    for kind in kinds:
        config = copy.deepcopy(data)
        with open_dict(config):
            if size is not None:
                config[split].size = size
            if kind != "mixed":
                config[split].text = {k: float(k == kind) for k in KINDS}
        sets[kind] = config
    return sets


def decoders(recognizer: Recognizer, lexicon: str, beam_width: int, oov_penalties: list[float],
             prior_weight: float) -> dict[str, TextDecoder]:
    """The decoders to compare, by display name."""
    charset = recognizer.charset
    beam = f"beam {beam_width}"
    found = {
        "greedy": TextDecoder(charset),
        beam: TextDecoder(charset, "beam", beam_width),
        f"{beam} + lexicon only": TextDecoder(charset, "beam", beam_width, lexicon,
                                              oov_penalty=None),
    }
    for penalty in oov_penalties:
        found[f"{beam} + lexicon, OOV penalty {penalty:g}"] = TextDecoder(
            charset, "beam", beam_width, lexicon, oov_penalty=penalty)
    if prior_weight:
        found[f"{beam} + lexicon, OOV penalty {oov_penalties[0]:g} + prior {prior_weight:g}"] = (
            TextDecoder(charset, "beam", beam_width, lexicon, prior_weight, oov_penalties[0]))
    return found


def score(recognizer: Recognizer, batches: Iterable[dict[str, Any]],
          named: dict[str, TextDecoder]) -> dict[str, dict[str, float]]:
    """Metrics and decoding speed of each decoder on one set."""
    metrics = {name: TextMetrics(sync_on_compute=False) for name in named}
    seconds = dict.fromkeys(named, 0.0)
    with inference_context("cpu", "32-true"):
        for batch in batches:
            log_probs, lengths = recognizer(batch["images"], batch["widths"])
            for name, decoder in named.items():
                started = time.perf_counter()
                texts = decoder(log_probs, lengths).texts
                seconds[name] += time.perf_counter() - started
                metrics[name].update(texts, batch["texts"])
    return {name: {**{k: float(v) for k, v in metrics[name].compute().items()},
                   "lines": int(metrics[name].n_samples),
                   "lines_per_s": float(metrics[name].n_samples) / seconds[name]}
            for name in named}


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown: a row per decoder, exact-match accuracy per set, decoding lines/s (all sets)."""
    sets = list(results)
    names = list(results[sets[0]])
    lines = [f"| decoder | {' | '.join(sets)} | decoding lines/s |",
             f"|---|{'---|' * len(sets)}---|"]
    for name in names:
        total = sum(results[s][name]["lines"] for s in sets)
        speed = total / sum(results[s][name]["lines"] / results[s][name]["lines_per_s"]
                            for s in sets)
        accuracies = " | ".join(f"{results[s][name]['acc']:.2%}" for s in sets)
        lines.append(f"| {name} | {accuracies} | {speed:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--data", default="synth", help="a configs/data option")
    parser.add_argument("--override", action="append", default=[], help="Hydra override, repeatable")
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("--kinds", nargs="+", default=["mixed", *KINDS],
                        choices=["mixed", *KINDS], help="text sets (synthetic data)")
    parser.add_argument("--size", type=int, help="lines per set (synthetic data; default: the "
                        "data config's split size)")
    parser.add_argument("--lexicon", help="word list (default: the renderer's vocabulary)")
    parser.add_argument("--beam-width", type=int, default=10)
    parser.add_argument("--oov-penalty", type=float, nargs="+", default=[DEFAULT_OOV_PENALTY],
                        help="nats per word not in the lexicon, one decoder each")
    parser.add_argument("--prior-weight", type=float, default=0.3, help="0: no prior decoder")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        data = compose(config_name="eval", overrides=[f"data={args.data}", *args.override]).data
    recognizer = Recognizer.from_checkpoint(args.ckpt)
    lexicon = args.lexicon or str(renderer_vocabulary(Path(tempfile.mkdtemp()) / "words.txt"))
    named = decoders(recognizer, lexicon, args.beam_width, args.oov_penalty, args.prior_weight)
    results = {}
    for name, config in text_sets(data, args.split, args.kinds, args.size).items():
        results[name] = score(recognizer, split_loader(config, recognizer, args.split), named)
        print(f"{name}: {results[name]['greedy']['lines']} lines", flush=True)
    print(f"\nExact-match word accuracy, {args.split} split, {args.ckpt}:\n")
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"ckpt": args.ckpt, "split": args.split, "lexicon": args.lexicon or "renderer",
             "results": results}, indent=2))


if __name__ == "__main__":
    main()
