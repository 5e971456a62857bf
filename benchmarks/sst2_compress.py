"""Hybrid compression benchmark on SST-2 with the shared teacher (issue 5).

    python benchmarks/sst2_compress.py prune   # (a) iterative prune -> distil to >= 2.5x CPU batch-1 speed
    python benchmarks/sst2_compress.py lft --layers 0,5 --name sst2_lft2_kd   # (b) a layers-from-teacher student of similar speed
    python benchmarks/sst2_compress.py vocab   # (c) vocabulary pruning of the 3-layer KD student (train-set vocabulary)
    python benchmarks/sst2_compress.py vocab --no-alphabet --name sst2_vocab_prune_noalphabet   # (c) without single characters
    python benchmarks/sst2_compress.py lft --layers importance --epochs 1 --name sst2_l3_importance_1ep   # (d)
    python benchmarks/sst2_compress.py lft --layers 0,2,5 --epochs 1 --name sst2_l3_everyother_1ep          # (d)
    # part 4, heads: keep 6 of 12 heads per copied layer, by importance vs the first six
    python benchmarks/sst2_compress.py lft --layers 0,2,5 --keep-heads 6 --epochs 1 --name sst2_l3_heads6_importance_1ep
    python benchmarks/sst2_compress.py lft --layers 0,2,5 --first-heads 6 --epochs 1 --name sst2_l3_heads6_first_1ep
    python benchmarks/sst2_compress.py lowrank --rank 128   # (part 6) SVD of the 3-layer KD student + KD recovery
    python benchmarks/sst2_compress.py headprobe   # part 4: quality of the head ranking alone (no training)
    python benchmarks/sst2_compress.py recover   # (a) the pruned teacher, one more KD epoch on the augmented set
    python benchmarks/sst2_compress.py lft --layers 0,5 --augmented --name sst2_lft2_kd_aug   # (b) its partner, same recipe

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
AUG = RUNS / "sst2_tinybert_aug" / "train.tsv"  # `python benchmarks/sst2_tinybert.py augment --n-aug 2`
AUG_CACHE = RUNS / "sst2_teacher_logits_aug.safetensors"  # teacher logits over AUG, shared


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
    l.add_argument("--keep-heads", type=int, default=None, help="keep N heads per copied layer, chosen by importance")
    l.add_argument("--first-heads", type=int, default=None, help="baseline: keep heads 0..N-1 of each copied layer")
    l.add_argument("--augmented", action="store_true", help="train on the TinyBERT-augmented set with alpha 0 (as `recover`)")
    v = sub.add_parser("vocab")
    v.add_argument("--student", default=str(RUNS / "sst2_l3_kd"))
    v.add_argument("--name", default="sst2_vocab_prune")
    v.add_argument("--no-alphabet", action="store_true", help="do not keep the single-character pieces (unseen words -> [UNK])")
    v.add_argument("--with-dev", action="store_true", help="also keep the dev sentences' tokens (a deployment vocabulary that covers the eval texts)")
    r = sub.add_parser("lowrank")
    r.add_argument("--student", default=str(RUNS / "sst2_l3_kd"))
    r.add_argument("--rank", type=int, default=128)
    r.add_argument("--epochs", type=float, default=1.0)
    r.add_argument("--name", default="sst2_lowrank128_l3")
    r.add_argument("--resume", action="store_true", help="reuse a finished factorise + recovery run, redo the reports")
    rc = sub.add_parser("recover", help="further KD of a compressed student on TinyBERT's augmented train set")
    rc.add_argument("--student", default=str(RUNS / "sst2_compress_prune"))
    rc.add_argument("--epochs", type=float, default=1.0)
    rc.add_argument("--name", default="sst2_compress_prune_aug")
    hp = sub.add_parser("headprobe", help="no training: keep k heads per teacher layer by importance / first / least / random")
    hp.add_argument("--keep", default="3,6,9")
    hp.add_argument("--name", default="sst2_head_selection_probe")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import kdistill

    command = "python benchmarks/" + Path(__file__).name + " " + shlex.join(sys.argv[1:])
    teacher_rel = "shared/teachers/minilm-l6-sst2"
    if args.cmd == "prune":
        from kdistill.api import compress

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
        n_layers = 3 if layers == "importance" else len(layers)
        heads = [list(range(args.first_heads))] * n_layers if args.first_heads else None
        data = (dict(train_file=str(AUG), validation_file=str(GLUE / "SST-2" / "dev.tsv"), alpha=0.0, eval_steps=1000,
                     teacher_cache_file=str(AUG_CACHE)) if args.augmented
                else dict(data_dir=str(GLUE), alpha=0.5, eval_steps=300, teacher_cache_file=str(CACHE)))
        res = kdistill.distill(str(TEACHER), "sst2", output_dir=RUNS / args.name, layers=layers,
                               num_layers=3 if layers == "importance" else None, keep_heads=args.keep_heads,
                               heads=heads, epochs=args.epochs, batch_size=32, learning_rate=1e-4, temperature=2.0,
                               overwrite=True, latency_runs=300, **data)
        run_student = json.loads((RUNS / args.name / "kdistill_run.json").read_text())["student"]
        chosen, kept = run_student["layers"], run_student.get("heads")
        how = ("importance" if args.keep_heads else f"first {args.first_heads}") if kept else "all"
        write_result(args.name, dict(res.report), {
            "method": "kd", "command": command, "train_seconds": round(res.train_seconds, 1), "teacher": teacher_rel,
            "student": f"layers-from-teacher {chosen} ({args.layers}), heads: {how}", "epochs": args.epochs,
            "layers": chosen, "heads": kept, "augmented": args.augmented,
        })
        return
    if args.cmd == "recover":  # the augmented set of `sst2_tinybert.py augment --n-aug 2` (originals + perturbations)
        res = kdistill.distill(str(TEACHER), "sst2", args.student, output_dir=RUNS / args.name, train_file=str(AUG),
                               validation_file=str(GLUE / "SST-2" / "dev.tsv"), epochs=args.epochs, batch_size=32,
                               learning_rate=1e-4, temperature=2.0, alpha=0.0, eval_steps=1000, overwrite=True,
                               latency_runs=300, teacher_cache_file=str(AUG_CACHE))
        before = kdistill.evaluate(args.student, "sst2", data_dir=str(GLUE))["accuracy"]
        write_result(args.name, dict(res.report), {
            "method": "compress: KD recovery (T = 2, alpha = 0: soft targets only) on the TinyBERT-augmented train set", "command": command,
            "train_seconds": round(res.train_seconds, 1), "teacher": teacher_rel, "epochs": args.epochs,
            "student": f"{args.student} (pruned teacher), further distilled on runs/sst2_tinybert_aug/train.tsv",
            "metric_before": before,
        })
        return
    if args.cmd == "headprobe":  # how good is the importance ranking on its own? (Michel et al. 2019, Sec. 4)
        import time

        import torch

        from kdistill.students.build import keep_teacher_heads
        from kdistill.compress import compute_importance
        from kdistill.compress.importance import importance_batches as _importance_batches
        from kdistill.data import load_splits
        from kdistill.data.batching import tokenize
        from kdistill.engine import evaluate_model
        from kdistill.models import load_classifier, load_tokenizer

        t0 = time.perf_counter()
        splits, spec = load_splits("sst2", data_dir=str(GLUE))
        teacher = load_classifier(str(TEACHER), spec, require_trained_head=True).eval()
        tok = load_tokenizer(str(TEACHER))
        train = tokenize(splits["train"], tok, max_length=128)
        dev = tokenize(splits["validation"], tok, max_length=128)
        # the selection `kdistill distill --keep-heads` makes: gold-label CE, 16 seeded batches of 32, raw scores
        raw = compute_importance(teacher, _importance_batches(train, tok, n_batches=16, batch_size=32, seed=42),
                                 loss="ce", exponent=None).head_importance
        n_layers, n_heads = raw.shape
        gen = torch.Generator().manual_seed(0)
        rows = {"full": evaluate_model(teacher, dev, tok, spec, show_progress=False)["accuracy"]}
        for k in (int(x) for x in args.keep.split(",")):
            order = [torch.argsort(raw[i].float(), descending=True, stable=True).tolist() for i in range(n_layers)]
            choices = {"importance": [sorted(o[:k]) for o in order], "least_important": [sorted(o[-k:]) for o in order],
                       "first": [list(range(k))] * n_layers,
                       "random": [sorted(torch.randperm(n_heads, generator=gen)[:k].tolist()) for _ in range(n_layers)]}
            for how, heads in choices.items():
                model = keep_teacher_heads(teacher, heads).eval()
                rows[f"keep{k}_{how}"] = evaluate_model(model, dev, tok, spec, show_progress=False)["accuracy"]
                print(k, how, rows[f"keep{k}_{how}"], flush=True)
        result = {"command": command, "machine": machine(), "teacher": teacher_rel, "train_seconds": 0,
                  "seconds": round(time.perf_counter() - t0, 1), "dev_accuracy": rows,
                  "head_importance_raw": raw.tolist(),
                  "what": "the 6-layer teacher with k of its 12 heads kept in every layer, no training after pruning"}
        (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1))
        ks = sorted({key.split("_")[0] for key in rows if key != "full"}, key=lambda x: int(x[4:]))
        lines = [f"# {args.name}", "", f"`{command}`", "", f"Machine: {machine()}", "",
                 f"SST-2 dev accuracy of the teacher (all 12 heads: {rows['full']:.4f}) with k heads kept per layer, "
                 "no training after pruning.", "", "| k | importance | first k | random | least important |",
                 "|---:|---:|---:|---:|---:|"]
        for kk in ks:
            lines.append(f"| {kk[4:]} | " + " | ".join(f"{rows[f'{kk}_{h}']:.4f}" for h in
                                                      ("importance", "first", "random", "least_important")) + " |")
        (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
        return
    if args.cmd == "lowrank":  # (part 6) truncated SVD of every dense layer, then KD recovery from the teacher
        from kdistill.compress import factorize
        from kdistill.data.tasks import get_task
        from kdistill.models import load_classifier, load_tokenizer

        out, fact = RUNS / args.name, RUNS / (args.name + "_factorized")
        if not (args.resume and (out / "train_results.json").exists()):
            base = load_classifier(args.student, get_task("sst2"), require_trained_head=True)
            factorize(base, rank=args.rank).save_pretrained(fact)
            load_tokenizer(args.student).save_pretrained(fact)
            kdistill.distill(str(TEACHER), "sst2", str(fact), output_dir=out, data_dir=str(GLUE),
                             epochs=args.epochs, batch_size=32, learning_rate=1e-4, temperature=2.0, alpha=0.5,
                             eval_steps=300, overwrite=True, latency_runs=300, teacher_cache_file=str(CACHE))
        before = kdistill.evaluate(args.student, "sst2", data_dir=str(GLUE))["accuracy"]
        no_recovery = kdistill.evaluate(str(fact), "sst2", data_dir=str(GLUE))["accuracy"]
        unfactorized = kdistill.report(str(TEACHER), args.student, "sst2", data_dir=str(GLUE), latency_runs=300,
                                       output_dir=RUNS / (args.name + "_unfactorized_report"))
        rep = json.loads((out / "report.json").read_text())
        seconds = json.loads((out / "train_results.json").read_text())["train_seconds"]
        write_result(args.name, rep, {
            "method": "low-rank factorisation (truncated SVD) -> KD recovery", "command": command,
            "train_seconds": round(seconds, 1), "teacher": teacher_rel, "rank": args.rank,
            "student": f"{args.student} with every encoder dense layer at rank {args.rank}, recovered {args.epochs} epoch",
            "unfactorized_metric": before, "factorized_before_recovery_metric": no_recovery,
            "unfactorized_params": unfactorized["student_params"], "unfactorized_speedup": unfactorized["speedup"],
            **({"note": "factorisation + recovery ran with this command without --resume; --resume reused that run "
                        "and redid the evaluations and reports"} if args.resume else {}),
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
    res = prune_vocabulary(model, tok, texts, keep_alphabet=not args.no_alphabet)
    out = RUNS / args.name
    res.save(out)
    seconds = time.perf_counter() - t0
    before = kdistill.evaluate(args.student, "sst2", data_dir=str(GLUE))["accuracy"]
    rep = kdistill.report(args.student, str(out), "sst2", data_dir=str(GLUE), latency_runs=300)
    write_result(args.name, rep, {
        "method": f"vocabulary pruning (corpus: SST-2 {'train + dev' if args.with_dev else 'train'} sentences"
                  f"{'' if args.no_alphabet else ' + single-character pieces'})", "command": command, "train_seconds": round(seconds, 1),
        "teacher": f"the unpruned student {args.student} (in the teacher columns)", "student": "vocabulary-pruned student",
        "unpruned_metric": before, "kept_tokens": len(res.kept_ids), "vocab_before": model.config.vocab_size,
        "note": "teacher_* fields describe the unpruned student; retention = pruned / unpruned accuracy",
    })


if __name__ == "__main__":
    main()
