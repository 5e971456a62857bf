"""Small file helpers shared by the data code: word-vector text files and atomic dataset caches."""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kdistill.errors import DataError


def open_text(path: Path):
    """Open a UTF-8 text file for reading, decompressing ``.gz`` on the fly."""
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open("r", encoding="utf-8")


def iter_word_vectors(path: str | Path, *, max_words: int | None = None) -> Iterator[tuple[int, str, list[str]]]:
    """Yield ``(line number, word, [E number strings])`` for each vector of a GloVe/word2vec *text* file.

    Each line is ``word v1 ... vE``; an optional word2vec header ``count E`` fixes ``E`` (otherwise
    the first vector line does); a line with more than ``E`` fields is a word with spaces in it
    (GloVe 840B has a few); blank lines are skipped; ``.gz`` is read directly. Numbers are left as
    strings so a caller that skips most words does not pay for parsing them (see :func:`parse_vector`).

    Args:
        path: the file.
        max_words: stop after this many vectors (the files are sorted by frequency); ``None`` = all.

    Raises:
        DataError: a missing or non-UTF-8 file, or a line with fewer than ``E`` numbers.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"word-vector file {path} does not exist; pass a word2vec/GloVe text file")
    dim, n = None, 0
    try:
        with open_text(path) as fh:
            for lineno, line in enumerate(fh, start=1):
                parts = line.rstrip("\n").rstrip().split(" ")
                if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    dim = int(parts[1])
                    continue
                if len(parts) < 2:
                    continue
                if max_words is not None and n >= max_words:
                    return
                dim = dim or len(parts) - 1
                if len(parts) - 1 < dim:
                    raise DataError(f"{path}:{lineno} has {len(parts) - 1} numbers, expected {dim}; "
                                    "the file must be word2vec/GloVe text with one vector per line")
                n += 1
                yield lineno, " ".join(parts[: len(parts) - dim]), parts[len(parts) - dim:]
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; convert binary word2vec to text format (gensim: "
                        "KeyedVectors.load_word2vec_format(p, binary=True).save_word2vec_format(q, binary=False))") from None


def parse_vector(path: str | Path, lineno: int, numbers: list[str]):
    """``numbers`` as a float32 numpy vector ``[E]``, or a :class:`DataError` naming ``path:lineno``."""
    import numpy as np

    try:
        return np.array(numbers, dtype=np.float32)
    except ValueError:
        raise DataError(f"{path}:{lineno} has a non-number in its vector; the file must be word2vec/GloVe text format") from None


def save_dataset_atomically(ds, path: Path, info_name: str, info: dict[str, Any]):
    """Save a ``datasets.Dataset`` (with ``info`` as JSON in ``info_name`` beside it) so that ``path``
    is either the old cache or the complete new one, never half written; returns the reloaded dataset.
    An empty dataset is saved as one empty shard (``datasets`` cannot reload one saved with none).
    """
    import datasets

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    ds.save_to_disk(str(tmp), **({"num_shards": 1} if len(ds) == 0 else {}))
    (tmp / info_name).write_text(json.dumps(info, indent=1))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return datasets.load_from_disk(str(path))


def json_lines(path, text: str, what: str):
    """``(line number, object)`` of each non-blank line of a JSONL file's ``text``.

    Raises:
        DataError: a line that is not JSON (one line naming the file, the line and ``what`` was expected).
    """
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{n}: not a JSON line ({err.msg}); {what}") from None


def hub_or_parquet(dataset: str):
    """A dataset in the Hugging Face hub's form: ``datasets.load_dataset(id)`` (loading scripts are not run), or a
    local folder of its Parquet files (``train*.parquet`` and ``validation*.parquet`` / ``test*.parquet``, at any
    depth) — the ``DatasetDict`` of the splits found.

    Raises:
        DataError: the hub unreachable or the id unknown; a folder without train and validation/test Parquet files.
    """
    import datasets

    folder = Path(dataset)
    try:
        if folder.is_dir():
            files = {split: sorted(str(p) for p in folder.rglob(f"{split}*.parquet"))
                     for split in ("train", "validation", "test")}
            files = {k: v for k, v in files.items() if v}
            if "train" not in files or len(files) < 2:
                raise DataError(f"--dataset {folder}: give a folder with train*.parquet and validation*.parquet or "
                                "test*.parquet files (the hub's Parquet layout)")
            return datasets.load_dataset("parquet", data_files=files)
        return datasets.load_dataset(dataset)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - offline, unknown id, a loading script
        raise DataError(f"--dataset {dataset}: cannot load it ({type(err).__name__}: {str(err).splitlines()[0][:150]}); "
                        "offline, give a local folder of its Parquet files") from None
