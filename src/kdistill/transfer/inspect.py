"""What a transfer set holds (``kdistill label --inspect SET_DIR``): rows, labels, how sure the teacher is."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from kdistill.transfer.label import read_complete_set

#: Bins of the max-probability histogram (the teacher's confidence on each row).
BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


def inspect_transfer_set(path: str | Path, *, plot: bool = True) -> dict[str, Any]:
    """Summary of a transfer set: rows and shards, size on disk (bytes), the teacher's argmax label counts beside the
    gold ones, the teacher's accuracy on rows with a gold label (single-label sets; token-classification sets: on
    words), mean normalised entropy and a max-probability histogram of its softmax (:data:`BINS`); with ``plot``,
    ``SET_DIR/inspect.png`` (the histogram).

    Raises:
        KDistillError: ``path`` holds no transfer set (no ``manifest.json``), or an unfinished one.
    """
    folder = Path(path)
    manifest, table = read_complete_set(folder)
    labels = list(manifest.get("labels") or [])
    out: dict[str, Any] = {"path": str(folder), "rows": table.num_rows, "shards": len(manifest["shards"]),
                           "bytes_on_disk": sum((folder / s["file"]).stat().st_size for s in manifest["shards"]),
                           "problem_type": manifest.get("problem_type")}
    if manifest.get("problem_type") == "token_classification":  # word level: one summary row per word
        rows = table.column("logits").to_pylist()
        logits = np.asarray([w for row in rows for w in row], dtype=np.float64).reshape(-1, max(len(labels), 1))
        gold = [t for row in table.column("label").to_pylist() for t in (row or [])]
        out["words"] = len(gold)
    elif manifest.get("problem_type") == "question_answering":  # per window: how sure the teacher's start and end are
        return {**out, **_windows(table, folder if plot else None, manifest)}
    elif manifest.get("problem_type") == "single_label":
        logits = np.asarray(table.column("logits").to_pylist(), dtype=np.float64)
        gold = table.column("label").to_pylist()
    else:
        return out
    if logits.shape[1] > 1:
        probs = _softmax(logits)
        out.update(_confidence(probs, gold, labels))
        if plot:
            out["plot"] = _plot(probs.max(1), folder / "inspect.png", manifest)
    return out


def _windows(table, folder: Path | None, manifest: dict) -> dict[str, Any]:
    """Question answering: windows per question, and per window the probability of the teacher's best start times
    its best end (a window's confidence), summarised as :func:`_confidence`'s histogram."""
    counts = [len(w) for w in table.column("window_tokens").to_pylist()]
    conf = []
    for row, tokens in zip(table.column("logits").to_pylist(), table.column("window_tokens").to_pylist()):
        z, start = np.asarray(row, dtype=np.float64), 0
        for n in tokens:
            p = _softmax(z[start:start + n].T)  # [2, n]: start and end distributions
            conf.append(float(p[0].max() * p[1].max()))
            start += n
    top = np.asarray(conf)
    out = {"windows": int(sum(counts)), "windows_per_question_mean": float(np.mean(counts)) if counts else 0.0,
           "windows_per_question_max": int(max(counts, default=0)),
           "max_probability_histogram": {f"{lo:g}-{hi:g}": int(((top >= lo) & (top < hi if hi < 1 else top <= hi)).sum())
                                         for lo, hi in zip(BINS, BINS[1:])}}
    if folder is not None and len(top):
        out["plot"] = _plot(top, folder / "inspect.png", manifest)
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def _confidence(probs: np.ndarray, gold: Sequence, labels: Sequence[str]) -> dict[str, Any]:
    """Argmax and gold label counts, the teacher's accuracy on rows with a gold label, entropy, the histogram."""
    argmax = probs.argmax(axis=1)
    entropy = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(axis=1) / np.log(probs.shape[1])
    known = [(g, a) for g, a in zip(gold, argmax) if g is not None]
    name = (lambda i: labels[i] if i < len(labels) else str(i))  # noqa: E731
    top = probs.max(1)
    return {"teacher_label_counts": {name(i): int((argmax == i).sum()) for i in range(probs.shape[1])},
            "gold_label_counts": {name(i): sum(1 for g, _ in known if g == i) for i in range(probs.shape[1])},
            "teacher_accuracy_on_gold": (sum(int(g == a) for g, a in known) / len(known)) if known else None,
            "gold_rows": len(known), "mean_normalised_entropy": float(entropy.mean()),
            "max_probability_histogram": {f"{lo:g}-{hi:g}": int(((top >= lo) & (top < hi if hi < 1 else top <= hi)).sum())
                                          for lo, hi in zip(BINS, BINS[1:])}}


def _plot(max_prob: np.ndarray, path: Path, manifest: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(max_prob, bins=40, range=(0, 1), color="#4c72b0")
    qa = manifest.get("problem_type") == "question_answering"
    ax.set_xlabel("teacher's best start × best end probability" if qa else "teacher's max probability")
    ax.set_ylabel({"token_classification": "words", "question_answering": "windows"}.get(manifest.get("problem_type"),
                                                                                          "rows"))
    ax.set_title(f"transfer set: {manifest['rows']} rows, teacher {Path(str(manifest['teacher'])).name}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
