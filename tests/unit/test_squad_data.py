"""Malformed SQuAD files give one clear error naming the file and the place; SQuAD v2.0 files (and
unanswerable questions) are refused.  Whole files live in fixtures/squad (see fixtures/README.md);
the one-defect variants of a minimal document stay inline, beside the message they must give."""
import json
from pathlib import Path

import pytest

from albert_ixrt.errors import InputFileError
from albert_ixrt.squad.data import load_squad

SQUAD_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "squad"


def _write(tmp_path, obj, raw: bytes | None = None):
    p = tmp_path / "squad.json"
    p.write_bytes(raw if raw is not None else json.dumps(obj).encode("utf-8"))
    return p


def _doc(context="Some context.", qas=None):
    qas = qas if qas is not None else [{"id": "q1", "question": "What?", "answers": [{"text": "Some", "answer_start": 0}]}]
    return {"data": [{"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]}


def test_valid_file_loads():
    (ex,) = load_squad(SQUAD_FIXTURES / "minimal_v1.1.json")
    assert ex.qid == "q1" and ex.answers[0].text == "Some" and ex.title == "T"
    assert load_squad(SQUAD_FIXTURES / "empty_v1.1.json") == []


@pytest.mark.parametrize("doc, message", [
    ({"version": "1.1"}, "top level: missing key 'data'"),
    ({"data": {}}, "top level.data: expected list, got dict"),
    ({"data": [{"title": "x"}]}, "data[0]: missing key 'paragraphs'"),
    ({"data": [{"paragraphs": [{"qas": []}]}]}, "data[0].paragraphs[0]: missing key 'context'"),
    (_doc(context=5), "paragraphs[0].context: expected str, got int"),
    (_doc(qas=[{"id": "q", "question": "?", "answers": [{"text": "Some", "answer_start": "0"}]}]),
     "answers[0].answer_start: expected int, got str"),
    (_doc(qas=[{"id": "q", "question": "?", "answers": [{"text": "Some", "answer_start": 40}]}]),
     "lies outside the 13-char context"),
    (_doc(qas=[{"id": "q", "question": "?", "answers": [{"text": "Some", "answer_start": 0}]}] * 2),
     "duplicate question id 'q'"),
])
def test_malformed_files(tmp_path, doc, message):
    with pytest.raises(InputFileError) as err:
        load_squad(_write(tmp_path, doc))
    assert message in str(err.value) and "squad.json" in str(err.value)


def test_invalid_json_and_utf8_and_missing_file(tmp_path):
    with pytest.raises(InputFileError, match=r"truncated.json: not valid JSON .* line 2"):
        load_squad(SQUAD_FIXTURES / "truncated.json")
    with pytest.raises(InputFileError, match="not_utf8.json: not valid UTF-8"):
        load_squad(SQUAD_FIXTURES / "not_utf8.json")
    with pytest.raises(InputFileError, match="file not found"):
        load_squad(tmp_path / "nope.json")


@pytest.mark.parametrize("name, message", [
    ("v2.0_unanswerable.json", 'top level: "version": "v2.0" is not SQuAD v1.1 (first unanswerable question '
                               "'v2-impossible' at data[0].paragraphs[0].qas[1])"),
    ("v2.0_all_answerable.json", 'top level: "version": "v2.0" is not SQuAD v1.1; '),
    ("impossible_in_v1.1.json", "data[0].paragraphs[0].qas[1]: question 'demolished' is unanswerable "
                                "(is_impossible: true)"),
    ("no_answers.json", "data[0].paragraphs[1].qas[0]: question 'empty-context' is unanswerable (no answers)"),
], ids=lambda v: v if v.endswith(".json") else "")
@pytest.mark.parametrize("check_answers", [True, False])     # `score` loads with check_answers=False
def test_squad_v2_files_and_unanswerable_questions_are_refused(name, message, check_answers):
    with pytest.raises(InputFileError) as err:
        load_squad(SQUAD_FIXTURES / name, check_answers=check_answers)
    text = str(err.value)
    assert text.startswith(str(SQUAD_FIXTURES / name) + ": ") and message in text, text
    assert "SQuAD v1.1 only" in text and "\n" not in text


@pytest.mark.parametrize("version", ["1.1", "v1.1", None])
def test_v1_files_and_answerable_v2_markers_load(tmp_path, version):
    """The refusal's other side: a v1.1 (or unversioned) file loads, also with ``is_impossible: false``."""
    doc = _doc(qas=[{"id": "q1", "question": "What?", "is_impossible": False,
                     "answers": [{"text": "Some", "answer_start": 0}]}])
    if version is not None:
        doc["version"] = version
    (ex,) = load_squad(_write(tmp_path, doc))
    assert ex.answer_texts == ["Some"]
