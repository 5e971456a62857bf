"""What the report's numbers can and cannot show: a constant-predictor baseline, bootstrap confidence
intervals of the dev-set metric, and a paired teacher-vs-student test.

Every metric value is the task's metric as :func:`kdistill.metrics.compute_metrics` computes it (a
fraction in [0, 1] for accuracy/F1, in [-1, 1] for correlations), never a percentage.

Statistics used:

* **Baseline**: the constant predictor that knows only the label distribution: the majority class
  (the train split's if given, else the dev split's; ties go to the lowest class id) for classification,
  the mean score for regression; for multi-label, the per-label majority.
* **Confidence intervals**: the non-parametric bootstrap percentile interval (Efron & Tibshirani,
  *An Introduction to the Bootstrap*, 1993, ch. 13): the dev examples are resampled with replacement
  ``n_resamples`` times (seeded ``numpy.random.default_rng``), the metric is recomputed on each
  resample, and the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of those
  values. Teacher, student and baseline are evaluated on *the same* resamples, so their intervals and
  the interval of their difference are paired. The interval describes the sampling noise of the dev
  set only (which examples happen to be in it), not the variation between training runs (seeds).
* **Paired tests**: McNemar's test (McNemar, "Note on the sampling error of the difference between
  correlated proportions or percentages", Psychometrika 12(2):153-157, 1947) on the examples one model
  gets right and the other wrong, for tasks whose main metric is accuracy; the *exact* conditional
  version (two-sided binomial test of the discordant counts against p = 0.5, ``scipy.stats.binomtest``)
  is used at every sample size. For other metrics (F1, MCC, correlations), the paired bootstrap test
  (Efron & Tibshirani 1993, section 16.4; as used for NLP by Koehn, EMNLP 2004 and Berg-Kirkpatrick
  et al., EMNLP 2012): the bootstrap distribution of the difference, shifted to mean zero, gives the
  two-sided p-value ``(1 + #{|d* - d| >= |d|}) / (B + 1)`` (Davison & Hinkley 1997, eq. 4.11).
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
from scipy import stats as _sstats

from kdistill.data.tasks import TaskSpec
from kdistill.metrics import compact_predictions, compute_metrics

__all__ = ["assess", "baseline_metric", "bootstrap_ci", "mcnemar", "paired_bootstrap_diff"]

#: Resamples drawn at once (memory: ``_CHUNK * N`` int64 indices).
_CHUNK = 100


# --------------------------------------------------------------------------- helpers


def _is_multilabel(task: TaskSpec, labels: np.ndarray) -> bool:
    return getattr(task, "problem_type", None) == "multi_label" or labels.ndim == 2


def _labels(task: TaskSpec, labels: Any) -> np.ndarray:
    refs = np.asarray(labels)
    if refs.ndim == 2 and refs.shape[1] == 1 and not getattr(task, "problem_type", None) == "multi_label":
        refs = refs[:, 0]
    if refs.ndim not in (1, 2) or refs.shape[0] == 0:
        raise ValueError(f"labels must be a non-empty array of shape [N] (or [N, C] for multi-label), got {refs.shape}")
    return refs


def _predictions(task: TaskSpec, preds: Any, n: int, multilabel: bool) -> np.ndarray:
    """The compact form of ``preds`` that :func:`compute_metrics` accepts: class ids [N] for single-label
    classification (logits are reduced with argmax once, not on every resample), scores [N] for regression."""
    p = np.asarray(preds)
    if p.ndim == 0 or p.shape[0] != n:
        raise ValueError(f"predictions have shape {p.shape} but there are {n} labels")
    if multilabel:
        return p
    return compact_predictions(task, p)


def _check_options(n_resamples: int, level: float) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive whole number, got {n_resamples!r}")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95, got {level!r}")


def _resamples(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Index arrays ``[chunk, n]`` of bootstrap resamples, ``n_resamples`` rows in all, from one seeded generator."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_resamples:
        k = min(_CHUNK, n_resamples - done)
        yield rng.integers(0, n, size=(k, n))
        done += k


def _bootstrap_values(task: TaskSpec, preds: Sequence[np.ndarray], refs: np.ndarray, n_resamples: int,
                      seed: int) -> np.ndarray:
    """Main metric of each predictor on the same resamples: shape ``[len(preds), n_resamples]``."""
    main = task.main_metric
    n = refs.shape[0]
    out = np.empty((len(preds), n_resamples), dtype=np.float64)
    fast = main == "accuracy" and refs.ndim == 1 and all(p.ndim == 1 for p in preds) and not task.is_regression
    correct = [(p == refs).astype(np.float64) for p in preds] if fast else None
    row = 0
    for idx in _resamples(n, n_resamples, seed):
        k = idx.shape[0]
        for j, p in enumerate(preds):
            if fast:  # accuracy = mean of the 0/1 correctness vector, vectorised over resamples
                out[j, row:row + k] = correct[j][idx].mean(axis=1)
            else:
                out[j, row:row + k] = [compute_metrics(task, p[i], refs[i])[main] for i in idx]
        row += k
    return out


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(values, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


def _baseline_predictions(task: TaskSpec, refs: np.ndarray, train_labels: Any | None) -> tuple[np.ndarray, dict]:
    """The constant baseline's predictions on the dev labels ``refs`` and a description of it."""
    source = refs if train_labels is None else np.asarray(train_labels)
    where = "dev" if train_labels is None else "train"
    if source.shape[0] == 0:
        raise ValueError("train_labels is empty; pass None to take the baseline from the dev labels")
    n = refs.shape[0]
    if task.is_regression:
        mean = float(np.mean(source.astype(np.float64)))
        return np.full(n, mean), {"kind": "mean prediction", "value": mean, "source": where}
    if _is_multilabel(task, refs):
        majority = (source.astype(np.float64).mean(axis=0) > 0.5).astype(np.int64)  # per label, ties -> 0
        logits = np.where(majority == 1, 10.0, -10.0)  # reads as 1/0 under a sigmoid, a 0 threshold or a 0.5 one
        return (np.tile(logits, (n, 1)).astype(np.float32),
                {"kind": "per-label majority", "value": majority.tolist(), "source": where})
    ids = source.astype(np.int64)
    if ids.min() < 0 or ids.max() >= task.num_labels:
        raise ValueError(f"labels must be class ids in [0, {task.num_labels}), got values in [{ids.min()}, {ids.max()}]")
    counts = np.bincount(ids, minlength=task.num_labels)
    cls = int(np.argmax(counts))  # ties -> lowest class id
    name = task.labels[cls] if task.labels is not None and cls < len(task.labels) else str(cls)
    return (np.full(n, cls, dtype=np.int64),
            {"kind": "majority class", "value": cls, "label": name, "source": where,
             "share": float(counts[cls] / counts.sum())})


# --------------------------------------------------------------------------- public


def baseline_metric(task: TaskSpec, labels: Any, train_labels: Any | None = None) -> dict[str, Any]:
    """Metrics of the constant predictor that knows only the label distribution, on the dev labels.

    Classification: always the majority class of ``train_labels`` (or of ``labels`` when no train
    labels are given; ties go to the lowest class id). Regression: always the mean score (of the train
    split if given, else of the dev split); a constant has no correlation with anything, so its
    Pearson/Spearman are 0 by the convention of :func:`kdistill.metrics.compute_metrics`.
    Multi-label: the per-label majority (1 where more than half of the rows have the label).

    Args:
        task: the task (its ``main_metric``, ``metrics``, ``num_labels``, ``is_regression``).
        labels: dev labels ``[N]``: class ids (int) or scores (float); ``[N, C]`` 0/1 for multi-label.
        train_labels: the train split's labels, same kind, any length; ``None``: use ``labels``.

    Returns:
        ``{"kind": "majority class" | "mean prediction" | "per-label majority", "value": class id,
        mean score or per-label list, "source": "train" | "dev", "metric_name": main metric name,
        "metric": its value (float), "metrics": {every metric of the task: value}}``; classification
        adds ``"label"`` (the class's name) and ``"share"`` (its fraction of the source labels).

    Raises:
        ValueError: empty labels, class ids outside ``[0, num_labels)``, empty ``train_labels``.
    """
    if task.token_level:  # the constant tagger predicts no entity at all: every entity metric is 0
        metrics = {name: 0.0 for name in task.metrics}
        return {"kind": "all O (no entity)", "value": "O", "source": "train", "metric_name": task.main_metric,
                "metric": 0.0, "metrics": metrics}
    if task.qa:  # the null answer: right on an unanswerable question (SQuAD v2.0) only; labels: answers per question
        value = float(np.mean([0.0 if answers else 1.0 for answers in labels])) if len(labels) else 0.0
        return {"kind": "null answer", "value": "", "source": "dev", "metric_name": task.main_metric, "metric": value,
                "metrics": {name: value for name in task.metrics}}
    refs = _labels(task, labels)
    preds, info = _baseline_predictions(task, refs, train_labels)
    metrics = compute_metrics(task, preds, refs)
    return {**info, "metric_name": task.main_metric, "metric": metrics[task.main_metric], "metrics": metrics}


def bootstrap_ci(task: TaskSpec, preds: Any, labels: Any, n_resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Bootstrap percentile confidence interval of the task's main metric on a dev set.

    Args:
        task: the task; ``task.main_metric`` is the metric.
        preds: logits ``[N, C]`` or class ids ``[N]`` (classification), scores ``[N]``/``[N, 1]`` (regression).
        labels: gold labels ``[N]``.
        n_resamples: bootstrap resamples (B); 1000 gives the 2.5 % / 97.5 % quantiles to about ±0.002
            of accuracy on ~900 examples.
        seed: seed of ``numpy.random.default_rng`` drawing the resamples (same seed, same interval).
        level: coverage of the interval, e.g. 0.95.

    Returns:
        ``(low, high)``, in the metric's units (a fraction for accuracy).

    Raises:
        ValueError: empty or mismatched inputs, ``n_resamples < 1``, ``level`` outside (0, 1).

    Source: Efron & Tibshirani, *An Introduction to the Bootstrap* (1993), ch. 13 (percentile interval).
    """
    _check_options(n_resamples, level)
    refs = _labels(task, labels)
    p = _predictions(task, preds, refs.shape[0], _is_multilabel(task, refs))
    return _interval(_bootstrap_values(task, [p], refs, n_resamples, seed)[0], level)


def paired_bootstrap_diff(task: TaskSpec, preds_a: Any, preds_b: Any, labels: Any, n_resamples: int = 1000,
                          seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Paired bootstrap of ``metric(a) - metric(b)`` on one dev set: its interval and a two-sided p-value.

    Both models are scored on the same resamples of the dev examples. The p-value tests "no difference"
    by shifting the bootstrap distribution of the difference to mean zero:
    ``p = (1 + #{|d*_i - d| >= |d|}) / (B + 1)``, where ``d`` is the observed difference and ``d*_i`` the
    resampled ones (so p is never 0, and is 1 when ``d == 0``).

    Args:
        task: the task (main metric).
        preds_a, preds_b: predictions of the two models, as for :func:`bootstrap_ci`.
        labels: gold labels ``[N]``.
        n_resamples, seed, level: as for :func:`bootstrap_ci`.

    Returns:
        ``{"name": "paired bootstrap", "statistic": d, "difference": d, "ci": [low, high],
        "p_value": p, "n_resamples": B, "seed": seed, "level": level}``; ``d`` in the metric's units.

    Raises:
        ValueError: as :func:`bootstrap_ci`.

    Source: Efron & Tibshirani (1993), section 16.4; Koehn (EMNLP 2004); Berg-Kirkpatrick, Burkett &
    Klein (EMNLP 2012); p-value with the +1 correction of Davison & Hinkley (1997), eq. 4.11.
    """
    _check_options(n_resamples, level)
    if task.token_level or task.qa:  # the same resamples as assess: sentences (entity counts) or questions
        whole = (_assess_tokens if task.token_level else _assess_qa)(task, preds_a, preds_b, labels,
                                                                    n_resamples=n_resamples, seed=seed, level=level)
        return whole["paired_test"]
    refs = _labels(task, labels)
    ml = _is_multilabel(task, refs)
    a = _predictions(task, preds_a, refs.shape[0], ml)
    b = _predictions(task, preds_b, refs.shape[0], ml)
    values = _bootstrap_values(task, [a, b], refs, n_resamples, seed)
    return _paired_from_values(task, a, b, refs, values, seed, level)


def _paired_from_values(task: TaskSpec, a: np.ndarray, b: np.ndarray, refs: np.ndarray, values: np.ndarray,
                        seed: int, level: float) -> dict[str, Any]:
    main = task.main_metric
    d = compute_metrics(task, a, refs)[main] - compute_metrics(task, b, refs)[main]
    dstar = values[0] - values[1]
    lo, hi = _interval(dstar, level)
    # |d*| compared with a tolerance, so that d == 0 gives p == 1 despite float rounding
    extreme = int(np.sum(np.abs(dstar - d) >= abs(d) - 1e-12))
    p = (1 + extreme) / (dstar.shape[0] + 1)
    return {"name": "paired bootstrap", "statistic": float(d), "difference": float(d), "ci": [lo, hi],
            "p_value": float(min(1.0, p)), "n_resamples": int(dstar.shape[0]), "seed": int(seed), "level": float(level)}


def mcnemar(correct_a: Any, correct_b: Any) -> dict[str, Any]:
    """McNemar's test of two classifiers scored on the same examples (exact conditional version).

    Only the discordant examples count: ``b01`` = a wrong and b right, ``b10`` = a right and b wrong.
    Under "both equally accurate" each discordant example goes either way with probability 1/2, so the
    p-value is the two-sided exact binomial test of ``b10`` successes in ``b01 + b10`` trials at 0.5
    (``scipy.stats.binomtest``), used at every count (exact, hence slightly conservative). The
    statistic reported beside it is McNemar's chi-square with Edwards' continuity correction,
    ``max(|b01 - b10| - 1, 0)**2 / (b01 + b10)`` (1 degree of freedom), for reference.

    Args:
        correct_a, correct_b: per-example correctness ``[N]`` (bool or 0/1) of models a and b.

    Returns:
        ``{"name": "McNemar", "method": "exact binomial test on the discordant pairs", "statistic": chi2,
        "p_value": p, "b01": int, "b10": int, "n": N}``; with no discordant pair, statistic 0 and p 1.

    Raises:
        ValueError: arrays not 1-D, of different lengths, empty, or not 0/1.

    Source: McNemar, Psychometrika 12(2):153-157 (1947); continuity correction: Edwards, Psychometrika
    13:185-187 (1948).
    """
    a = np.asarray(correct_a)
    b = np.asarray(correct_b)
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape or a.shape[0] == 0:
        raise ValueError(f"correct_a and correct_b must be non-empty 1-D arrays of one length, got {a.shape} and {b.shape}")
    for x in (a, b):
        if not np.isin(x, (0, 1)).all():
            raise ValueError("correct_a and correct_b must hold booleans or 0/1")
    a, b = a.astype(bool), b.astype(bool)
    b01 = int(np.sum(~a & b))
    b10 = int(np.sum(a & ~b))
    n = b01 + b10
    if n == 0:
        stat, p = 0.0, 1.0
    else:
        stat = max(abs(b01 - b10) - 1, 0) ** 2 / n
        p = float(_sstats.binomtest(b10, n, 0.5, alternative="two-sided").pvalue)
    return {"name": "McNemar", "method": "exact binomial test on the discordant pairs", "statistic": float(stat),
            "p_value": float(min(1.0, p)), "b01": b01, "b10": b10, "n": int(a.shape[0])}


def _fmt_p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}" if p < 0.1 else f"= {p:.2f}"


def assess(task: TaskSpec, teacher_preds: Any, student_preds: Any, labels: Any, train_labels: Any | None = None, *,
           n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Everything the report says about how much its teacher-vs-student numbers can be trusted.

    Teacher, student and the constant baseline (:func:`baseline_metric`) are scored on the same
    ``n_resamples`` bootstrap resamples of the dev set; their percentile intervals, the interval of
    ``teacher - student`` and a paired test come from them. The paired test is McNemar's
    (:func:`mcnemar`) when the main metric is accuracy of a single-label task, the paired bootstrap
    (:func:`paired_bootstrap_diff`) otherwise; it tests teacher vs student (a = teacher, b = student).

    Args:
        task: the task.
        teacher_preds, student_preds: dev predictions (logits ``[N, C]``, class ids ``[N]``, scores ``[N]``),
            in the order of ``labels``.
        labels: dev gold labels ``[N]``.
        train_labels: the train split's labels for the majority-class baseline (``None``: the dev split's).
        n_resamples, seed, level: as for :func:`bootstrap_ci`.

    Returns:
        A JSON-able dict: ``metric_name``, ``n`` (dev examples), ``level``, ``n_resamples``, ``seed``,
        ``interval_method``; ``baseline`` (the dict of :func:`baseline_metric` plus ``"ci": [low, high]``);
        ``teacher`` / ``student`` (``{"metric", "metrics": every metric, "ci": [low, high]}``);
        ``difference`` (``{"teacher_minus_student": d, "ci": [low, high]}``); ``paired_test`` (the dict of
        :func:`mcnemar` or :func:`paired_bootstrap_diff`); ``flags``: sentences for the reader, e.g.
        "the student is at chance level on this dev set (its interval overlaps the majority-class
        baseline's): retention is not meaningful" or "the teacher–student difference is not significant
        (p = 0.31, McNemar)". A model counts as at chance when the low end of its interval is at or
        below the high end of the baseline's; the difference is "not significant" at ``p >= 1 - level``.

    Raises:
        ValueError: as :func:`bootstrap_ci`.
    """
    _check_options(n_resamples, level)
    if task.token_level:
        return _assess_tokens(task, teacher_preds, student_preds, labels, n_resamples=n_resamples, seed=seed,
                              level=level)
    if task.qa:
        return _assess_qa(task, teacher_preds, student_preds, labels, n_resamples=n_resamples, seed=seed, level=level)
    refs = _labels(task, labels)
    ml = _is_multilabel(task, refs)
    n = refs.shape[0]
    t = _predictions(task, teacher_preds, n, ml)
    s = _predictions(task, student_preds, n, ml)
    base_preds, _ = _baseline_predictions(task, refs, train_labels)
    base = baseline_metric(task, refs, train_labels)
    base_preds = _predictions(task, base_preds, n, ml)
    values = _bootstrap_values(task, [t, s, base_preds], refs, n_resamples, seed)
    main = task.main_metric
    out: dict[str, Any] = {"metric_name": main, "n": int(n), "level": float(level), "n_resamples": int(n_resamples),
                           "seed": int(seed), "interval_method": "bootstrap percentile (Efron & Tibshirani 1993)"}
    base["ci"] = list(_interval(values[2], level))
    out["baseline"] = base
    for role, p, v in (("teacher", t, values[0]), ("student", s, values[1])):
        metrics = compute_metrics(task, p, refs)
        out[role] = {"metric": metrics[main], "metrics": metrics, "ci": list(_interval(v, level))}
    paired = _paired_from_values(task, t, s, refs, values[:2], seed, level)
    out["difference"] = {"teacher_minus_student": paired["difference"], "ci": paired["ci"]}
    if main == "accuracy" and not ml and not task.is_regression:
        out["paired_test"] = mcnemar(t == refs, s == refs)
    else:
        out["paired_test"] = paired
    out["flags"] = _flags(out)
    return out


def _assess_tokens(task: TaskSpec, teacher_preds: Any, student_preds: Any, labels: Any, *, n_resamples: int, seed: int,
                   level: float) -> dict[str, Any]:
    """:func:`assess` for token classification: entity-level F1 from per-row counts ``(tp, predicted, gold)``
    (:func:`kdistill.tokens.metrics.sentence_counts`; rows are sentence windows), resampled row by row — the metric
    library runs once per model, not once per resample. The baseline predicts no entity (all ``O``): F1 0."""
    from kdistill.metrics import token_metrics, token_tags
    from kdistill.tokens.data import entity_types
    from kdistill.tokens.metrics import sentence_counts

    refs = np.asarray(labels)
    types = entity_types(task.labels)
    totals, metrics = [], {}
    for role, preds in (("teacher", np.asarray(teacher_preds)), ("student", np.asarray(student_preds))):
        gold, pred = token_tags(task, preds, refs)
        totals.append(sentence_counts(gold, pred, types)[:, -1, :].astype(np.float64))  # [N, 3]
        metrics[role] = token_metrics(task, preds, refs)
    gold_counts = totals[0][:, 2]
    base_counts = np.stack([np.zeros_like(gold_counts), np.zeros_like(gold_counts), gold_counts], axis=1)
    n = refs.shape[0]
    values = np.empty((3, n_resamples))
    row = 0
    for idx in _resamples(n, n_resamples, seed):
        k = idx.shape[0]
        for j, c in enumerate([*totals, base_counts]):
            sums = c[idx].sum(axis=1)  # [k, 3]
            denom = sums[:, 1] + sums[:, 2]
            values[j, row:row + k] = np.where(denom > 0, 2 * sums[:, 0] / np.maximum(denom, 1e-12), 0.0)
        row += k
    main = task.main_metric
    out: dict[str, Any] = {"metric_name": main, "n": int(n), "level": float(level), "n_resamples": int(n_resamples),
                           "seed": int(seed), "interval_method": "bootstrap percentile over sentences (windows), F1 "
                                                                 "from per-sentence entity counts"}
    out["baseline"] = {"kind": "all O (no entity)", "metric": 0.0, "metrics": {main: 0.0},
                       "ci": list(_interval(values[2], level))}
    for j, role in enumerate(("teacher", "student")):
        out[role] = {"metric": metrics[role][main], "metrics": metrics[role], "ci": list(_interval(values[j], level))}
    return _with_difference(out, values, n_resamples, seed, level)


def _assess_qa(task: TaskSpec, teacher_preds: Any, student_preds: Any, labels: Any, *, n_resamples: int, seed: int,
               level: float) -> dict[str, Any]:
    """:func:`assess` for question answering: SQuAD F1 and exact match are means over questions, so the bootstrap
    resamples the per-question ``[exact match, F1]`` scores (:func:`kdistill.metrics.qa_scores`; predictions are those
    ``[Q, 2]`` arrays, or window logits with the split's references as ``labels``). The baseline answers nothing
    (the null answer): 0 on every answerable question, 1 on an unanswerable one (SQuAD v2.0)."""
    from kdistill.metrics import qa_scores

    t = qa_scores(task, teacher_preds, labels)
    s = qa_scores(task, student_preds, labels)
    if t.shape != s.shape:
        raise ValueError(f"teacher and student scored {len(t)} and {len(s)} questions")
    col = 1 if task.main_metric == "f1" else 0
    base = np.zeros(len(t))
    if labels is not None and hasattr(labels, "answers"):
        base = np.asarray([0.0 if a else 1.0 for a in labels.answers])
    values = np.empty((3, n_resamples))
    row = 0
    for idx in _resamples(len(t), n_resamples, seed):
        k = idx.shape[0]
        values[0, row:row + k] = t[idx, col].mean(axis=1)
        values[1, row:row + k] = s[idx, col].mean(axis=1)
        values[2, row:row + k] = base[idx].mean(axis=1)
        row += k
    main = task.main_metric
    out: dict[str, Any] = {"metric_name": main, "n": int(len(t)), "level": float(level), "n_resamples": int(n_resamples),
                           "seed": int(seed), "interval_method": "bootstrap percentile over questions (per-question "
                                                                 "exact match and F1)"}
    out["baseline"] = {"kind": "null answer", "source": "dev", "metric": float(base.mean()),
                       "metrics": {"f1": float(base.mean()), "exact_match": float(base.mean())},
                       "ci": list(_interval(values[2], level))}
    for j, (role, sc) in enumerate((("teacher", t), ("student", s))):
        metrics = {"f1": float(sc[:, 1].mean()), "exact_match": float(sc[:, 0].mean())}
        out[role] = {"metric": metrics[main], "metrics": metrics, "ci": list(_interval(values[j], level))}
    return _with_difference(out, values, n_resamples, seed, level)


def _with_difference(out: dict[str, Any], values: np.ndarray, n_resamples: int, seed: int, level: float) -> dict:
    """``out`` (teacher and student metrics, ``values`` ``[≥2, B]`` their resampled main metric) with the
    teacher-minus-student difference, its interval, the paired bootstrap test and the flags."""
    d = out["teacher"]["metric"] - out["student"]["metric"]
    dstar = values[0] - values[1]
    lo, hi = _interval(dstar, level)
    p = (1 + int(np.sum(np.abs(dstar - d) >= abs(d) - 1e-12))) / (dstar.shape[0] + 1)
    out["difference"] = {"teacher_minus_student": float(d), "ci": [lo, hi]}
    out["paired_test"] = {"name": "paired bootstrap", "statistic": float(d), "difference": float(d), "ci": [lo, hi],
                          "p_value": float(min(1.0, p)), "n_resamples": int(n_resamples), "seed": int(seed),
                          "level": float(level)}
    out["flags"] = _flags(out)
    return out


def _flags(a: dict[str, Any]) -> list[str]:
    base = a["baseline"]
    b_lo, b_hi = base["ci"]
    kind = base["kind"].replace(" ", "-")  # "majority-class baseline", "mean-prediction baseline"
    name = a["metric_name"]
    flags = []
    for role in ("teacher", "student"):
        lo, hi = a[role]["ci"]
        where = (f"{name} {a[role]['metric']:.4f} [{lo:.4f}, {hi:.4f}] vs baseline "
                 f"{base['metric']:.4f} [{b_lo:.4f}, {b_hi:.4f}]")
        if hi < b_lo:
            flags.append(f"the {role} is below the {kind} baseline on this dev set ({where}): retention is not meaningful")
        elif lo <= b_hi:
            flags.append(f"the {role} is at chance level on this dev set (its interval overlaps the {kind} baseline's; "
                         f"{where}): retention is not meaningful")
    test = a["paired_test"]
    if test["p_value"] >= 1.0 - a["level"]:
        flags.append(f"the teacher–student difference is not significant (p {_fmt_p(test['p_value'])}, {test['name']}): "
                     f"on these {a['n']} dev examples the student is not shown to be worse or better than the teacher")
    return flags
