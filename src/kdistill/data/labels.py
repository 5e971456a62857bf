"""How label cells of your own files are read: missing cells, multi-label separators, names files, and the
inference of a task (problem type, label set) from a train file — the rules the docs' data page states.

Every refusal is a one-line :class:`~kdistill.errors.DataError` that says what to pass instead.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Sequence

from kdistill.data.tasks import TaskSpec
from kdistill.errors import DataError

__all__ = ["MULTI_LABEL_SEPARATORS", "MISSING_LABELS", "is_missing_label", "cut_list", "split_multi_label",
           "read_label_names", "infer_task", "label_key", "as_number", "short_repr"]

# A parsed row: (line number or record number, text values, raw label value).
Row = tuple[int, list[Any], Any]


def short_repr(value: Any, limit: int = 60) -> str:
    """repr() of a value, cut to ``limit`` characters so that messages stay one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def as_number(text: str) -> float | None:
    """``float(text)``, or None when the text is not a number."""
    try:
        return float(text)
    except ValueError:
        return None


MULTI_LABEL_SEPARATORS = ("|", ";")
#: Label cells that mean "no label" (compared stripped and lower-cased); also JSON ``null`` and a float NaN.
MISSING_LABELS = ("", "nan", "null", "none", "n/a")


def is_missing_label(value: Any) -> bool:
    """True for a label cell that holds no label: empty, ``NaN``/``null``/``None``/``n/a`` (any case), JSON null."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip().lower() in MISSING_LABELS


def cut_list(values: Sequence[Any], limit: int = 10) -> str:
    """``values`` as a list for a one-line message: the first ``limit`` and "… and N more" for the rest."""
    values = list(values)
    if len(values) <= limit:
        return str(values)
    return f"{values[:limit]} … and {len(values) - limit} more"


def split_multi_label(value: Any, separator: str | None = None) -> list[str]:
    """The labels of one multi-label cell (empty or missing: none).

    A JSON list; else values separated by ``separator`` when given, or by ``|`` or ``;``.
    """
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif is_missing_label(value):
        items = []
    else:
        text = str(value).strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                items = json.loads(text)
            except ValueError:
                items = [text]
            if not isinstance(items, list):
                items = [text]
        else:
            sep = separator or next((c for c in MULTI_LABEL_SEPARATORS if c in text), None)
            items = text.split(sep) if sep else ([text] if text else [])
    return [label_key(v) for v in items if str(v).strip()]


def _comma_list_cells(raw: Sequence[Any]) -> list[str]:
    """Cells that look like comma-separated label lists (``"8,20"``): two or more parts, each an integer id or a
    value that is a whole cell elsewhere in the column."""
    whole = {label_key(v) for v in raw if not isinstance(v, (list, tuple))}
    out = []
    for v in raw:
        if isinstance(v, (list, tuple)) or "," not in str(v):
            continue
        parts = [p.strip() for p in str(v).split(",")]
        if len(parts) >= 2 and all(p and (p.isdigit() or p in whole) for p in parts):
            out.append(str(v).strip())
    return out


def read_label_names(path: str | Path) -> tuple[str, ...]:
    """The label names of a ``--label-names`` file: one name per line, class id = line number (0-based).

    Raises:
        DataError: a missing or non-UTF-8 file, an empty line among the names, a duplicate name, fewer than two names.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"--label-names file {path} not found; pass a text file with one label name per line")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); re-save it as UTF-8") from exc
    while lines and not lines[-1].strip():
        lines.pop()
    names = [line.strip() for line in lines]
    empty = [i + 1 for i, n in enumerate(names) if not n]
    if empty:
        raise DataError(f"{path} line {empty[0]} is empty; write one label name per line (class id = line number - 1)")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(f"{path} names {cut_list(dupes)} more than once; each label name once")
    if len(names) < 2:
        raise DataError(f"{path} holds {len(names)} label name(s); a classifier needs at least two")
    return tuple(names)


def _looks_multi_label(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return True
    text = str(value).strip()
    return (text.startswith("[") and text.endswith("]")) or any(c in text for c in MULTI_LABEL_SEPARATORS)


def label_key(value: Any) -> str:
    """Normalise a raw label for comparison with ``TaskSpec.labels``: a stripped string.

    JSON numbers are written without a fractional part when integral (``1`` and ``1.0`` -> ``"1"``)
    and booleans as ``"0"``/``"1"``.
    """
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _sorted_labels(values: set[str]) -> tuple[str, ...]:
    """Sort label strings; numerically when they are all integers (so "10" comes after "2")."""
    try:
        return tuple(sorted(values, key=int))
    except ValueError:
        return tuple(sorted(values))


def infer_task(rows: list[Row], train_file: Path, text_columns, label_column, labels, problem_type, *,
                 unit: str = "line", label_separator: str | None = None,
                 label_names: Sequence[str] | None = None) -> TaskSpec:
    """The task of your own files: its problem type (given, or inferred where unambiguous) and label set.

    Inference (no ``problem_type``): a list or a ``|``/``;``-separated cell in any row → multi-label; cells that look
    like comma-separated lists (``"8,20"``) → refused with a line naming ``--problem-type multi_label`` (no silent
    switch); numbers that are not all integers (scores) → refused with a line naming ``--problem-type`` (regression,
    or single_label to make each value a class), and a mix of such numbers and text → refused naming the text row;
    otherwise single-label classification over the sorted distinct values. Missing cells (:func:`is_missing_label`)
    take no part. Multi-label cells are split on ``label_separator``; without one on ``|``/``;``, else on ``,``
    when a cell holds one and no label name does. ``label_names`` (a ``--label-names`` file's) are the label set,
    and cells may hold their ids.

    Raises:
        DataError: each refusal above, in one line; regression with labels; fewer than two labels.
    """
    log = logging.getLogger("kdistill")
    if not rows:
        raise DataError(f"the train split from {train_file} has no rows; add examples to the file")
    if label_names is not None and labels:
        raise DataError("pass either --labels or --label-names, not both")
    if label_separator is not None and problem_type not in (None, "multi_label"):
        raise DataError(f"--label-separator splits multi-label cells; it does not go with --problem-type {problem_type}")
    raw = [r[2] for r in rows if not is_missing_label(r[2])]
    if problem_type is None:
        if label_separator is not None or any(_looks_multi_label(v) for v in raw):
            problem_type = "multi_label"
        elif labels is None and label_names is None:
            commas = _comma_list_cells(raw)
            if commas:
                raise DataError(
                    f"{train_file}: {len(commas)} label cell(s) look like comma-separated lists (e.g. {commas[0]!r}); "
                    "for several labels per row pass --problem-type multi_label (--label-separator ',' and, for label "
                    "ids, --label-names FILE), or --problem-type single_label to keep each cell one class")
            numbers = [as_number(str(v)) for v in raw]
            fractional = [str(v).strip() for v, x in zip(raw, numbers) if x is not None and not float(x).is_integer()]
            if fractional:
                text_rows = [(r[0], r[2]) for r in rows if not is_missing_label(r[2]) and as_number(str(r[2])) is None]
                if text_rows:
                    number, value = text_rows[0]
                    raise DataError(
                        f"{train_file} {unit} {number}: label {short_repr(value)} is text but other labels are scores "
                        f"(e.g. {fractional[0]!r}); fix that row for --problem-type regression, or pass --problem-type "
                        "single_label to make each distinct value a class")
                raise DataError(f"{train_file}: the labels look like scores (e.g. {fractional[0]!r}); pass --problem-type "
                                "regression, or --problem-type single_label to make each distinct value a class")
    if problem_type == "regression":
        if labels or label_names:
            raise DataError("--problem-type regression takes no --labels or --label-names")
        return TaskSpec(name="custom", glue_dir="", text_columns=text_columns, label_column=label_column, labels=None,
                        metrics=("pearson", "spearmanr"), main_metric="pearson")
    multi = problem_type == "multi_label"
    known = label_names if label_names is not None else labels
    if multi and label_separator is None and not any(
            isinstance(v, (list, tuple)) or any(c in str(v) for c in MULTI_LABEL_SEPARATORS) for v in raw):
        if any("," in str(v) for v in raw):
            if known is not None and any("," in str(n) for n in known):
                raise DataError("the multi-label cells hold ',' and so do some label names; pass --label-separator "
                                "with the character that separates the labels")
            label_separator = ","
    if multi:
        log.info("multi-label cells: labels separated by %s", repr(label_separator) if label_separator
                 else "'|' or ';' (or a JSON list)")
    if label_names is not None:
        labels = tuple(label_names)
    elif labels is None:
        found = ({k for v in raw for k in split_multi_label(v, label_separator)} if multi
                 else {label_key(v) for v in raw})
        labels = _sorted_labels(found)
        if len(labels) < 2:
            raise DataError(f"{train_file} has only {len(labels)} distinct label(s) {cut_list(labels)}; a classifier "
                            "needs at least two, so add examples of the other classes or pass --labels")
    labels = tuple(str(v).strip() for v in labels)
    metrics, main = (("micro_f1", "macro_f1", "exact_match"), "micro_f1") if multi else (("accuracy", "f1"), "accuracy")
    return TaskSpec(name="custom", glue_dir="", text_columns=text_columns, label_column=label_column, labels=labels,
                    metrics=metrics, main_metric=main, multi_label=multi, label_separator=label_separator,
                    label_ids=label_names is not None)
