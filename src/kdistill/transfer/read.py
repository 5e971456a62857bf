"""Read transfer sets back for a run (``distill --transfer-set SET [--transfer-set AUG ...]``).

The run's own train rows (after its held-out selection slice is taken out) get the stored logits of the set that holds
their text; the rows of a set that carry no gold label and are not among the run's rows (augmented rows, unlabeled
text) are *extra* transfer rows: appended to the run's train split without a gold label (the gold loss skips them),
``ratio`` times their number per set (a seeded sample; above 1 whole copies repeat). Rows an augmented set made from
the run's selection slice are always left out, so the kept student is never chosen on rows it trained on variants of.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from kdistill.errors import KDistillError
from kdistill.transfer.label import _rows_hash, read_complete_set, teacher_fingerprint


def _keys(columns: dict[str, list]) -> list[tuple[str, str | None]]:
    """The lookup key of each row: ``(text_a, text_b or None)``."""
    return list(zip(columns["text_a"], columns.get("text_b") or [None] * len(columns["text_a"])))


def _read(folder: Path, *, teacher: str | None, fingerprint: str | None, max_length: int) -> tuple[dict, dict]:
    """``(manifest, columns)`` of one set, checked against the run's teacher (or the first set's) and max length."""
    manifest, table = read_complete_set(folder, "--transfer-set")
    if teacher is not None and manifest["teacher_fingerprint"] != teacher_fingerprint(teacher):
        raise KDistillError(f"--transfer-set {folder} was labelled by another teacher ({manifest['teacher']}), not by "
                            f"--teacher {teacher} (their weights differ); label the data with this teacher")
    if fingerprint is not None and manifest["teacher_fingerprint"] != fingerprint:
        raise KDistillError(f"--transfer-set {folder} was labelled by another teacher than the first set: one run "
                            "learns from one teacher; label every set with the same teacher")
    if manifest["max_length"] != max_length:
        raise KDistillError(f"--transfer-set {folder} was labelled at --max-length {manifest['max_length']}, this run "
                            f"reads {max_length}: the teacher saw other inputs; use the same --max-length")
    columns = {c: table.column(c).to_pylist() for c in ("text_a", "text_b", "label", "source_idx")
               if c in table.column_names}
    import pyarrow as pa

    if pa.types.is_list(table.column("logits").type):  # per row a matrix: [n_words, C] (NER), [tokens, 2] (QA)
        columns["logits"] = _matrices(table.column("logits"))
    else:
        columns["logits"] = np.asarray(table.column("logits").to_pylist(), dtype=np.float32)
    if "hidden_states" in table.column_names:  # one float16 [tokens, H] view per row, without a Python list per value
        columns["hidden_states"] = _matrices(table.column("hidden_states"))
    if "word_ids" in table.column_names:
        columns["word_ids"] = [np.asarray(w, dtype=np.int64) for w in table.column("word_ids").to_pylist()]
    return manifest, columns


def manifests(sets: Sequence[str | Path]) -> list[dict]:
    """The manifest of each set folder (``{}`` where there is none: :func:`transfer_rows` then says so in one line)."""
    import json

    return [json.loads((Path(s) / "manifest.json").read_text()) if (Path(s) / "manifest.json").is_file() else {}
            for s in sets]


def _matrices(column) -> list[np.ndarray]:
    """A ``list<fixed_size_list<x, W>>`` column as one ``[n_i, W]`` array view per row (no Python list per value)."""
    col = column.combine_chunks()
    width = col.type.value_type.list_size
    flat = col.values.values.to_numpy(zero_copy_only=False).reshape(-1, width)
    offsets = col.offsets.to_numpy()
    return [flat[offsets[i]:offsets[i + 1]] for i in range(len(col))]


def transfer_rows(sets: Sequence[str | Path], ratios: Sequence[float], train_split, *, full_train=None, selection=None,
                  teacher: str | None, max_length: int, seed: int, hidden: list | None = None,
                  hidden_words: list | None = None) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """The run's train rows plus the sets' extra rows, and the stored teacher logits of every row.

    Args:
        sets: transfer-set folders (:func:`kdistill.transfer.write_transfer_set`), all by one teacher.
        ratios: per set, the share of its extra rows used (seeded sample; > 1 repeats whole copies); 1 = all.
        train_split: the run's train rows (``text_a`` [, ``text_b``], ``label``, ``idx`` 0..n-1), selection slice out.
        full_train: the task's whole train split (what an augmented set's ``source_idx`` counts in), and
        selection: the run's held-out selection slice — rows an augmented set made from it are left out.
        teacher: the run's teacher (its weights must be the sets'), or None (no teacher: the sets must agree).
        max_length: the run's ``--max-length`` (must be the sets').
        seed: seeds the sampling of extra rows.
        hidden: when a list, filled with each returned row's stored last hidden states (float16 ``[tokens, H]``, in
            ``idx`` order) if every set stores them; left empty otherwise.
        hidden_words: when a list (with ``hidden``), filled with each row's stored teacher word ids ``[tokens]``.

    Returns:
        ``(rows, logits, info)``: ``rows`` the train split with the extra rows appended (no gold label: -1, NaN for
        regression; ``idx`` continuing), ``logits`` ``[len(rows), C]`` float32 indexed by ``idx``, ``info`` the counts
        per set (recorded in the run's results).

    Raises:
        KDistillError: no complete set in a folder; sets by another teacher or at another max length; a ratio count
            that is not one per set; an augmented set made from another train split; run rows no set holds (one line
            each).
    """
    if ratios and len(ratios) != len(sets):
        raise KDistillError(f"--transfer-set-ratio is given {len(ratios)} time(s) for {len(sets)} --transfer-set "
                            "folder(s): give one per set, in the same order, or none (all rows of every set)")
    ratios = list(ratios) or [1.0] * len(sets)
    selected_texts = set() if selection is None else set(_keys(selection.select_columns(
        [c for c in ("text_a", "text_b") if c in selection.column_names]).to_dict()))
    run_keys = _keys(train_split.select_columns([c for c in ("text_a", "text_b") if c in train_split.column_names])
                     .to_dict())
    wanted = set(run_keys)
    where: dict[tuple, tuple[int, int]] = {}
    loaded, info, fingerprint = [], [], None
    for k, folder in enumerate(Path(s) for s in sets):
        manifest, columns = _read(folder, teacher=teacher, fingerprint=fingerprint, max_length=max_length)
        fingerprint = manifest["teacher_fingerprint"]
        loaded.append((manifest, columns))
        for i, key in enumerate(_keys(columns)):
            where.setdefault(key, (k, i))
    missing = sum(1 for key in run_keys if key not in where)
    if missing:
        raise KDistillError(f"--transfer-set: the set(s) do not hold {missing} of the run's {len(run_keys)} train rows "
                            "(e.g. another data file or --max-train-samples): label them with kdistill label, or drop "
                            "--transfer-set")
    idx = np.asarray(train_split["idx"], dtype=np.int64)
    if not np.array_equal(np.sort(idx), np.arange(len(idx))):
        raise ValueError("transfer_rows needs a train split whose idx are 0..n-1")
    logits = []
    stored = hidden is not None and all("hidden_states" in columns for _, columns in loaded)
    states: list = []
    words_of: list = []
    if any(isinstance(columns["logits"], list) for _, columns in loaded):  # token classification: word level
        per_row: list = [None] * len(run_keys)  # per run row (by idx) its [n_words, C] logits; no added rows
        for j, key in zip(idx, run_keys):
            per_row[j] = loaded[where[key][0]][1]["logits"][where[key][1]]
        found = [{"set": str(s), "kind": m["inputs"].get("kind"), "rows": m["rows"],
                  "run_rows_found": sum(1 for key in run_keys if where[key][0] == k)}
                 for k, (s, (m, _)) in enumerate(zip(sets, loaded))]
        return train_split, per_row, {"sets": found, "teacher_fingerprint": fingerprint, "level": "word"}
    if run_keys:
        found = np.stack([loaded[where[key][0]][1]["logits"][where[key][1]] for key in run_keys])
        logits.append(np.zeros_like(found))
        logits[0][idx] = found
        if stored:
            states = [None] * len(run_keys)
            words_of = [None] * len(run_keys)
            for j, key in zip(idx, run_keys):
                k, i = where[key]
                states[j] = loaded[k][1]["hidden_states"][i]
                words_of[j] = loaded[k][1].get("word_ids", [None] * (i + 1))[i]
    extra: dict[str, list] = {"text_a": [], "text_b": []}
    rng = random.Random(f"{seed}:transfer-set")
    for k, ((manifest, columns), ratio) in enumerate(zip(loaded, ratios)):
        keys = _keys(columns)
        candidates = [i for i, key in enumerate(keys) if columns["label"][i] is None and key not in wanted]
        left_out = 0
        if manifest["inputs"].get("kind") == "augment" and full_train is not None:
            if manifest["inputs"]["augment"]["source_split_sha256"] != _rows_hash(full_train.select_columns(
                    [c for c in ("text_a", "text_b", "label") if c in full_train.column_names])):
                raise KDistillError(f"--transfer-set {sets[k]} was augmented from another train split than this run's "
                                    "(another file, or --max-train-samples): make it from this run's data")
            source = full_train.select_columns([c for c in ("text_a", "text_b") if c in full_train.column_names])
            source_keys = _keys(source.to_dict())
            kept = [i for i in candidates if source_keys[columns["source_idx"][i]] not in selected_texts]
            left_out, candidates = len(candidates) - len(kept), kept
        whole, part = divmod(ratio, 1)  # whole copies, then a seeded sample of the fraction
        chosen = candidates * int(whole) + sorted(rng.sample(candidates, int(round(part * len(candidates)))))
        for i in chosen:
            extra["text_a"].append(keys[i][0])
            extra["text_b"].append(keys[i][1])
        if chosen:
            logits.append(columns["logits"][chosen])
            if stored:
                states.extend(columns["hidden_states"][i] for i in chosen)
                words_of.extend(columns.get("word_ids", [None] * (max(chosen) + 1))[i] for i in chosen)
        info.append({"set": str(sets[k]), "kind": manifest["inputs"].get("kind"), "rows": manifest["rows"],
                     "run_rows_found": sum(1 for key in run_keys if where[key][0] == k), "ratio": ratio,
                     "extra_rows_used": len(chosen), "left_out_from_selection_slice": left_out})
    if stored:
        hidden.extend(states)
        if hidden_words is not None and all(w is not None for w in words_of):
            hidden_words.extend(words_of)
    rows = _with_added(train_split, extra) if extra["text_a"] else train_split
    return rows, np.concatenate(logits) if logits else np.zeros((0, 0), np.float32), {"sets": info,
                                                                                     "teacher_fingerprint": fingerprint}


def _with_added(train_split, extra: dict[str, list]):
    """``train_split`` with the added rows (``extra``: ``text_a`` [, ``text_b``]) appended: no gold label (-1, NaN for
    regression), ``idx`` continuing."""
    import datasets

    n, m = len(train_split), len(extra["text_a"])
    label = train_split.features["label"]
    no_gold = math.nan if getattr(label, "dtype", "").startswith("float") else -1
    data = {"text_a": extra["text_a"], "label": [no_gold] * m, "idx": list(range(n, n + m))}
    if "text_b" in train_split.column_names:
        data["text_b"] = extra["text_b"]
    features = datasets.Features({c: train_split.features[c] for c in data})
    more = datasets.Dataset.from_dict(data, features=features).select_columns(
        [c for c in train_split.column_names if c in data])
    return datasets.concatenate_datasets([train_split.select_columns(more.column_names), more])


def stored_logits(set_dir: str | Path, rows, *, teacher: str, max_length: int) -> np.ndarray:
    """The set's teacher logits for ``rows`` (a split with ``text_a`` [, ``text_b``] and ``idx``), ``[N, C]`` float32
    indexed by ``idx`` — each row looked up by its text, so the student's own tokenizer, the held-out selection slice
    and its renumbering do not matter.

    Raises:
        KDistillError: as :func:`transfer_rows`.
    """
    _, logits, _ = transfer_rows([set_dir], [], rows, teacher=teacher, max_length=max_length, seed=0)
    return logits[: len(rows)]
