"""Known-answer models: TorchScript QA models whose SQuAD dev-set score is known before they run,
so that the accuracy gate can be shown to PASS a good model and FAIL a bad one without real weights.

A known-answer model answers from a table built from the dev set.  For each feature it puts its
logits on the gold answer's first and last tokens (what ``squad.postprocess.oracle_logits`` does,
the path ``tests/selftest/accuracy/test_oracle.py`` measures), except for a seeded fraction of the
questions, which it answers with one context token whose text shares no token with any gold
answer (EM 0 and F1 0).  Its score is therefore about ``(1 - fraction) x`` the oracle's.

It identifies a feature from its ``input_ids`` alone: two hashes of the unpadded row (a sum of
id x position weight, int64 and below 2**53 so every runtime adds it exactly; pad ids count as 0,
so any padding length gives the same hashes), one found in the sorted key table in two small steps
(block, then key within the block: compares and sums only, so the module exports to ONNX and runs
through onnxruntime and TensorRT exactly as in torch), the other checked against the entry found.
A row it does not know gets flat logits.  So it works through every batch size, length bucket and
shard, and reads nothing else (not the mask, not the token types).

It is labelled a known-answer model everywhere: the archive carries ``albert_ixrt.json`` (an
extra file, ``model.KNOWN_ANSWER_EXTRA_FILE``) that the TorchScript loader reads, and every result
says ``weights: known-answer``.  It proves the judge, never a model's accuracy.

Hand-written (no library builds a table-lookup model): the table functions are pure numpy and
testable without torch.jit; ``KnownAnswerQA`` is the small scripted module.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import DEFAULT_SQUAD, SquadSettings
from .errors import AlbertIxrtError
from .fileio import atomic_path
from .model import KNOWN_ANSWER, KNOWN_ANSWER_EXTRA_FILE
from .squad.data import Example
from .squad.features import Feature
from .squad.metrics import SquadScores, exact_match_score, f1_score, normalize_answer, score
from .squad.postprocess import predictions_from_logits, span_text

#: Logit values: those of ``oracle_logits`` (high on the chosen tokens, flat elsewhere).
HIGH, LOW = 10.0, -10.0
#: Position weights are drawn from [1, 2**29): ids below 2**ID_BITS (ALBERT's vocabulary is 30,000)
#: times weights times at most 2**WIDTH_BITS positions keeps every partial sum below 2**53, so the
#: hash is exact even where an int64 sum is accumulated in float64: onnxruntime 1.32's CPU ReduceSum
#: on int64 rounds sums above 2**53 (measured: 64 rows of 384 terms below 2**46 give 27 wrong sums,
#: below 2**45 none), and the hash must be bit-identical in torch, onnxruntime and engines.
WEIGHT_BITS, ID_BITS, WIDTH_BITS = 29, 15, 9
EXACT_BITS = 53
#: Salts tried when two distinct rows share a lookup hash (about 1e-4 per try on the dev set).
HASH_TRIES = 4


class KnownAnswerError(AlbertIxrtError):
    """The known-answer table cannot be built as asked."""


@dataclass
class AnswerTable:
    """What the model answers: per distinct unpadded row, the start/end token (-1: flat logits)."""

    keys: np.ndarray          # int64 [rows], sorted: lookup hash
    checks: np.ndarray        # int64 [rows]: second hash of the same row
    starts: np.ndarray        # int64 [rows]
    ends: np.ndarray          # int64 [rows]
    weights1: np.ndarray      # int64 [width]: position weights of the lookup hash
    weights2: np.ndarray      # int64 [width]: position weights of the check hash
    pad_id: int
    wrong_qids: list[str]
    meta: dict = field(default_factory=dict)

    def spans_for(self, features: Sequence[Feature]) -> list[tuple[int, int]]:
        """The (start, end) the table gives each feature, as the scripted module finds it."""
        rows = np.stack([f.input_ids for f in features])
        h1, h2 = row_hashes(rows, self.weights1, self.pad_id), row_hashes(rows, self.weights2, self.pad_id)
        pos = np.minimum(np.searchsorted(self.keys, h1), len(self.keys) - 1)
        found = (self.keys[pos] == h1) & (self.checks[pos] == h2)
        return [(int(self.starts[p]), int(self.ends[p])) if ok else (-1, -1) for p, ok in zip(pos, found)]


def row_hashes(rows: np.ndarray, weights: np.ndarray, pad_id: int) -> np.ndarray:
    """int64 hash of each row of ``rows`` [n, seq]: sum of id x weight[position], pads as 0."""
    rows = np.asarray(rows, dtype=np.int64)
    n = min(rows.shape[1], len(weights))
    ids = np.where(rows[:, :n] == pad_id, 0, rows[:, :n])
    return (ids * weights[:n]).sum(axis=1, dtype=np.int64)


def _groups(examples: Sequence[Example], features: Sequence[Feature]) -> list[list[int]]:
    """Examples joined when they share a feature row (the same question on the same context,
    42 pairs on the dev set): the model cannot tell them apart, so they are right or wrong together."""
    parent = list(range(len(examples)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[bytes, int] = {}
    for f in features:
        key = f.input_ids[: f.length].tobytes()
        other = first.setdefault(key, f.example_index)
        parent[find(other)] = find(f.example_index)
    groups: dict[int, list[int]] = {}
    for i in range(len(examples)):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values())


def _gold_tokens(examples: Sequence[Example], group: Sequence[int]) -> set[str]:
    return {t for ei in group for a in examples[ei].answer_texts for t in normalize_answer(a).split()}


def wrong_positions(example: Example, features: Sequence[Feature], gold_tokens: set[str]) -> list[tuple[int, int]]:
    """(feature index, position) of every context token that, answered alone, shares no token
    with any gold answer (and is a valid answer start: the token's max-context window)."""
    out = []
    for fi, f in enumerate(features):
        for pos in sorted(f.token_spans):
            if not f.token_is_max_context.get(pos, False):
                continue
            words = normalize_answer(span_text(example.context, f, pos, pos)).split()
            if words and not gold_tokens.intersection(words):
                out.append((fi, pos))
    return out


def check_request(wrong: float, seed: int = 0, out: str | Path | None = None) -> None:
    """The cheap checks, before any data is read: a fraction in [0, 1], a seed >= 0, and (when
    given) a TorchScript file name."""
    from .model import TORCHSCRIPT_SUFFIXES

    if not 0.0 <= wrong <= 1.0:
        raise KnownAnswerError(f"--wrong must be a fraction in [0, 1], got {wrong}")
    if seed < 0:
        raise KnownAnswerError(f"--seed must be >= 0, got {seed}")
    if out is not None and Path(out).suffix not in TORCHSCRIPT_SUFFIXES:
        raise KnownAnswerError(f"--out {out}: a TorchScript file name must end in {', '.join(TORCHSCRIPT_SUFFIXES)}")


def build_table(examples: Sequence[Example], features: Sequence[Feature], wrong: float, seed: int = 0,
                pad_id: int = 0, settings: SquadSettings = DEFAULT_SQUAD) -> AnswerTable:
    """The answer table for ``examples`` / ``features`` with ``round(wrong x questions)`` questions
    (chosen with ``seed``) answered wrongly; refuses on a hash collision or an unmakeable answer."""
    check_request(wrong, seed)
    if not features:
        raise KnownAnswerError("no features to build a known-answer table from")
    rng = np.random.default_rng(seed)
    by_example: dict[int, list[int]] = {}
    for i, f in enumerate(features):
        by_example.setdefault(f.example_index, []).append(i)
    groups = _groups(examples, features)
    target = round(wrong * len(examples))
    spans: dict[bytes, tuple[int, int]] = {}      # row -> (start, end); the first feature of a row decides
    wrong_examples: set[int] = set()
    for gi in rng.permutation(len(groups)):
        if len(wrong_examples) >= target:
            break
        group = groups[gi]
        gold = _gold_tokens(examples, group)
        choices = []
        for ei in group:
            idx = by_example.get(ei, [])
            cands = wrong_positions(examples[ei], [features[i] for i in idx], gold)
            if not cands:
                break   # this question cannot be answered wrongly by one token: leave the group right
            fi, pos = cands[int(rng.integers(len(cands)))]
            choices.append((idx, idx[fi], pos))
        else:
            for idx, chosen, pos in choices:
                for i in idx:
                    key = features[i].input_ids[: features[i].length].tobytes()
                    if i == chosen:
                        spans[key] = (pos, pos)
                    elif spans.get(key, (-1, -1))[0] < 0:
                        spans[key] = (-1, -1)
            wrong_examples.update(group)
    for f in features:
        key = f.input_ids[: f.length].tobytes()
        if key not in spans:
            gold = (f.start_position, f.end_position) if f.start_position is not None else (-1, -1)
            spans[key] = gold
    rows = list(spans)
    width = settings.max_seq_length
    check_exact_hashes(max(int(f.input_ids.max()) for f in features), width)
    matrix = np.full((len(rows), width), pad_id, dtype=np.int64)
    for r, key in enumerate(rows):
        ids = np.frombuffer(key, dtype=np.int64)
        if len(ids) > width:
            raise KnownAnswerError(f"a feature has {len(ids)} tokens, more than max_seq_length {width}")
        matrix[r, : len(ids)] = ids
    for salt in range(HASH_TRIES):
        hash_rng = np.random.default_rng([seed, salt, 0x6B61])
        w1 = hash_rng.integers(1, 2**WEIGHT_BITS, size=width, dtype=np.int64)
        w2 = hash_rng.integers(1, 2**WEIGHT_BITS, size=width, dtype=np.int64)
        h1, h2 = row_hashes(matrix, w1, pad_id), row_hashes(matrix, w2, pad_id)
        if len(np.unique(h1)) == len(rows):
            break
    else:
        raise KnownAnswerError(f"hash collision among the {len(rows)} distinct feature rows with each of "
                               f"{HASH_TRIES} salts; the table would answer some features wrongly")
    order = np.argsort(h1, kind="stable")
    starts = np.array([spans[k][0] for k in rows], dtype=np.int64)
    ends = np.array([spans[k][1] for k in rows], dtype=np.int64)
    wrong_qids = sorted(examples[i].qid for i in wrong_examples)
    meta = {"kind": KNOWN_ANSWER, "wrong_fraction": wrong, "seed": seed, "hash_salt": salt,
            "questions": len(examples), "features": len(features), "distinct_rows": len(rows),
            "wrong_questions": len(wrong_qids), "settings": dict(settings.__dict__)}
    return AnswerTable(h1[order], h2[order], starts[order], ends[order], w1, w2, pad_id, wrong_qids, meta)


def check_exact_hashes(max_id: int, width: int) -> None:
    """Refuse a table whose hash sums could pass 2**EXACT_BITS (see WEIGHT_BITS): a token id of
    ID_BITS bits or more, or rows longer than 2**WIDTH_BITS tokens."""
    if max_id >= 2**ID_BITS or width > 2**WIDTH_BITS:
        raise KnownAnswerError(f"token ids up to {max_id} over rows of {width} tokens could make hash sums above "
                               f"2**{EXACT_BITS}, which onnxruntime does not add exactly (ids must be below "
                               f"2**{ID_BITS}, rows at most {2**WIDTH_BITS} tokens)")


def table_logits(table: AnswerTable, features: Sequence[Feature]) -> list[tuple[np.ndarray, np.ndarray]]:
    """What the scripted module returns for each feature (numpy twin, for the expected score)."""
    out = []
    for f, (s, e) in zip(features, table.spans_for(features)):
        start = np.full(len(f.input_ids), LOW, dtype=np.float32)
        end = np.full(len(f.input_ids), LOW, dtype=np.float32)
        if s >= 0:
            start[s], end[e] = HIGH, HIGH
        out.append((start, end))
    return out


def expected_scores(table: AnswerTable, examples: Sequence[Example], features: Sequence[Feature],
                    settings: SquadSettings = DEFAULT_SQUAD) -> tuple[SquadScores, dict[str, str]]:
    """The score the model must get on ``examples`` (the table through the real post-processing),
    after checking that every wrong question's answer really scores EM 0 and F1 0."""
    predictions = predictions_from_logits(examples, features, table_logits(table, features), settings)
    wrong = set(table.wrong_qids)
    for ex in examples:
        if ex.qid in wrong and ex.answer_texts:
            pred = predictions[ex.qid]
            if not pred or any(exact_match_score(pred, g) or f1_score(pred, g) for g in ex.answer_texts):
                raise KnownAnswerError(f"question {ex.qid}: the planted wrong answer {pred!r} overlaps a gold answer")
    return score(examples, predictions, num_features=len(features)), predictions


def lookup_blocks(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The sorted ``keys`` cut into blocks of ``stride`` (about sqrt(rows)) for a two-step lookup that
    only ever compares small tensors: (keys padded with -1 to whole blocks, the first key of every block
    but the first, stride).  Hashes are >= 0, so the padding never matches."""
    stride = max(1, int(np.ceil(np.sqrt(len(keys)))))
    blocks = -(-len(keys) // stride)
    padded = np.full(blocks * stride, -1, dtype=np.int64)
    padded[: len(keys)] = keys
    return padded, padded[stride::stride][: blocks - 1].copy(), stride


def _module_class():
    import torch

    class KnownAnswerQA(torch.nn.Module):
        """Answers from a table keyed by hashes of the unpadded ``input_ids`` row (see the module doc).

        Only operations ``torch.onnx.export`` (opset 17) and onnxruntime take, all in int64 until the
        logits, so the ONNX graph, its fp16 variants and TensorRT engines answer exactly as torch does.
        The lookup is searchsorted in two small steps (``lookup_blocks``): the block is the count of
        block-first keys <= the row's hash ([batch, ~sqrt(rows)]), then the hash is matched against that
        block's keys ([batch, stride]; keys are unique, so the sum of ``match x offset`` is the row).
        Every tensor stays small (104 x 104 blocks for the dev set's 10,824 rows: [64, 104] at batch 64),
        below torch's parallel grain, so a busy CPU does not make it slow.  The check hash of the row
        found is then compared, and the logits are a one-hot compare of the positions with the start /
        end found (no scatter)."""

        # No annotations here: this file uses postponed (string) annotations, which TorchScript
        # cannot resolve inside a function; the attribute types are inferred from their values.
        def __init__(self, table):
            super().__init__()
            for name in ("checks", "starts", "ends", "weights1", "weights2"):
                self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(getattr(table, name))))
            padded, firsts, stride = lookup_blocks(table.keys)
            self.register_buffer("keys", torch.from_numpy(padded))
            self.register_buffer("firsts", torch.from_numpy(firsts))
            self.register_buffer("offsets", torch.arange(stride, dtype=torch.int64))
            self.stride = stride
            self.pad_id = int(table.pad_id)
            self.high = HIGH
            self.low = LOW

        def forward(self, input_ids, attention_mask, token_type_ids):
            seq = input_ids.shape[1]
            n = min(seq, self.weights1.shape[0])
            ids = input_ids.long()
            ids = torch.where(ids == self.pad_id, torch.zeros_like(ids), ids)
            h1 = (ids[:, :n] * self.weights1[:n]).sum(1, keepdim=True)
            h2 = (ids[:, :n] * self.weights2[:n]).sum(1)
            base = (h1 >= self.firsts.unsqueeze(0)).long().sum(1) * self.stride
            match = (self.keys[base.unsqueeze(1) + self.offsets.unsqueeze(0)] == h1).long()
            pos = base + (match * self.offsets.unsqueeze(0)).sum(1)
            # the row's check hash, and a row longer than any feature is known only if the rest is padding
            found = (match.sum(1) > 0) & (self.checks[pos] == h2) & ((ids[:, n:] != 0).long().sum(1) == 0)
            sp, ep = self.starts[pos], self.ends[pos]
            ok = found & (sp >= 0) & (ep < seq)
            # The mask and token types are read only so that the exported graph keeps the three inputs of
            # the QA interface (an exporter drops unused inputs); every valid value (>= 0) passes.
            valid = ok.unsqueeze(1) & (attention_mask >= 0) & (token_type_ids >= 0)
            where = torch.arange(seq, dtype=torch.int64, device=input_ids.device).unsqueeze(0)
            hit_start = (where == sp.unsqueeze(1)) & valid
            hit_end = (where == ep.unsqueeze(1)) & valid
            high = torch.full_like(hit_start, self.high, dtype=torch.float32)
            low = torch.full_like(hit_start, self.low, dtype=torch.float32)
            return torch.where(hit_start, high, low), torch.where(hit_end, high, low)

    return KnownAnswerQA


def scripted_module(table: AnswerTable):
    import torch

    return torch.jit.script(_module_class()(table).eval())


def save_model(table: AnswerTable, out: str | Path, expected: SquadScores | None = None) -> Path:
    """Write the scripted model (temp name, then rename) with its ``albert_ixrt.json`` label."""
    import torch

    out = Path(out)
    check_request(table.meta["wrong_fraction"], table.meta["seed"], out)
    meta = dict(table.meta)
    meta["note"] = ("known-answer model: answers from a table built from the SQuAD dev set, to prove the "
                    "accuracy gate's verdict; it says nothing about any model's accuracy")
    if expected is not None:
        meta["expected"] = {k: getattr(expected, k) for k in ("exact_match", "f1", "bytemlperf_exact_match",
                                                                "bytemlperf_f1", "questions", "features")}
    module = scripted_module(table)
    with atomic_path(out) as tmp:
        torch.jit.save(module, str(tmp), _extra_files={KNOWN_ANSWER_EXTRA_FILE: json.dumps(meta, indent=2)})
    return out


def build_known_answer(examples: Sequence[Example], features: Sequence[Feature], wrong: float, out: str | Path,
                       seed: int = 0, pad_id: int = 0,
                       settings: SquadSettings = DEFAULT_SQUAD) -> tuple[Path, AnswerTable, SquadScores]:
    """Table -> self-check (expected score) -> TorchScript file.  Returns (path, table, expected)."""
    table = build_table(examples, features, wrong, seed, pad_id, settings)
    expected, _ = expected_scores(table, examples, features, settings)
    return save_model(table, out, expected), table, expected
