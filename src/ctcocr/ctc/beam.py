"""CTC prefix beam search with an optional lexicon constraint and a character n-gram prior.

Each hypothesis is a prefix (a collapsed, blank-free label string) with two log-probabilities:
``p_b`` (alignments so far end in a blank) and ``p_nb`` (they end in the prefix's last label).
Per frame, every prefix either stays (blank, or a repeat of its last label) or is extended by a
label ``c`` (from ``p_b`` only when ``c`` repeats the last label, so that "aa" needs a blank in
between). Extensions that reach a prefix already in the beam are merged into it. The
``beam_width`` best prefixes by score survive; the score is
``log(p_b + p_nb) + prior_weight * log P_prior(prefix) - oov_penalty * OOV words(prefix)`` (shallow
fusion: the prior's term is added when a label is appended).

A lexicon either constrains the search (``oov_penalty=None``: prefixes that cannot become a sequence
of lexicon words are never created) or biases it (``oov_penalty`` a number of nats): every word,
i.e. every space-separated part of the output, that is not in the lexicon costs ``oov_penalty``
once, paid when the word leaves the trie (a label no lexicon word continues with) or when it ends
(a space or the end of the line) on a trie node that is not a word. The cost of a string only
depends on the string, so merging prefixes stays exact. For a one-word line this is a likelihood
ratio test: the best lexicon word ``w`` beats the best free reading ``v`` iff
``log P(w | x) >= log P(v | x) - oov_penalty``, i.e. a lexicon word is accepted unless the model
reads something outside the lexicon ``exp(oov_penalty)`` times more probably. Equivalently, the
lexicon is a language model mixing "a lexicon word" with "any string" at a prior odds of
``exp(-oov_penalty)`` per word.

Per-frame work is vectorised with numpy over the batch, the beam and the candidate classes; the
prefixes themselves live in a tree shared by the whole batch (the Python part is O(B * beam) per
frame).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ctcocr.ctc.inputs import Lengths, as_lengths
from ctcocr.ctc.lexicon import CharNgramPrior, Lexicon

_NO_NODE = -1
_OOV = -2  # trie state of a prefix whose last word has left the lexicon


class Hypothesis(NamedTuple):
    """One decoded string of one sample."""

    tokens: list[int]
    """Collapsed, blank-free class ids."""
    log_prob: float
    """``log P(tokens | x)``, the sum over all alignments (= ``-ctc_loss(tokens)``), exact."""
    score: float
    """Ranking key: ``log_prob + prior_weight * prior.log_prob(tokens) - oov_penalty * (words
    of ``tokens`` not in the lexicon)`` (``log_prob`` without a prior or an OOV penalty)."""


class BeamSearchResult(NamedTuple):
    """Prefix beam search over a batch."""

    hypotheses: list[list[Hypothesis]]
    """Per sample, up to ``top_n`` hypotheses, best score first (fewer when the beam holds fewer
    distinct strings, or fewer lexicon-valid ones)."""
    lexicon_fallback: list[bool]
    """Per sample, True when a lexicon was given but no hypothesis fitted it, so ``hypotheses``
    holds the unconstrained result. Always False without a lexicon or with a finite
    ``oov_penalty`` (every string fits then)."""

    @property
    def tokens(self) -> list[list[int]]:
        """Best string per sample (as :attr:`GreedyResult.tokens`)."""
        return [hyps[0].tokens for hyps in self.hypotheses]


def prefix_beam_search(
    log_probs: Tensor,
    input_lengths: Lengths,
    beam_width: int = 10,
    top_n: int = 1,
    blank: int = 0,
    lexicon: Lexicon | None = None,
    prior: CharNgramPrior | None = None,
    prior_weight: float = 0.0,
    oov_penalty: float | None = None,
    prune_top_k: int | None = 16,
    prune_log_prob: float | None = -20.0,
) -> BeamSearchResult:
    """Best ``top_n`` strings per sample by CTC prefix beam search.

    Args:
        log_probs: (T, B, C) log-softmax outputs, any float dtype (searched in float64 on CPU).
        input_lengths: (B,) valid frames per sample, each in [1, T].
        beam_width: prefixes kept per frame.
        top_n: hypotheses returned per sample, in [1, beam_width].
        blank: index of the blank class.
        lexicon: restricts outputs to lexicon words (see :class:`Lexicon`), or with
            ``oov_penalty`` prefers them. Restricted, prefixes that cannot become words are never
            created, and when no final hypothesis of a sample is valid, that sample is decoded
            again without the lexicon and flagged in ``lexicon_fallback``.
        prior: character n-gram prior, used when ``prior_weight != 0``.
        prior_weight: weight of ``log P_prior`` in the score.
        oov_penalty: with a lexicon, ``None`` to restrict the output to lexicon words, or the
            cost in nats (>= 0) of each output word not in the lexicon (see the module's
            docstring); 0 makes the lexicon irrelevant and ``inf`` acts as ``None``.
        prune_top_k: per frame, extend only with the ``prune_top_k`` most probable non-blank
            classes; ``None`` for all.
        prune_log_prob: per frame, extend only with classes whose log-probability is at least
            this; ``None`` for all. With both pruning settings ``None`` and a ``beam_width`` at
            least the number of distinct strings, the search is exhaustive (exact).

    Returns:
        :class:`BeamSearchResult`. The ``log_prob`` of each returned string is recomputed
        exactly with :func:`torch.nn.functional.ctc_loss` (float64): pruning can drop alignments
        of a surviving prefix, so the search's own value is a lower bound.
    """
    lengths = _check_arguments(log_probs, input_lengths, beam_width, top_n, blank, prune_top_k)
    _check_word_models(lexicon, prior, log_probs.size(2), blank)
    if oov_penalty is not None and not oov_penalty >= 0:
        raise ValueError(f"oov_penalty must be >= 0 or None, got {oov_penalty}")
    scores = log_probs.detach().to("cpu", torch.float64)
    bad = scores.isnan().any(2).any(0).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"log_probs of samples {bad} contain NaN")
    search = _BeamSearch(
        scores.numpy(), lengths.numpy(), beam_width, blank,
        prior if prior_weight != 0 else None, prior_weight, oov_penalty, prune_top_k,
        prune_log_prob,
    )
    everyone = np.arange(log_probs.size(1))
    finals = search.run(everyone, lexicon)
    fallback = [lexicon is not None and not final for final in finals]
    unfitted = everyone[fallback]
    if len(unfitted):
        for b, final in zip(unfitted, search.run(unfitted, None)):
            finals[b] = final
    dead = [b for b, final in enumerate(finals) if not final]
    if dead:
        raise ValueError(f"samples {dead}: every string has probability 0 (all -inf log_probs)")
    return BeamSearchResult(_exact_top_n(scores, lengths, finals, top_n, blank), fallback)


def _check_arguments(
    log_probs: Tensor,
    input_lengths: Lengths,
    beam_width: int,
    top_n: int,
    blank: int,
    prune_top_k: int | None,
) -> Tensor:
    """Validate the search arguments; returns the (B,) int64 CPU lengths."""
    if log_probs.dim() != 3 or not log_probs.is_floating_point():
        raise ValueError(f"log_probs must be a (T, B, C) float tensor, got {log_probs.dtype} "
                         f"{tuple(log_probs.shape)}")
    num_frames, batch_size, num_classes = log_probs.shape
    if num_classes < 2:
        raise ValueError(f"log_probs need a blank and a label, got {num_classes} classes")
    if not 0 <= blank < num_classes:
        raise ValueError(f"blank {blank} is not a class index in [0, {num_classes})")
    if beam_width < 1 or not 1 <= top_n <= beam_width:
        raise ValueError(f"need beam_width >= 1 and 1 <= top_n <= beam_width, got {beam_width}, "
                         f"{top_n}")
    if prune_top_k is not None and prune_top_k < 1:
        raise ValueError(f"prune_top_k must be >= 1 or None, got {prune_top_k}")
    lengths = as_lengths(input_lengths, batch_size, torch.device("cpu"))
    bad = ((lengths < 1) | (lengths > num_frames)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"input_lengths must lie in [1, {num_frames}]; samples {bad} have "
                         f"{lengths[bad].tolist()}")
    return lengths


def _check_word_models(
    lexicon: Lexicon | None, prior: CharNgramPrior | None, num_classes: int, blank: int
) -> None:
    if lexicon is not None:
        bad = sorted(t for t in lexicon.classes if not 0 <= t < num_classes or t == blank)
        if bad:
            raise ValueError(f"lexicon uses ids {bad}, outside the non-blank classes of "
                             f"{num_classes}")
    if prior is not None and (prior.num_classes, prior.blank) != (num_classes, blank):
        raise ValueError(f"prior was built for {prior.num_classes} classes with blank "
                         f"{prior.blank}, log_probs have {num_classes} with blank {blank}")


class _Final(NamedTuple):
    """A surviving prefix at the end of a sample: labels, search log-probability, fusion term."""

    tokens: tuple[int, ...]
    log_prob: float
    fusion: float


class _Beam(NamedTuple):
    """The beams of N samples, W slots each; a free slot has node -1 and -inf probabilities."""

    nodes: np.ndarray  # (N, W) int, prefix-tree node of each slot
    last: np.ndarray  # (N, W) int, last label of the prefix, -1 for none
    p_b: np.ndarray  # (N, W) float64, log P(prefix, alignment ends in blank)
    p_nb: np.ndarray  # (N, W) float64, log P(prefix, alignment ends in its last label)
    fusion: np.ndarray  # (N, W) float64, prior and OOV terms of the prefix's score


class _BeamSearch:
    """The search over numpy float64 log-probs (T, B, C); prefixes are nodes of one tree shared by
    all samples (node 0 is the empty prefix)."""

    def __init__(
        self,
        log_probs: np.ndarray,
        lengths: np.ndarray,
        beam_width: int,
        blank: int,
        prior: CharNgramPrior | None,
        prior_weight: float,
        oov_penalty: float | None,
        prune_top_k: int | None,
        prune_log_prob: float | None,
    ):
        self.log_probs, self.lengths, self.blank = log_probs, lengths, blank
        self.beam_width, self.prior, self.prior_weight = beam_width, prior, prior_weight
        # score term of a word that leaves the lexicon: -inf forbids it
        self.oov_cost = -math.inf if oov_penalty is None else -oov_penalty
        self.labels = np.delete(np.arange(log_probs.shape[2]), blank)
        self.prune_top_k = prune_top_k if prune_top_k and prune_top_k < len(self.labels) else None
        self.prune_log_prob = prune_log_prob
        self.prefix: list[tuple[int, ...]] = [()]
        self.parent: list[int] = [_NO_NODE]
        self.children: dict[tuple[int, int], int] = {}
        self.prior_rows: dict[int, np.ndarray] = {}
        self.lexicon: Lexicon | None = None
        self.lex_node: dict[int, int] = {}  # prefix node -> trie node of its last word, or _OOV
        self.lexicon_rows: dict[int, np.ndarray] = {}

    def run(self, samples: np.ndarray, lexicon: Lexicon | None) -> list[list[_Final]]:
        """Search ``samples`` (indices into the batch) -> per sample, its valid final prefixes."""
        self.lexicon, self.lexicon_rows = lexicon, {}
        self.lex_node = {0: lexicon.root} if lexicon is not None else {}
        log_probs, lengths = self.log_probs[:, samples], self.lengths[samples]
        shape = (len(samples), self.beam_width)
        beam = _Beam(np.full(shape, _NO_NODE), np.full(shape, _NO_NODE), np.full(shape, -math.inf),
                     np.full(shape, -math.inf), np.zeros(shape))
        beam.nodes[:, 0], beam.p_b[:, 0] = 0, 0.0
        for t in range(int(lengths.max())):
            frame = log_probs[t].copy()  # (N, C)
            done = lengths <= t  # finished samples see a certain blank: their beam is unchanged
            frame[done] = -math.inf
            frame[done, self.blank] = 0.0
            beam = self._step(beam, frame)

        total = np.logaddexp(beam.p_b, beam.p_nb)
        finals: list[list[_Final]] = []
        for i in range(len(samples)):
            final = []
            for w, node in enumerate(beam.nodes[i].tolist()):
                end = self._end_cost(node) if node != _NO_NODE else -math.inf
                if end > -math.inf:
                    final.append(_Final(self.prefix[node], float(total[i, w]),
                                        float(beam.fusion[i, w]) + end))
            finals.append(final)
        return finals

    def _step(self, beam: _Beam, frame: np.ndarray) -> _Beam:
        """One frame (N, C): stay or extend every prefix, keep the W best by score."""
        rows = np.arange(len(frame))[:, None]
        total = np.logaddexp(beam.p_b, beam.p_nb)
        stay_b = total + frame[:, self.blank, None]
        with_none = np.concatenate([frame, np.full((len(frame), 1), -math.inf)], axis=1)
        stay_nb = beam.p_nb + with_none[rows, beam.last]  # repeat of the last label (-1: none)

        labels, label_scores = self._candidates(frame)  # (N, K)
        repeat = labels[:, None, :] == beam.last[:, :, None]  # (N, W, K)
        extend = np.where(repeat, beam.p_b[:, :, None], total[:, :, None]) + label_scores[:, None]
        # An extension that reaches a prefix already in the beam is merged into that prefix.
        parent = self._parents_in_beam(beam.nodes)  # (N, W) beam slot of the parent, or -1
        bi, wi = np.nonzero(parent >= 0)
        pw, label = parent[bi, wi], beam.last[bi, wi]
        from_parent = np.where(beam.last[bi, pw] == label, beam.p_b[bi, pw], total[bi, pw])
        stay_nb[bi, wi] = np.logaddexp(stay_nb[bi, wi], from_parent + frame[bi, label])
        merged, merged_k = np.nonzero(labels[bi] == label[:, None])
        extend[bi[merged], pw[merged], merged_k] = -math.inf
        extend_fusion = np.broadcast_to(beam.fusion[:, :, None], extend.shape)
        if self.lexicon is not None:
            extend_fusion = extend_fusion + self._per_label(self._lexicon_row, beam.nodes, labels)
        if self.prior is not None:
            extend_fusion = extend_fusion + self.prior_weight * self._per_label(
                self._prior_row, beam.nodes, labels)
        return self._select(beam, stay_b, stay_nb, labels, extend, extend_fusion)

    def _select(
        self,
        beam: _Beam,
        stay_b: np.ndarray,
        stay_nb: np.ndarray,
        labels: np.ndarray,
        extend: np.ndarray,
        extend_fusion: np.ndarray,
    ) -> _Beam:
        """The W best of the N x (W stays + W * K extensions) by score, as the next beam.

        ``stay_b``, ``stay_nb`` (N, W); ``labels`` (N, K); ``extend``, ``extend_fusion`` (N, W, K)
        log P and fusion term of each prefix extended by each label.
        """
        rows, width = np.arange(len(labels))[:, None], self.beam_width
        scores = np.concatenate([np.logaddexp(stay_b, stay_nb) + beam.fusion,
                                 (extend + extend_fusion).reshape(len(labels), -1)], axis=1)
        chosen = np.argpartition(-scores, width - 1, axis=1)[:, :width]
        alive = np.isfinite(np.take_along_axis(scores, chosen, 1))
        stays = chosen < width
        source = np.where(stays, chosen, (chosen - width) // labels.shape[1])
        k = np.where(stays, 0, (chosen - width) % labels.shape[1])
        new_label = labels[rows, k]
        nodes = np.where(alive & stays, beam.nodes[rows, source], _NO_NODE)
        for i, w in zip(*np.nonzero(alive & ~stays)):
            nodes[i, w] = self._child(int(beam.nodes[i, source[i, w]]), int(new_label[i, w]))
        return _Beam(
            nodes,
            np.where(alive, np.where(stays, beam.last[rows, source], new_label), _NO_NODE),
            np.where(alive & stays, stay_b[rows, source], -math.inf),
            np.where(alive, np.where(stays, stay_nb[rows, source], extend[rows, source, k]),
                     -math.inf),
            np.where(alive, np.where(stays, beam.fusion[rows, source],
                                     extend_fusion[rows, source, k]), 0.0),
        )

    def _candidates(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels the prefixes may be extended with at this frame and their log-probs, (N, K)."""
        scores = frame[:, self.labels]
        labels = np.broadcast_to(self.labels, scores.shape)
        if self.prune_top_k is not None:
            top = np.argpartition(-scores, self.prune_top_k - 1, axis=1)[:, : self.prune_top_k]
            labels, scores = np.take_along_axis(labels, top, 1), np.take_along_axis(scores, top, 1)
        if self.prune_log_prob is not None:
            scores = np.where(scores >= self.prune_log_prob, scores, -math.inf)
        return labels, scores

    def _child(self, node: int, token: int) -> int:
        """Node of ``prefix(node) + token``, created on first use."""
        found = self.children.get((node, token))
        if found is None:
            found = self.children[node, token] = len(self.prefix)
            self.prefix.append(self.prefix[node] + (token,))
            self.parent.append(node)
        if self.lexicon is not None and found not in self.lex_node:
            parent = self.lex_node[node]
            if token == self.lexicon.space:
                self.lex_node[found] = self.lexicon.root
            else:
                step = self.lexicon.step(parent, token) if parent != _OOV else None
                self.lex_node[found] = _OOV if step is None else step
        return found

    def _parents_in_beam(self, nodes: np.ndarray) -> np.ndarray:
        """(N, W) beam slot of each prefix's parent prefix when it is in the same beam, else -1."""
        out = np.full(nodes.shape, -1)
        for i, beam in enumerate(nodes.tolist()):
            slot = {node: w for w, node in enumerate(beam) if node != _NO_NODE}
            for w, node in enumerate(beam):
                if node > 0:  # a free slot or the empty prefix has no parent
                    out[i, w] = slot.get(self.parent[node], -1)
        return out

    def _per_label(self, row_of, nodes: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """(N, W, K) values ``row_of(node)[label]`` for every slot's node and candidate label."""
        per_slot = np.repeat(labels, nodes.shape[1], axis=0)  # (N * W, K)
        values = [row_of(node)[labels] for node, labels in zip(nodes.ravel().tolist(), per_slot)]
        return np.stack(values).reshape(*nodes.shape, -1)

    def _lexicon_row(self, node: int) -> np.ndarray:
        """(C,) score term of appending each label to the prefix ``node``: 0 where the lexicon
        allows it (or the current word is already out of it, or ``node`` is a free slot), else the
        OOV cost (-inf when the lexicon is a restriction)."""
        lex_node = self.lex_node[node] if node != _NO_NODE else _OOV
        row = self.lexicon_rows.get(lex_node)
        if row is None:
            row = np.zeros(self.log_probs.shape[2])
            if lex_node != _OOV:
                row[:] = self.oov_cost
                # allowed() holds the space only after a word: a word ending off the lexicon pays
                row[self.lexicon.allowed(lex_node)] = 0.0
            self.lexicon_rows[lex_node] = row
        return row

    def _end_cost(self, node: int) -> float:
        """Score term of ending the output at the prefix ``node``: 0 without a lexicon or when
        its last word is a lexicon word or already out of it, else the OOV cost."""
        if self.lexicon is None:
            return 0.0
        lex_node = self.lex_node[node]
        return 0.0 if lex_node == _OOV or self.lexicon.is_word(lex_node) else self.oov_cost

    def _prior_row(self, node: int) -> np.ndarray:
        """(C,) prior log P(label | prefix ``node``); zeros for a free slot."""
        row = self.prior_rows.get(node)
        if row is None:
            row = self.prior_rows[node] = (
                self.prior.next_log_probs(self.prefix[node]) if node != _NO_NODE
                else np.zeros(self.log_probs.shape[2])
            )
        return row


def _exact_top_n(
    log_probs: Tensor, lengths: Tensor, finals: list[list[_Final]], top_n: int, blank: int
) -> list[list[Hypothesis]]:
    """Per sample, the ``top_n`` finals by search score with exact log-probabilities from
    ``ctc_loss``, re-sorted by the exact score. ``log_probs`` (T, B, C) float64; ``lengths`` (B,).
    """
    chosen = [sorted(final, key=lambda f: f.log_prob + f.fusion, reverse=True)[:top_n]
              for final in finals]
    owner = torch.tensor([b for b, final in enumerate(chosen) for _ in final], dtype=torch.long)
    targets = [torch.tensor(f.tokens, dtype=torch.long) for final in chosen for f in final]
    exact = -F.ctc_loss(
        log_probs[:, owner], torch.cat(targets), lengths[owner],
        torch.tensor([len(t) for t in targets], dtype=torch.long), blank=blank, reduction="none",
    )
    exact_iter = iter(exact.tolist())
    hypotheses = []
    for final in chosen:
        hyps = [Hypothesis(list(f.tokens), lp, lp + f.fusion) for f, lp in zip(final, exact_iter)]
        hypotheses.append(sorted(hyps, key=lambda h: h.score, reverse=True))
    return hypotheses
