"""ctcocr-report: grouping runs, mean and spread over seeds, the 2-standard-error rule, and the
loss-study sweep end to end on a tiny config."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ctcocr.cli.report import main
from ctcocr.evaluation.sweep_report import Summary, write_report
from tests.conftest import TINY

LOSSES = {
    "builtin": {"_target_": "ctcocr.losses.CTCLoss", "blank": 0},
    "smooth_targets_010": {"_target_": "ctcocr.losses.SmoothedCTCLoss", "eps": 0.1, "form": "targets"},
    "smooth_targets_020": {"_target_": "ctcocr.losses.SmoothedCTCLoss", "eps": 0.2, "form": "targets"},
}


def fake_run(sweep: Path, variant: str, seed: int, acc: float, ece: float, failed: bool = False) -> None:
    """A run folder as the loss study writes it: .hydra/config.yaml, val/ and shifted/ reports."""
    run = sweep / variant / f"seed_{seed}"
    (run / ".hydra").mkdir(parents=True)
    config = {"seed": seed, "study": {"variant": variant, "variants": LOSSES},
              "loss": "${study.variants.${study.variant}}"}
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    if failed:
        return
    for split in ("val", "shifted"):
        (run / split).mkdir()
        metrics = {"acc": acc, "cer": 1 - acc, "ece": ece, "ece_ts": ece / 2, "temperature": 1.2,
                   "nll": 2.0, "blank_ratio": 0.6, "entropy_blank": 0.1, "entropy_nonblank": 0.5}
        (run / split / "metrics.json").write_text(json.dumps(metrics))
        with open(run / split / "predictions.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["source", "label", "prediction", "confidence"])
            writer.writerows([["s1", "ab", "ab", 0.9], ["s2", "ab", "a", 0.6]])


def test_summary_is_mean_and_sample_standard_deviation():
    summary = Summary.of([0.5, 0.6, 0.9, float("nan")])
    assert (summary.mean, summary.count) == (pytest.approx(2 / 3), 3)
    assert summary.std == pytest.approx(math.sqrt(((0.5 - 2 / 3) ** 2 + (0.6 - 2 / 3) ** 2 + (0.9 - 2 / 3) ** 2) / 2))
    assert math.isnan(Summary.of([0.4]).std) and str(Summary.of([])) == "n/a"


def test_report_tables_and_differences_beyond_two_standard_errors(tmp_path):
    sweep = tmp_path / "sweep"
    for seed, (base, far, near) in enumerate([(0.50, 0.90, 0.52), (0.60, 0.95, 0.58), (0.70, 1.00, 0.66)], 1):
        fake_run(sweep, "builtin", seed, acc=base, ece=0.20)
        fake_run(sweep, "smooth_targets_010", seed, acc=far, ece=0.20)
        fake_run(sweep, "smooth_targets_020", seed, acc=near, ece=0.20)
    fake_run(sweep, "smooth_targets_020", 4, acc=0.0, ece=0.0, failed=True)
    report = write_report(sweep).read_text()

    # acc: builtin 0.6 +- 0.1, far 0.95 +- 0.05: difference 0.35 against 2 sqrt(0.01/3 + 0.0025/3)
    two_se = 2 * math.sqrt(0.1 ** 2 / 3 + 0.05 ** 2 / 3)
    assert f"smooth_targets_010, word acc.: +0.3500 (2 SE {two_se:.4f})" in report
    assert "smooth_targets_020, word acc." not in report  # 0.5867 vs 0.6: within the spread
    assert "| builtin | CTCLoss | 3 | 0.6000 ± 0.1000 |" in report
    assert "Runs without metrics (failed or unfinished), left out: 1" in report
    rows = [line for line in report.splitlines() if line.startswith("| smooth")]
    assert [row.split(" | ")[0] for row in rows[:2]] == ["| smooth_targets_010", "| smooth_targets_020"]
    for name in ("accuracy_vs_eps.png", "ece_vs_eps.png", "reliability_val.png", "reliability_shifted.png"):
        assert f"({name})" in report
        with Image.open(sweep / "report" / name) as image:
            assert image.width > 200


def test_missing_sweep_or_baseline_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "nothing")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: sweep folder not found")
    fake_run(tmp_path / "sweep", "smooth_targets_010", 1, acc=0.5, ece=0.1)
    with pytest.raises(SystemExit):
        main([str(tmp_path / "sweep")])
    assert "baseline variant 'builtin' not found" in capsys.readouterr().err


def test_loss_study_sweep_and_report_end_to_end(tmp_path):
    """A tiny multirun of 2 variants x 2 seeds with the loss study's own config, then the report."""
    tiny_shifted = [f"++shifted_data.{split}.{key}" for split in ("val", "test")
                    for key in ("size=16", "system_fonts=false")]
    command = [sys.executable, "-m", "ctcocr.cli.train", "-m", "experiment=loss_study", *TINY,
               *tiny_shifted, "data.val.size=16", "trainer.val_check_interval=4",
               "study.variant=builtin,smooth_targets_010",
               "seed=1,2"]
    # the preset's own sweep folder, under ./logs of the working directory
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "logs" / "loss_study" / "multiruns").iterdir()
    runs = sorted(path.relative_to(sweep).as_posix() for path in sweep.glob("*/seed_*"))
    assert runs == ["builtin/seed_1", "builtin/seed_2", "smooth_targets_010/seed_1",
                    "smooth_targets_010/seed_2"]
    for run in runs:
        for split in ("val", "shifted"):
            metrics = json.loads((sweep / run / split / "metrics.json").read_text())
            assert metrics["samples"] == 16 and metrics["temperature"] > 0
            assert np.isfinite([metrics["ece"], metrics["ece_ts"], metrics["blank_ratio"]]).all()
            assert (sweep / run / split / "alignments.png").is_file()
    events = EventAccumulator(str(sweep / runs[0] / "tensorboard"))
    events.Reload()
    assert "val/alignments" in events.Tags()["images"]
    assert {"val/ece", "val/nll", "val/blank_ratio"} <= set(events.Tags()["scalars"])
    report = subprocess.run([sys.executable, "-m", "ctcocr.cli.report", str(sweep)], capture_output=True, check=False,
                            text=True, timeout=120)
    assert report.returncode == 0, report.stderr[-3000:]
    text = (sweep / "report" / "report.md").read_text()
    assert "| builtin | CTCLoss | 2 |" in text and "| smooth_targets_010 | SmoothedCTCLoss, form=targets, eps=0.1 | 2 |" in text
