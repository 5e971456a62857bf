"""Evaluation metrics for GLUE-style tasks, computed with scikit-learn and SciPy.

The metric of each task is the official GLUE one (Wang et al., "GLUE: A Multi-Task Benchmark and
Analysis Platform for Natural Language Understanding", ICLR 2019, Table 1):

* ``accuracy``: fraction of exact class matches (SST-2, MNLI-m, QNLI, RTE, WNLI; with F1 for MRPC and QQP).
* ``f1``: F1 of the positive class (id 1) for binary tasks, as GLUE reports for MRPC and QQP
  (``sklearn.metrics.f1_score(average="binary")``); macro-averaged F1 over classes for tasks with
  more than two labels (custom data).
* ``matthews_correlation``: Matthews correlation coefficient (Matthews, 1975), the CoLA metric
  (Warstadt et al., 2019), ``sklearn.metrics.matthews_corrcoef``; in [-1, 1], 0 when undefined.
* ``pearson`` / ``spearmanr``: Pearson and Spearman correlation between predicted and gold
  similarity scores, the STS-B metrics (Cer et al., 2017), ``scipy.stats.pearsonr``/``spearmanr``;
  0.0 when undefined (constant predictions or references), mirroring scikit-learn's MCC.

All values are returned as Python floats in [0, 1] (accuracy, f1) or [-1, 1] (correlations), not
percentages.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from kdistill.data.tasks import TaskSpec

__all__ = ["compute_metrics", "main_metric"]


def _correlation(fn, predictions: np.ndarray, references: np.ndarray) -> float:
    if len(predictions) < 2 or np.ptp(predictions) == 0 or np.ptp(references) == 0:
        return 0.0  # correlation undefined for constant input
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(fn(predictions, references)[0])
    return 0.0 if np.isnan(value) else value


def compute_metrics(task: TaskSpec, predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
    """Compute every metric listed in ``task.metrics``.

    Args:
        task: the task; its ``metrics`` name what is computed and ``num_labels`` picks binary vs macro F1.
        predictions: classification: logits (or probabilities) of shape ``[N, C]`` with
            ``C == task.num_labels``, reduced with argmax; a 1-D integer array ``[N]`` is taken as
            class ids already. Regression: scores of shape ``[N]`` or ``[N, 1]``.
        references: gold labels ``[N]``: class ids (int) or scores (float).

    Returns:
        ``{metric name: value}`` with the names of ``task.metrics`` (e.g. ``{"f1": .., "accuracy": ..}``).

    Raises:
        ValueError: empty input, mismatched lengths, wrong number of logit columns, or an unknown
            metric name.
    """
    preds = np.asarray(predictions)
    refs = np.asarray(references)
    if task.multi_label:
        return _multilabel_metrics(task, preds, refs)
    if refs.ndim == 2 and refs.shape[1] == 1:
        refs = refs[:, 0]
    if refs.ndim != 1:
        raise ValueError(f"references must have shape [N], got {refs.shape}")
    n = refs.shape[0]
    if n == 0:
        raise ValueError("cannot compute metrics on zero examples")
    if preds.shape[0] != n:
        raise ValueError(f"predictions have {preds.shape[0]} rows but references have {n}")

    preds = compact_predictions(task, preds)
    refs = refs.astype(np.float64) if task.is_regression else refs.astype(np.int64)

    out: dict[str, float] = {}
    for name in task.metrics:
        if name == "accuracy":
            out[name] = float(accuracy_score(refs, preds))
        elif name == "f1":
            if task.num_labels == 2:
                out[name] = float(f1_score(refs, preds, average="binary", pos_label=1, zero_division=0))
            else:
                out[name] = float(
                    f1_score(refs, preds, average="macro", labels=list(range(task.num_labels)), zero_division=0)
                )
        elif name == "matthews_correlation":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[name] = float(matthews_corrcoef(refs, preds))
        elif name == "pearson":
            out[name] = _correlation(stats.pearsonr, preds, refs)
        elif name == "spearmanr":
            out[name] = _correlation(stats.spearmanr, preds, refs)
        else:
            raise ValueError(f"unknown metric {name!r} for task {task.name!r}")
    return out


def compact_predictions(task: TaskSpec, predictions) -> np.ndarray:
    """Predictions in the form the metrics use: float64 scores ``[N]`` for regression (``[N, 1]`` accepted),
    int64 class ids ``[N]`` for classification (logits ``[N, C]`` are reduced by argmax).

    Raises:
        ValueError: a shape that fits neither, or logits with another number of columns than the task's labels.
    """
    preds = np.asarray(predictions)
    if task.is_regression:
        if preds.ndim == 2 and preds.shape[1] == 1:
            preds = preds[:, 0]
        if preds.ndim != 1:
            raise ValueError(f"regression predictions must have shape [N] or [N, 1], got {preds.shape}")
        return preds.astype(np.float64)
    if preds.ndim == 2:
        if preds.shape[1] != task.num_labels:
            raise ValueError(f"predictions have {preds.shape[1]} columns but task {task.name!r} has {task.num_labels} labels")
        return preds.argmax(axis=-1).astype(np.int64)
    if preds.ndim != 1 or not np.issubdtype(preds.dtype, np.integer):
        raise ValueError(f"classification predictions must be logits [N, C] or class ids [N], got {preds.shape}")
    return preds.astype(np.int64)


def _multilabel_metrics(task: TaskSpec, preds: np.ndarray, refs: np.ndarray) -> dict[str, float]:
    """Micro/macro F1 and exact match (subset accuracy) of multi-label predictions.

    ``preds``: logits ``[N, C]`` (a label is predicted when its logit > 0, i.e. σ > 0.5) or 0/1 ``[N, C]``;
    ``refs``: multi-hot ``[N, C]``.
    """
    if refs.ndim != 2 or preds.shape != refs.shape or refs.shape[1] != task.num_labels:
        raise ValueError(f"multi-label predictions and references must both be [N, {task.num_labels}], "
                         f"got {preds.shape} and {refs.shape}")
    if refs.shape[0] == 0:
        raise ValueError("cannot compute metrics on zero examples")
    hard = preds > 0 if np.issubdtype(preds.dtype, np.floating) and not np.isin(preds, (0.0, 1.0)).all() else preds > 0.5
    truth = refs > 0.5
    out = {}
    for name in task.metrics:
        if name == "micro_f1":
            out[name] = float(f1_score(truth, hard, average="micro", zero_division=0))
        elif name == "macro_f1":
            out[name] = float(f1_score(truth, hard, average="macro", zero_division=0))
        elif name == "exact_match":
            out[name] = float((hard == truth).all(axis=1).mean())
        else:
            raise ValueError(f"metric {name!r} is not defined for multi-label task {task.name!r}")
    return out


def main_metric(task: TaskSpec) -> str:
    """Name of the metric used for model selection and the report (e.g. ``"matthews_correlation"`` for CoLA)."""
    return task.main_metric
