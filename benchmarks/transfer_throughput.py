"""Teacher-pass throughput of ``kdistill label``: eager PyTorch vs ONNX Runtime fp32, the MPNet-base teacher.

    python benchmarks/transfer_throughput.py [--rows 10000] [--num-threads 2]

Labels the first ``--rows`` SST-2 train rows twice, into fresh folders under ``$KDISTILL_CACHE/bench``: ``--runtime
eager`` (today's teacher pass: length-sorted batches, dynamic padding) and ``--runtime ort`` (the deploy path's fp32
graph, ORT's transformer fusions tried first, used only when its logits match eager's within 1e-4 on the first shard). Writes
``benchmarks/results/transfer_throughput.{json,md}``: rows/s of each, the ratio, the measured logit difference.
Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
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
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    import kdistill

    torch.set_num_threads(args.num_threads)
    runs = {}
    for runtime in ("eager", "ort"):
        out = BENCH / f"label-{runtime}"
        shutil.rmtree(out, ignore_errors=True)
        runs[runtime] = kdistill.label(str(TEACHER), "sst2", data_dir=str(GLUE), output_dir=out, runtime=runtime,
                                       max_train_samples=args.rows, show_progress=False)

    def logits(runtime):
        m, folder = runs[runtime], BENCH / f"label-{runtime}"
        table = pa.concat_tables([pq.read_table(folder / s["file"]) for s in m["shards"]])
        return np.asarray(table.column("logits").to_pylist(), dtype=np.float32)

    diff = float(np.abs(logits("eager") - logits("ort")).max())
    e, o = runs["eager"], runs["ort"]
    ratio = o["rows_per_second"] / e["rows_per_second"]
    command = "python benchmarks/transfer_throughput.py " + shlex.join(sys.argv[1:])
    row = {"name": "transfer_throughput", "command": command, "machine": machine(), "threads": args.num_threads,
           "rows": args.rows, "teacher": str(TEACHER), "eager_rows_per_second": e["rows_per_second"],
           "ort_rows_per_second": o["rows_per_second"], "ratio_ort_over_eager": ratio, "ort_runtime": o["runtime"],
           "max_abs_logit_diff_all_rows": diff, "target_ratio": 1.6, "met": ratio >= 1.6,
           "eager_seconds": e["teacher_seconds"], "ort_seconds": o["teacher_seconds"]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "transfer_throughput.json").write_text(json.dumps(row, indent=1))
    md = ["# transfer_throughput: the teacher pass of kdistill label", "", f"`{command}`", "",
          f"Machine: {row['machine']}; {args.num_threads} threads; the first {args.rows} SST-2 train rows; MPNet-base "
          "teacher; batches of 64, length-sorted within shards of 4096.", "",
          "| runtime | rows/s | seconds |", "|---|---:|---:|",
          f"| eager PyTorch (today's teacher pass) | {e['rows_per_second']} | {e['teacher_seconds']} |",
          f"| ONNX Runtime fp32 ({o['runtime'].get('graph')}) | {o['rows_per_second']} | {o['teacher_seconds']} |",
          "",
          f"Ratio ORT / eager: **{ratio:.4f}×** (target 1.6×: {'met' if row['met'] else 'missed'}). Max |logit "
          f"difference| over all rows: {diff:.2e}. ORT's transformer optimizer (model type bert) fused: "
          f"{o['runtime'].get('fusions') or 'nothing'} {o['runtime'].get('fusion_note') or ''}; first-shard checks: "
          + ", ".join(f"{k} {v:.2e}" for k, v in o["runtime"].items() if k.startswith("max_abs"))
          + f"; used: {o['runtime']['used']} {o['runtime'].get('graph', '')}. The ORT seconds exclude the one-off export, "
          "the optimizer and the parity pass.", ""]
    (RESULTS / "transfer_throughput.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
