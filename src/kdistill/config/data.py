"""Where the data comes from: :class:`DataConfig`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kdistill.config.base import ConfigBase as _Base


class DataConfig(_Base):
    """Where the data comes from (see :func:`kdistill.data.load_splits`)."""

    task: str | None = "sst2"
    data_dir: str | None = None
    train_file: str | None = None
    validation_file: str | None = None
    text_columns: list[str] | None = None
    label_column: str | None = None
    # your own files without a task: single_label | multi_label | regression (None: inferred where unambiguous)
    problem_type: Literal["single_label", "multi_label", "regression"] | None = None
    labels: list[str] | None = None  # the label set of your own files (default: the task's, or inferred from train)
    # multi-label cells: the string between labels (None: a JSON list, '|' or ';', else ',' when no label name has one)
    label_separator: str | None = Field(default=None, min_length=1)
    # a file of label names, one per line (class id = line number, 0-based): the label set; cells may hold the ids
    label_names: str | list[str] | None = None
    drop_unlabeled: bool = False  # drop rows whose label cell is empty or NaN (default: refuse them, naming the rows)
    max_train_samples: int | None = Field(default=None, ge=1)
    max_eval_samples: int | None = Field(default=None, ge=1)
    max_length: int = Field(default=128, ge=8, le=4096)
    cache_dir: str | None = None  # tokenised data; default <output>/../.kdistill_cache or ~/.cache/kdistill
    # which split chooses the kept student: "dev" (the reported split: optimistic), "holdout" (a seeded, stratified
    # slice of full-length train rows, excluded from training and augmentation; or selection_file), "last" (no choice)
    select_on: Literal["dev", "holdout", "last"] = "holdout"
    selection_size: int = Field(default=1000, ge=1)  # rows of the held-out slice (at most 10% of the train split)
    selection_file: str | None = None  # your own selection split (same columns as the train file)
