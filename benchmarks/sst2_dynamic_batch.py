"""Dynamic batch size vs fixed batch 32 on SST-2 (issue 17): epoch time and dev accuracy.

    python benchmarks/sst2_dynamic_batch.py            # on an otherwise idle machine (epoch times are measured)

The same 3-layer student (teacher layers 0, 2, 5 of the shared MiniLM teacher), KD at T = 2, alpha = 0.5, lr 1e-4,
1 epoch over the first 20,000 train rows (kept student chosen on the held-out slice; dev reported once), with:
* ``fixed32`` — batches of 32 rows (length-grouped), the default;
* ``tokens1024_sqrt`` — ``--max-tokens 1024`` (padded tokens per batch; SST-2 rows are short, so batches of up to 128
  rows) with the learning rate scaled by sqrt(rows / 32);
* ``tokens1024_linear`` — the same with linear scaling;
* ``tokens1024_none`` — the same budget, no scaling.
Teacher logits come from one shared cache (computed once, not in the epoch time). Writes
benchmarks/results/sst2_dynamic_batch.{json,md}: optimizer steps, train seconds, dev accuracy and its paired
difference from ``fixed32`` with a 95 % bootstrap CI.
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
from sst2_foundation import GLUE, RESULTS, TEACHER, machine  # noqa: E402

CACHE = Path(os.environ.get("KDISTILL_CACHE", Path.home() / ".cache" / "kdistill"))
RUNS = CACHE / "dynamic_batch"
VARIANTS = {"fixed32": {}, "tokens1024_sqrt": dict(max_tokens=1024, lr_scaling="sqrt"),
            "tokens1024_linear": dict(max_tokens=1024, lr_scaling="linear"),
            "tokens1024_none": dict(max_tokens=1024, lr_scaling="none")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(VARIANTS))
    ap.add_argument("--train-samples", type=int, default=20_000)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import kdistill
    from kdistill.config import DataConfig
    from kdistill.data.batching import eval_loader, tokenize
    from kdistill.data.loading import load_data
    from kdistill.data.tasks import get_task
    from kdistill.engine.evaluation import predict
    from kdistill.metrics import compute_metrics
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.reporting.stats import paired_bootstrap_diff

    command = "python benchmarks/" + Path(__file__).name + " " + shlex.join(sys.argv[1:])
    names = args.only.split(",")
    for name in names:
        out = RUNS / name
        if not (out / "train_results.json").exists():
            kdistill.distill(str(TEACHER), "sst2", output_dir=out, layers=[0, 2, 5], data_dir=str(GLUE), epochs=1,
                             batch_size=32, learning_rate=1e-4, eval_steps=200, temperature=2.0, alpha=0.5,
                             max_train_samples=args.train_samples, report=False, overwrite=True,
                             teacher_cache_file=str(CACHE / "general" / "teacher_logits_train.safetensors"),
                             **VARIANTS[name])
    splits, spec = load_data(DataConfig(task="sst2", data_dir=str(GLUE)))
    task, preds, gold = get_task("sst2"), {}, None
    for name in names:
        path = RUNS / name
        net, tok = load_classifier(str(path), spec, require_trained_head=True), load_tokenizer(str(path))
        preds[name], gold = predict(net, eval_loader(tokenize(splits["validation"], tok), tok, batch_size=64),
                                    show_progress=False)
    rows = []
    for name in names:
        res = json.loads((RUNS / name / "train_results.json").read_text())
        row = {"variant": name, **VARIANTS[name], "optimizer_steps": res["global_step"],
               "train_seconds": round(res["train_seconds"], 1),
               "dev_accuracy": float(compute_metrics(task, preds[name], gold)["accuracy"]),
               "selection_accuracy": res.get("selection_eval", {}).get("accuracy")}
        if name != "fixed32" and "fixed32" in preds:
            d = paired_bootstrap_diff(task, preds[name], preds["fixed32"], gold)
            row["minus_fixed32"] = {"difference": d["difference"], "ci": d["ci"], "p_value": d["p_value"]}
        rows.append(row)
    result = {"benchmark": "sst2_dynamic_batch", "task": "sst2", "teacher": str(TEACHER),
              "student": "teacher layers 0,2,5", "method": "kd", "metric_name": "accuracy", "rows": rows,
              "settings": {"train_rows": args.train_samples, "epochs": 1, "reference_batch_size": 32, "lr": 1e-4,
                           "eval_steps": 200}, "command": command, "machine": machine(),
              "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sst2_dynamic_batch.json").write_text(json.dumps(result, indent=1, default=str))
    md = ["# sst2_dynamic_batch", "", f"`{command}`", "", f"Machine: {result['machine']}; date {result['date']}.", "",
          "Train seconds include evaluation on the held-out slice every 200 steps (fewer, larger steps also mean "
          "fewer evaluations); the teacher's logits were cached beforehand.", "",
          "| variant | optimizer steps | train s | dev acc | vs fixed32 (points, 95% CI) |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        d = r.get("minus_fixed32")
        ci = f"{100 * d['difference']:+.2f} [{100 * d['ci'][0]:+.2f}, {100 * d['ci'][1]:+.2f}]" if d else "—"
        md.append(f"| {r['variant']} | {r['optimizer_steps']} | {r['train_seconds']:.0f} | {r['dev_accuracy']:.4f} | {ci} |")
    (RESULTS / "sst2_dynamic_batch.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
