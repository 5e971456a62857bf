"""The on-disk cache of augmented rows, one convention for both augmenters (Tang et al. 2019 and TinyBERT).

**Where.** ``<root>/aug-<method>-<key16>/`` (:func:`cache_path`): ``method`` is ``tang`` or
``tinybert``, ``root`` the ``cache_dir`` argument or :func:`kdistill.data.batching.default_cache_dir`
(``$KDISTILL_CACHE``, else ``~/.cache/kdistill``). The folder is a ``datasets.Dataset.save_to_disk``
folder plus :data:`INFO_NAME` (``kdistill_augment.json``); it is written to ``<folder>.tmp`` and
renamed into place (:func:`kdistill.data.files.save_dataset_atomically`), so a folder with the info
file is always complete.

**Key.** :func:`cache_key`: SHA-1 over the JSON of ``{"format": CACHE_FORMAT, "settings": settings}``
(keys sorted) and then over the split's data — its row count, its column names and the values of
its ``text_a``, ``text_b``, ``label`` and ``idx`` columns. ``settings`` holds everything else the
rows depend on (probabilities, seed, mask token, tagger, fingerprints of candidate generators, the
augmenter's own algorithm version). The folder name keeps the first 16 hex digits.

**Rows** (the same for every augmenter; :func:`augmented_rows` builds them):

* only the **augmented rows** are stored, never the originals (the caller has the split; its
  data is part of the key);
* columns: the split's columns in its order and with its features (``text_a`` [, ``text_b``],
  ``label``, ``idx``, any other), then ``source_idx`` (``int64``);
* ``text_a``/``text_b``: the augmented texts (a side the augmenter left alone is the original's, verbatim);
* ``label``: the **original's label**, unchanged. An augmenter whose rows have no gold label
  (Tang et al.: the teacher alone labels them) replaces it when it builds its result;
* ``idx``: ``n + j`` for the ``j``-th stored row, ``n = len(split)``, so the rows can be appended
  after the originals as they are (the teacher-logit cache is indexed by ``idx``);
* ``source_idx``: the ``idx`` of the original row the augmented row was made from;
* any other column: the original's value;
* order: generation order, example by example; no row equals an original or an earlier row.

The info file is ``{"cache_format": CACHE_FORMAT, "info": {...}}``; the inner dict (counts,
settings, seconds) is what :func:`load_cached` returns beside the rows.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from kdistill.data.files import save_dataset_atomically

#: bump when the row convention or the key changes, so that old folders are not read
CACHE_FORMAT = 1
#: the info file written (last) into every cache folder
INFO_NAME = "kdistill_augment.json"
#: the column naming the original of each stored row
SOURCE_COLUMN = "source_idx"
#: the split columns the key hashes (when present)
KEY_COLUMNS = ("text_a", "text_b", "label", "idx")


def cache_key(settings: Mapping[str, Any], ds) -> str:
    """SHA-1 (40 hex digits) of the settings and of the split ``ds`` (``text_a`` [, ``text_b``], ``label``, ``idx``).

    Args:
        settings: JSON-serialisable settings (non-JSON values are hashed as ``str``).
        ds: the ``datasets.Dataset`` being augmented.
    """
    h = hashlib.sha1(json.dumps({"format": CACHE_FORMAT, "settings": settings}, sort_keys=True, default=str).encode())
    h.update(f"{len(ds)}|{sorted(ds.column_names)}".encode())
    for col in KEY_COLUMNS:
        if col in ds.column_names:
            h.update(col.encode())
            for chunk in ds.with_format("arrow").iter(batch_size=10_000):
                h.update(json.dumps(chunk[col].to_pylist(), default=str).encode())
    return h.hexdigest()


def cache_path(root: str | Path | None, method: str, key: str) -> Path:
    """``<root>/aug-<method>-<key[:16]>``; ``root`` ``None`` (or empty) is
    :func:`kdistill.data.batching.default_cache_dir`."""
    if not root:
        from kdistill.data.batching import default_cache_dir

        root = default_cache_dir()
    return Path(root) / f"aug-{method}-{key[:16]}"


def load_cached(path: str | Path):
    """``(rows, info)`` from a complete cache folder of this format, else ``None`` (nothing there, or an
    older format)."""
    import datasets

    path = Path(path)
    info_file = path / INFO_NAME
    if not info_file.is_file():
        return None
    try:
        meta = json.loads(info_file.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(meta, dict) or meta.get("cache_format") != CACHE_FORMAT:
        return None
    return datasets.load_from_disk(str(path)), dict(meta.get("info") or {})


def save_cached(rows, path: str | Path, info: Mapping[str, Any]):
    """Save ``rows`` (see the module docstring) and ``info`` atomically into ``path``; returns the reloaded rows."""
    meta = {"cache_format": CACHE_FORMAT, "info": dict(info)}
    return save_dataset_atomically(rows, Path(path), INFO_NAME, meta)


def augmented_rows(split, sources: Sequence[int], texts: Mapping[str, Sequence[str]]):
    """The stored form of augmented rows (the module docstring's row convention).

    Args:
        split: the original ``datasets.Dataset`` (``text_a`` [, ``text_b``], ``label``, ``idx``, ...).
        sources: for each augmented row, the **position** (``0..len(split)-1``) of its original in ``split``.
        texts: new values of the text columns (``text_a``, and ``text_b`` for pairs), one per augmented row;
            a text column not given is copied from the original.

    Returns:
        A ``datasets.Dataset`` with the split's columns and features, then ``source_idx`` (``int64``).
    """
    import datasets

    n, m = len(split), len(sources)
    for name, values in texts.items():
        if len(values) != m:
            raise ValueError(f"{len(values)} values of {name} for {m} augmented rows")
    src_idx = [int(x) for x in list(split["idx"])]
    data: dict[str, list[Any]] = {}
    for col in split.column_names:
        if col in texts:
            data[col] = list(texts[col])
        elif col == "idx":
            data[col] = list(range(n, n + m))
        else:
            values = list(split[col])
            data[col] = [values[r] for r in sources]
    data[SOURCE_COLUMN] = [src_idx[r] for r in sources]
    features = datasets.Features({**split.features, SOURCE_COLUMN: datasets.Value("int64")})
    return datasets.Dataset.from_dict(data, features=features)


__all__ = [
    "CACHE_FORMAT", "INFO_NAME", "KEY_COLUMNS", "SOURCE_COLUMN", "augmented_rows", "cache_key", "cache_path",
    "load_cached", "save_cached",
]
