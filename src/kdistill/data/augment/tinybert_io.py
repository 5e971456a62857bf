"""Files and the command line for TinyBERT's data augmentation (``kdistill augment``).

:func:`run_augment` loads a task's train split (:func:`kdistill.data.load_splits`), builds the
candidate generators (:mod:`kdistill.data.augment.candidates`), augments the split with
:func:`kdistill.data.augment.tinybert.augment_dataset` (Jiao et al. 2020, Algorithm 1; cached on disk) and
writes it with :func:`write_augmented` in the task's file layout, so that ``load_splits`` reads it back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from kdistill.data.augment.candidates import EmbeddingNeighbours, MaskedLMCandidates
from kdistill.data.augment.tinybert import augment_dataset, check_params
from kdistill.errors import DataError, KDistillError

_OUT_FORMATS = {".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def write_augmented(ds, path: str | Path, spec, *, fmt: str | None = None) -> Path:
    """Write an augmented split in the task's file layout, so :func:`kdistill.data.load_splits` reads it back.

    ``tsv``: a header of the task's text column(s) and label column (for SST-2 ``sentence\\tlabel``,
    the GLUE header), labels written as the task's label values (tabs/newlines inside texts become
    spaces). ``jsonl``: one object per row with the same keys plus ``augmented`` and ``source_idx``.
    Read it back with ``load_splits(task, train_file=path, validation_file=<the original dev file>)``.

    Raises:
        DataError: unknown format (from ``fmt`` or the extension).
    """
    path = Path(path)
    fmt = fmt or _OUT_FORMATS.get(path.suffix.lower())
    if fmt not in ("tsv", "jsonl"):
        raise DataError(f"cannot tell the output format of {path}; name it .tsv or .jsonl (or pass fmt)")
    text_cols = list(spec.text_columns)
    fields = ["text_a", "text_b"][: len(text_cols)]

    def label_value(v):
        if spec.labels is None:
            return float(v)
        return spec.labels[int(v)] if 0 <= int(v) < len(spec.labels) else int(v)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    has_meta = "augmented" in ds.column_names and "source_idx" in ds.column_names
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        if fmt == "tsv":
            # GLUE TSV: no quoting (the loader reads with csv.QUOTE_NONE); texts are whitespace-normalised
            fh.write("\t".join([*text_cols, spec.label_column]) + "\n")
            for row in _rows(ds):
                fh.write("\t".join([" ".join(str(row[f]).split()) for f in fields] + [str(label_value(row["label"]))]) + "\n")
        else:
            for row in _rows(ds):
                obj = {c: row[f] for c, f in zip(text_cols, fields)}
                obj[spec.label_column] = label_value(row["label"])
                if has_meta:
                    obj["augmented"], obj["source_idx"] = bool(row["augmented"]), int(row["source_idx"])
                fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def _rows(ds, batch_size: int = 10_000):
    """The rows of a ``datasets.Dataset`` as dicts, read a batch of columns at a time (row access is slow)."""
    for chunk in ds.iter(batch_size=batch_size):
        cols = list(chunk)
        yield from (dict(zip(cols, values)) for values in zip(*(chunk[c] for c in cols)))


def run_augment(
    task: str | None = None,
    *,
    output: str | Path,
    teacher: str | Path | None = None,
    embeddings: str | Path | None = None,
    mlm: str | Path | None = None,
    data_dir: str | Path | None = None,
    train_file: str | Path | None = None,
    validation_file: str | Path | None = None,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    labels: Sequence[str] | None = None,
    max_train_samples: int | None = None,
    p_t: float = 0.4,
    k: int = 15,
    n_aug: int = 20,
    seed: int = 0,
    skip_stopwords: bool = True,
    batch_size: int = 64,
    device: str | None = None,
    fmt: str | None = None,
    cache_dir: str | Path | bool | None = None,
    show_progress: bool = True,
) -> Path:
    """Augment a task's train split with TinyBERT's Algorithm 1 and write it to ``output`` (``kdistill augment``).

    Args:
        task, data_dir, train_file, validation_file, text_columns, label_column, labels, max_train_samples:
            as for :func:`kdistill.data.load_splits` (only the train split is augmented).
        output: the file to write, ``.tsv`` (GLUE layout) or ``.jsonl`` (see :func:`write_augmented`).
        teacher: the teacher's folder; its input embeddings are the default embedding space.
        embeddings: another embedding space: a model folder, or a GloVe/word2vec text file
            (``.txt``/``.vec``/``.gz``). Default: ``teacher``.
        mlm: an ``AutoModelForMaskedLM`` folder for single-piece words (default: none, embedding
            neighbours for every word).
        p_t, k, n_aug, seed, skip_stopwords, cache_dir, show_progress: see
            :func:`~kdistill.data.augment.tinybert.augment_dataset`.
        batch_size, device: masked-LM batching and device.
        fmt: ``"tsv"`` or ``"jsonl"``; default from the extension of ``output``.

    Returns:
        The path written.

    Raises:
        KDistillError: bad settings, or no embedding space and no masked LM.
        DataError / ModelError: unreadable data, model or vector file.
    """
    from kdistill.data import load_splits

    check_params(p_t, k, n_aug)
    output = Path(output)
    if (fmt or _OUT_FORMATS.get(output.suffix.lower())) not in ("tsv", "jsonl"):
        raise DataError(f"cannot tell the output format of {output}; name it .tsv or .jsonl")
    source = embeddings if embeddings is not None else teacher
    if source is None and mlm is None:
        raise KDistillError("TinyBERT augmentation needs an embedding space: pass the teacher (its input embeddings), "
                            "--embeddings <model folder or GloVe file>, or --mlm <masked-LM folder>")
    splits, spec = load_splits(task, data_dir=data_dir, train_file=train_file, validation_file=validation_file,
                               text_columns=text_columns, label_column=label_column, labels=labels,
                               max_train_samples=max_train_samples)
    masked = MaskedLMCandidates.from_pretrained(mlm, batch_size=batch_size, device=device) if mlm is not None else None
    neighbours = None
    if source is not None:
        src = Path(source)
        if src.is_file():
            neighbours = EmbeddingNeighbours.from_word_vectors(src)
        else:
            neighbours = EmbeddingNeighbours.from_pretrained(src)
    tokenizer = masked.tokenizer if masked is not None else getattr(neighbours, "tokenizer", None)
    out = augment_dataset(splits["train"], tokenizer=tokenizer, neighbours=neighbours, mlm=masked, p_t=p_t, k=k,
                          n_aug=n_aug, seed=seed, skip_stopwords=skip_stopwords, cache_dir=cache_dir,
                          show_progress=show_progress)
    return write_augmented(out, output, spec, fmt=fmt)


__all__ = ["run_augment", "write_augmented"]
