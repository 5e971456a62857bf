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

* ``micro_f1`` / ``macro_f1`` / ``exact_match`` (multi-label): a label is predicted when its sigmoid is above the
  decision threshold (0.5 unless a run chose one on its selection slice, :func:`choose_threshold`, and recorded it
  in the model's ``config.json`` as ``kdistill_threshold``, read back by :func:`decision_threshold`).

All values are returned as Python floats in [0, 1] (accuracy, f1) or [-1, 1] (correlations), not
percentages.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from kdistill.data.tasks import TaskSpec

__all__ = ["compute_metrics", "main_metric", "choose_threshold", "decision_threshold", "decision_logits",
           "DEFAULT_THRESHOLD", "THRESHOLD_GRID", "THRESHOLD_KEY"]

#: The multi-label decision threshold (on each label's sigmoid) when none was chosen.
DEFAULT_THRESHOLD = 0.5
#: The thresholds :func:`choose_threshold` tries: 0.05, 0.10, ..., 0.95.
THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))
#: Where a run records its chosen threshold: this key of the saved model's ``config.json``.
THRESHOLD_KEY = "kdistill_threshold"


def _correlation(fn, predictions: np.ndarray, references: np.ndarray) -> float:
    if len(predictions) < 2 or np.ptp(predictions) == 0 or np.ptp(references) == 0:
        return 0.0  # correlation undefined for constant input
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(fn(predictions, references)[0])
    return 0.0 if np.isnan(value) else value


def compute_metrics(task: TaskSpec, predictions: np.ndarray, references: np.ndarray, *,
                    threshold: float | None = None) -> dict[str, float]:
    """Compute every metric listed in ``task.metrics``.

    Args:
        task: the task; its ``metrics`` name what is computed and ``num_labels`` picks binary vs macro F1.
        predictions: classification: logits (or probabilities) of shape ``[N, C]`` with
            ``C == task.num_labels``, reduced with argmax; a 1-D integer array ``[N]`` is taken as
            class ids already. Regression: scores of shape ``[N]`` or ``[N, 1]``.
            Multi-label: logits ``[N, C]`` or 0/1 decisions ``[N, C]``.
        references: gold labels ``[N]``: class ids (int) or scores (float); multi-label: multi-hot ``[N, C]``.
        threshold: multi-label only: a label is predicted when its sigmoid is above this (in (0, 1); default
            :data:`DEFAULT_THRESHOLD`); ignored for other tasks and for 0/1 decisions.

        Question answering: start/end logits ``[W, T, 2]`` with the split's ``QAReferences`` as ``references``
            (:func:`qa_metrics`).

    Returns:
        ``{metric name: value}`` with the names of ``task.metrics`` (e.g. ``{"f1": .., "accuracy": ..}``).

    Raises:
        ValueError: empty input, mismatched lengths, wrong number of logit columns, an unknown
            metric name, or a threshold outside (0, 1).
    """
    if task.qa:
        return qa_metrics(task, predictions, references)
    preds = np.asarray(predictions)
    refs = np.asarray(references)
    if task.token_level:
        return token_metrics(task, preds, refs)
    if task.multi_label:
        return _multilabel_metrics(task, preds, refs, DEFAULT_THRESHOLD if threshold is None else threshold)
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


def qa_scores(task: TaskSpec, predictions, references) -> np.ndarray:
    """Per question ``[exact match, F1]`` (``[Q, 2]``, each 0..1) of question answering: ``predictions`` are start/end
    logits ``[W, T, 2]`` per window and ``references`` the split's :class:`kdistill.qa.features.QAReferences` (what
    :func:`kdistill.engine.predict` returns), turned into answers by ``run_qa``'s post-processing; ``[Q, 2]`` scores
    pass through.

    Raises:
        ValueError: logits without their references, or of another shape.
    """
    preds = np.asarray(predictions)
    if preds.ndim == 2 and preds.shape[1] == 2:  # scored already
        return preds.astype(np.float64)
    if not hasattr(references, "scores"):
        raise ValueError("question-answering metrics need the split's windows (kdistill.qa.features.QAReferences, as "
                         "kdistill.engine.predict returns them) beside the start/end logits")
    return references.scores(preds, task)


def qa_metrics(task: TaskSpec, predictions, references) -> dict[str, float]:
    """SQuAD's ``f1`` and ``exact_match`` (Rajpurkar et al. 2016), as fractions in [0, 1] (the official script prints
    percent), over the questions (:func:`qa_scores`; rules in :mod:`kdistill.qa.metrics`).

    Raises:
        ValueError: as :func:`qa_scores`; no questions.
    """
    scores = qa_scores(task, predictions, references)
    if len(scores) == 0:
        raise ValueError("cannot compute metrics on zero questions")
    return {"f1": float(scores[:, 1].mean()), "exact_match": float(scores[:, 0].mean())}


def token_tags(task: TaskSpec, predictions: np.ndarray, references: np.ndarray) -> tuple[list, list]:
    """``(gold tags, predicted tags)`` per row at its labelled positions (``references != -100``: first sub-tokens):
    ``predictions`` logits ``[N, T, C]`` (argmax) or ids ``[N, T]``."""
    ids = predictions.argmax(-1) if predictions.ndim == 3 else predictions
    names = list(task.labels)
    gold, pred = [], []
    for p_row, r_row in zip(ids, references):
        keep = r_row != -100
        gold.append([names[int(t)] for t in r_row[keep]])
        pred.append([names[int(t)] for t in p_row[keep]])
    return gold, pred


def token_metrics(task: TaskSpec, predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
    """Entity-level ``f1``, ``precision``, ``recall`` (micro, strict IOB2) and ``f1_<TYPE>`` of token
    classification (:mod:`kdistill.tokens.metrics`), over the rows (sentence windows) of ``references`` ``[N, T]``.

    Raises:
        ValueError: no rows.
    """
    from kdistill.tokens.data import entity_types
    from kdistill.tokens.metrics import entity_metrics

    if len(references) == 0:
        raise ValueError("cannot compute metrics on zero examples")
    gold, pred = token_tags(task, predictions, references)
    return entity_metrics(gold, pred, entity_types(task.labels))


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


def _logit(threshold: float) -> float:
    t = float(threshold)
    if not 0.0 < t < 1.0:  # also refuses NaN
        raise ValueError(f"a multi-label decision threshold must lie in (0, 1), got {threshold!r}")
    return float(np.log(t / (1.0 - t)))


def _multilabel_metrics(task: TaskSpec, preds: np.ndarray, refs: np.ndarray,
                        threshold: float = DEFAULT_THRESHOLD) -> dict[str, float]:
    """Micro/macro F1 and exact match (subset accuracy) of multi-label predictions.

    ``preds``: logits ``[N, C]`` (a label is predicted when σ(logit) > ``threshold``, i.e. logit > logit(threshold))
    or 0/1 ``[N, C]``; ``refs``: multi-hot ``[N, C]``.
    """
    if refs.ndim != 2 or preds.shape != refs.shape or refs.shape[1] != task.num_labels:
        raise ValueError(f"multi-label predictions and references must both be [N, {task.num_labels}], "
                         f"got {preds.shape} and {refs.shape}")
    if refs.shape[0] == 0:
        raise ValueError("cannot compute metrics on zero examples")
    cut = _logit(threshold)
    hard = preds > cut if np.issubdtype(preds.dtype, np.floating) and not np.isin(preds, (0.0, 1.0)).all() else preds > 0.5
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


def choose_threshold(task: TaskSpec, logits: np.ndarray, references: np.ndarray,
                     grid: tuple[float, ...] = THRESHOLD_GRID) -> tuple[float, dict[str, float]]:
    """The multi-label decision threshold of ``grid`` that maximises ``task.main_metric`` on this split.

    Meant for a held-out selection slice (choosing it on the reported split would flatter the report). Ties go to
    the threshold nearest :data:`DEFAULT_THRESHOLD` (then the lower one), so a model whose scores do not depend on
    the threshold keeps 0.5.

    Args:
        task: a multi-label task.
        logits: ``[N, C]`` raw scores (one sigmoid per label).
        references: multi-hot ``[N, C]``.
        grid: thresholds to try, each in (0, 1).

    Returns:
        ``(threshold, metrics at that threshold)``.

    Raises:
        ValueError: ``task`` is not multi-label, an empty grid, or the shape errors of :func:`compute_metrics`.
    """
    if not task.multi_label:
        raise ValueError(f"task {task.name!r} is not multi-label: it has no decision threshold to choose")
    if not grid:
        raise ValueError("choose_threshold needs at least one threshold to try")
    z = np.asarray(logits, dtype=np.float64)
    best = None
    for t in sorted(grid, key=lambda t: (abs(t - DEFAULT_THRESHOLD), t)):
        metrics = _multilabel_metrics(task, z, np.asarray(references), float(t))
        if best is None or metrics[task.main_metric] > best[1][task.main_metric]:
            best = (float(t), metrics)
    return best


def decision_threshold(config) -> float:
    """The multi-label decision threshold a saved model records (``config.json`` key :data:`THRESHOLD_KEY`), else
    :data:`DEFAULT_THRESHOLD`.

    Args:
        config: a transformers config, a ``config.json`` dict, or ``None``.

    Raises:
        ValueError: a recorded value that is not a number in (0, 1) (a damaged config).
    """
    value = config.get(THRESHOLD_KEY) if isinstance(config, dict) else getattr(config, THRESHOLD_KEY, None)
    if value is None:
        return DEFAULT_THRESHOLD
    try:
        _logit(float(value))
    except (TypeError, ValueError):
        raise ValueError(f"config.json records {THRESHOLD_KEY}={value!r}; it must be a number in (0, 1)") from None
    return float(value)


def decision_logits(task: TaskSpec, logits: np.ndarray, threshold: float) -> np.ndarray:
    """Multi-label logits shifted so that the default rule (σ > 0.5, logit > 0) decides as ``threshold`` does:
    ``logits - logit(threshold)``; other tasks' logits unchanged. For code that scores several models with
    :func:`compute_metrics` under one task (the report's intervals and tests).

    Raises:
        ValueError: a threshold outside (0, 1).
    """
    z = np.asarray(logits)
    if not task.multi_label or threshold == DEFAULT_THRESHOLD:
        return z
    return (z - _logit(threshold)).astype(z.dtype if np.issubdtype(z.dtype, np.floating) else np.float64)


#: Metrics that can be undefined on a dev set: correlations (of constant predictions or constant gold scores).
MAY_BE_UNDEFINED = ("pearson", "spearmanr")


def undefined_metrics(task: TaskSpec, predictions: np.ndarray, references: np.ndarray) -> dict[str, str]:
    """The metrics of ``task.metrics`` that are undefined on these inputs, ``{name: reason}`` (empty: all defined).

    A correlation (``pearson``, ``spearmanr``) of constant predictions or constant gold scores, or of fewer than 2
    examples, is undefined: :func:`compute_metrics` reports it as 0.0 (the convention model selection, the bootstrap
    and the baseline comparison need), and result files write it as ``null`` with this reason
    (:mod:`kdistill.results`). Inputs as for :func:`compute_metrics`.
    """
    names = [m for m in task.metrics if m in MAY_BE_UNDEFINED]
    if not names or task.multi_label:
        return {}
    refs = np.asarray(references)
    if refs.ndim == 2 and refs.shape[1] == 1:
        refs = refs[:, 0]
    preds = compact_predictions(task, np.asarray(predictions)).astype(np.float64)
    if len(preds) < 2:
        why = "fewer than 2 examples"
    elif np.ptp(preds) == 0:
        why = f"the predictions are constant ({preds[0]:.4g} for every example)"
    elif np.ptp(refs.astype(np.float64)) == 0:
        why = "the gold scores are constant"
    else:
        return {}
    return {m: f"{m} is undefined: {why} (a correlation with a constant does not exist)" for m in names}


def main_metric(task: TaskSpec) -> str:
    """Name of the metric used for model selection and the report (e.g. ``"matthews_correlation"`` for CoLA)."""
    return task.main_metric
