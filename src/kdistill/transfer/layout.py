"""The transfer-set layout's names (a leaf module: the label writer, the readers and the per-run cache share them)."""

from __future__ import annotations

import hashlib
from pathlib import Path

MANIFEST = "manifest.json"
SHARDS = "shards"
FORMAT = "kdistill-transfer-set"
FORMAT_VERSION = 1


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "SHARDS", "file_sha256"]
