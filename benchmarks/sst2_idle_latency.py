"""Re-time saved students against the shared teacher on an idle machine (nothing else running).

    python benchmarks/sst2_idle_latency.py runs/sst2_tinybert3_abl_aug runs/sst2_compress_prune_aug ...

Training benchmarks time their student while other jobs share the 2 cores (interleaved, so the
ratio holds up, but absolute milliseconds do not); this one re-measures the same saved models with
``kdistill.report`` (300 interleaved batch-1 runs each, 1 thread) and writes
``benchmarks/results/sst2_idle_latency.json/.md``. Dev accuracy is re-computed as a check.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sst2_foundation import GLUE, RESULTS, ROOT, TEACHER, machine  # noqa: E402


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import kdistill

    runs = sys.argv[1:]
    if not runs:
        raise SystemExit(__doc__)
    command = "python benchmarks/" + Path(__file__).name + " " + shlex.join(runs)
    rows = []
    for run in runs:
        with tempfile.TemporaryDirectory() as tmp:  # leave the run's own report as it was
            rep = kdistill.report(str(TEACHER), str(ROOT / run), "sst2", data_dir=str(GLUE), latency_runs=300,
                                  output_dir=tmp)
        rows.append({"run": run, **{k: rep[k] for k in ("teacher_metric", "student_metric", "retention",
                                                          "teacher_latency_ms", "student_latency_ms", "speedup",
                                                          "teacher_params", "student_params", "student_disk_mb")}})
        print(json.dumps(rows[-1]), flush=True)
    (RESULTS / "sst2_idle_latency.json").write_text(json.dumps({"command": command, "machine": machine(),
                                                                 "rows": rows}, indent=1))
    md = ["# sst2_idle_latency", "", f"`{command}`", "", f"Machine: {machine()} (idle: no other job running)", "",
          "| run | dev acc | retention | CPU bs-1 ms (teacher → student) | speedup | params |",
          "|---|---:|---:|---:|---:|---:|"]
    md += [f"| {r['run']} | {r['student_metric']:.4f} | {100 * r['retention']:.1f} % | {r['teacher_latency_ms']:.2f} → "
           f"{r['student_latency_ms']:.2f} | {r['speedup']:.2f}× | {r['student_params']:,} |" for r in rows]
    (RESULTS / "sst2_idle_latency.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
