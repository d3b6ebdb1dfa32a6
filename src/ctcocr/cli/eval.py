"""ctcocr-eval: evaluate a checkpoint or ONNX file on any dataset config (``configs/eval.yaml``).

Writes to the run's output folder: ``metrics.json`` (accuracy, CER, calibration of the string
confidence, ground-truth NLL, frame statistics, and the same after temperature scaling fitted on
``temperature_split``), ``predictions.csv`` (source, label, prediction and the per-sample
confidences and NLL), ``by_group.csv`` (samples, CER and exact match per first folder of a folder
dataset's image paths), ``reliability.png``, ``reliability_ts.png``, ``alignments.png`` and
``worst_lines.png`` (the ``worst_lines`` lines of highest CER); prints the metrics, then the
per-group table when there are several groups. Strings are decoded by the ``decoder`` config
(greedy, or beam search with an optional lexicon); images are prepared as the model was trained.
Examples::

    ctcocr-eval ckpt_path=model.ckpt data=folder data.val=my_lines split=val
    ctcocr-eval ckpt_path=model.ckpt decoder=beam decoder.lexicon=words.txt
    make eval-real CKPT=model.ckpt  # the real printed lines of data/real_lines, per kind
"""

from __future__ import annotations

from typing import Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from ctcocr.cli.common import configure, user_errors
from ctcocr.evaluation import evaluate_sets, split_loader
from ctcocr.recognition import load_recognizer
from ctcocr.resources import CONFIG_DIR


def run(cfg: DictConfig) -> dict[str, Any]:
    configure(cfg)
    recognizer = load_recognizer(cfg.ckpt_path)
    splits = dict.fromkeys([cfg.split, cfg.temperature_split or cfg.split])
    loaders = {split: split_loader(cfg.data, recognizer, split) for split in splits}
    decoder = instantiate(cfg.decoder, charset=recognizer.charset)
    results = evaluate_sets(recognizer, loaders, {cfg.split: cfg.paths.output_dir}, cfg.device,
                            cfg.precision, cfg.temperature_split, decoder, cfg.worst_lines)
    return results[cfg.split]


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
