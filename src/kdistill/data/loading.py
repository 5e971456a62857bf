"""Load a task's train/validation splits into a uniform :class:`datasets.DatasetDict`.

(Every source shares one validation path — columns, labels, the line of a bad row; how label cells are read and
how a task is inferred from your own files live in :mod:`kdistill.data.labels`.)

Three sources, picked by the arguments of :func:`load_splits`:

* ``data_dir``: a local copy of the GLUE distribution (``<data-dir>/SST-2/train.tsv`` ...), or the
  task folder itself;
* ``train_file`` + ``validation_file``: the user's own CSV, TSV or JSONL files;
* neither: the ``nyu-mll/glue`` dataset from the Hugging Face hub.

Whatever the source, every split has the columns ``text_a`` (str), ``text_b`` (str, pair tasks
only), ``label`` (int class id, or float for regression) and ``idx`` (row index 0..n-1 within the
split). Every problem with the data is raised as a one-line :class:`~kdistill.errors.DataError`
before anything is returned.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets

from kdistill.data.labels import (Row as _Row, cut_list, infer_task, is_missing_label, label_key,
                                  read_label_names, short_repr, split_multi_label)
from kdistill.data.readers import read_file
from kdistill.data.tasks import TaskSpec, _normalize, get_task
from kdistill.errors import DataError

__all__ = ["load_splits"]


# --------------------------------------------------------------------------------------------------
# Rows -> Dataset, with validation.
# --------------------------------------------------------------------------------------------------


def _build_split(
    rows: list[_Row],
    spec: TaskSpec,
    *,
    split: str,
    source: str,
    unit: str,
    max_samples: int | None,
    fix_hint: str,
    drop_unlabeled: bool = False,
) -> datasets.Dataset:
    """Validate every row (texts, labels) then keep the first ``max_samples`` rows.

    A row whose label cell is missing (:func:`is_missing_label`) is refused, or dropped with ``drop_unlabeled``;
    in multi-label data it is an example with no labels.
    """
    if not rows:
        raise DataError(f"the {split} split from {source} has no rows; {fix_hint}")
    text_names = list(spec.text_columns)
    texts: list[list[str]] = [[] for _ in text_names]
    labels: list[Any] = []
    if spec.labels is not None:
        label_ids = {str(v).strip(): i for i, v in enumerate(spec.labels)}
    if not spec.multi_label:  # a row without a label: refused (naming the rows) or, with drop_unlabeled, dropped
        missing = [r for r in rows if is_missing_label(r[2])]
        unlabeled = [r[0] for r in missing]
        if unlabeled and not drop_unlabeled:
            raise DataError(
                f"{source}: {len(unlabeled)} row(s) have no label in column {spec.label_column!r} (empty or NaN, e.g. "
                f"{short_repr(missing[0][2])} on {unit} {unlabeled[0]}; {unit}s {cut_list(unlabeled, 5)}); fill them in, "
                "remove them, or pass --drop-unlabeled")
        if unlabeled:
            rows = [r for r in rows if not is_missing_label(r[2])]
            import logging

            logging.getLogger("kdistill").info("%s: dropped %d unlabeled row(s) (--drop-unlabeled)", source, len(unlabeled))
            if not rows:
                raise DataError(f"the {split} split from {source} has no labeled rows; {fix_hint}")

    def class_id(key: str, number: int) -> int:
        """A label key's class id: its position in ``spec.labels``, or (``label_ids``) an id given as a number."""
        if key in label_ids:
            return label_ids[key]
        if spec.label_ids and key.lstrip("-").isdigit():
            raise DataError(f"{source} {unit} {number}: label id {key} in column {spec.label_column!r} is out of range: "
                            f"the --label-names file has {len(spec.labels)} names (ids 0..{len(spec.labels) - 1}); "
                            "fix the id or the names file")
        raise DataError(
            f"{source} {unit} {number}: label {short_repr(key)} in column {spec.label_column!r} is not one of the "
            f"{spec.name} labels {cut_list(spec.labels)}; fix the label or pass --labels with the full label set")

    if spec.label_ids:
        label_ids = {**{str(i): i for i in range(len(spec.labels))}, **label_ids}  # names win over ids
    for number, values, raw_label in rows:
        for j, value in enumerate(values):
            if value is None or (isinstance(value, str) and not value.strip()) or isinstance(value, (dict, list)):
                raise DataError(
                    f"{source} {unit} {number}: text column {text_names[j]!r} is "
                    f"{'empty' if not isinstance(value, (dict, list)) else 'not a string'}; "
                    "fill it in or remove that row"
                )
            texts[j].append(value if isinstance(value, str) else str(value))
        if spec.labels is None:
            try:
                number_value = float(raw_label) if not isinstance(raw_label, bool) else math.nan
            except (TypeError, ValueError):
                number_value = math.nan
            if not math.isfinite(number_value):
                raise DataError(
                    f"{source} {unit} {number}: regression label {short_repr(raw_label)} in column "
                    f"{spec.label_column!r} is not a finite number; fix the score or remove that row"
                )
            labels.append(number_value)
        elif spec.multi_label:
            hot = [0.0] * len(spec.labels)
            for k in split_multi_label(raw_label, spec.label_separator):
                hot[class_id(k, number)] = 1.0
            labels.append(hot)
        else:
            labels.append(class_id(label_key(raw_label), number))
    n = len(labels) if max_samples is None else min(max_samples, len(labels))
    data: dict[str, list[Any]] = {"text_a": texts[0][:n]}
    features: dict[str, Any] = {"text_a": datasets.Value("string")}
    if spec.is_pair:
        data["text_b"] = texts[1][:n]
        features["text_b"] = datasets.Value("string")
    data["label"] = labels[:n]
    features["label"] = (datasets.Sequence(datasets.Value("float32")) if spec.multi_label
                         else datasets.Value("float32" if spec.is_regression else "int64"))
    data["idx"] = list(range(n))
    features["idx"] = datasets.Value("int64")
    return datasets.Dataset.from_dict(data, features=datasets.Features(features))


# --------------------------------------------------------------------------------------------------
# Sources.
# --------------------------------------------------------------------------------------------------


def _task_dir(data_dir: Path, spec: TaskSpec) -> Path:
    """``<data_dir>/<glue_dir>``, or ``data_dir`` itself when it already is the task folder."""
    candidate = data_dir / spec.glue_dir
    if candidate.is_dir():
        return candidate
    if (data_dir / spec.train_file).is_file() or (data_dir / spec.dev_file).is_file():
        return data_dir
    if data_dir.is_dir():  # tolerate another spelling of the folder, e.g. "sst-2" or "sst2"
        for child in sorted(data_dir.iterdir()):
            if child.is_dir() and _normalize(child.name) in (spec.name, _normalize(spec.glue_dir)):
                return child
    return candidate


def _load_glue_dir(data_dir: Path, spec: TaskSpec, max_train: int | None, max_eval: int | None,
                   drop_unlabeled: bool = False) -> datasets.DatasetDict:
    if not data_dir.is_dir():
        raise DataError(
            f"data directory {data_dir} does not exist; pass --data-dir pointing at the GLUE folder "
            f"that holds {spec.glue_dir}/{spec.train_file}"
        )
    task_dir = _task_dir(data_dir, spec)
    layout = f"<data-dir>/{spec.glue_dir}/{spec.train_file} and <data-dir>/{spec.glue_dir}/{spec.dev_file}"
    hint = f"expected the GLUE {spec.glue_dir} layout (or pass --text-columns/--label-column)"
    splits = {}
    for split, file_name, max_samples in (
        ("train", spec.train_file, max_train),
        ("validation", spec.dev_file, max_eval),
    ):
        path = task_dir / file_name
        if not path.is_file():
            raise DataError(f"missing file {path}; --data-dir must follow the GLUE layout {layout}")
        rows, unit = read_file(
            path, text_columns=spec.text_columns, label_column=spec.label_column,
            fixed_columns=None if spec.has_header else spec.columns, glue=True, hint=hint,
        )
        splits[split] = _build_split(
            rows, spec, split=split, source=str(path), unit=unit, max_samples=max_samples,
            fix_hint=f"check that {path} is the GLUE {spec.glue_dir} {split} file", drop_unlabeled=drop_unlabeled,
        )
    return datasets.DatasetDict(splits)


def _load_files(
    spec: TaskSpec | None,
    train_file: Path,
    validation_file: Path,
    text_columns: Sequence[str] | None,
    label_column: str | None,
    labels: Sequence[str] | None,
    max_train: int | None,
    max_eval: int | None,
    problem_type: str | None = None,
    label_separator: str | None = None,
    label_names: Sequence[str] | None = None,
    drop_unlabeled: bool = False,
    dataset: str | None = None,
) -> tuple[datasets.DatasetDict, TaskSpec]:
    if spec is not None:
        text_columns = tuple(text_columns) if text_columns else spec.text_columns
        label_column = label_column or spec.label_column
    if not text_columns or not label_column:
        raise DataError(
            "your own --train-file/--validation-file need --text-columns (1 or 2 column names) and --label-column"
        )
    text_columns = tuple(text_columns)
    if len(text_columns) not in (1, 2):
        raise DataError(f"--text-columns got {len(text_columns)} names {list(text_columns)}; give 1 or 2 column names")
    hint = "pass --text-columns/--label-column matching the file's columns"
    read = {}
    for split, path in (("train", train_file), ("validation", validation_file)):
        if not path.is_file():
            raise DataError(
                f"missing {split} file {path}; pass an existing .csv, .tsv or .jsonl file "
                f"with a header holding {[*text_columns, label_column]}"
            )
        read[split] = read_file(path, text_columns=text_columns, label_column=label_column, hint=hint)

    if spec is None:
        spec = infer_task(read["train"][0], train_file, text_columns, label_column, labels, problem_type,
                            unit=read["train"][1], label_separator=label_separator, label_names=label_names)
    else:
        spec = dataclasses.replace(spec, text_columns=text_columns, label_column=label_column)

    splits = {}
    for split, path, max_samples in (
        ("train", train_file, max_train),
        ("validation", validation_file, max_eval),
    ):
        splits[split] = _build_split(
            read[split][0], spec, split=split, source=str(path), unit=read[split][1], max_samples=max_samples,
            fix_hint="add examples to the file", drop_unlabeled=drop_unlabeled,
        )
    return datasets.DatasetDict(splits), spec


def _load_hub(spec: TaskSpec, max_train: int | None, max_eval: int | None) -> datasets.DatasetDict:
    if spec.hub is None:
        raise DataError(
            f"task {spec.name!r} is not on the hub; pass --data-dir or --train-file/--validation-file"
        )
    try:
        raw = datasets.load_dataset(*spec.hub)
    except Exception as exc:  # offline, hub down, unknown config...: all end the same way for the user
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise DataError(
            f"cannot load {spec.hub[0]}/{spec.hub[1]} from the Hugging Face hub ({reason}); "
            f"pass --data-dir <GLUE folder holding {spec.glue_dir}/> or --train-file/--validation-file"
        ) from exc
    text_columns = spec.hub_text_columns or spec.text_columns
    splits = {}
    for split, hub_split, max_samples in (
        ("train", "train", max_train),
        ("validation", spec.hub_validation_split, max_eval),
    ):
        if hub_split not in raw:
            raise DataError(
                f"hub dataset {spec.hub[0]}/{spec.hub[1]} has no split {hub_split!r} (found {list(raw)}); "
                "pass --data-dir or --train-file/--validation-file"
            )
        part = raw[hub_split]
        missing = [c for c in (*text_columns, spec.hub_label_column) if c not in part.column_names]
        if missing:
            raise DataError(
                f"hub split {spec.hub[1]}/{hub_split} is missing column(s) {missing}: found {part.column_names}; "
                "pass --data-dir or --train-file/--validation-file"
            )
        columns = [part[c] for c in text_columns]
        raw_labels = part[spec.hub_label_column]
        rows: list[_Row] = []
        for i, label in enumerate(raw_labels):
            if spec.labels is not None and isinstance(label, int) and not isinstance(label, bool):
                # hub labels are ClassLabel ids in spec.labels order; -1 (unlabelled) fails validation
                label = spec.labels[label] if 0 <= label < len(spec.labels) else label
            rows.append((i + 1, [col[i] for col in columns], label))
        splits[split] = _build_split(
            rows, spec, split=split, source=f"hub {spec.hub[0]}/{spec.hub[1]} split {hub_split}", unit="row",
            max_samples=max_samples, fix_hint="pass --data-dir or --train-file/--validation-file",
        )
    return datasets.DatasetDict(splits)


def _check_max(name: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(f"--{name.replace('_', '-')} must be a positive whole number, got {short_repr(value)}")


def _looks_like_ner(path: Path) -> bool:
    """Own files read as token classification: a ``.conll``/``.iob`` file, a ``.txt`` whose first line is ``token TAG``
    (IOB tag last), or JSONL rows with ``tokens`` and ``ner_tags``."""
    if not path.is_file():
        return False
    if path.suffix.lower() in (".conll", ".iob", ".bio"):
        return True
    with open(path, encoding="utf-8", errors="replace") as f:
        first = next((line.strip() for line in f if line.strip()), "")
    if path.suffix.lower() == ".txt":
        parts = first.split()
        return len(parts) >= 2 and (parts[0] == "-DOCSTART-" or parts[-1] == "O" or parts[-1][:2] in ("B-", "I-")
                                    or parts[1] == "O" or parts[1][:2] in ("B-", "I-"))
    if path.suffix.lower() in (".jsonl", ".json") and first.startswith("{"):
        try:
            row = json.loads(first)
        except ValueError:
            return False
        return isinstance(row, dict) and "tokens" in row and "ner_tags" in row
    return False


def _load_special(spec, dataset, data_dir, train_file, validation_file, labels, problem_type, max_train_samples,
                  max_eval_samples):
    """:func:`load_splits` for question answering (:mod:`kdistill.qa.data`) or token classification
    (:func:`_load_tokens`) — by the task, ``--problem-type``, ``--dataset`` or the train file's content; None for
    sentence-level data."""
    from kdistill.qa.data import load_qa_splits, looks_like_qa

    own = spec is None and train_file is not None
    if (spec is not None and spec.qa) or problem_type == "question_answering" or (own and looks_like_qa(Path(train_file))):
        return load_qa_splits(spec, data_dir=data_dir, train_file=train_file, validation_file=validation_file,
                              dataset=dataset, max_train_samples=max_train_samples, max_eval_samples=max_eval_samples)
    if dataset is not None or (spec is not None and spec.token_level) or problem_type == "token_classification" or (
            own and _looks_like_ner(Path(train_file))):
        return _load_tokens(spec, dataset, data_dir, train_file, validation_file, labels, max_train_samples,
                            max_eval_samples)
    return None


def _load_tokens(spec, dataset, data_dir, train_file, validation_file, labels, max_train_samples, max_eval_samples):
    """:func:`load_splits` for token classification: a hub dataset / its Parquet folder, the task's folder, or your
    own NER files (:mod:`kdistill.tokens.data`)."""
    from kdistill.tokens.data import load_token_dataset, load_token_splits

    if dataset is not None:
        if spec is not None and not spec.token_level:
            raise DataError(f"--dataset reads token-classification datasets (tokens, ner_tags); task {spec.name!r} "
                            "reads --data-dir or the hub: drop --dataset")
        return load_token_dataset(dataset, spec, labels=labels, max_train_samples=max_train_samples,
                                  max_eval_samples=max_eval_samples)
    if data_dir is None and train_file is None:
        raise DataError(f"task {spec.name!r}: pass --data-dir (a folder with {spec.glue_dir}/{spec.train_file}) "
                        "or --train-file/--validation-file")
    folder = None if data_dir is None else _task_dir(Path(data_dir).expanduser(), spec)
    return load_token_splits(spec, data_dir=folder, train_file=train_file, validation_file=validation_file,
                             labels=labels, max_train_samples=max_train_samples, max_eval_samples=max_eval_samples)


def load_splits(
    task: str | TaskSpec | None = None,
    *,
    data_dir: str | Path | None = None,
    train_file: str | Path | None = None,
    validation_file: str | Path | None = None,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    labels: Sequence[str] | None = None,
    problem_type: str | None = None,
    label_separator: str | None = None,
    label_names: str | Path | Sequence[str] | None = None,
    drop_unlabeled: bool = False,
    dataset: str | None = None,
) -> tuple[datasets.DatasetDict, TaskSpec]:
    """Load the train and validation splits of a task.

    Args:
        task: GLUE task name (``"sst2"``, ``"SST-2"``...) or a :class:`TaskSpec`; may be ``None``
            only with ``train_file``/``validation_file``.
        data_dir: local GLUE folder (``<data_dir>/SST-2/train.tsv``) or the task folder itself.
        train_file, validation_file: the user's own files (``.csv``, ``.tsv`` read without quote
            handling, ``.jsonl``/``.json``), both required together; they need a header (or JSON
            keys) naming ``text_columns`` and ``label_column``.
        text_columns: 1 or 2 column names holding the text (default: the task's).
        label_column: column holding the label (default: the task's).
        max_train_samples, max_eval_samples: keep only the first N rows (deterministic). The whole
            file is still validated, and a custom label set is taken from the whole train file.
        labels: the label set (index = class id), overriding the task's or the one inferred from
            the train file (sorted distinct values; numerically when all are integers).
        problem_type: your own files without a task: ``single_label``, ``multi_label`` (cells hold a JSON
            list or ``|``/``;``-separated labels; targets become multi-hot float vectors ``[C]``) or
            ``regression``; ``None`` infers it where unambiguous (see :func:`kdistill.data.labels.infer_task`).
        label_separator: multi-label cells: the string between labels (default: a JSON list, ``|`` or ``;``, else
            ``,`` when no label name holds one); recorded in the returned TaskSpec.
        label_names: a ``--label-names`` file (one name per line, class id = line number, 0-based) or the names
            themselves: the label set, and cells may hold ids (``"8,20"`` → names 8 and 20).
        drop_unlabeled: drop rows whose label cell is empty or NaN (single-label, regression) instead of refusing
            them; multi-label rows with an empty cell are examples with no labels either way.
        dataset: token classification or question answering: a hub dataset id or its local Parquet folder
            (``tokens.data``, ``qa.data``).

    Returns:
        ``(DatasetDict, TaskSpec)``. The DatasetDict has splits ``"train"`` and ``"validation"``
        with exactly the columns ``text_a`` (str), ``text_b`` (str, pair tasks only), ``label``
        (int64 class id; float32 for regression) and ``idx`` (int64, 0..n-1). The TaskSpec is the
        task's, with any column/label overrides applied, or a ``"custom"`` one (metrics accuracy
        and f1, main metric accuracy) when ``task`` is ``None``.

    Raises:
        DataError: unknown task; missing file (says the expected layout); a row with the wrong
            number of fields or unparseable (file and line); missing columns (found vs expected);
            a label outside the label set (value, file, line, allowed set); a regression label
            that is not a number; an empty split; an empty text; the hub unreachable; unlabeled rows without
            ``drop_unlabeled``; a duplicate column name; a label id out of the names' range.
    """
    spec = get_task(task) if isinstance(task, str) else task
    if spec is not None and not isinstance(spec, TaskSpec):
        raise DataError(f"task must be a task name or a TaskSpec, got {type(task).__name__}; pass e.g. 'sst2'")
    _check_max("max_train_samples", max_train_samples)
    _check_max("max_eval_samples", max_eval_samples)
    if (special := _load_special(spec, dataset, data_dir, train_file, validation_file, labels or label_names,
                                 problem_type, max_train_samples, max_eval_samples)) is not None:
        return special  # question answering or token classification: their own layouts

    if label_separator is not None and not str(label_separator):
        raise DataError("--label-separator is empty; give the character(s) between labels, e.g. ','")
    if label_names is not None:
        if labels is not None:
            raise DataError("pass either --labels or --label-names, not both")
        label_names = (read_label_names(label_names) if isinstance(label_names, (str, Path))
                       else tuple(str(v).strip() for v in label_names))
    if spec is not None and label_separator is not None and not spec.multi_label:
        raise DataError(f"--label-separator splits multi-label cells; task {spec.name!r} has one label per row")
    if labels is not None or label_names is not None:
        if spec is not None:
            if spec.is_regression:
                raise DataError(f"task {spec.name!r} is a regression task; drop --labels/--label-names")
            spec = dataclasses.replace(spec, labels=tuple(label_names or labels), label_ids=label_names is not None)
        if labels is not None:
            labels = tuple(str(v).strip() for v in labels)

    if train_file is not None or validation_file is not None:
        if data_dir is not None:
            raise DataError("pass either --data-dir or --train-file/--validation-file, not both")
        if train_file is None or validation_file is None:
            raise DataError("pass both --train-file and --validation-file (one file per split)")
        return _load_files(
            spec, Path(train_file).expanduser(), Path(validation_file).expanduser(), text_columns,
            label_column, labels, max_train_samples, max_eval_samples, problem_type,
            label_separator=label_separator, label_names=label_names, drop_unlabeled=drop_unlabeled,
        )

    if spec is None:
        raise DataError("no task given; pass a GLUE task name (e.g. sst2) or --train-file/--validation-file")
    if text_columns is not None or label_column is not None:
        text_columns = tuple(text_columns) if text_columns else None
        if text_columns is not None and len(text_columns) not in (1, 2):
            raise DataError(
                f"--text-columns got {len(text_columns)} names {list(text_columns)}; give 1 or 2 column names"
            )
        if data_dir is not None:
            spec = dataclasses.replace(
                spec, text_columns=text_columns or spec.text_columns, label_column=label_column or spec.label_column
            )
        else:
            spec = dataclasses.replace(
                spec,
                text_columns=text_columns or spec.text_columns,
                hub_text_columns=text_columns or spec.hub_text_columns,
                label_column=label_column or spec.label_column,
                hub_label_column=label_column or spec.hub_label_column,
            )

    if data_dir is not None:
        return _load_glue_dir(Path(data_dir).expanduser(), spec, max_train_samples, max_eval_samples,
                              drop_unlabeled), spec
    return _load_hub(spec, max_train_samples, max_eval_samples), spec


def load_data(cfg) -> tuple[datasets.DatasetDict, TaskSpec]:
    """:func:`load_splits` with the options of a :class:`~kdistill.config.DataConfig`; an inferred label set is logged."""
    splits, spec = load_splits(
        cfg.task, data_dir=cfg.data_dir, train_file=cfg.train_file, validation_file=cfg.validation_file,
        text_columns=cfg.text_columns, label_column=cfg.label_column, labels=cfg.labels,
        max_train_samples=cfg.max_train_samples, max_eval_samples=cfg.max_eval_samples,
        problem_type=cfg.problem_type, label_separator=cfg.label_separator, label_names=cfg.label_names,
        drop_unlabeled=cfg.drop_unlabeled, dataset=cfg.dataset,
    )
    if spec.qa:  # the windows and the answer post-processing of question answering, as the config sets them
        spec = dataclasses.replace(spec, doc_stride=cfg.doc_stride, max_answer_length=cfg.max_answer_length,
                                   n_best=cfg.n_best, null_threshold=spec.null_threshold if cfg.null_threshold is None
                                   else cfg.null_threshold)
    if cfg.task is None and not cfg.labels and not cfg.label_names and not spec.is_regression and not spec.qa:
        import logging

        shown = ", ".join(spec.labels[:20]) + (f" … and {len(spec.labels) - 20} more" if len(spec.labels) > 20 else "")
        logging.getLogger("kdistill").info("no --task: %d labels inferred from the train split: %s (class id = position; "
                                           "--labels sets them)", len(spec.labels), shown)
    return splits, spec
