"""SQuAD's exact match and F1 (Rajpurkar et al. 2016), with the official evaluation script's normalisation.

A prediction and a reference are compared after :func:`normalize_answer`: lower case, punctuation removed, the
articles *a*, *an*, *the* removed, whitespace collapsed. Exact match is 1 when the two normalised strings are equal;
F1 is the harmonic mean of the token precision and recall over the bag of normalised tokens. Each question takes
the best over its reference answers. SQuAD v2.0: a question without an answer is right only when the prediction is
empty too (exact match and F1 1), and an empty prediction to an answerable question scores 0.

``evaluate.load("squad")`` needs the hub; these functions are the same rules, checked against hand-computed cases
(``tests/test_qa_data.py``). Per-question scores are kept, so bootstrap intervals resample questions.
"""

from __future__ import annotations

import collections
import re
import string
from typing import Sequence

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, remove punctuation, the articles a/an/the, and extra whitespace (the official script's order)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """F1 of the bags of normalised tokens; two empty answers (SQuAD v2.0's no-answer) score 1, one empty 0."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = collections.Counter(pred) & collections.Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def question_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """Per question ``[exact match, F1]`` (``[Q, 2]``), each the best over the question's references; a question with
    no reference (v2.0, unanswerable) is compared with the empty answer.

    Raises:
        ValueError: predictions and references of different lengths.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} questions")
    out = np.zeros((len(predictions), 2), dtype=np.float64)
    for i, (pred, refs) in enumerate(zip(predictions, references)):
        refs = list(refs) or [""]
        out[i, 0] = max(exact_match(pred, r) for r in refs)
        out[i, 1] = max(token_f1(pred, r) for r in refs)
    return out


def squad_metrics(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """``exact_match`` and ``f1`` in percent over the questions, as the official script reports them."""
    scores = question_scores(predictions, references)
    return {"exact_match": 100 * float(scores[:, 0].mean()), "f1": 100 * float(scores[:, 1].mean())}


def interval(per_question: np.ndarray, *, resamples: int = 2000, seed: int = 0,
             level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of a mean over questions (e.g. F1 in percent), resampling questions."""
    values = np.asarray(per_question, dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, len(values), size=(resamples, len(values)))
    lo, hi = np.percentile(values[idx].mean(1), [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


__all__ = ["exact_match", "interval", "normalize_answer", "question_scores", "squad_metrics", "token_f1"]
