"""Fine-tuning: start a new training run from a trained recognizer's weights, with the same
network and preprocessing and the configured charset, the base charset or both.

Not a resume (``ckpt_path``): the optimizer, schedule and step count start afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

import torch
from omegaconf import DictConfig

from ctcocr.data.charset import Charset
from ctcocr.recognition.recognizer import Recognizer
from ctcocr.training.module import RecognizerModule

log = logging.getLogger(__name__)

class FineTuneError(ValueError):
    """A fine-tuning setting that cannot apply to the base model; the message says what to set."""


#: ``new``: the configured charset; ``union``: the base model's characters, then the configured
#: ones it lacks.
CharsetPolicy = Literal["new", "union"]


def fine_tuned_charset(base: Charset, configured: Charset, policy: CharsetPolicy) -> Charset:
    """The classes of the fine-tuned model under ``policy``."""
    if policy not in ("new", "union"):
        raise FineTuneError(f"init_charset must be 'new' or 'union', got {policy!r}")
    if base.case != configured.case:
        raise FineTuneError(f"the base model's charset has case={base.case!r}, the configured one "
                         f"case={configured.case!r}: give charset.case={base.case}")
    if base.unicode_normalization != configured.unicode_normalization:
        raise FineTuneError(
            f"the base model's charset has unicode_normalization={base.unicode_normalization!r}, "
            f"the configured one {configured.unicode_normalization!r}: give "
            f"charset.unicode_normalization={base.unicode_normalization or 'null'}")
    if policy == "new":
        return configured
    added = "".join(c for c in configured.characters if c not in base.characters)
    return Charset(base.characters + added, case=base.case,
                   unicode_normalization=base.unicode_normalization)


def config_differences(base: Mapping[str, Any], configured: Mapping[str, Any],
                       prefix: str) -> list[str]:
    """``prefix.key: base value != configured value`` for each key whose values differ (nested
    mappings compared key by key)."""
    differences = []
    for key in sorted(set(base) | set(configured)):
        name = f"{prefix}.{key}"
        old, new = base.get(key), configured.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            differences += config_differences(old, new, name)
        elif old != new:
            differences.append(f"{name}: {old!r} in the base model, {new!r} configured")
    return differences


def check_compatible(base: Recognizer, model: Mapping[str, Any],
                     preprocessing: Mapping[str, Any]) -> None:
    """Raise FineTuneError naming every model or preprocessing setting that differs from the
    base model's (weights only move between identical networks)."""
    differences = config_differences(base.model_config, model, "model")
    differences += config_differences(base.preprocessing, preprocessing, "data")
    if differences:
        raise FineTuneError("init_from: the configured network differs from the base model's; "
                             "configure it as the base model:\n  " + "\n  ".join(differences))


def transfer_weights(base: Recognizer, target: Recognizer) -> dict[str, int]:
    """Copy ``base``'s weights into ``target`` (same network, charsets may differ): the class
    rows of the output layers are copied by character (blank to blank); the rows of characters
    the base lacks keep ``target``'s fresh initialisation. Returns the number of ``kept`` and
    ``new`` characters and of base characters ``dropped``."""
    target_state = target.state_dict()
    class_params = {name for layer in target.model.class_layers()
                    for name, param in target.named_parameters()
                    if any(param is p for p in layer.parameters())}
    base_state = base.state_dict()
    for name, value in base_state.items():
        if name not in class_params:
            target_state[name] = value
    base_row = {c: i for i, c in enumerate(base.charset.characters, start=1)}
    rows = [(0, 0)] + [(i, base_row[c]) for i, c in enumerate(target.charset.characters, start=1)
                       if c in base_row]
    to_rows, from_rows = (torch.tensor(r) for r in zip(*rows))
    for name in class_params:
        target_state[name] = target_state[name].clone()
        target_state[name][to_rows] = base_state[name][from_rows]
    target.load_state_dict(target_state)
    kept = len(rows) - 1
    return {"kept": kept, "new": len(target.charset.characters) - kept,
            "dropped": len(base.charset.characters) - kept}


def fine_tuning_module(cfg: DictConfig) -> RecognizerModule:
    """The module of a composed ``train.yaml`` with ``init_from`` set: the configured network,
    loss and optimizer, the charset by ``init_charset``, and the base model's weights."""
    if cfg.get("ckpt_path"):
        raise FineTuneError("give either init_from (fine-tune: fresh optimizer and schedule) or "
                         "ckpt_path (resume a run), not both")
    base = Recognizer.from_checkpoint(cfg.init_from)
    configured = RecognizerModule.from_train_config(cfg)
    check_compatible(base, configured.recognizer.model_config, configured.recognizer.preprocessing)
    charset = fine_tuned_charset(base.charset, configured.charset, cfg.init_charset)
    module = RecognizerModule.from_train_config(cfg, charset=charset.to_config())
    counts = transfer_weights(base, module.recognizer)
    log.info("fine-tuning from %s: %d characters kept, %d new, %d dropped (init_charset=%s)",
             cfg.init_from, counts["kept"], counts["new"], counts["dropped"], cfg.init_charset)
    return module
