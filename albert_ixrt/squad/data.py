"""Load SQuAD v1.1 files in the official JSON layout (``data`` -> ``paragraphs`` -> ``qas``).

Every problem is reported as ``InputFileError(path, "<where>: <what>")`` so a user sees the file
and the place in it, never a KeyError from deep inside.

SQuAD v2.0 files are refused here, where every command reads SQuAD: their unanswerable questions
(``is_impossible: true``, ``answers: []``) have no v1.1 score (the official v1.1 metric takes the max
over gold answers, so an empty gold list scores 0 whatever the prediction), and a v1.1 verdict on
them would be wrong without a word of warning.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputFileError, json_problem


@dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset in the context


@dataclass(frozen=True)
class Example:
    """One question about one context."""

    qid: str
    question: str
    context: str
    answers: tuple[Answer, ...] = field(default=())
    title: str = ""

    @property
    def answer_texts(self) -> list[str]:
        return [a.text for a in self.answers]


#: The ``version`` values of a SQuAD v1.1 file (the official files say "1.1"); a file without one is
#: judged by its questions alone.
V1_VERSIONS = ("1.1", "v1.1")
#: The first two bytes of every gzip file (RFC 1952), e.g. a dev-v1.1.json.gz passed as it was downloaded.
GZIP_MAGIC = b"\x1f\x8b"
V1_ONLY = "this suite scores SQuAD v1.1 only (every question answerable)"


def unanswerable(qa) -> bool:
    """A SQuAD v2.0 question: marked ``is_impossible``, or with no gold answer at all."""
    return isinstance(qa, dict) and (qa.get("is_impossible") is True or qa.get("answers") == [])


def first_unanswerable(doc) -> tuple[str, str] | None:
    """(place, question id) of the first unanswerable question, walking leniently (the strict
    walk in ``parse_squad`` reports structure errors)."""
    for ai, article in enumerate(doc.get("data") or [] if isinstance(doc, dict) else []):
        for pi, paragraph in enumerate(article.get("paragraphs") or [] if isinstance(article, dict) else []):
            for qi, qa in enumerate(paragraph.get("qas") or [] if isinstance(paragraph, dict) else []):
                if unanswerable(qa):
                    return f"data[{ai}].paragraphs[{pi}].qas[{qi}]", str(qa.get("id"))
    return None


def load_squad(path: str | Path, *, check_answers: bool = True) -> list[Example]:
    """Parse a SQuAD v1.1 file into examples, in file order."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    data = path.read_bytes()
    if data[:2] == GZIP_MAGIC:
        raise InputFileError(path, "is gzip-compressed, not JSON: decompress it first (gunzip -k "
                                   f"{path}) and pass the .json file")
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(path, f"not valid UTF-8 (byte {exc.start})") from None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputFileError(path, json_problem(exc)) from None
    return parse_squad(doc, path, check_answers=check_answers)


def parse_squad(doc, path: str | Path = "<memory>", *, check_answers: bool = True) -> list[Example]:
    """Validate and parse an already-decoded SQuAD document."""
    def fail(where: str, what: str):
        raise InputFileError(path, f"{where}: {what}")

    def need(obj, key: str, kind: type, where: str):
        if not isinstance(obj, dict):
            fail(where, f"expected an object, got {type(obj).__name__}")
        if key not in obj:
            fail(where, f"missing key {key!r}")
        value = obj[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            fail(f"{where}.{key}", f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    articles = need(doc, "data", list, "top level")
    version = doc.get("version")
    if version is not None and str(version) not in V1_VERSIONS:
        first = first_unanswerable(doc)
        fail("top level", f"\"version\": {json.dumps(version)} is not SQuAD v1.1"
                          + (f" (first unanswerable question {first[1]!r} at {first[0]})" if first else "")
                          + f"; {V1_ONLY}")
    examples: list[Example] = []
    seen: dict[str, str] = {}
    for ai, article in enumerate(articles):
        where_a = f"data[{ai}]"
        paragraphs = need(article, "paragraphs", list, where_a)
        title = article.get("title", "") if isinstance(article.get("title", ""), str) else ""
        for pi, paragraph in enumerate(paragraphs):
            where_p = f"{where_a}.paragraphs[{pi}]"
            context = need(paragraph, "context", str, where_p)
            for qi, qa in enumerate(need(paragraph, "qas", list, where_p)):
                where_q = f"{where_p}.qas[{qi}]"
                qid = need(qa, "id", str, where_q)
                question = need(qa, "question", str, where_q)
                if qid in seen:
                    fail(where_q, f"duplicate question id {qid!r} (first at {seen[qid]})")
                seen[qid] = where_q
                if unanswerable(qa):
                    fail(where_q, f"question {qid!r} is unanswerable ("
                                  + ("is_impossible: true" if qa.get("is_impossible") is True else "no answers")
                                  + f"), a SQuAD v2.0 question; {V1_ONLY}")
                answers = []
                for ni, ans in enumerate(need(qa, "answers", list, where_q)):
                    where_n = f"{where_q}.answers[{ni}]"
                    text = need(ans, "text", str, where_n)
                    start = need(ans, "answer_start", int, where_n)
                    if check_answers and not (0 <= start and start + len(text) <= len(context)):
                        fail(where_n, f"answer_start {start} + {len(text)} chars lies outside the "
                                      f"{len(context)}-char context")
                    answers.append(Answer(text, start))
                examples.append(Example(qid, question, context, tuple(answers), title))
    return examples


def dataset_summary(examples: list[Example]) -> dict:
    contexts = {e.context for e in examples}
    return {"questions": len(examples), "paragraphs": len(contexts),
            "articles": len({e.title for e in examples})}
