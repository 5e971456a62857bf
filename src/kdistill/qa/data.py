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


def looks_like_qa(path: str | Path) -> bool:
    """True for a SQuAD JSON file (``{"data": [{"paragraphs": ...}]}``) or JSONL rows with ``question``, ``context``
    and ``answers``: own files read as question answering."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in (".json", ".jsonl"):
        return False
    with open(path, encoding="utf-8", errors="replace") as f:
        head = f.read(4096)
    if '"paragraphs"' in head and '"data"' in head:
        return True
    first = head.lstrip().split("\n", 1)[0]
    try:
        row = json.loads(first)
    except ValueError:
        return False
    return isinstance(row, dict) and {"question", "context", "answers"} <= set(row)


def _rows(q: Questions, cap: int | None):
    import datasets

    n = len(q) if cap is None else min(cap, len(q))
    return datasets.Dataset.from_dict({
        "id": q.id[:n], "question": q.question[:n], "context": q.context[:n], "answers": q.answers[:n],
        "answer_starts": q.answer_starts[:n], "article": q.article[:n], "idx": list(range(n))},
        features=datasets.Features({
            "id": datasets.Value("string"), "question": datasets.Value("string"), "context": datasets.Value("string"),
            "answers": datasets.Sequence(datasets.Value("string")),
            "answer_starts": datasets.Sequence(datasets.Value("int64")), "article": datasets.Value("int64"),
            "idx": datasets.Value("int64")}))


def _from_hub_rows(split) -> Questions:
    """Questions of a hub ``squad``-layout split (``id, title, context, question, answers{text, answer_start}``)."""
    out = Questions([], [], [], [], [], [], "hub")
    articles: dict[str, int] = {}
    for n, row in enumerate(split):
        answers = row["answers"] or {}
        out.id.append(str(row.get("id", n)))
        out.question.append(row["question"])
        out.context.append(row["context"])
        out.answers.append(list(answers.get("text", [])))
        out.answer_starts.append([_check_span(f"row {n}", row["context"], t, s)
                                  for t, s in zip(answers.get("text", []), answers.get("answer_start", []))])
        out.article.append(articles.setdefault(str(row.get("title") or row["context"]), len(articles)))
    return out


def load_qa_splits(spec, *, data_dir: str | Path | None = None, train_file: str | Path | None = None,
                   validation_file: str | Path | None = None, dataset: str | None = None,
                   max_train_samples: int | None = None, max_eval_samples: int | None = None):
    """``(DatasetDict, TaskSpec)`` of a question-answering task: ``train`` and ``validation`` splits of questions
    (columns ``id, question, context, answers, answer_starts, article, idx``) from the task's folder
    (``<data_dir>/squad/{train,dev}-v1.1.json``), your own SQuAD JSON / JSONL files, a hub dataset id or a local
    folder of its Parquet files (``--dataset``). Without a task, the spec is ``squad`` (v1.1) or, when a split has
    unanswerable questions, ``squad_v2`` (the null answer allowed).

    Raises:
        DataError: missing files (with the expected layout), and what :func:`read_questions` refuses.
    """
    import dataclasses

    import datasets

    from kdistill.data.tasks import get_task

    if dataset is not None:
        from kdistill.data.files import hub_or_parquet

        raw = hub_or_parquet(dataset)
        report = next((s for s in ("validation", "test") if s in raw), None)
        if "train" not in raw or report is None:
            raise DataError(f"--dataset {dataset} has splits {sorted(raw)}: a train split and a validation or test "
                            "split are needed")
        train, dev = _from_hub_rows(raw["train"]), _from_hub_rows(raw[report])
    else:
        if train_file is None or validation_file is None:
            if data_dir is None:
                raise DataError(f"task {spec.name!r}: pass --data-dir (a folder with {spec.glue_dir}/{spec.train_file}) "
                                "or --train-file/--validation-file (SQuAD JSON or JSONL)")
            folder = Path(data_dir).expanduser()
            folder = folder / spec.glue_dir if (folder / spec.glue_dir).is_dir() else folder
            train_file = train_file or folder / spec.train_file
            validation_file = validation_file or folder / spec.dev_file
        train, dev = read_questions(train_file), read_questions(validation_file)
    if spec is None:
        spec = get_task("squad_v2" if train.unanswerable or dev.unanswerable else "squad")
        spec = dataclasses.replace(spec, name="custom", hub=None)
    return datasets.DatasetDict({"train": _rows(train, max_train_samples),
                                 "validation": _rows(dev, max_eval_samples)}), spec


def article_holdout(train, *, size: int, seed: int):
    """``(train rest, selection slice, info)``: whole articles drawn at random (seeded) until the slice holds at least
    ``size`` questions — the windows and questions of one paragraph never sit on both sides. A train split of one
    article (a slice of SQuAD) is cut by paragraph instead, said in ``info``. Both parts renumbered (``idx`` 0..n-1).

    Raises:
        DataError: one paragraph (nothing to hold out).
    """
    import numpy as np

    unit = "article"
    groups = np.asarray(train["article"])
    if len(np.unique(groups)) < 2:  # one article: whole paragraphs (their contexts) instead
        unit = "paragraph"
        _, groups = np.unique(np.asarray(train["context"], dtype=object).astype(str), return_inverse=True)
    ids = np.unique(groups)
    if len(ids) < 2:
        raise DataError("the held-out selection slice is drawn by article or paragraph, and the train split has one "
                        "paragraph; give --selection-file or --select-on last")
    chosen, count = [], 0
    for a in np.random.default_rng(seed).permutation(ids):
        if count >= size or len(chosen) == len(ids) - 1:
            break
        chosen.append(int(a))
        count += int((groups == a).sum())
    held = np.isin(groups, chosen)

    def renumber(ds):
        return ds.remove_columns("idx").add_column("idx", list(range(len(ds))))

    sel, rest = train.select(np.flatnonzero(held)), train.select(np.flatnonzero(~held))
    info = {"selection_rows": len(sel), "train_rows": len(rest), "selection_unit": unit,
            f"selection_{unit}s": len(chosen), "seed": seed,
            "note": f"whole {unit}s held out of training (questions of one paragraph never on both sides)"}
    return renumber(rest), renumber(sel), info


__all__ = ["Questions", "article_holdout", "load_qa_splits", "looks_like_qa", "read_questions"]
