"""Entity-level precision, recall and F1 for token classification (CoNLL-2003's measure), with bootstrap intervals.

An entity is a maximal ``B-T I-T ... I-T`` run in IOB2 (strict mode: an ``I-`` without its ``B-`` starts nothing);
a predicted entity counts only when its type and both ends equal a gold entity's (Tjong Kim Sang & De Meulder 2003).
Entities are found with ``seqeval``'s strict IOB2 scheme, once per sentence; precision, recall and F1 are computed
from the per-sentence counts ``(true positives, predicted, gold)``, micro-averaged and per type. The same counts give
bootstrap intervals by resampling sentences (no metric library run in a loop).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def sentence_entities(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """The entities of one IOB2 tag sequence: ``{(type, start, end_exclusive)}`` (seqeval, strict IOB2)."""
    from seqeval.scheme import IOB2, Entities

    return {(e.tag, e.start, e.end) for e in Entities([list(tags)], IOB2, suffix=False).entities[0]}


def sentence_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                    types: Sequence[str]) -> np.ndarray:
    """Per sentence and per type ``(true positives, predicted, gold)``: an int array ``[S, len(types) + 1, 3]`` whose
    last type row is the total over types.

    Raises:
        ValueError: sentences or tag sequences of different lengths.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    index = {t: i for i, t in enumerate(types)}
    out = np.zeros((len(gold), len(types) + 1, 3), dtype=np.int64)
    for s, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {s}: {len(g)} gold tags but {len(p)} predicted")
        ge, pe = sentence_entities(g), sentence_entities(p)
        for kind, ents in ((0, ge & pe), (1, pe), (2, ge)):
            for t, _, _ in ents:
                if t in index:
                    out[s, index[t], kind] += 1
                out[s, -1, kind] += 1
    return out


def prf(counts: np.ndarray) -> tuple[float, float, float]:
    """``(precision, recall, F1)`` from summed ``(tp, predicted, gold)``; 0 where a denominator is 0."""
    tp, npred, ngold = (float(x) for x in counts)
    p = tp / npred if npred else 0.0
    r = tp / ngold if ngold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def entity_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                   types: Sequence[str]) -> dict[str, float]:
    """``precision``, ``recall``, ``f1`` (micro over entities) and ``f1_<TYPE>`` per type, as seqeval's strict IOB2
    ``classification_report`` gives them."""
    counts = sentence_counts(gold, pred, types).sum(0)
    p, r, f = prf(counts[-1])
    out = {"precision": p, "recall": r, "f1": f}
    for i, t in enumerate(types):
        out[f"f1_{t}"] = prf(counts[i])[2]
    return out


def f1_interval(counts: np.ndarray, *, resamples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the micro F1, resampling sentences: ``counts`` from :func:`sentence_counts`."""
    total = counts[:, -1, :].astype(np.float64)  # [S, 3]
    idx = np.random.default_rng(seed).integers(0, len(total), size=(resamples, len(total)))
    sums = total[idx].sum(1)  # [R, 3]
    denom = sums[:, 1] + sums[:, 2]
    f1 = np.where(denom > 0, 2 * sums[:, 0] / np.maximum(denom, 1e-12), 0.0)
    lo, hi = np.percentile(f1, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


__all__ = ["entity_metrics", "f1_interval", "prf", "sentence_counts", "sentence_entities"]
