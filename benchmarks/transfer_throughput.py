"""Teacher-pass throughput of ``kdistill label``: eager PyTorch vs ONNX Runtime fp32 vs processes x threads, the
MPNet-base teacher.

    python benchmarks/transfer_throughput.py [--rows 10000] [--num-threads 2]

Labels a seeded sample of ``--rows`` SST-2 train rows (seed 0) three times, into fresh folders under
``$KDISTILL_CACHE/bench``: ``--runtime eager`` (today's teacher pass: length-sorted batches, dynamic padding) and
``--runtime ort`` (the deploy path's fp32 graph, ORT's transformer fusions tried first, used only when its logits match
eager's within 1e-4 on the first shard), both one process with ``--num-threads`` threads, and eager under ``accelerate
launch`` with ``--num-threads`` processes of 1 thread each. Writes ``benchmarks/results/transfer_throughput.{json,md}``:
rows/s of each, the ratios, the measured logit differences. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from sst2_foundation import GLUE, RESULTS, machine  # noqa: E402
from sst2_mpnet_teacher import OUT as TEACHER  # noqa: E402

BENCH = Path(os.environ.get("KDISTILL_CACHE", Path.home() / ".cache" / "kdistill")) / "bench"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--num-threads", type=int, default=2)
    ap.add_argument("--shard-rows", type=int, default=1250,
                    help="the same for every arm; 1250 splits 10,000 rows into 8 shards, 4 per process of 2")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    import kdistill

    torch.set_num_threads(args.num_threads)
    data = _sample(args.rows)
    runs = {}
    for runtime in ("eager", "ort"):
        out = BENCH / f"label-{runtime}"
        shutil.rmtree(out, ignore_errors=True)
        runs[runtime] = kdistill.label(str(TEACHER), "sst2", data_dir=str(data), output_dir=out, runtime=runtime,
                                       shard_rows=args.shard_rows, show_progress=False)
    out = BENCH / "label-processes"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", ACCELERATE_USE_CPU="1")
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or "accelerate"
    subprocess.run([accelerate, "launch", "--multi_gpu", "--num_processes", str(args.num_threads), "--num_machines", "1",
                    "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "kdistill.cli", "label", "--teacher",
                    str(TEACHER), "--task", "sst2", "--data-dir", str(data), "--output", str(out), "--shard-rows",
                    str(args.shard_rows)], env=env, check=True)
    runs["processes"] = json.loads((out / "manifest.json").read_text())

    def logits(runtime):
        m, folder = runs[runtime], BENCH / f"label-{runtime}"
        table = pa.concat_tables([pq.read_table(folder / s["file"]) for s in m["shards"]])
        return np.asarray(table.column("logits").to_pylist(), dtype=np.float32)

    diff = float(np.abs(logits("eager") - logits("ort")).max())
    diff_p = float(np.abs(logits("eager") - logits("processes")).max())
    e, o, p = runs["eager"], runs["ort"], runs["processes"]
    ratio = o["rows_per_second"] / e["rows_per_second"]
    ratio_p = p["rows_per_second"] / e["rows_per_second"]
    best = max(("ort", ratio), (f"{args.num_threads} processes x 1 thread", ratio_p), key=lambda kv: kv[1])
    command = "python benchmarks/transfer_throughput.py " + shlex.join(sys.argv[1:])
    row = {"name": "transfer_throughput", "command": command, "machine": machine(), "threads": args.num_threads,
           "rows": args.rows, "teacher": str(TEACHER), "eager_rows_per_second": e["rows_per_second"],
           "ort_rows_per_second": o["rows_per_second"], "ratio_ort_over_eager": ratio, "ort_runtime": o["runtime"],
           "max_abs_logit_diff_all_rows": diff, "processes_rows_per_second": p["rows_per_second"],
           "ratio_processes_over_eager": ratio_p, "max_abs_logit_diff_processes": diff_p,
           "best": best[0], "best_ratio": best[1], "target_ratio": 1.6, "met": best[1] >= 1.6,
           "sample": f"seeded sample of {args.rows} SST-2 train rows (numpy seed 0)", "shard_rows": args.shard_rows,
           "eager_seconds": e["teacher_seconds"], "ort_seconds": o["teacher_seconds"],
           "processes_seconds": p["teacher_seconds"]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "transfer_throughput.json").write_text(json.dumps(row, indent=1))
    md = ["# transfer_throughput: the teacher pass of kdistill label", "", f"`{command}`", "",
          f"Machine: {row['machine']}; {args.num_threads} threads; {row['sample']}; MPNet-base "
          f"teacher; batches of 64, length-sorted within shards of {args.shard_rows} (the same for every arm; with "
          "several processes, process r computes shards r, r+N, ...).", "",
          "| teacher pass | rows/s | seconds | ratio to eager |", "|---|---:|---:|---:|",
          f"| eager PyTorch, 1 process x {args.num_threads} threads (today's) | {e['rows_per_second']} | "
          f"{e['teacher_seconds']} | 1 |",
          f"| ONNX Runtime fp32 ({o['runtime'].get('graph')}), 1 process x {args.num_threads} threads | "
          f"{o['rows_per_second']} | {o['teacher_seconds']} | {ratio:.4f} |",
          f"| eager PyTorch, {args.num_threads} processes x 1 thread (accelerate launch) | {p['rows_per_second']} | "
          f"{p['teacher_seconds']} | {ratio_p:.4f} |",
          "",
          f"Best: {best[0]}, **{best[1]:.4f}×** (target 1.6×: {'met' if row['met'] else 'missed'}). Max |logit "
          f"difference| over all rows: ORT {diff:.2e}, processes {diff_p:.2e}. ORT's transformer optimizer (model type bert) fused: "
          f"{o['runtime'].get('fusions') or 'nothing'} {o['runtime'].get('fusion_note') or ''}; first-shard checks: "
          + ", ".join(f"{k} {v:.2e}" for k, v in o["runtime"].items() if k.startswith("max_abs"))
          + f"; used: {o['runtime']['used']} {o['runtime'].get('graph', '')}. The ORT seconds exclude the one-off export, "
          "the optimizer and the parity pass.", "",
          "What a faster ORT pass for MPNet would take: ORT's `bert` optimizer fuses attention only where the graph "
          "matches BERT's pattern (Q/K/V MatMul+Add, scaled QK^T + mask, Softmax, x V); MPNet adds a relative-position "
          "bias (a bucketed embedding lookup, the same for every layer) to the scores, so no Attention node is made and "
          "attention stays ~30 unfused ops per layer. ORT's `MultiHeadAttention` contrib op takes such a bias as its "
          "`attention_bias` input; a fusion pass for MPNet (a subclass of onnxruntime.transformers' FusionAttention "
          "that matches the extra Add of the bias and computes the bucket table once) would give MPNet the fused "
          "kernel — that is what the 1.6x target needs on this teacher, not more threads.", ""]
    (RESULTS / "transfer_throughput.md").write_text("\n".join(md))
    print("\n".join(md))


def _sample(rows: int) -> Path:
    """A GLUE-layout SST-2 folder whose train split is a seeded sample of ``rows`` train rows (numpy seed 0)."""
    import numpy as np

    folder = BENCH / f"sst2-sample-{rows}"
    lines = (GLUE / "SST-2" / "train.tsv").read_text(encoding="utf-8").splitlines()
    keep = np.sort(np.random.default_rng(0).choice(len(lines) - 1, size=rows, replace=False)) + 1
    (folder / "SST-2").mkdir(parents=True, exist_ok=True)
    (folder / "SST-2" / "train.tsv").write_text("\n".join([lines[0], *(lines[i] for i in keep)]) + "\n")
    shutil.copy(GLUE / "SST-2" / "dev.tsv", folder / "SST-2" / "dev.tsv")
    return folder


if __name__ == "__main__":
    main()
