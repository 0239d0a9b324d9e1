"""Official SQuAD v1.1 EM/F1 (hand-computed cases) and the ByteMLPerf-compatible variant."""
import json

import pytest

from albert_ixrt.squad.data import Answer, Example
from albert_ixrt.squad.metrics import exact_match_score, f1_score, normalize_answer, score


@pytest.mark.parametrize("raw, norm", [
    ("The Broncos!", "broncos"),
    ("  an  apple, a pie ", "apple pie"),
    ("theatre", "theatre"),          # articles only as whole words
    ("¡Olé!", "¡olé"),              # only ASCII punctuation is dropped, as in the official script
    ("...", ""),
    ("A.B.", "ab"),
])
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


def test_f1_hand_computed():
    # pred tokens: [denver, broncos, won]; gold: [broncos]: P=1/3, R=1, F1=0.5
    assert f1_score("Denver Broncos won", "the Broncos") == pytest.approx(0.5)
    assert f1_score("", "") == 0.0            # v1.1: no common tokens -> 0, even for two empties
    assert exact_match_score("", "") == 1.0
    assert f1_score("a a b", "a b b") == pytest.approx(2 / 3)   # Counter intersection, not sets


def _ex(qid, *golds):
    return Example(qid, "q?", "ctx", tuple(Answer(g, 0) for g in golds))


def test_score_max_over_golds_missing_predictions_and_bytemlperf_division():
    examples = [_ex("a", "Denver Broncos", "Broncos"), _ex("b", "1,000"), _ex("c", "x")]
    predictions = {"a": "broncos", "b": "1000", "zzz": "ignored"}   # c unanswered -> 0
    s = score(examples, predictions, num_features=4)
    assert s.exact_match == pytest.approx(100 * 2 / 3)
    assert s.f1 == pytest.approx(100 * 2 / 3)
    assert s.bytemlperf_exact_match == pytest.approx(100 * 2 / 4)
    assert s.answered == 2 and s.questions == 3


def test_score_cli_prints_exactly_the_official_json(tmp_path, capsys):
    from albert_ixrt.cli import main

    squad = {"data": [{"title": "t", "paragraphs": [{"context": "Paris is big. «Zoë» too!", "qas": [
        {"id": "1", "question": "q", "answers": [{"text": "Paris", "answer_start": 0}]},
        {"id": "2", "question": "q", "answers": [{"text": "«Zoë»", "answer_start": 14}]},
        {"id": "3", "question": "q", "answers": [{"text": "too!", "answer_start": 20}]},
        {"id": "4", "question": "q", "answers": [{"text": "big", "answer_start": 9}]}]}]}]}
    (tmp_path / "d.json").write_text(json.dumps(squad), encoding="utf-8")
    (tmp_path / "p.json").write_text(json.dumps({"1": "paris.", "2": "zoë", "3": "", "x": "?"}), encoding="utf-8")
    assert main(["score", "--squad", str(tmp_path / "d.json"), "--predictions", str(tmp_path / "p.json")]) == 0
    out = capsys.readouterr()
    line = out.out.strip()
    # 1: EM; 2: "«zoë»" vs "zoë" -> not equal (« » are not ASCII punctuation), F1 0; 3: empty -> 0; 4: missing -> 0
    assert json.loads(line) == {"exact_match": 25.0, "f1": 25.0}
    assert line.startswith('{"exact_match": ') and list(json.loads(line)) == ["exact_match", "f1"]
    assert "1 of 4 questions have no prediction" in out.err


def test_score_cli_rejects_bad_predictions(tmp_path, capsys):
    from albert_ixrt.cli import main

    (tmp_path / "d.json").write_text('{"data": []}', encoding="utf-8")
    (tmp_path / "p.json").write_text('{"1": null}', encoding="utf-8")
    assert main(["score", "--squad", str(tmp_path / "d.json"), "--predictions", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err
    assert "p.json: 1 predictions are not strings" in err and "Traceback" not in err
