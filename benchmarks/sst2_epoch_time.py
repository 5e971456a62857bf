"""Wall time of a distillation epoch vs a plain fine-tuning epoch of the same student (SST-2, full train set).

Runs, back to back on an otherwise idle machine, the same 3-layer ``layers-from-teacher``
student for ``--fraction`` of an epoch: (1) gold labels only (alpha=1: the teacher is never
run), (2) KD with cached teacher logits (alpha=0.5, T=2), (3) KD with the teacher run on
every batch (``--no-cache-teacher``). Writes ``benchmarks/results/sst2_epoch_time.{json,md}``::

    python benchmarks/sst2_epoch_time.py --fraction 0.25
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sst2_foundation import GLUE, RESULTS, ROOT, TEACHER, machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fraction", type=float, default=0.25)
    ap.add_argument("--runs-dir", default=str(ROOT / "runs" / "epoch_time"))
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import kdistill

    common = dict(data_dir=str(GLUE), layers=[0, 2, 5], epochs=args.fraction, batch_size=32, learning_rate=1e-4,
                  eval_steps=10**9, overwrite=True, report=False, temperature=2.0)
    rows = {}
    for name, extra in (("gold", dict(alpha=1.0)), ("kd_cached", dict(alpha=0.5)),
                        ("kd_online", dict(alpha=0.5, cache_teacher=False))):
        res = kdistill.distill(str(TEACHER), "sst2", output_dir=Path(args.runs_dir) / name, **common, **extra)
        rows[name] = {"train_seconds": res.train_seconds, "teacher_cache_seconds": res.teacher_cache_seconds,
                      "seconds_per_epoch": res.train_seconds / args.fraction}
        print(name, rows[name], flush=True)
    gold = rows["gold"]["seconds_per_epoch"]
    result = {
        "task": "sst2", "teacher": "shared/teachers/minilm-l6-sst2", "student": "layers-from-teacher [0, 2, 5]",
        "fraction_of_epoch_timed": args.fraction, "runs": rows,
        "kd_cached_over_gold": rows["kd_cached"]["seconds_per_epoch"] / gold,
        "kd_online_over_gold": rows["kd_online"]["seconds_per_epoch"] / gold,
        "kd_cached_over_gold_incl_cache_2_epochs": (2 * rows["kd_cached"]["seconds_per_epoch"]
                                                    + rows["kd_cached"]["teacher_cache_seconds"]) / (2 * gold),
        "target": "kd epoch <= 1.2x gold epoch with cached teacher outputs",
        "command": "python benchmarks/sst2_epoch_time.py " + shlex.join(sys.argv[1:]),
        "machine": machine(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sst2_epoch_time.json").write_text(json.dumps(result, indent=1))
    md = ["# sst2_epoch_time", "", f"`{result['command']}`", "", f"Machine: {result['machine']}; {result['date']}", "",
          f"Each run: {args.fraction} of an SST-2 epoch (batch 32), 3-layer student; seconds per epoch extrapolated.", "",
          "| run | s / epoch | ratio to gold | one-off teacher cache (s) |", "|---|---:|---:|---:|"]
    for name, r in rows.items():
        md.append(f"| {name} | {r['seconds_per_epoch']:.0f} | {r['seconds_per_epoch'] / gold:.2f}x | {r['teacher_cache_seconds']:.0f} |")
    md += ["", f"KD (cached) incl. the one-off cache, over a 2-epoch run: {result['kd_cached_over_gold_incl_cache_2_epochs']:.2f}x gold.", ""]
    (RESULTS / "sst2_epoch_time.md").write_text("\n".join(md))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
