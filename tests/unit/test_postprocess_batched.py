"""Post-processing of all features at once (predictions_from_logits) against the per-example n-best
(best_answers, the reference's loop) on small inputs; the whole dev set is compared with commit
3c0c7cb by benchmarks/host_speed.py.  Also pins two rules: padding never answers,
and an answer may end at the context's last character."""
import dataclasses

import numpy as np
import pytest

from albert_ixrt.config import SquadSettings
from albert_ixrt.evaluate import run_features
from albert_ixrt.runners.base import Runner
from albert_ixrt.selftest import selftest_spiece, squad_sample_path
from albert_ixrt.squad import postprocess
from albert_ixrt.squad.data import Answer, Example, load_squad
from albert_ixrt.squad.features import build_features
from albert_ixrt.squad.postprocess import (best_answers, oracle_logits, predictions_from_logits, top_indices,
                                           top_k)
from albert_ixrt.tokenizer import AlbertTokenizer

#: Short windows, so the sample's questions get several features each.
SETTINGS = SquadSettings(max_seq_length=64, doc_stride=16, max_query_length=24, n_best_size=5,
                         max_answer_length=6)


@pytest.fixture(scope="module")
def sample():
    tok = AlbertTokenizer(selftest_spiece())
    examples = load_squad(squad_sample_path())
    return examples, build_features(examples, tok, SETTINGS), tok


def one_by_one(examples, features, logits, settings):
    """The reference: best_answers per example, its first answer."""
    out = {}
    for ei, ex in enumerate(examples):
        idx = [i for i, f in enumerate(features) if f.example_index == ei]
        nbest = best_answers(ex, [features[i] for i in idx], [logits[i] for i in idx], settings)
        out[ex.qid] = nbest[0].text if nbest else ""
    return out


def tied_logits(features, seed, levels=3):
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, levels, len(f.input_ids)).astype(np.float32),
             rng.integers(0, levels, len(f.input_ids)).astype(np.float32)) for f in features]


def test_top_k_equals_top_indices_row_by_row():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 4, (50, 30)).astype(np.float64)      # many ties
    values[3, :] = -np.inf
    for k in (1, 5, 20, 30, 40):
        got = top_k(values, k)
        assert [row.tolist() for row in got] == [top_indices(v, k) for v in values]


@pytest.mark.parametrize("seed", range(6))
def test_all_at_once_equals_one_by_one_with_ties(sample, seed):
    examples, features, _ = sample
    assert len(features) > 2 * len(examples)                      # several windows per question
    logits = tied_logits(features, seed)
    assert predictions_from_logits(examples, features, logits, SETTINGS) == \
        one_by_one(examples, features, logits, SETTINGS)


def equal_best_in_every_window(features):
    """Every feature's best span is its first max-context token, all with the same score: a tie
    between different texts that only the order of the features decides."""
    out = []
    for f in features:
        s = np.zeros(len(f.input_ids), np.float32)
        e = np.zeros(len(f.input_ids), np.float32)
        owned = [p for p in f.token_spans if f.token_is_max_context[p]]
        if owned:
            s[owned[0]] = e[owned[0]] = 5.0
        out.append((s, e))
    return out


def test_the_tie_order_decides_answers_here(sample):
    """Both ways: on logits tied across windows the first window's answer wins, as in the reference;
    taking the features in the other order (a wrong tie rule) gives other answers."""
    examples, features, _ = sample
    logits = equal_best_in_every_window(features)
    expected = one_by_one(examples, features, logits, SETTINGS)
    assert predictions_from_logits(examples, features, logits, SETTINGS) == expected
    back = list(reversed(range(len(features))))
    flipped = predictions_from_logits(examples, [features[i] for i in back], [logits[i] for i in back], SETTINGS)
    assert flipped != expected


def test_all_at_once_equals_one_by_one_on_oracle_and_random_logits(sample):
    examples, features, _ = sample
    rng = np.random.default_rng(7)
    for logits in ([oracle_logits(f) for f in features],
                   [(rng.standard_normal(64).astype(np.float32), rng.standard_normal(64).astype(np.float32))
                    for _ in features]):
        assert predictions_from_logits(examples, features, logits, SETTINGS) == \
            one_by_one(examples, features, logits, SETTINGS)


def test_hand_made_features_with_plain_dicts_still_work():
    ids = np.zeros(10, np.int64)
    f = postprocess.Feature(0, 0, ids, ids, ids, 6, 2, {2: (0, 3), 3: (4, 7), 4: (8, 9)}, {2: True, 3: True, 4: False})
    ex = Example("q", "?", "abc def g", ())
    s = np.zeros(10, np.float32)
    e = np.zeros(10, np.float32)
    s[3], e[4] = 5, 5
    assert predictions_from_logits([ex], [f], [(s, e)]) == {"q": "def g"} == one_by_one([ex], [f], [(s, e)],
                                                                                      SquadSettings())


class PaddingShouter(Runner):
    """Logits that depend only on each real token, and +100 on every padded position (attention
    mask 0): what a model may well put there."""

    name = "padding-shouter"

    def infer(self, feed):
        ids = feed["input_ids"].astype(np.float32)
        pos = np.arange(ids.shape[1], dtype=np.float32)
        start = np.sin(ids * 0.37 + pos * 0.11)
        end = np.cos(ids * 0.53 + pos * 0.07)
        pad = feed["attention_mask"] == 0
        return np.where(pad, 100.0, start), np.where(pad, 100.0, end)


def unpadded_logits(features):
    out = []
    for f in features:
        s, e = PaddingShouter().infer({"input_ids": f.input_ids[None, :f.length],
                                       "attention_mask": f.attention_mask[None, :f.length]})
        out.append((s[0], e[0]))
    return out


def test_a_padded_batch_gives_the_unpadded_prediction(sample):
    examples, features, _ = sample
    expected = predictions_from_logits(examples, features, unpadded_logits(features), SETTINGS)
    assert any(expected.values())
    for batch, bucket in ((1, False), (4, True), (16, True), (16, False)):
        logits = run_features(PaddingShouter(), features, batch, bucket, progress=False)
        assert predictions_from_logits(examples, features, logits, SETTINGS) == expected, (batch, bucket)


def test_padding_would_answer_if_the_length_were_ignored(sample):
    """The other way: with each feature's length taken as the full width (the n-best searching the
    padding too), the padded positions crowd out the real ones and the answers change."""
    examples, features, _ = sample
    logits = run_features(PaddingShouter(), features, 16, False, progress=False)
    expected = predictions_from_logits(examples, features, unpadded_logits(features), SETTINGS)
    full = [dataclasses.replace(f, length=len(f.input_ids)) for f in features]
    assert predictions_from_logits(examples, full, logits, SETTINGS) != expected


def answer_of(features_of, tok, context: str, answer: str, span_text=None, monkeypatch=None):
    ex = Example("q", "Who won?", context, (Answer(answer, context.rindex(answer)),))
    feats = features_of([ex], tok)
    if span_text is not None:
        monkeypatch.setattr(postprocess, "span_text", span_text)
    return feats, predictions_from_logits([ex], feats, [oracle_logits(f) for f in feats])["q"]


@pytest.mark.parametrize("context", ["The game was won by Denver", "Denver", "It was won by the Broncos of Denver",
                                     "The winner: Denver"])
def test_an_answer_ending_at_the_contexts_last_character(sample, context):
    """145 dev-set answers end at their context's last character: the last token's span reaches
    len(context) and the text is cut out whole."""
    tok = sample[2]
    feats, got = answer_of(build_features, tok, context, "Denver")
    assert got == "Denver"
    last = max(feats[-1].token_spans)
    assert feats[-1].token_spans[last][1] == len(context) and feats[-1].end_position == last


def test_an_off_by_one_at_the_context_end_would_be_seen(sample, monkeypatch):
    """The other way: text cut one character short at the end (an exclusive end taken as inclusive)
    loses the last letter of such an answer."""
    tok = sample[2]

    def short(context, feature, start, end):
        return context[feature.token_spans[start][0]:feature.token_spans[end][1] - 1].strip()

    _, got = answer_of(build_features, tok, "The game was won by Denver", "Denver", short, monkeypatch)
    assert got == "Denve"
