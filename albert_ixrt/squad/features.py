"""The reference SQuAD feature builder (Google BERT ``run_squad.py``, kept by MLPerf Inference and
ByteMLPerf's open_squad), for ALBERT's SentencePiece tokenizer.

An example becomes one or more *features*: ``[CLS] question [SEP] window-of-context [SEP]``,
windows of at most ``max_seq_length - len(question) - 3`` context tokens, ``doc_stride`` apart.
The context is split on whitespace into words first and each word is tokenized alone, as the
reference does; unlike the reference we also keep each token's character span in the context,
so post-processing can return the original text exactly.

Pure functions over plain data: nothing here touches a model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..config import DEFAULT_SQUAD, SquadSettings
from .data import Example


@dataclass(frozen=True)
class ContextTokens:
    """A context split into whitespace words and tokenized word by word."""

    words: tuple[str, ...]
    word_starts: tuple[int, ...]          # char offset of each word in the context
    ids: tuple[int, ...]
    token_to_word: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]   # [start, end) char span of each token in the context


@dataclass
class Feature:
    example_index: int
    doc_span_index: int
    input_ids: np.ndarray           # int64 [max_seq_length]
    attention_mask: np.ndarray      # int64 [max_seq_length]
    token_type_ids: np.ndarray      # int64 [max_seq_length]
    length: int                     # tokens before padding
    context_offset: int             # position of the first context token
    token_spans: dict[int, tuple[int, int]]   # feature position -> char span in the context
    token_is_max_context: dict[int, bool]
    start_position: int | None = None   # gold span (first answer), when it lies in this window
    end_position: int | None = None


def is_squad_whitespace(c: str) -> bool:
    """The reference's whitespace test (space, tab, CR, LF, narrow no-break space)."""
    return c in " \t\r\n" or ord(c) == 0x202F


def split_words(context: str) -> tuple[list[str], list[int]]:
    """Whitespace words of ``context`` and the char offset where each starts."""
    words: list[str] = []
    starts: list[int] = []
    prev_ws = True
    for i, c in enumerate(context):
        if is_squad_whitespace(c):
            prev_ws = True
            continue
        if prev_ws:
            words.append(c)
            starts.append(i)
        else:
            words[-1] += c
        prev_ws = False
    return words, starts


def tokenize_context(context: str, tokenizer) -> ContextTokens:
    words, starts = split_words(context)
    ids: list[int] = []
    token_to_word: list[int] = []
    spans: list[tuple[int, int]] = []
    for wi, (word, w0) in enumerate(zip(words, starts)):
        for piece in tokenizer.tokenize(word):
            ids.append(piece.id)
            token_to_word.append(wi)
            spans.append((w0 + piece.start, w0 + piece.end))
    return ContextTokens(tuple(words), tuple(starts), tuple(ids), tuple(token_to_word), tuple(spans))


def doc_windows(n_tokens: int, max_tokens: int, stride: int) -> list[tuple[int, int]]:
    """(start, length) windows over ``n_tokens``: the reference's sliding window.

    The last window is the first that reaches the end; an empty context still gets one
    (empty) window, as in the reference.
    """
    if max_tokens <= 0:
        raise ValueError(f"no room for context tokens (max_tokens={max_tokens})")
    if stride <= 0:
        raise ValueError(f"doc_stride must be positive, got {stride}")
    windows = []
    start = 0
    while start < n_tokens or not windows:
        length = min(n_tokens - start, max_tokens)
        windows.append((start, length))
        if start + length >= n_tokens:
            break
        start += min(length, stride)
    return windows


def max_context_flags(windows: Sequence[tuple[int, int]], window_index: int) -> list[bool]:
    """For each token of window ``window_index``: is this the window where it has the most
    context (min of left and right context, ties broken by a 0.01 * length bonus)?

    Window starts and ends both increase, so only the neighbours that overlap are scored (the
    reference scans every window, which is quadratic on very long contexts).
    """
    start, length = windows[window_index]
    flags = []
    for pos in range(start, start + length):
        best_score, best_index = None, None
        lo = window_index
        while lo > 0 and windows[lo - 1][0] + windows[lo - 1][1] - 1 >= pos:
            lo -= 1
        wi = lo
        while wi < len(windows) and windows[wi][0] <= pos:
            s, n = windows[wi]
            end = s + n - 1
            if pos <= end:
                score = min(pos - s, end - pos) + 0.01 * n
                if best_score is None or score > best_score:
                    best_score, best_index = score, wi
            wi += 1
        flags.append(best_index == window_index)
    return flags


def gold_token_span(example: Example, ctx: ContextTokens) -> tuple[int, int] | None:
    """Token span of the first gold answer: the tokens whose char spans overlap the answer.

    Character-level, so an answer that starts or ends inside a whitespace word ("$5" of "$5m")
    gets the tightest token span, which is what the reference's ``_improve_answer_span`` aims at.
    """
    if not example.answers or not ctx.ids:
        return None
    a = example.answers[0]
    a0, a1 = a.start, a.start + len(a.text)
    inside = [i for i, (s, e) in enumerate(ctx.spans) if s < a1 and e > a0]
    if not inside:
        return None
    return inside[0], inside[-1]


def build_features(
    examples: Sequence[Example],
    tokenizer,
    settings: SquadSettings = DEFAULT_SQUAD,
    progress: bool = False,
) -> list[Feature]:
    """Features of every example, in order (the same algorithm as the reference)."""
    contexts: dict[str, ContextTokens] = {}
    features: list[Feature] = []
    iterator: Iterable = enumerate(examples)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(examples), desc="features", unit="q")
    for ei, ex in iterator:
        ctx = contexts.get(ex.context)
        if ctx is None:
            ctx = contexts[ex.context] = tokenize_context(ex.context, tokenizer)
        features.extend(example_features(ei, ex, ctx, tokenizer, settings))
    return features


def example_features(ei: int, ex: Example, ctx: ContextTokens, tokenizer, settings: SquadSettings) -> list[Feature]:
    query = [p.id for p in tokenizer.tokenize(ex.question)][: settings.max_query_length]
    max_tokens = settings.max_seq_length - len(query) - 3
    windows = doc_windows(len(ctx.ids), max_tokens, settings.doc_stride)
    gold = gold_token_span(ex, ctx)
    out = []
    offset = len(query) + 2
    for wi, (start, length) in enumerate(windows):
        ids = [tokenizer.cls_id, *query, tokenizer.sep_id, *ctx.ids[start:start + length], tokenizer.sep_id]
        n = len(ids)
        input_ids = np.full(settings.max_seq_length, tokenizer.pad_id, dtype=np.int64)
        input_ids[:n] = ids
        mask = np.zeros(settings.max_seq_length, dtype=np.int64)
        mask[:n] = 1
        types = np.zeros(settings.max_seq_length, dtype=np.int64)
        types[offset:n] = 1
        flags = max_context_flags(windows, wi)
        spans = {offset + k: ctx.spans[start + k] for k in range(length)}
        is_max = {offset + k: flags[k] for k in range(length)}
        s_pos = e_pos = None
        if gold is not None and start <= gold[0] and gold[1] < start + length:
            s_pos, e_pos = offset + gold[0] - start, offset + gold[1] - start
        out.append(Feature(ei, wi, input_ids, mask, types, n, offset, spans, is_max, s_pos, e_pos))
    return out


def stack_batch(features: Sequence[Feature], pad_to: int | None = None) -> dict[str, np.ndarray]:
    """The runner feed for ``features``: int64 arrays [batch, seq], cut to ``pad_to`` columns
    (default: the features' full padded length)."""
    seq = pad_to or len(features[0].input_ids)
    return {
        "input_ids": np.stack([f.input_ids[:seq] for f in features]),
        "attention_mask": np.stack([f.attention_mask[:seq] for f in features]),
        "token_type_ids": np.stack([f.token_type_ids[:seq] for f in features]),
    }
