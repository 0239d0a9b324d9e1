"""Official SQuAD v1.1 EM/F1 (hand-computed cases) and the ByteMLPerf-compatible variant."""
import json
from pathlib import Path

import pytest

from albert_ixrt.squad.data import Answer, Example
from albert_ixrt.squad.metrics import exact_match_score, f1_score, normalize_answer, score

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


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


def test_score_cli_prints_exactly_the_official_json(capsys):
    from albert_ixrt.cli import main

    # fixtures/squad/edge_answers.json: context "Paris is big. «Zoë» too!", gold answers 1 Paris, 2 «Zoë»,
    # 3 too!, 4 big; fixtures/predictions/edge_answers.json: {"1": "paris.", "2": "zoë", "3": "", "x": "?"}
    assert main(["score", "--squad", str(FIXTURES / "squad" / "edge_answers.json"),
                 "--predictions", str(FIXTURES / "predictions" / "edge_answers.json")]) == 0
    out = capsys.readouterr()
    line = out.out.strip()
    # 1: EM; 2: "«zoë»" vs "zoë" -> not equal (« » are not ASCII punctuation), F1 0; 3: empty -> 0; 4: missing -> 0
    assert json.loads(line) == {"exact_match": 25.0, "f1": 25.0}
    assert line.startswith('{"exact_match": ') and list(json.loads(line)) == ["exact_match", "f1"]
    assert "1 of 4 questions have no prediction" in out.err
    assert "1 predictions name question ids not in" in out.err


def test_score_cli_rejects_bad_predictions(capsys):
    from albert_ixrt.cli import main

    assert main(["score", "--squad", str(FIXTURES / "squad" / "empty_v1.1.json"),
                 "--predictions", str(FIXTURES / "predictions" / "not_strings.json")]) == 2
    err = capsys.readouterr().err
    assert "not_strings.json: 1 predictions are not strings" in err and "Traceback" not in err


def test_score_cli_refuses_squad_v2_instead_of_scoring_empty_answers(capsys):
    """Scored as v1.1, these (correct) predictions would give 66.7 EM: the unanswerable question's
    empty gold list scores 0 whatever is predicted.  The file is refused instead."""
    from albert_ixrt.cli import main

    assert main(["score", "--squad", str(FIXTURES / "squad" / "v2.0_unanswerable.json"),
                 "--predictions", str(FIXTURES / "predictions" / "v2.0_unanswerable.json")]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    (line,) = out.err.strip().splitlines()
    assert "v2.0_unanswerable.json" in line and "'v2-impossible'" in line and "SQuAD v1.1 only" in line
