"""A run's teacher-logit cache as a transfer set made on the fly (issue 26): the one teacher pass
(:func:`kdistill.engine.teacher.teacher_pass`, eager, length-sorted) over the run's tokenised train rows, written in the
transfer-set layout — ``manifest.json`` (format ``kdistill-transfer-set``, ``inputs.kind`` ``run-cache``) and one
Parquet shard with ``idx``, the teacher's ``input_ids`` and its ``logits`` (``[C]`` per row; per token ``[tokens, C]``,
real tokens only) — so ``kdistill label --inspect`` and ``datasets.load_dataset("parquet", ...)`` read it like any set.

The folder is written aside and renamed into place: a kill leaves either no cache or a complete one. It is reused only
when its manifest's ``fingerprint`` (the teacher's weights, the tokenised train texts and labels) is the run's.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from kdistill.transfer.layout import FORMAT, FORMAT_VERSION, MANIFEST, SHARDS, file_sha256

SHARD = "part-00000.parquet"


def cache_folder(path: str | Path) -> Path:
    """The cache's folder for a ``teacher_cache_file`` setting: the path itself; an old ``….safetensors`` name means
    the folder of that name without the suffix."""
    path = Path(path)
    return path.with_suffix("") if path.suffix == ".safetensors" else path


def cached_fingerprint(path: str | Path) -> str | None:
    """The fingerprint of the complete cache at ``path``, or None (missing, unfinished, foreign: recomputed)."""
    manifest = cache_folder(path) / MANIFEST
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not data.get("complete") or (data.get("inputs") or {}).get("kind") != "run-cache":
        return None
    return data.get("fingerprint")


def write_cache(path: str | Path, logits: np.ndarray, idx: np.ndarray, input_ids: list, *, fingerprint: str) -> Path:
    """Write the cache (``logits`` ``[N, C]`` or zero-padded ``[N, T, C]`` in ``idx`` order, ``input_ids`` per row)
    atomically into ``path``'s folder, replacing what is there.

    Raises:
        OSError: the folder cannot be written (the caller says so in one line).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = cache_folder(path)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")  # a run folder's *.tmp: never trusted, never kept
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / SHARDS).mkdir(parents=True)
    try:
        width = logits.shape[-1]
        if logits.ndim == 3:  # per token: each row's real tokens only
            rows = [logits[i, : len(input_ids[i])] for i in range(len(input_ids))]
            offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
            flat = pa.array(np.concatenate([r.reshape(-1) for r in rows]) if rows else np.zeros(0, np.float32))
            column = pa.ListArray.from_arrays(pa.array(offsets), pa.FixedSizeListArray.from_arrays(flat, width))
        else:
            column = pa.FixedSizeListArray.from_arrays(pa.array(logits.reshape(-1), pa.float32()), width)
        table = pa.table({"idx": pa.array(np.asarray(idx, dtype=np.int64)),
                          "input_ids": pa.array([list(map(int, r)) for r in input_ids], pa.list_(pa.int32())),
                          "logits": column})
        pq.write_table(table, tmp / SHARDS / SHARD)
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "complete": True, "fingerprint": fingerprint,
                    "inputs": {"kind": "run-cache", "note": "the run's tokenised train rows, by idx"},
                    "rows": int(len(input_ids)), "logits_dtype": "float32",
                    "logits_per_row": "[tokens, C]" if logits.ndim == 3 else "[C]", "columns": ["idx", "input_ids", "logits"],
                    "runtime": {"used": "eager"},
                    "shards": [{"file": f"{SHARDS}/{SHARD}", "rows": int(len(input_ids)),
                                "sha256": file_sha256(tmp / SHARDS / SHARD)}]}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        if folder.is_dir():
            shutil.rmtree(folder)
        elif folder.exists():  # a file where the cache goes (an old cache file): replaced
            folder.unlink()
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def read_cache(path: str | Path):
    """The cached logits as a float32 tensor indexed by ``idx``: ``[N, C]``, or ``[N, T_max, C]`` zero past each row's
    tokens.

    Raises:
        KDistillError: no complete cache at ``path``.
    """
    import pyarrow.parquet as pq
    import torch

    from kdistill.errors import KDistillError

    folder = cache_folder(path)
    if cached_fingerprint(folder) is None:
        raise KDistillError(f"{folder} holds no complete teacher-logit cache")
    manifest = json.loads((folder / MANIFEST).read_text())
    table = pq.read_table(folder / manifest["shards"][0]["file"])
    idx = table.column("idx").to_numpy()
    col = table.column("logits").combine_chunks()
    n = len(idx)
    if manifest["logits_per_row"] == "[tokens, C]":
        width = col.type.value_type.list_size
        flat = col.values.values.to_numpy(zero_copy_only=False).reshape(-1, width)
        offsets = col.offsets.to_numpy()
        longest = int(np.max(np.diff(offsets))) if n else 0
        out = np.zeros((n, longest, width), dtype=np.float32)
        for k, i in enumerate(idx):
            out[i, : offsets[k + 1] - offsets[k]] = flat[offsets[k]:offsets[k + 1]]
    else:
        width = col.type.list_size
        out = np.zeros((n, width), dtype=np.float32)
        out[idx] = col.values.to_numpy(zero_copy_only=False).reshape(-1, width)
    return torch.from_numpy(out)


__all__ = ["cache_folder", "cached_fingerprint", "read_cache", "write_cache"]
