"""Where the data comes from: :class:`DataConfig`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kdistill.config.base import ConfigBase as _Base


class DataConfig(_Base):
    """Where the data comes from (see :func:`kdistill.data.load_splits`): a GLUE task (from the hub or ``data_dir``),
    or your own CSV/TSV/JSONL files (``train_file`` / ``validation_file``, ``task`` None), and which split chooses the
    kept student (``select_on``)."""

    task: str | None = Field(default="sst2", description=(
        "GLUE task (cola sst2 mrpc stsb qqp mnli qnli rte wnli), conll2003 (NER) or squad / squad_v2 (QA), or none with "
        "--train-file/--validation-file (labels inferred from train, or --labels)."))
    data_dir: str | None = Field(default=None, description=(
        "Folder in the GLUE layout, e.g. glue/ holding SST-2/train.tsv. Default: the hub."))
    dataset: str | None = Field(default=None, description=(
        "Token classification or question answering: a Hugging Face hub dataset id, or a local folder of its Parquet "
        "files (train*.parquet, validation* / test*.parquet), with tokens and ner_tags, or question, context and "
        "answers columns."))
    train_file: str | None = Field(default=None, description="Your own CSV/TSV/JSONL train file.")
    validation_file: str | None = Field(default=None, description="Your own CSV/TSV/JSONL validation file.")
    text_columns: list[str] | None = Field(default=None, description=(
        "Comma-separated text column(s) of your own files (1 or 2)."))
    label_column: str | None = Field(default=None, description="Label column of your own files.")
    problem_type: Literal["single_label", "multi_label", "regression", "token_classification",
                          "question_answering"] | None = Field(
        default=None, description=(
            "Your own files without --task: single_label | multi_label (cells: JSON list, a|b, a;b or "
            "--label-separator) | regression | token_classification (CoNLL / JSONL tokens+ner_tags) | "
            "question_answering (SQuAD JSON / JSONL question+context+answers); default: inferred where unambiguous."))
    labels: list[str] | None = Field(default=None, description=(
        "Comma-separated label set of your own files (default: the task's, or the labels seen in train)."))
    label_separator: str | None = Field(default=None, min_length=1, description=(
        "Multi-label cells: the string between labels (default: a JSON list, | or ;, else , when no label name holds "
        "one)."))
    label_names: str | list[str] | None = Field(default=None, description=(
        "A file of label names, one per line (class id = line number, from 0): the label set; cells may hold the ids "
        "(e.g. 8,20)."))
    drop_unlabeled: bool = Field(default=False, description=(
        "Drop rows whose label cell is empty or NaN (default: refuse them, naming the rows)."))
    max_train_samples: int | None = Field(default=None, ge=1, description="Use only the first N training rows.")
    max_eval_samples: int | None = Field(default=None, ge=1, description="Use only the first N validation rows.")
    max_length: int = Field(default=128, ge=8, le=4096, description="Truncate inputs to this many tokens.")
    doc_stride: int = Field(default=128, ge=1, description=(
        "Question answering: a context longer than --max-length is cut into windows that overlap by this many tokens "
        "(must be below --max-length; SQuAD: --max-length 384 --doc-stride 128)."))
    max_answer_length: int = Field(default=30, ge=1, description=(
        "Question answering: the longest answer considered, in tokens."))
    n_best: int = Field(default=20, ge=1, description=(
        "Question answering: start and end candidates per window in the answer search."))
    null_threshold: float | None = Field(default=None, description=(
        "Question answering with unanswerable questions (SQuAD v2.0): answer nothing when the null score beats the "
        "best span by more than this (default: 0 for squad_v2, never for v1.1)."))
    cache_dir: str | None = Field(default=None, description=(
        "Where tokenised data is cached (default: <output>/../.kdistill_cache or ~/.cache/kdistill)."))
    select_on: Literal["dev", "holdout", "last"] = Field(default="holdout", description=(
        "Which split chooses the kept student: holdout (a seeded, stratified slice of full-length train rows, kept out "
        "of training and augmentation; or --selection-file) | dev (the reported split: optimistic) | last (no choice: "
        "the model at the end of training)."))
    selection_size: int = Field(default=1000, ge=1, description=(
        "--select-on holdout: rows of the held-out slice (at most 10% of train)."))
    selection_file: str | None = Field(default=None, description=(
        "--select-on holdout: your own selection split instead (the train file's columns)."))
