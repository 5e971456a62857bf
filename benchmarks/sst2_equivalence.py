"""Before/after check for a refactor: the same short KD run must give the same dev predictions and losses.

Runs the 3-layer ``layers-from-teacher`` student (teacher layers 0,2,5) distilled from the shared
SST-2 teacher for a fraction of an epoch with a fixed seed, through the public API only (so the
same script runs on an old checkout with ``PYTHONPATH=OLD/src``), and stores the dev logits, the
logged loss terms and the epoch time::

    PYTHONPATH=/tmp/kd-before/src python benchmarks/sst2_equivalence.py --name sst2_equiv_before
    python benchmarks/sst2_equivalence.py --name sst2_equiv_after
    python benchmarks/sst2_equivalence.py --compare sst2_equiv_before sst2_equiv_after --name sst2_equivalence

The comparison (``--compare A B``) writes ``<name>.json`` / ``<name>.md``: max relative difference of
the dev logits, dev predictions that differ, max relative difference of every logged loss value
and both runs' training seconds.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TEACHER = SHARED / "teachers" / "minilm-l6-sst2"
GLUE = SHARED / "data" / "glue"
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> str:
    import torch

    return (f"{platform.machine()} {platform.processor() or ''}".strip()
            + f", {os.cpu_count()} CPU cores, torch {torch.__version__}, threads {torch.get_num_threads()}")


def dev_logits(model_dir: Path) -> list[list[float]]:
    """Dev logits of a saved student, in dev order (plain transformers, batch 64, no kdistill code)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import kdistill.compress  # noqa: F401 - registers kdistill's model types (harmless for plain BERT)

    rows = list(csv.DictReader((GLUE / "SST-2" / "dev.tsv").open(), delimiter="\t"))
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    net = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(rows), 64):
            enc = tok([r["sentence"] for r in rows[i:i + 64]], padding=True, truncation=True, max_length=128,
                      return_tensors="pt")
            out.extend(net(**enc).logits.float().tolist())
    return out


def _get(res, key: str) -> float:
    return float(getattr(res, key, None) if not isinstance(res, dict) else res.get(key) or 0.0)


def weights_hash(out: Path) -> str:
    """sha256 of the saved weights (model.safetensors) of a run folder: identical weights, identical hash."""
    import hashlib

    path = next(p for p in (out / "model.safetensors", out / "student" / "model.safetensors") if p.exists())
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train(args) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import kdistill

    out = Path(args.runs_dir) / args.name
    if args.kind == "kd":
        res = kdistill.distill(str(TEACHER), "sst2", output_dir=out, layers=[0, 2, 5], data_dir=str(GLUE), alpha=0.5,
                               temperature=2.0, epochs=args.epochs, batch_size=32, learning_rate=1e-4, seed=42,
                               logging_steps=10, overwrite=True, report=False)
    elif args.kind == "tinybert":  # a smoke run: both TinyBERT steps on a slice, defaults otherwise
        res = kdistill.distill(str(TEACHER), "sst2", output_dir=out, method="tinybert", layers=[0, 2, 5],
                               data_dir=str(GLUE), max_train_samples=2000, intermediate_epochs=0.5,
                               prediction_epochs=0.5, batch_size=32, seed=42, logging_steps=10, overwrite=True,
                               report=False)
    elif args.kind == "early-exit":  # a smoke run: exits on the teacher, frozen schedule, no sweep
        res = kdistill.early_exit(str(TEACHER), "sst2", output_dir=out, data_dir=str(GLUE), max_train_samples=2000,
                                  epochs=0.5, batch_size=32, seed=42, logging_steps=10, overwrite=True,
                                  run_sweep=False)
    else:  # rerun: the kdistill_run.json another run wrote, re-run by this code through --config
        res = kdistill.distill(config=str(Path(args.rerun) / "kdistill_run.json"), output_dir=out, overwrite=True,
                               report=False)
    losses = {}
    with (out / "logs" / "train_log.csv").open() as f:
        for row in csv.DictReader(f):
            losses[f"{row['step']}:{row['key']}"] = float(row["value"])
    metrics = res.metrics if hasattr(res, "metrics") else dict(res.get("metrics", {}))
    row = {"name": args.name, "kind": args.kind, "kdistill_file": kdistill.__file__, "epochs": args.epochs,
           "train_seconds": round(_get(res, "train_seconds"), 1),
           "teacher_cache_seconds": round(_get(res, "teacher_cache_seconds"), 1), "metrics": metrics,
           "losses": losses, "dev_logits": [] if args.kind == "early-exit" else dev_logits(out),
           "weights_sha256": weights_hash(out),
           "command": "python benchmarks/" + Path(__file__).name + " " + shlex.join(sys.argv[1:]),
           "machine": machine(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(row, indent=0))
    print(json.dumps({k: row[k] for k in ("name", "train_seconds", "metrics")}, indent=1))


def compare(args) -> None:
    a, b = (json.loads((RESULTS / f"{n}.json").read_text()) for n in args.compare)

    def rel(x: float, y: float) -> float:
        return abs(x - y) / max(abs(x), abs(y), 1e-12)

    la, lb = a["dev_logits"], b["dev_logits"]
    logit_rel = max((rel(x, y) for ra, rb in zip(la, lb) for x, y in zip(ra, rb)), default=0.0)
    logit_abs = max((abs(x - y) for ra, rb in zip(la, lb) for x, y in zip(ra, rb)), default=0.0)
    preds = sum(ra.index(max(ra)) != rb.index(max(rb)) for ra, rb in zip(la, lb))
    keys = sorted(set(a["losses"]) | set(b["losses"]))
    missing = [k for k in keys if k not in a["losses"] or k not in b["losses"]]
    loss_keys = [k for k in keys if k not in missing and not k.endswith("train/lr")]
    loss_rel = max((rel(a["losses"][k], b["losses"][k]) for k in loss_keys), default=0.0)
    kind = b.get("kind", "kd")
    what = {"kd": ("layers-from-teacher 0,2,5", "kd (T=2, alpha=0.5), 0.25 epoch of SST-2 train"),
            "tinybert": ("layers-from-teacher 0,2,5", "tinybert (defaults), 2,000 train rows, 0.5 + 0.5 epoch"),
            "early-exit": ("the teacher with exits", "early-exit (frozen schedule), 2,000 train rows, 0.5 epoch, "
                                                     "no sweep; dev logits not recorded (the weights are compared)"),
            "rerun": ("layers-from-teacher 0,2,5", "the before run's kdistill_run.json re-run through --config by "
                                                   "the after code")}[kind]
    row = {"task": "sst2", "teacher": "minilm-l6-sst2", "student": what[0], "method": what[1], "epochs": a["epochs"], "before": args.compare[0], "after": args.compare[1],
           "dev_examples": len(la), "dev_logits_max_rel_diff": logit_rel, "dev_logits_max_abs_diff": logit_abs,
           "dev_predictions_differing": preds, "logged_loss_values": len(loss_keys), "loss_max_rel_diff": loss_rel,
           "log_keys_only_in_one": missing,
           "kind": b.get("kind", "kd"), "weights_identical": a.get("weights_sha256") == b.get("weights_sha256"), "before_metrics": a["metrics"], "after_metrics": b["metrics"],
           "before_train_seconds": a["train_seconds"], "after_train_seconds": b["train_seconds"],
           "command": f"{a['command']}  &&  {b['command']}  &&  python benchmarks/{Path(__file__).name} "
                      + shlex.join(sys.argv[1:]),
           "machine": b["machine"], "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    (RESULTS / f"{args.name}.json").write_text(json.dumps(row, indent=1))
    md = [f"# {args.name}: the same run before and after a refactor", "", f"`{row['command']}`", "",
          f"Machine: {row['machine']}; date {row['date']}", "",
          "| | before | after |", "|---|---:|---:|",
          f"| dev accuracy | {a['metrics'].get('accuracy', float('nan')):.4f} | {b['metrics'].get('accuracy', float('nan')):.4f} |",
          f"| train seconds | {a['train_seconds']:.0f} | {b['train_seconds']:.0f} |", "",
          f"Run: {row['method']}; student: {row['student']}.", "",
          f"Code: before `{a.get('kdistill_file')}`, after `{b.get('kdistill_file')}` (a before run is made with "
          "`PYTHONPATH=<worktree of the old commit>/src`).", "",
          f"* dev logits: max relative difference {logit_rel:.2e} (absolute {logit_abs:.2e}); "
          f"{preds} of {len(la)} dev predictions differ",
          f"* {len(loss_keys)} logged loss values (every term, every 10 steps): max relative difference {loss_rel:.2e}",
          f"* log keys in one run only: {missing or 'none'}",
          f"* saved weights identical (sha256 of model.safetensors): {row['weights_identical']}", "",
          "Seconds are not a timing result: the runs shared the machine with other work (niced, 1 thread).", ""]
    (RESULTS / f"{args.name}.md").write_text("\n".join(md))
    print("\n".join(md))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--epochs", type=float, default=0.25)
    ap.add_argument("--kind", choices=["kd", "tinybert", "early-exit", "rerun"], default="kd",
                    help="kd: the 3-layer KD run | tinybert / early-exit: smoke runs on 2,000 rows | rerun: re-run "
                         "--rerun RUN/kdistill_run.json through --config")
    ap.add_argument("--rerun", default=None, help="kind rerun: the run folder whose kdistill_run.json is re-run")
    ap.add_argument("--runs-dir", default=str(ROOT / "runs"))
    ap.add_argument("--compare", nargs=2, default=None, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args()
    compare(args) if args.compare else train(args)


if __name__ == "__main__":
    main()
