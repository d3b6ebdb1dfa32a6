"""The evaluation pipeline's use of the metrics: confidences, NLL, calibration, temperature scaling,
frame statistics and report files, against brute-force references on tiny hand-made outputs."""

from __future__ import annotations

import csv
import itertools
import json
import math
import warnings

import lightning
import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from ctcocr.cli.eval import run as run_eval
from ctcocr.data.charset import Charset
from ctcocr.evaluation import (
    BatchOutputs,
    CalibrationStatistics,
    evaluate_outputs,
    fit_outputs_temperature,
    sequence_scores,
    write_alignments,
    write_report,
)
from ctcocr.metrics import frame_statistics
from ctcocr.recognition import TextDecoder, sequence_nll
from ctcocr.training.module import RecognizerModule
from tests.conftest import TINY, compose_config

CHARSET = Charset("ab")  # blank 0, a 1, b 2


def collapse(path: tuple[int, ...]) -> tuple[int, ...]:
    """CTC's many-to-one map: merge repeats, drop blanks."""
    merged = [label for index, label in enumerate(path) if index == 0 or label != path[index - 1]]
    return tuple(label for label in merged if label != 0)


def string_probability(probs: np.ndarray, target: tuple[int, ...]) -> float:
    """P(target) for per-frame probabilities (T, C): the sum over all C^T paths that collapse to it."""
    frames, classes = probs.shape
    return sum(math.prod(probs[t, path[t]] for t in range(frames))
               for path in itertools.product(range(classes), repeat=frames)
               if collapse(path) == target)


def hand_made_batch() -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray]]:
    """Two samples: 4 frames reading "ab", and 3 valid frames (one padded frame) reading "a"."""
    first = np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.5, 0.1, 0.4]])
    second = np.array([[0.3, 0.6, 0.1], [0.4, 0.5, 0.1], [0.8, 0.1, 0.1], [0.0, 0.0, 1.0]])
    log_probs = torch.log(torch.tensor(np.stack([first, second], axis=1).clip(1e-12)))
    return log_probs, torch.tensor([4, 3]), [first, second[:3]]


def test_three_confidences_match_brute_force():
    log_probs, lengths, probs = hand_made_batch()
    scores = sequence_scores(log_probs, lengths)
    assert scores.tokens == [[1, 2], [1]]
    for b, (tokens, p) in enumerate(zip(scores.tokens, probs)):
        maxima = p.max(1)
        kept = [t for t in range(len(p)) if p[t].argmax() != 0
                and (t == 0 or p[t].argmax() != p[t - 1].argmax())]
        assert float(scores.confidence[b]) == pytest.approx(string_probability(p, tuple(tokens)), rel=1e-9)
        assert float(scores.path_confidence[b]) == pytest.approx(maxima.prod(), rel=1e-6)
        assert float(scores.kept_confidence[b]) == pytest.approx(maxima[kept].mean(), rel=1e-6)


def test_ground_truth_nll_matches_brute_force_and_is_inf_when_infeasible():
    log_probs, lengths, probs = hand_made_batch()
    targets = torch.tensor([[2, 1, 0], [1, 1, 1]])  # "ba" (length 2); "aaa" needs 5 frames, has 3
    nll = sequence_nll(log_probs, lengths, targets, torch.tensor([2, 3]))
    assert float(nll[0]) == pytest.approx(-math.log(string_probability(probs[0], (2, 1))), rel=1e-9)
    assert math.isinf(float(nll[1]))


def outputs_of(log_probs, lengths, targets, target_lengths, labels) -> BatchOutputs:
    return BatchOutputs(log_probs.float(), lengths, targets, target_lengths, labels,
                        [f"sample {i}" for i in range(len(labels))], torch.zeros(0, 1, 8, 8),
                        torch.zeros(0, dtype=torch.long))


def test_evaluate_outputs_reports_calibration_nll_and_frames_of_the_string_confidence():
    log_probs, lengths, probs = hand_made_batch()
    targets, target_lengths = torch.tensor([[1, 2], [2, 0]]), torch.tensor([2, 1])
    outputs = [outputs_of(log_probs, lengths, targets, target_lengths, ["ab", "b"])]
    metrics, rows = evaluate_outputs(outputs, CHARSET)

    conf = [string_probability(probs[0], (1, 2)), string_probability(probs[1], (1,))]
    assert [row["prediction"] for row in rows] == ["ab", "a"]
    assert [row["confidence"] for row in rows] == pytest.approx(conf, rel=1e-5)
    assert metrics["acc"] == 0.5 and metrics["samples"] == 2
    # 15 equal-width bins: conf[0] ~ 0.33 and conf[1] ~ 0.79 fall into different bins
    assert metrics["ece"] == pytest.approx((abs(1 - conf[0]) + abs(0 - conf[1])) / 2, rel=1e-5)
    assert metrics["brier"] == pytest.approx(((1 - conf[0]) ** 2 + conf[1] ** 2) / 2, rel=1e-5)
    assert metrics["auroc"] == 0.0  # the wrong prediction is the more confident one
    gt = [string_probability(probs[0], (1, 2)), string_probability(probs[1], (2,))]
    assert metrics["nll"] == pytest.approx(-np.log(gt).mean(), rel=1e-5)
    assert metrics["infeasible"] == 0
    expected_frames = frame_statistics(log_probs.float(), lengths)
    for name, value in expected_frames.items():
        assert metrics[name] == pytest.approx(value, rel=1e-6)
    assert "temperature" not in metrics and "confidence_ts" not in rows[0]


def test_beam_decoder_scores_the_most_probable_string_where_the_greedy_path_misses_it():
    # every frame: blank 0.6, "a" 0.4: the best path is blank-blank (""), but P("a") = 0.64
    probs = np.array([[0.6, 0.4, 1e-9]] * 2)
    log_probs = torch.log(torch.tensor(probs))[:, None]  # (2, 1, 3)
    outputs = [outputs_of(log_probs, torch.tensor([2]), torch.tensor([[1]]), torch.tensor([1]),
                          ["a"])]
    greedy_metrics, greedy_rows = evaluate_outputs(outputs, CHARSET, temperature=2.0)
    beam = TextDecoder(CHARSET, kind="beam", beam_width=8)
    metrics, rows = evaluate_outputs(outputs, CHARSET, temperature=2.0, decoder=beam)
    assert (greedy_rows[0]["prediction"], rows[0]["prediction"]) == ("", "a")
    assert (greedy_metrics["acc"], metrics["acc"]) == (0.0, 1.0)
    assert rows[0]["confidence"] == pytest.approx(string_probability(probs, (1,)), rel=1e-6)
    tempered = torch.tensor(probs).log().div(2.0).softmax(-1).numpy()
    assert rows[0]["confidence_ts"] == pytest.approx(string_probability(tempered, (1,)), rel=1e-6)
    # the path confidence stays the greedy path's, whatever the decoder
    assert rows[0]["path_confidence"] == pytest.approx(0.36, rel=1e-6)


def overconfident_toy(samples: int, sharpness: float, seed: int = 0) -> tuple[BatchOutputs, torch.Tensor]:
    """One-frame lines whose labels are drawn from softmax(z) while the model says softmax(k z)."""
    generator = torch.Generator().manual_seed(seed)
    logits = 1.5 * torch.randn(samples, 3, generator=generator, dtype=torch.float64)
    logits = torch.cat([torch.full((samples, 1), -30.0, dtype=torch.float64), logits], dim=1)
    labels = torch.multinomial(logits.softmax(-1), 1, generator=generator)  # never the blank
    log_probs = (sharpness * logits).log_softmax(-1)[None]  # (1, N, C)
    texts = [CHARSET.decode([int(label)]) if int(label) <= 2 else "?" for label in labels]
    return outputs_of(log_probs, torch.ones(samples, dtype=torch.long), labels,
                      torch.ones(samples, dtype=torch.long), texts), labels


def test_temperature_scaling_repairs_an_overconfident_toy():
    # 3 non-blank classes; the charset has two letters, a third class is needed for the toy
    charset = Charset("abc")
    outputs, _ = overconfident_toy(3000, sharpness=4.0)
    outputs.texts = [charset.decode([int(label)]) for label in outputs.targets[:, 0]]
    temperature = fit_outputs_temperature([outputs])
    assert 3.2 < temperature < 4.8  # the sharpening factor, up to sampling noise
    metrics, rows = evaluate_outputs([outputs], charset, temperature)
    assert metrics["temperature"] == temperature
    assert metrics["nll_ts"] < metrics["nll"] - 0.2
    assert metrics["ece_ts"] < metrics["ece"] / 2
    assert metrics["acc"] == pytest.approx(np.mean([row["prediction"] == row["label"] for row in rows]))
    # one frame: the string confidence at T is the tempered top probability
    tempered = (outputs.log_probs[0].double() / temperature).softmax(-1).max(-1).values
    assert [row["confidence_ts"] for row in rows] == pytest.approx(tempered.tolist(), rel=1e-5)


def test_calibration_statistics_accumulate_batches_like_the_evaluation():
    charset = Charset("abc")
    outputs, _ = overconfident_toy(200, sharpness=3.0, seed=1)
    outputs.texts = [charset.decode([int(label)]) for label in outputs.targets[:, 0]]
    metrics, rows = evaluate_outputs([outputs], charset)
    accumulator = CalibrationStatistics()
    for part in (slice(0, 120), slice(120, 200)):
        predictions = [row["prediction"] for row in rows[part]]
        accumulator.update(outputs.log_probs[:, part], outputs.lengths[part], outputs.targets[part],
                           outputs.target_lengths[part], predictions, outputs.texts[part])
    for name, value in accumulator.compute().items():
        assert value == pytest.approx(metrics[name], rel=1e-5, nan_ok=True), name


def test_report_files(tmp_path):
    log_probs, lengths, _ = hand_made_batch()
    outputs = outputs_of(log_probs, lengths, torch.tensor([[1, 2], [2, 0]]), torch.tensor([2, 1]),
                         ["ab", "b"])
    outputs.images, outputs.widths = torch.rand(2, 1, 32, 16) * 2 - 1, torch.tensor([16, 12])
    metrics, rows = evaluate_outputs([outputs], CHARSET, temperature=2.0)
    write_report(tmp_path, metrics, rows)
    assert json.loads((tmp_path / "metrics.json").read_text())["ece_ts"] == pytest.approx(metrics["ece_ts"])
    with open(tmp_path / "predictions.csv", newline="") as handle:
        read = list(csv.DictReader(handle))
    assert [row["prediction"] for row in read] == ["ab", "a"]
    assert {"confidence", "path_confidence", "kept_confidence", "gt_nll", "confidence_ts"} <= set(read[0])
    assert write_alignments(tmp_path / "alignments.png", [outputs], CHARSET) is not None
    for name in ("reliability.png", "reliability_ts.png", "alignments.png"):
        with Image.open(tmp_path / name) as image:
            assert image.width > 100 and image.height > 100


def test_ctcocr_eval_writes_metrics_predictions_and_pictures(tmp_path):
    """ctcocr-eval's run() on an untrained tiny checkpoint: T fitted on val, test reported."""
    train_cfg = compose_config("train", TINY, tmp_path)
    module = RecognizerModule.from_train_config(train_cfg)
    checkpoint = tmp_path / "model.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "pytorch-lightning_version": lightning.__version__}, checkpoint)
    cfg = compose_config("eval", [f"ckpt_path={checkpoint}", "data=tiny", "split=test",
                                  "temperature_split=val",
                                  "extras.print_config=false"], tmp_path / "eval")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an untrained model: T at the search edge, AUROC undefined
        metrics = run_eval(cfg)
    GlobalHydra.instance().clear()
    assert metrics["samples"] == 32 and metrics["temperature"] > 0
    reported = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert reported["ece_ts"] == pytest.approx(metrics["ece_ts"])
    with open(tmp_path / "eval" / "predictions.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 32
    for name in ("reliability.png", "reliability_ts.png", "alignments.png"):
        assert (tmp_path / "eval" / name).is_file()
