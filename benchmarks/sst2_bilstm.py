"""BERT → BiLSTM benchmark on SST-2 with the shared teacher (issue 4; Tang et al. 2019).

Three configurations, each one invocation, each writing ``benchmarks/results/sst2_bilstm_<name>.json``
and ``.md`` (same fields as the foundation results)::

    python benchmarks/sst2_bilstm.py --name aug             # distilled, augmented transfer set (MSE on logits, alpha 0)
    python benchmarks/sst2_bilstm.py --name gold            # same BiLSTM on gold labels alone (alpha 1, no augmentation)
    python benchmarks/sst2_bilstm.py --name noaug           # distilled, original train set only

The student is the paper's single-sentence BiLSTM (hidden 150, ReLU layer 200), its embeddings
copied from the teacher's input embeddings (384-d WordPiece vectors; no word2vec offline),
multichannel (one frozen + one trainable copy). The paper trains with n_iter = 20, which on
SST-2 would give over a million augmented rows; on a 2-core machine this script caps them
(``--max-augmented``, a seeded random subset) and records what was used in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sst2_foundation import GLUE, ROOT, TEACHER, write_result  # noqa: E402

CONFIGS = {
    "aug": dict(alpha=0.0, kd_loss="mse", augment="tang"),
    "gold": dict(alpha=1.0, kd_loss="mse", augment="none"),
    "noaug": dict(alpha=0.0, kd_loss="mse", augment="none"),
}
METHOD = {"aug": "kd (logit MSE, Tang et al. 2019) + augmentation", "gold": "finetune (gold labels only)",
          "noaug": "kd (logit MSE, Tang et al. 2019), no augmentation"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True, choices=sorted(CONFIGS))
    ap.add_argument("--epochs", type=float, default=None, help="default: 1 (aug), 2 (gold, noaug)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--eval-steps", type=int, default=500)
    ap.add_argument("--n-iter", type=int, default=20)
    ap.add_argument("--max-augmented", type=int, default=40_000)
    ap.add_argument("--p-pos", type=float, default=0.1)
    ap.add_argument("--embedding-mode", default="multichannel")
    ap.add_argument("--max-train-samples", type=int, default=None)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--latency-runs", type=int, default=300)
    ap.add_argument("--runs-dir", default=str(ROOT / "runs"))
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="timing trial: print, do not write benchmarks/results/")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import kdistill

    conf = CONFIGS[args.name]
    epochs = args.epochs or (1.0 if conf["augment"] == "tang" else 2.0)
    name = f"sst2_bilstm_{args.name}"
    out = Path(args.runs_dir) / name
    command = "python benchmarks/" + Path(__file__).name + " " + shlex.join(sys.argv[1:])
    aug_opts = dict(n_iter=args.n_iter, max_augmented=args.max_augmented, p_pos=args.p_pos) if conf["augment"] == "tang" else {}
    res = kdistill.distill(
        str(TEACHER), "sst2", "bilstm", output_dir=out, data_dir=str(GLUE), alpha=conf["alpha"], kd_loss=conf["kd_loss"],
        augment=conf["augment"], embedding_mode=args.embedding_mode, epochs=epochs, batch_size=args.batch_size,
        learning_rate=args.lr, eval_steps=args.eval_steps, seed=args.seed, max_train_samples=args.max_train_samples,
        overwrite=not args.resume, resume=args.resume, latency_runs=args.latency_runs, **aug_opts,
    )
    rep = dict(res.report)
    state = json.loads((out / "checkpoint" / "trainer_state.json").read_text())
    summary = json.loads((out / "train_results.json").read_text())
    history = [[h["step"], h["accuracy"]] for h in state["history"]]
    if args.no_write:
        print(json.dumps({k: rep.get(k) for k in ("student_metric", "teacher_metric", "speedup", "student_latency_ms")}),
              "train_seconds", round(res.train_seconds, 1), "teacher_cache_seconds", round(res.teacher_cache_seconds, 1))
        return
    write_result(name, rep, {
        "method": METHOD[args.name], "train_seconds": round(res.train_seconds, 1),
        "teacher_cache_seconds": round(res.teacher_cache_seconds, 1), "command": command,
        "alpha": conf["alpha"], "kd_loss": conf["kd_loss"], "epochs": epochs, "learning_rate": args.lr,
        "batch_size": args.batch_size, "optimizer": "AdamW (linear warm-up 6 %, decay), grad clip 1.0",
        "student": f"bilstm ({out.relative_to(ROOT) if out.is_relative_to(ROOT) else out})",
        "teacher": str(TEACHER.relative_to(ROOT.parent)) if TEACHER.is_relative_to(ROOT.parent) else str(TEACHER),
        "augmentation": summary.get("augment") or "none",
        "train_rows": (summary.get("augment") or {}).get("original_rows", None),
        "eval_history": history, "best_step": state.get("best_step"),
        "threads_env": os.environ.get("OMP_NUM_THREADS"),
    })


if __name__ == "__main__":
    main()
