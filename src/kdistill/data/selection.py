"""A model-selection slice held out of the train split, so the kept student is not chosen on the reported split.

Best-checkpoint selection on the dev set that the report then reports is the maximum of many noisy looks
at it (on SST-2's 872 dev rows one example is 0.11 point). :func:`holdout_slice` draws a seeded,
label-stratified slice of *full-length* train rows instead (SST-2's train split is mostly phrases, its
dev split full sentences), removes it from training (and so from any augmented set built from the rest),
and renumbers both parts' ``idx``. Phrases of a held-out sentence may stay in training (SST-2 lists the
phrases of a sentence as separate rows): the slice is a selection signal, not a clean test set.
"""

from __future__ import annotations

from collections import defaultdict

import datasets
import numpy as np

from kdistill.errors import DataError

MIN_WORDS = 10  # "full-length": at least this many words (SST-2 dev rows: 19.5 on average)
MAX_FRACTION = 0.1


def _words(ds: datasets.Dataset) -> np.ndarray:
    counts = np.array([len(t.split()) for t in ds["text_a"]])
    if "text_b" in ds.column_names:
        counts = counts + np.array([len(t.split()) for t in ds["text_b"]])
    return counts


def _renumber(ds: datasets.Dataset) -> datasets.Dataset:
    return ds.remove_columns("idx").add_column("idx", list(range(len(ds))))


def holdout_slice(train: datasets.Dataset, *, size: int, seed: int, regression: bool = False,
                  min_words: int = MIN_WORDS) -> tuple[datasets.Dataset, datasets.Dataset, dict]:
    """Split ``train`` into (rest, selection slice).

    Args:
        train: a split of :func:`kdistill.data.load_splits` (``text_a`` [, ``text_b``], ``label``, ``idx``).
        size: rows wanted in the slice; at most 10% of ``train`` are taken.
        seed: the draw's seed.
        regression: no label stratification (scores are continuous).
        min_words: rows with at least this many words are preferred; when too few, the longest rows are used.

    Returns:
        ``(rest, selection, info)``: both with ``idx`` renumbered 0..n-1 (the teacher-logit cache is indexed
        by ``idx``); ``info`` records the sizes, the rule and the seed.

    Raises:
        DataError: a train split too small to hold out a slice (fewer than 10 rows).
    """
    n = len(train)
    k = min(size, int(n * MAX_FRACTION))
    if k < 1:
        raise DataError(f"the train split has {n} rows: too few to hold out a selection slice; use --select-on dev or last, "
                        "or give --selection-file")
    words = _words(train)
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(words >= min_words)
    if len(candidates) < k:  # not enough full-length rows: the longest ones
        candidates = np.argsort(-words, kind="stable")[: max(k, min(n, 2 * k))]
    labels = list(train["label"])
    if regression:
        chosen = rng.choice(candidates, size=k, replace=False)
    else:
        groups = defaultdict(list)
        for i in candidates:
            key = labels[i]
            groups[tuple(key) if np.ndim(key) else key].append(i)  # multi-label: stratified by label combination
        total = len(candidates)
        chosen = []
        for lab, rows in sorted(groups.items()):
            want = int(round(k * len(rows) / total))
            chosen.extend(rng.choice(rows, size=min(want, len(rows)), replace=False).tolist())
        chosen = np.array(sorted(chosen)[:k] if len(chosen) >= k else chosen)
    keep = np.setdiff1d(np.arange(n), chosen)
    selection, rest = train.select(np.sort(chosen)), train.select(keep)
    info = {"selection_rows": len(selection), "train_rows": len(rest), "min_words": min_words, "seed": seed,
            "stratified": not regression,
            "note": "full-length train rows held out of training and augmentation; related phrases stay in training"}
    return _renumber(rest), _renumber(selection), info


def selection_split(data, train_split: datasets.Dataset, task, *, seed: int):
    """``(train rest, selection slice, info)`` of a run: ``data.selection_file`` when given, else
    :func:`holdout_slice` of ``data.selection_size`` rows drawn with ``seed`` (a run's ``--seed``), so a later
    step (an export choosing its quantization) draws the very slice that training held out.

    Args:
        data: the run's :class:`~kdistill.config.DataConfig`; ``task``: its :class:`~kdistill.data.tasks.TaskSpec`.
    """
    from kdistill.data.loading import load_splits

    if data.selection_file:
        # the run's TaskSpec: its labels, problem type, multi-label separator and label ids read this file too
        sel = load_splits(task, train_file=data.selection_file, validation_file=data.selection_file,
                          drop_unlabeled=data.drop_unlabeled)[0]["validation"]
        return train_split, sel, {"selection_file": data.selection_file, "selection_rows": len(sel)}
    if task.qa:  # whole articles: the questions of one paragraph never on both sides
        from kdistill.qa.data import article_holdout

        return article_holdout(train_split, size=data.selection_size, seed=seed)
    # a token-classification row's label is a tag sequence: drawn at random, not stratified
    return holdout_slice(train_split, size=data.selection_size, seed=seed,
                         regression=task.is_regression or task.token_level)

