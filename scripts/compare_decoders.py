"""What beam search and a lexicon change: one checkpoint, one data split, several decoders.

The network runs once per batch; each decoder reads the same log-probabilities. Prints a
Markdown table (word accuracy exact and case-insensitive, CER, lines per second of decoding)
and writes JSON. Example::

    python scripts/compare_decoders.py --ckpt best.ckpt --lexicon words.txt --json out.json
    python scripts/compare_decoders.py --ckpt best.ckpt --data folder --override data.val=/my/val

Without --lexicon, the lexicon is the vocabulary the synthetic renderer draws words from, in the
three cases it renders them (lower, Capitalized, UPPER).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from ctcocr.data.synthetic.text import load_words
from ctcocr.decoding import TextDecoder
from ctcocr.evaluation import inference_context, load_module, split_loader
from ctcocr.metrics import TextMetrics
from ctcocr.train import CONFIG_DIR


def renderer_vocabulary(path: Path) -> Path:
    """Write the synthetic renderer's words, in its three cases, one per line."""
    words = load_words(system_dict=True)
    path.write_text("\n".join(sorted({v for w in words for v in (w.lower(), w.capitalize(), w.upper())})))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--data", default="synth", help="a configs/data option")
    parser.add_argument("--override", action="append", default=[], help="Hydra override, repeatable")
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("--lexicon", help="word list (default: the renderer's vocabulary)")
    parser.add_argument("--beam-width", type=int, default=10)
    parser.add_argument("--prior-weight", type=float, default=0.3)
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        data = compose(config_name="eval", overrides=[f"data={args.data}", *args.override]).data
    module = load_module(args.ckpt)
    lexicon = args.lexicon or str(renderer_vocabulary(Path(tempfile.mkdtemp()) / "words.txt"))
    decoders = {
        "greedy": TextDecoder(module.charset),
        f"beam {args.beam_width}": TextDecoder(module.charset, "beam", args.beam_width),
        f"beam {args.beam_width} + lexicon": TextDecoder(module.charset, "beam", args.beam_width, lexicon),
        f"beam {args.beam_width} + lexicon + prior {args.prior_weight}": TextDecoder(
            module.charset, "beam", args.beam_width, lexicon, args.prior_weight),
    }
    metrics = {name: TextMetrics(sync_on_compute=False) for name in decoders}
    seconds = dict.fromkeys(decoders, 0.0)
    with inference_context("cpu", "32-true"):
        for batch in split_loader(data, module.charset, args.split):
            log_probs, lengths = module(batch["images"], batch["widths"])
            for name, decoder in decoders.items():
                started = time.perf_counter()
                texts = decoder(log_probs, lengths).texts
                seconds[name] += time.perf_counter() - started
                metrics[name].update(texts, batch["texts"])
    results = {name: {**{k: float(v) for k, v in metrics[name].compute().items()},
                      "lines_per_s": float(metrics[name].n_samples) / seconds[name]} for name in decoders}
    print("| decoder | word acc | case-insensitive | CER | decoding lines/s |\n|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['acc']:.2%} | {r['acc_ci']:.2%} | {r['cer']:.2%} | {r['lines_per_s']:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"ckpt": args.ckpt, "results": results}, indent=2))


if __name__ == "__main__":
    main()
