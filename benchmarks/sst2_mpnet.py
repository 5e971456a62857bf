"""Students of the base-size MPNet teacher on SST-2 (issue 15 benchmark), each in eager and ONNX Runtime.

    python benchmarks/sst2_mpnet_teacher.py             # first: the teacher (fetch + fine-tune, resumable)
    python benchmarks/sst2_mpnet.py --stage train [--only l6_of_12,minilm_cross,tinybert4,bilstm]
    python benchmarks/sst2_mpnet.py --stage report     # then, on an otherwise idle machine: the timed reports

Training and timing are separate stages so that the (long) training can share the machine while the reports, which
time every model, run alone. ``--stage all`` does both.

Students (every run resumable; models under ~/.cache/kdistill/mpnet/, reports beside them):
* ``l6_of_12`` — DistilBERT-style: 6 of the teacher's 12 layers (0,2,4,7,9,11), KD (T = 2, alpha = 0.5) + L_cos.
  Paper (DistilBERT, SST-2): 91.3 vs 92.7 = 98.5 % at 1.6x. Target >= 99 % at >= 1.9x.
* ``minilm_cross`` — the pretrained all-MiniLM-L6-v2 (BERT-uncased tokenizer: a cross-tokenizer pair), KD on logits.
  Paper (MiniLM-L6 from BERT-base): 91.5 vs 93.2 at 5.3x. Target >= 97 % at >= 5x.
* ``tinybert4`` — 4 x 312, FFN 1200, 12 heads: TinyBERT general distillation from the MPNet base on the Wikipedia
  corpus (benchmarks/fetch_corpus.py; GD_STEPS steps of 64 tokens), then task distillation (intermediate +
  prediction) on Tang-augmented data.
  Paper (TinyBERT4): 96.8 % at 9.4x. Target >= 96 % at >= 9x.
* ``bilstm`` — Tang et al. (2019), logit MSE, Tang augmentation. Target >= 95 % at >= 20x.
Every report has eager, ORT fp32 and ORT int8 rows (kdistill's report). Writes benchmarks/results/sst2_mpnet_<name>.*.
The teacher's logits over the train split are computed once and shared (fingerprint-checked).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sst2_foundation import GLUE, write_result  # noqa: E402
from sst2_mpnet_teacher import OUT as TEACHER  # noqa: E402

CACHE = Path(os.environ.get("KDISTILL_CACHE", Path.home() / ".cache" / "kdistill")) / "mpnet"
LOGITS = CACHE / "teacher_logits_train.safetensors"
METHODS = {"l6_of_12": "kd+cos", "minilm_cross": "kd (cross-tokenizer)", "tinybert4": "tinybert",
           "bilstm": "kd-mse+tang"}
#: (retention, speedup) targets of issue 15, and the paper's figure for the same kind of student (SST-2 dev, BERT-base
#: teacher): student/teacher accuracy, speedup.
TARGETS = {"l6_of_12": (0.99, 1.9), "minilm_cross": (0.97, 5.0), "tinybert4": (0.96, 9.0), "bilstm": (0.95, 20.0)}
PAPER = {"l6_of_12": "DistilBERT 91.3 / 92.7 = 98.5 % at 1.6x (Sanh et al. 2019)",
         "minilm_cross": "MiniLM-L6 91.5 / 93.2 = 98.2 % at 5.3x (Wang et al. 2020; same tokenizer)",
         "tinybert4": "TinyBERT4 92.6 / 93.4 = 99.1 % (GLUE avg 96.8 %) at 9.4x (Jiao et al. 2020)",
         "bilstm": "BiLSTM_SOFT 90.7 / 94.9 (BERT-large) = 95.6 %, ~100x fewer parameters, ~15x faster "
                   "(Tang et al. 2019)"}
#: TinyBERT general distillation from MPNet-base: 100 steps of 32 passages cut to 64 tokens (~200k tokens). MPNet-base
#: runs ~18 s per batch of 32 x 128 tokens on 2 CPU cores, so one pass over the 10k-passage corpus (324 steps) would
#: take ~1.5 h; the paper's general distillation saw 2.5B tokens.
GD_STEPS = 100
TB4 = dict(num_layers=4, hidden_size=312, num_heads=12, intermediate_size=1200)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="minilm_cross,l6_of_12,tinybert4,bilstm")
    ap.add_argument("--stage", choices=["train", "report", "all"], default="all")
    ap.add_argument("--epochs", type=float, default=1.0, help="minilm_cross, bilstm, tinybert4's prediction step")
    ap.add_argument("--max-train-samples", type=int, default=20_000,
                    help="first N train rows (MPNet-base is slow on 2 CPU cores: ~25 min per pass over all 67k)")
    ap.add_argument("--live-epochs", type=float, default=0.5,
                    help="students that need the teacher live at every step (l6_of_12's L_cos, tinybert4's "
                         "intermediate step)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if not (TEACHER / "train_results.json").exists():
        raise SystemExit("the MPNet teacher is not fine-tuned yet: run python benchmarks/sst2_mpnet_teacher.py")
    import kdistill

    command = "python benchmarks/" + Path(__file__).name + " " + shlex.join(sys.argv[1:])
    common = dict(data_dir=str(GLUE), epochs=args.epochs, batch_size=32, learning_rate=1e-4, eval_steps=500,
                  teacher_cache_file=str(LOGITS), report=False,
                  max_train_samples=args.max_train_samples)
    for name in args.only.split(","):  # trained in this order: the cache of teacher logits comes first
        out = CACHE / name
        if args.stage in ("train", "all") and not (out / "train_results.json").exists():
            if train(name, out, args, common) is None:
                return
        if args.stage in ("report", "all"):
            if not (out / "train_results.json").exists():
                raise SystemExit(f"{name} is not trained yet: run with --stage train first")
            rep = kdistill.report(str(TEACHER), str(out), "sst2", data_dir=str(GLUE), latency_runs=300)
            results = json.loads((out / "train_results.json").read_text())
            seconds = results.get("train_seconds", float("nan"))
            write_result(f"sst2_mpnet_{name}", rep, {
                "method": rep.get("method") or METHODS[name], "train_seconds": round(seconds, 1), "command": command,
                "teacher_cache_seconds": round(results.get("teacher_cache_seconds", 0.0), 1),
                "teacher": f"all-mpnet-base-v2 fine-tuned on SST-2 ({TEACHER})", "student": name,
                "settings": json.loads((out / "kdistill_run.json").read_text())})
    if args.stage in ("report", "all"):
        summarize(command)


def summarize(command: str) -> None:
    """benchmarks/results/sst2_mpnet.{json,md}: every student's figures beside its target and the paper's."""
    from sst2_foundation import RESULTS

    rows = []
    for name, (ret_t, speed_t) in TARGETS.items():
        path = RESULTS / f"sst2_mpnet_{name}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        rows.append({"student": name, "student_metric": r["student_metric"], "teacher_metric": r["teacher_metric"],
                     "retention": r["retention"], "student_params": r["student_params"], "speedup": r["speedup"],
                     "ort_speedup": r.get("ort_speedup"), "ort_int8_speedup": r.get("ort_int8_speedup"),
                     "deployment_speedup": r.get("deployment_speedup"), "student_ci": r.get("student_ci"),
                     "target": {"retention": ret_t, "speedup": speed_t},
                     "met": bool(r["retention"] >= ret_t and r["speedup"] >= speed_t), "paper": PAPER[name]})
    (RESULTS / "sst2_mpnet.json").write_text(json.dumps({"benchmark": "sst2_mpnet", "command": command, "rows": rows},
                                                        indent=1, default=str))

    def x(v):
        return f"{v:.2f}x" if isinstance(v, (int, float)) else "—"

    md = ["# sst2_mpnet: students of the all-mpnet-base-v2 SST-2 teacher", "", f"`{command}`", "",
          "Speedup = teacher / student batch-1 CPU latency in PyTorch eager (the target's measure); ORT columns: each "
          "in ONNX Runtime fp32 vs the teacher in ORT fp32, and the student's int8 vs the teacher's fp32 "
          "(deployment). Per-student details: sst2_mpnet_<name>.md / report files.", "",
          "| student | dev acc (95% CI) | retention | params | speedup (eager) | ORT fp32 | ORT int8 vs fp32 teacher | "
          "target | met | paper |", "|---|---:|---:|---:|---:|---:|---:|---|---|---|"]
    for r in rows:
        ci = r["student_ci"]
        acc = f"{r['student_metric']:.4f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if isinstance(ci, (list, tuple)) else "")
        md.append(f"| {r['student']} | {acc} | {100 * r['retention']:.1f} % | {r['student_params'] / 1e6:.1f} M | "
                  f"{x(r['speedup'])} | {x(r['ort_speedup'])} | {x(r['deployment_speedup'])} | "
                  f">= {100 * r['target']['retention']:.0f} % at >= {r['target']['speedup']:.1f}x | "
                  f"{'met' if r['met'] else 'missed'} | {r['paper']} |")
    (RESULTS / "sst2_mpnet.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def train(name: str, out: Path, args, common: dict):
    """Train one student without its report (None: interrupted)."""
    import kdistill
    from kdistill.models import default_pretrained_model

    resume = (out / "checkpoint").exists()
    if name == "l6_of_12":
        res = kdistill.distill(str(TEACHER), "sst2", output_dir=out, layers=[0, 2, 4, 7, 9, 11], cos_weight=1.0,
                               temperature=2.0, alpha=0.5, resume=resume, overwrite=not resume,
                               **{**{k: v for k, v in common.items() if k != "teacher_cache_file"},
                                  "epochs": args.live_epochs})
    elif name == "minilm_cross":
        res = kdistill.distill(str(TEACHER), "sst2", default_pretrained_model(), output_dir=out, temperature=2.0,
                               alpha=0.5, resume=resume, overwrite=not resume, **common)
    elif name == "tinybert4":
        from fetch_corpus import fetch

        from fetch_mpnet import CACHE as MODELS

        general = CACHE / "tinybert4_general"
        if not (general / "train_results.json").exists():
            kdistill.general_distill(str(MODELS / "all-mpnet-base-v2"), output_dir=general, text_files=[str(fetch())],
                                     **TB4, max_steps=GD_STEPS, batch_size=32, learning_rate=2e-4, max_length=64,
                                     resume=(general / "checkpoint").exists(),
                                     overwrite=not (general / "checkpoint").exists())
        # task distillation on augmented data (Tang et al.'s masking / POS / n-gram perturbations, 20k rows labelled
        # by the teacher; TinyBERT's own MLM augmentation needs a masked-LM teacher, which MPNet lacks here)
        res = kdistill.distill(str(TEACHER), "sst2", str(general), output_dir=out, method="tinybert",
                               intermediate_epochs=args.live_epochs, prediction_epochs=args.epochs, resume=resume,
                               overwrite=not resume, augment="tang", max_augmented=20_000,
                               **{k: v for k, v in common.items() if k not in ("epochs", "teacher_cache_file")})
    elif name == "bilstm":
        res = kdistill.distill(str(TEACHER), "sst2", "bilstm", output_dir=out, alpha=0.0, kd_loss="mse",
                               augment="tang", max_augmented=20_000, learning_rate=1e-3, batch_size=64,
                               resume=resume, overwrite=not resume,
                               **{k: v for k, v in common.items() if k not in ("learning_rate", "batch_size",
                                                                                "teacher_cache_file")})
    else:
        raise SystemExit(f"unknown student '{name}'")
    if res.interrupted:
        print(f"{name}: stopped; run the same command to resume")
        return None
    return res


if __name__ == "__main__":
    main()
