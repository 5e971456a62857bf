"""Unlabeled text for general distillation (TinyBERT stage 1), streamed so that corpora larger than memory work.

Text comes from plain files (one passage per line; ``.gz``/``.bz2``/``.xz`` work too) or a
``datasets`` dataset with a text column (on the hub, or a local script/folder), read with
``datasets``' streaming mode: nothing is loaded into memory or converted up front. Passages
are shuffled in a seeded buffer (reshuffled each pass via ``set_epoch``), tokenised on the
fly and truncated to ``max_length`` word pieces; empty lines are skipped.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path
from typing import Sequence

import datasets
from torch.utils.data import DataLoader

from kdistill.data.batching import Collator
from kdistill.errors import DataError

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _check_files(files: Sequence[str | Path]) -> list[str]:
    if not files:
        raise DataError("general distillation needs text: pass --text-file FILE (one passage per line) or --text-dataset NAME")
    out = []
    for f in files:
        p = Path(f)
        if not p.is_file():
            raise DataError(f"text file '{p}' does not exist (or is not a file); pass a file with one passage per line")
        out.append(str(p))
    return out


def count_passages(files: Sequence[str | Path]) -> int:
    """Number of non-empty lines in ``files`` (read as a stream; used to turn epochs into steps).

    Raises:
        DataError: a missing file, or no non-empty line at all.
    """
    n = 0
    for f in _check_files(files):
        opener = _OPENERS.get(Path(f).suffix, open)
        with opener(f, "rt", encoding="utf-8", errors="replace") as fh:
            n += sum(1 for line in fh if line.strip())
    if n == 0:
        raise DataError(f"the text files {list(files)} hold no non-empty line")
    return n


def first_passages(files: Sequence[str | Path], n: int) -> list[str]:
    """The first ``n`` non-empty lines of ``files`` (in order): the passages :func:`text_stream` leaves out with
    ``skip=n``."""
    out: list[str] = []
    for f in _check_files(files):
        opener = _OPENERS.get(Path(f).suffix, open)
        with opener(f, "rt", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.strip():
                    out.append(line.rstrip("\n"))
                    if len(out) == n:
                        return out
    return out


def text_stream(
    tokenizer,
    *,
    files: Sequence[str | Path] = (),
    dataset: str | None = None,
    dataset_config: str | None = None,
    split: str = "train",
    text_column: str = "text",
    max_length: int = 128,
    seed: int = 42,
    shuffle_buffer: int = 10_000,
    word_ids: bool = False,
    skip: int = 0,
) -> datasets.IterableDataset:
    """A streamed, shuffled, tokenised ``datasets.IterableDataset`` of passages.

    Args:
        tokenizer: the teacher's tokenizer (student and teacher share it).
        files: text files, one passage per line; or
        dataset, dataset_config, split, text_column: a ``datasets`` dataset to stream instead.
        max_length: truncation length in tokens (TinyBERT: 128).
        seed, shuffle_buffer: seeded buffer shuffle (call ``set_epoch`` to reshuffle a pass).
        skip: leave out the first ``skip`` non-empty passages (held out, e.g. to measure a fitted head on).
        word_ids: also give each token's whitespace word (:func:`kdistill.data.batching.word_index`), for whole-word
            masking; needs a fast tokenizer.

    Returns:
        Rows with ``input_ids``, ``attention_mask`` (and ``token_type_ids``), no labels.

    Raises:
        DataError: no source, a missing file, or a dataset without ``text_column``.
    """
    if dataset:
        try:
            ds = datasets.load_dataset(dataset, dataset_config, split=split, streaming=True)
        except Exception as err:  # noqa: BLE001
            raise DataError(f"cannot stream dataset '{dataset}' ({type(err).__name__}: {str(err).splitlines()[0][:150]})") from err
        if ds.column_names is not None and text_column not in ds.column_names:
            raise DataError(f"dataset '{dataset}' has no column '{text_column}' (columns: {ds.column_names}); pass --text-column")
    else:
        ds = datasets.load_dataset("text", data_files={"train": _check_files(files)}, split="train", streaming=True)
    ds = ds.filter(lambda row: bool(row[text_column] and row[text_column].strip()))
    if skip:
        ds = ds.skip(skip)
    ds = ds.shuffle(seed=seed, buffer_size=shuffle_buffer)

    def encode(rows):
        enc = tokenizer(rows[text_column], truncation=True, max_length=max_length, return_offsets_mapping=word_ids)
        if word_ids:
            from kdistill.data.batching import word_index

            offsets = enc.pop("offset_mapping")
            enc["word_ids"] = [word_index(t, None, o, enc.sequence_ids(i)) for i, (t, o) in
                               enumerate(zip(rows[text_column], offsets))]
        return enc

    columns = ds.column_names or [text_column]
    return ds.map(encode, batched=True, batch_size=256, remove_columns=list(columns))


def stream_loader(stream: datasets.IterableDataset, tokenizer, *, batch_size: int) -> DataLoader:
    """A DataLoader of dynamically padded batches over :func:`text_stream` (no length: use ``max_steps``).

    (accelerate's loader over it draws from the global RNG when an iterator starts; the engine fetches batches
    RNG-neutrally, :func:`kdistill.engine.loop.rng_neutral`, so a resumed run's dropout matches an uninterrupted one.)
    """
    return DataLoader(stream, batch_size=batch_size, collate_fn=Collator(tokenizer))
