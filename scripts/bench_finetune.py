"""What fine-tuning from a trained checkpoint buys (issue #11's two measurements).

(a) Loading with a charset union keeps what the base model reads: the base recognizer and the
    fine-tuning start (``init_from`` with ``init_charset=union`` and added characters, step 0) read
    the same synthetic lines of the base charset; prints both accuracies and the largest change of
    a shared class's log-probability.
(b) Learning new characters: a task the base model lacks characters for (the renderer's text with
    accented Latin letters added to the charset) trained from scratch for ``--scratch-steps`` and
    fine-tuned from the base for a third of them (``ctcocr-train`` runs, the default recipe);
    prints the validation accuracy and CER of each run at each validation.

Example::

    python scripts/bench_finetune.py --base logs/train/runs/.../checkpoints/best.ckpt \
        --json logs/bench_finetune.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ctcocr.evaluation.metrics import evaluate
from ctcocr.recognition import Recognizer, inference_context
from ctcocr.resources import CONFIG_DIR
from ctcocr.training.finetune import fine_tuning_module

#: Letters the default (printable ASCII) charset lacks: French, German and Spanish accents.
ACCENTED = "àâäçéèêëîïôöùûüÿñßÀÂÄÇÉÈÊËÎÏÔÖÙÛÜÑ"
#: The renderer's mix for the new task: random strings carry the accented letters.
NEW_TASK_TEXT = ["+data.train.text={line:0.5,word:0.2,random:0.3,random_symbols:0.0}",
                 "+data.val.text={line:0.5,word:0.2,random:0.3,random_symbols:0.0}"]
SYNTHETIC_SPLITS = ("train", "val", "test")


def write_charset(base: Recognizer, folder: Path) -> Path:
    """The base model's characters plus :data:`ACCENTED`, one per line (charset=file)."""
    path = folder / "charset_accented.txt"
    chars = base.charset.characters + "".join(c for c in ACCENTED if c not in base.charset.characters)
    path.write_text("\n".join(chars) + "\n", encoding="utf-8")
    return path


def old_charset_lines(base: Recognizer, size: int) -> Any:
    """A loader of ``size`` synthetic validation lines drawn from the base model's charset."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"data.val.size={size}"])
    data = OmegaConf.merge(cfg.data, base.preprocessing)
    datamodule = instantiate(data, charset=base.charset, train=None)
    datamodule.setup("validate")
    return datamodule.val_dataloader()


def union_start(base_path: Path, charset_file: Path) -> Recognizer:
    """The recognizer ``ctcocr-train init_from=base init_charset=union`` starts from (step 0)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"init_from={base_path}", "init_charset=union",
                                          "charset=file", f"charset.file={charset_file}"])
    return fine_tuning_module(cfg).recognizer.eval()


def shared_log_prob_change(base: Recognizer, start: Recognizer, loader: Any) -> float:
    """Largest |log p| change of a base class (blank included) over the loader's frames."""
    columns = torch.tensor([0] + [start.charset.characters.index(c) + 1
                                  for c in base.charset.characters])
    worst = 0.0
    with inference_context("cpu"):
        for batch in loader:
            before, lengths = base(batch["images"], batch["widths"])
            after, _ = start(batch["images"], batch["widths"])
            valid = torch.arange(before.size(0))[:, None] < lengths[None, :]  # (T, B)
            change = (after[..., columns] - before).abs()[valid]
            worst = max(worst, float(change.max()))
    return worst


def measure_loading(base_path: Path, charset_file: Path, size: int) -> dict[str, Any]:
    base = Recognizer.from_checkpoint(base_path)
    start = union_start(base_path, charset_file)
    loader = old_charset_lines(base, size)
    before, _ = evaluate(base, loader)
    after, _ = evaluate(start, loader)
    return {"lines": size, "classes_before": base.charset.num_classes,
            "classes_after": start.charset.num_classes,
            "acc_before": before["acc"], "cer_before": before["cer"],
            "acc_after": after["acc"], "cer_after": after["cer"],
            "max_shared_log_prob_change": shared_log_prob_change(base, start, loader)}


def train_run(name: str, folder: Path, steps: int, validations: int,
              overrides: list[str]) -> list[dict[str, float]]:
    """One ``ctcocr-train`` run of ``steps`` steps; its validations as (step, acc, cer) rows."""
    run_dir = folder / name
    command = [sys.executable, "-m", "ctcocr.cli.train", f"hydra.run.dir={run_dir}",
               f"trainer.max_steps={steps}", f"trainer.val_check_interval={steps // validations}",
               "trainer.max_time=null", "logger=csv", "test=false", *NEW_TASK_TEXT, *overrides]
    print("$", " ".join(command[2:]), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    rows = []
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        for row in csv.DictReader(file):
            if row.get("val/acc"):
                rows.append({"step": int(row["step"]) + 1, "acc": float(row["val/acc"]),
                             "cer": float(row["val/cer"])})
    return rows


def measure_new_characters(base_path: Path, charset_file: Path, folder: Path,
                           scratch_steps: int, ratio: int) -> dict[str, Any]:
    charset = ["charset=file", f"charset.file={charset_file}"]
    scratch = train_run("scratch", folder, scratch_steps, 4, charset)
    finetuned = train_run("finetune", folder, scratch_steps // ratio, 4,
                          [*charset, f"init_from={base_path}", "init_charset=union"])
    return {"scratch": scratch, "finetune": finetuned,
            "scratch_best_acc": max(r["acc"] for r in scratch),
            "finetune_best_acc": max(r["acc"] for r in finetuned)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="the default model's checkpoint")
    parser.add_argument("--lines", type=int, default=1000, help="lines for (a)")
    parser.add_argument("--scratch-steps", type=int, default=4000,
                        help="the from-scratch run's steps (default: trainer=cpu's float32 budget)")
    parser.add_argument("--ratio", type=int, default=3, help="fine-tuning gets steps / ratio")
    parser.add_argument("--skip-training", action="store_true", help="measure (a) only")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    base_path = args.base.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        charset_file = write_charset(Recognizer.from_checkpoint(base_path), folder)
        results: dict[str, Any] = {"loading": measure_loading(base_path, charset_file, args.lines)}
        print("(a) loading with init_charset=union:", json.dumps(results["loading"], indent=1))
        if not args.skip_training:
            results["new_characters"] = measure_new_characters(
                base_path, charset_file, folder, args.scratch_steps, args.ratio)
            print("(b) learning accented letters (val exact, CER by step):")
            print("| run | step | acc | CER |\n|---|---|---|---|")
            for name in ("scratch", "finetune"):
                for row in results["new_characters"][name]:
                    print(f"| {name} | {row['step']} | {row['acc']:.4f} | {row['cer']:.4f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
