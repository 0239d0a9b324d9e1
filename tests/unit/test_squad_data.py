"""Malformed SQuAD files give one clear error naming the file and the place."""
import json

import pytest

from albert_ixrt.errors import InputFileError
from albert_ixrt.squad.data import load_squad


def _write(tmp_path, obj, raw: bytes | None = None):
    p = tmp_path / "squad.json"
    p.write_bytes(raw if raw is not None else json.dumps(obj).encode("utf-8"))
    return p


def _doc(context="Some context.", qas=None):
    qas = qas if qas is not None else [{"id": "q1", "question": "What?", "answers": [{"text": "Some", "answer_start": 0}]}]
    return {"data": [{"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]}


def test_valid_file_loads(tmp_path):
    (ex,) = load_squad(_write(tmp_path, _doc()))
    assert ex.qid == "q1" and ex.answers[0].text == "Some" and ex.title == "T"


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
    (_doc(qas=[{"id": "q", "question": "?", "answers": []}, {"id": "q", "question": "?", "answers": []}]),
     "duplicate question id 'q'"),
])
def test_malformed_files(tmp_path, doc, message):
    with pytest.raises(InputFileError) as err:
        load_squad(_write(tmp_path, doc))
    assert message in str(err.value) and "squad.json" in str(err.value)


def test_invalid_json_and_utf8_and_missing_file(tmp_path):
    with pytest.raises(InputFileError, match=r"squad.json: not valid JSON .* line 1"):
        load_squad(_write(tmp_path, None, b'{"data": ['))
    with pytest.raises(InputFileError, match="not valid UTF-8"):
        load_squad(_write(tmp_path, None, b'{"data": "\xff"}'))
    with pytest.raises(InputFileError, match="file not found"):
        load_squad(tmp_path / "nope.json")


def test_empty_context_is_allowed_without_answers(tmp_path):
    (ex,) = load_squad(_write(tmp_path, _doc(context="", qas=[{"id": "e", "question": "?", "answers": []}])))
    assert ex.context == ""
