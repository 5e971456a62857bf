"""Hybrid compression benchmark on SST-2 with the shared teacher (issue 5).

    python benchmarks/sst2_compress.py prune   # (a) iterative prune -> distil to >= 2.5x CPU batch-1 speed
    python benchmarks/sst2_compress.py lft --layers 0,5 --name sst2_lft2_kd   # (b) a layers-from-teacher student of similar speed
    python benchmarks/sst2_compress.py vocab   # (c) vocabulary pruning of the 3-layer KD student (train-set vocabulary)
    python benchmarks/sst2_compress.py lft --layers importance --epochs 1 --name sst2_l3_importance_1ep   # (d)
    python benchmarks/sst2_compress.py lft --layers 0,2,5 --epochs 1 --name sst2_l3_everyother_1ep          # (d)

Results go to benchmarks/results/<name>.json/.md (same fields as the foundation results).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sst2_foundation import GLUE, RESULTS, ROOT, TEACHER, machine, write_result  # noqa: E402

RUNS = ROOT / "runs"
CACHE = RUNS / "sst2_teacher_logits_full.safetensors"  # teacher logits over the full train set, shared


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prune")
    p.add_argument("--name", default="sst2_compress_prune")
    p.add_argument("--steps-per-round", type=int, default=600)
    p.add_argument("--head-fraction", type=float, default=0.25)
    p.add_argument("--ffn-fraction", type=float, default=0.25)
    p.add_argument("--layers-per-round", type=int, default=1)
    p.add_argument("--target-speedup", type=float, default=2.5)
    p.add_argument("--max-rounds", type=int, default=5)
    p.add_argument("--final-steps", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    l = sub.add_parser("lft")
    l.add_argument("--name", required=True)
    l.add_argument("--layers", required=True)
    l.add_argument("--epochs", type=float, default=1.0)
    v = sub.add_parser("vocab")
    v.add_argument("--student", default=str(RUNS / "sst2_l3_kd"))
    v.add_argument("--name", default="sst2_vocab_prune")
    v.add_argument("--with-dev", action="store_true", help="also keep the dev sentences' tokens (a deployment vocabulary that covers the eval texts)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import kdistill

    command = "python benchmarks/" + Path(__file__).name + " " + shlex.join(sys.argv[1:])
    teacher_rel = "shared/teachers/minilm-l6-sst2"
    if args.cmd == "prune":
        from kdistill.compress import compress

        rep = compress(str(TEACHER), "sst2", output_dir=RUNS / args.name, head_fraction=args.head_fraction,
                       ffn_fraction=args.ffn_fraction, layers_per_round=args.layers_per_round,
                       steps_per_round=args.steps_per_round, target_speedup=args.target_speedup,
                       max_rounds=args.max_rounds, final_steps=args.final_steps, latency_runs=300, data_dir=str(GLUE), batch_size=32,
                       learning_rate=1e-4, temperature=2.0, alpha=0.5, teacher_cache_file=str(CACHE),
                       overwrite=not args.resume, resume=args.resume)
        rounds = rep.pop("rounds")
        final = rep.get("final_recovery") or {}
        write_result(args.name, rep, {
            "method": "compress: iterative prune (heads, FFN, layers by importance) -> KD recovery", "command": command,
            "train_seconds": round(sum(r["train_seconds"] for r in rounds) + final.get("train_seconds", 0.0), 1),
            "rounds": rounds,
            "teacher": teacher_rel, "student": f"pruned teacher after {len(rounds)} rounds",
            "settings": {k: getattr(args, k) for k in ("steps_per_round", "head_fraction", "ffn_fraction",
                                                       "layers_per_round", "target_speedup", "max_rounds", "final_steps")},
        })
        return
    if args.cmd == "lft":
        layers = "importance" if args.layers == "importance" else [int(x) for x in args.layers.split(",")]
        res = kdistill.distill(str(TEACHER), "sst2", output_dir=RUNS / args.name, layers=layers,
                               num_layers=3 if layers == "importance" else None, data_dir=str(GLUE),
                               epochs=args.epochs, batch_size=32, learning_rate=1e-4, temperature=2.0, alpha=0.5,
                               eval_steps=300, overwrite=True, latency_runs=300, teacher_cache_file=str(CACHE))
        chosen = json.loads((RUNS / args.name / "kdistill_run.json").read_text())["student"]["layers"]
        write_result(args.name, dict(res.report), {
            "method": "kd", "command": command, "train_seconds": round(res.train_seconds, 1), "teacher": teacher_rel,
            "student": f"layers-from-teacher {chosen} ({args.layers})", "epochs": args.epochs, "layers": chosen,
        })
        return
    # vocabulary pruning of a trained student: corpus = the SST-2 *train* sentences only, so dev words
    # never seen in training really become [UNK] (keeping dev tokens would hide that)
    import time

    from kdistill.compress import prune_vocabulary
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.data.tasks import get_task

    spec = get_task("sst2")
    texts = []
    for split in ("train", "dev") if args.with_dev else ("train",):
        texts += [line.split("\t")[0] for line in (GLUE / "SST-2" / f"{split}.tsv").read_text().splitlines()[1:]]
    model = load_classifier(args.student, spec, require_trained_head=True)
    tok = load_tokenizer(args.student)
    t0 = time.perf_counter()
    res = prune_vocabulary(model, tok, texts)
    out = RUNS / args.name
    res.save(out)
    seconds = time.perf_counter() - t0
    before = kdistill.evaluate(args.student, "sst2", data_dir=str(GLUE))["accuracy"]
    rep = kdistill.report(args.student, str(out), "sst2", data_dir=str(GLUE), latency_runs=300)
    write_result(args.name, rep, {
        "method": f"vocabulary pruning (corpus: SST-2 {'train + dev' if args.with_dev else 'train'} sentences)", "command": command, "train_seconds": round(seconds, 1),
        "teacher": f"the unpruned student {args.student} (in the teacher columns)", "student": "vocabulary-pruned student",
        "unpruned_metric": before, "kept_tokens": len(res.kept_ids), "vocab_before": model.config.vocab_size,
        "note": "teacher_* fields describe the unpruned student; retention = pruned / unpruned accuracy",
    })


if __name__ == "__main__":
    main()
