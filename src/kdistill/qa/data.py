"""Extractive question answering data: SQuAD v1.1 / v2.0 JSON and JSONL, read into one flat table of questions.

Read (:func:`read_questions`):

* **SQuAD JSON** (``{"version", "data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}``), v1.1 or v2.0 —
  v2.0 questions may be ``is_impossible`` (no answer: the null answer is right);
* **JSONL**, one question a line: ``{"question", "context", "answers": {"text": [...], "answer_start": [...]}}``
  (the Hugging Face ``squad`` layout; ``id`` and ``title`` optional).

Every answer is checked against its context (``context[start:start + len(text)] == text``); a mismatch is one line
naming the question, never a silently wrong span. ``article`` numbers the articles (SQuAD's ``title``; JSONL: the
title, else the context), so the held-out selection slice can be drawn by article.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdistill.data.files import json_lines
from kdistill.errors import DataError


@dataclass
class Questions:
    """Questions read from one file, column-wise: ``id``, ``question``, ``context``, ``answers`` (texts),
    ``answer_starts`` (characters), ``article`` (an int per article), and the format read."""

    id: list[str]
    question: list[str]
    context: list[str]
    answers: list[list[str]]
    answer_starts: list[list[int]]
    article: list[int]
    version: str

    def __len__(self) -> int:
        return len(self.id)

    @property
    def unanswerable(self) -> int:
        """How many questions have no answer (SQuAD v2.0's null answer)."""
        return sum(1 for a in self.answers if not a)


def _check_span(where: str, context: str, text: str, start: Any) -> int:
    if not isinstance(start, int) or start < 0 or context[start:start + len(text)] != text:
        raise DataError(f"{where}: the answer {text[:40]!r} is not at character {start} of its context; give "
                        "answer_start as the answer's first character in the context")
    return start


def read_questions(path: str | Path) -> Questions:
    """The questions of a SQuAD JSON (v1.1 / v2.0) or JSONL file (see the module docstring).

    Raises:
        DataError: no such file, not JSON, a layout that is neither, an answer not found where it says it is, an
            answerable question without answers (one line each, naming the question).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    out = Questions([], [], [], [], [], [], "")
    try:  # a whole-file JSON document: SQuAD's layout; JSONL (one document a line) fails here
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        _read_squad(path, doc, out)
    else:
        _read_jsonl(path, text, out)
    if not out.id:
        raise DataError(f"{path} holds no question")
    return out


def _read_squad(path: Path, doc: dict, out: Questions) -> None:
    out.version = f"squad v{doc.get('version', '?')}"
    for a, article in enumerate(doc["data"]):
        for paragraph in article.get("paragraphs", []):
            context = paragraph["context"]
            for qa in paragraph.get("qas", []):
                where = f"{path.name}: question {qa.get('id', '?')}"
                impossible = bool(qa.get("is_impossible", False))
                answers = [] if impossible else qa.get("answers", [])
                if not impossible and not answers:
                    raise DataError(f"{where} has no answer and is not is_impossible (SQuAD v2.0's mark)")
                out.id.append(str(qa.get("id", len(out.id))))
                out.question.append(qa["question"])
                out.context.append(context)
                out.answers.append([x["text"] for x in answers])
                out.answer_starts.append([_check_span(where, context, x["text"], x["answer_start"]) for x in answers])
                out.article.append(a)


def _read_jsonl(path: Path, text: str, out: Questions) -> None:
    out.version = "jsonl"
    articles: dict[str, int] = {}
    for n, row in json_lines(path, text, "give SQuAD JSON, or one question a line (JSONL)"):
        if not isinstance(row, dict) or not {"question", "context", "answers"} <= set(row):
            raise DataError(f"{path}:{n}: a JSONL question needs 'question', 'context' and 'answers' "
                            "({'text': [...], 'answer_start': [...]})")
        answers = row["answers"] or {}
        texts, starts = list(answers.get("text", [])), list(answers.get("answer_start", []))
        if len(texts) != len(starts):
            raise DataError(f"{path}:{n}: {len(texts)} answer texts but {len(starts)} answer_start values")
        where = f"{path.name}:{n}"
        out.id.append(str(row.get("id", n)))
        out.question.append(row["question"])
        out.context.append(row["context"])
        out.answers.append(texts)
        out.answer_starts.append([_check_span(where, row["context"], t, s) for t, s in zip(texts, starts)])
        out.article.append(articles.setdefault(str(row.get("title") or row["context"]), len(articles)))


__all__ = ["Questions", "read_questions"]
