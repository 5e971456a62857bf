"""The MPNet teacher's transfer set of SST-2 train, made by ``kdistill label`` (resumable: run it again to finish).

    python benchmarks/sst2_mpnet_teacher.py      # first: the teacher (~1 h at 2 threads; resumable)
    python benchmarks/label_mpnet_sst2.py        # then: its logits on all of SST-2 train (resumable shard by shard)

The set itself goes to ``$KDISTILL_CACHE/transfer_sets/mpnet-sst2-train`` (never committed); its manifest, with the
command, machine and threads, to ``benchmarks/results/transfer_set_mpnet_sst2_train.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from sst2_foundation import GLUE, RESULTS, machine  # noqa: E402
from sst2_mpnet_teacher import OUT as TEACHER  # noqa: E402

SET = Path(os.environ.get("KDISTILL_CACHE", Path.home() / ".cache" / "kdistill")) / "transfer_sets" / "mpnet-sst2-train"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num-threads", type=int, default=None)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import torch

    import kdistill

    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    if not (TEACHER / "model.safetensors").exists():
        raise SystemExit("the MPNet teacher is not fine-tuned yet: run python benchmarks/sst2_mpnet_teacher.py")
    resume = (SET / "manifest.json").exists()
    manifest = kdistill.label(str(TEACHER), "sst2", data_dir=str(GLUE), output_dir=SET, resume=resume)
    command = "python benchmarks/label_mpnet_sst2.py " + shlex.join(sys.argv[1:])
    row = {"name": "transfer_set_mpnet_sst2_train", "command": command, "machine": machine(), "set_dir": str(SET),
           "manifest": manifest}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "transfer_set_mpnet_sst2_train.json").write_text(json.dumps(row, indent=1))
    dev = manifest.get("teacher_dev_metrics") or {}
    md = ["# transfer_set_mpnet_sst2_train", "", f"`{command}`", "", f"Machine: {row['machine']}", "",
          f"The MPNet teacher's logits on all {manifest['rows']} SST-2 train rows in {len(manifest['shards'])} "
          f"Parquet shards (set folder `{SET}`, not committed). Teacher dev accuracy recorded in the manifest: "
          f"{dev.get('accuracy')}.", "",
          f"This run computed {manifest.get('rows_computed_here')} rows in {manifest.get('teacher_seconds')} s "
          f"({manifest.get('rows_per_second')} rows/s, eager PyTorch, length-sorted batches of "
          f"{manifest['batch_size']}, {manifest['threads']} threads); a resumed run counts only its own rows. Not a "
          "throughput comparison: that is a separate benchmark, on an idle machine.", ""]
    (RESULTS / "transfer_set_mpnet_sst2_train.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
