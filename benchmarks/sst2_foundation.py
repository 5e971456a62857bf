"""Foundation benchmark: task-specific distillation on the full SST-2 with the shared teacher.

Each invocation trains one student through the public API and writes
``benchmarks/results/<name>.json`` and ``<name>.md``. Examples (the committed results were made so)::

    python benchmarks/sst2_foundation.py --name sst2_l3_kd   --alpha 0.5 --temperature 2
    python benchmarks/sst2_foundation.py --name sst2_l3_gold --alpha 1.0      # gold labels only, same student/settings

``--report-only RUN_DIR`` re-measures an existing run's report on an idle machine (latency is
timed teacher/student interleaved; see kdistill.reporting.measure_latency_interleaved).
"""

from __future__ import annotations

import argparse
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

FIELDS = ["task", "teacher", "student", "method", "metric_name", "teacher_metric", "student_metric", "retention",
          "teacher_latency_ms", "student_latency_ms", "speedup", "teacher_params", "student_params", "train_seconds",
          "command", "machine", "date"]


def machine() -> str:
    import torch

    return (f"{platform.machine()} {platform.processor() or ''}".strip()
            + f", {os.cpu_count()} CPU cores, torch {torch.__version__}, threads {torch.get_num_threads()}")


def write_result(name: str, rep: dict, extra: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    row = {**rep, **extra}
    row.setdefault("machine", machine())
    row.setdefault("date", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    missing = [f for f in FIELDS if f not in row]
    if missing:
        raise SystemExit(f"result lacks fields {missing}")
    (RESULTS / f"{name}.json").write_text(json.dumps(row, indent=1, default=str))
    md = [f"# {name}", "", f"`{row['command']}`", "", f"Machine: {row['machine']}; date {row['date']}", "",
          "| | teacher | student |", "|---|---:|---:|",
          f"| {row['metric_name']} (SST-2 dev) | {row['teacher_metric']:.4f} | {row['student_metric']:.4f} |",
          f"| retention | | {100 * row['retention']:.1f} % |",
          f"| params | {row['teacher_params']:,} | {row['student_params']:,} |",
          f"| CPU batch-1 latency (ms, median) | {row['teacher_latency_ms']:.2f} | {row['student_latency_ms']:.2f} |",
          f"| speedup | | {row['speedup']:.2f}x |",
          f"| train seconds | | {row['train_seconds']:.0f} |", ""]
    (RESULTS / f"{name}.md").write_text("\n".join(md))
    print(json.dumps({k: row[k] for k in FIELDS if k != "command"}, indent=1, default=str))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--kd-loss", default="kl")
    ap.add_argument("--cos-weight", type=float, default=0.0)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--layers", default="0,2,5")
    ap.add_argument("--eval-steps", type=int, default=300)
    ap.add_argument("--max-train-samples", type=int, default=None)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--select-on", default="holdout", choices=["dev", "holdout", "last"],
                    help="which split chooses the kept student (holdout: a train slice, not the reported dev split)")
    ap.add_argument("--runs-dir", default=str(ROOT / "runs"))
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--report-only", default=None, help="re-measure the report of an existing run dir")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import kdistill

    command = "python benchmarks/" + Path(__file__).name + " " + shlex.join(sys.argv[1:])
    out = Path(args.runs_dir) / args.name
    if args.report_only:
        prev = json.loads((RESULTS / f"{args.name}.json").read_text())
        rep = kdistill.report(str(TEACHER), args.report_only, "sst2", data_dir=str(GLUE), latency_runs=300)
        keep = {k: prev[k] for k in ("method", "train_seconds", "student_metric", "alpha", "temperature", "kd_loss",
                                     "cos_weight", "epochs", "layers", "best_step", "train_command") if k in prev}
        rep.update(keep)
        rep["retention"] = rep["student_metric"] / rep["teacher_metric"]
        write_result(args.name, rep, {"command": prev.get("train_command", prev["command"]) + "  &&  " + command,
                                      "latency_note": "re-measured on an idle machine with --report-only"})
        return
    layers = [int(x) for x in args.layers.split(",")]
    res = kdistill.distill(
        str(TEACHER), "sst2", output_dir=out, layers=layers, data_dir=str(GLUE), alpha=args.alpha,
        temperature=args.temperature, kd_loss=args.kd_loss, cos_weight=args.cos_weight, epochs=args.epochs,
        batch_size=32, learning_rate=args.lr, eval_steps=args.eval_steps, seed=args.seed,
        max_train_samples=args.max_train_samples, overwrite=not args.resume, resume=args.resume, latency_runs=300,
        select_on=args.select_on,
    )
    rep = dict(res.report)
    method = "finetune (gold labels only)" if args.alpha == 1 and args.cos_weight == 0 else "kd"
    write_result(args.name, rep, {
        "method": method, "train_seconds": round(res.train_seconds, 1), "command": command, "train_command": command,
        "alpha": args.alpha, "temperature": args.temperature, "kd_loss": args.kd_loss, "cos_weight": args.cos_weight,
        "epochs": args.epochs, "layers": layers, "select_on": args.select_on,
        "selected_on": rep.get("selected_on"), "selection_eval": json.loads((out / "train_results.json").read_text()).get("selection_eval"), "student": f"layers-from-teacher {layers} ({out})",
        "teacher": str(TEACHER.relative_to(ROOT.parent)) if TEACHER.is_relative_to(ROOT.parent) else str(TEACHER),
    })


if __name__ == "__main__":
    main()
