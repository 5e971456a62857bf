"""Read a transfer set back: the stored teacher logits for a run's train rows (``distill --transfer-set``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kdistill.errors import KDistillError
from kdistill.transfer.label import read_complete_set, teacher_fingerprint


def stored_logits(set_dir: str | Path, rows, *, teacher: str, max_length: int) -> np.ndarray:
    """The set's teacher logits for ``rows`` (a split with ``text_a`` [, ``text_b``] and ``idx``), ``[N, C]`` float32
    indexed by ``idx`` — each row looked up by its text, so the student's own tokenizer, the held-out selection slice
    and its renumbering do not matter.

    Raises:
        KDistillError: no complete set in ``set_dir``; a set made by another teacher (weights) than ``teacher`` or
            with another ``max_length``; rows of ``rows`` the set does not hold (one line, with how many).
    """
    folder = Path(set_dir)
    manifest, table = read_complete_set(folder, "--transfer-set")
    if manifest["teacher_fingerprint"] != teacher_fingerprint(teacher):
        raise KDistillError(f"--transfer-set {folder} was labelled by another teacher ({manifest['teacher']}), not by "
                            f"--teacher {teacher} (their weights differ); label the data with this teacher")
    if manifest["max_length"] != max_length:
        raise KDistillError(f"--transfer-set {folder} was labelled at --max-length {manifest['max_length']}, this run "
                            f"reads {max_length}: the teacher saw other inputs; use the same --max-length")
    pairs = "text_b" in table.column_names
    keys = zip(table.column("text_a").to_pylist(), table.column("text_b").to_pylist()) if pairs else \
        ((t, None) for t in table.column("text_a").to_pylist())
    logits = np.asarray(table.column("logits").to_pylist(), dtype=np.float32)
    where = {key: i for i, key in enumerate(keys)}
    data = rows.select_columns([c for c in ("text_a", "text_b", "idx") if c in rows.column_names]).to_dict()
    wanted = list(zip(data["text_a"], data.get("text_b") or [None] * len(data["text_a"])))
    missing = sum(1 for key in wanted if key not in where)
    if missing:
        raise KDistillError(f"--transfer-set {folder} does not hold {missing} of the run's {len(wanted)} train rows (e.g. "
                            "augmented rows, or another data file): label them with kdistill label, or drop "
                            "--transfer-set")
    out = np.zeros((len(wanted), logits.shape[1]), dtype=np.float32)
    out[np.asarray(data["idx"])] = logits[[where[key] for key in wanted]]
    return out
