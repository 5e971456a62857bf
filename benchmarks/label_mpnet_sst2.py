"""The MPNet teacher's transfer set of SST-2 train, made by ``kdistill label`` (resumable: run it again to finish).

    python benchmarks/sst2_mpnet_teacher.py      # first: the teacher (~1 h at 2 threads; resumable)
    python benchmarks/label_mpnet_sst2.py        # then: its logits on all of SST-2 train (resumable shard by shard)
    python benchmarks/label_mpnet_sst2.py --augment   # and the augmented set: Tang et al.'s perturbations of
                                                      # SST-2 train less the seed-42 selection slice, 100,000 rows
    python benchmarks/label_mpnet_sst2.py --hidden-states   # SST-2 train with the last hidden states (L_cos; ~1.3 GB)

The set itself goes to ``$KDISTILL_CACHE/transfer_sets/mpnet-sst2-train`` (``mpnet-sst2-tang`` with ``--augment``;
never committed); its manifest, with the command, machine and threads, to
``benchmarks/results/transfer_set_mpnet_sst2_{train,tang}.{json,md}``.
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

SETS = Path(os.environ.get("KDISTILL_CACHE", Path.home() / ".cache" / "kdistill")) / "transfer_sets"
SET = SETS / "mpnet-sst2-train"
AUG_SET = SETS / "mpnet-sst2-tang"
HIDDEN_SET = SETS / "mpnet-sst2-train-hidden"
#: The augmented set of the campaign (issue 27): Tang et al.'s perturbations (paper settings but 4 per example, not
#: 20), 100,000 of them (a seeded subset: about 1.5x SST-2 train, what the 2-core budget trains on in about an epoch).
AUGMENT = dict(augment="tang", n_iter=4, max_augmented=100_000, seed=42)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num-threads", type=int, default=None)
    ap.add_argument("--augment", action="store_true", help="the augmented set (settings: AUGMENT) instead of train")
    ap.add_argument("--hidden-states", action="store_true", help="train, with the teacher's last hidden states")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import torch

    import kdistill

    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    if not (TEACHER / "model.safetensors").exists():
        raise SystemExit("the MPNet teacher is not fine-tuned yet: run python benchmarks/sst2_mpnet_teacher.py")
    out, name, extra = ((AUG_SET, "transfer_set_mpnet_sst2_tang", AUGMENT) if args.augment else
                        (HIDDEN_SET, "transfer_set_mpnet_sst2_train_hidden", {"hidden_states": True})
                        if args.hidden_states else (SET, "transfer_set_mpnet_sst2_train", {}))
    resume = (out / "manifest.json").exists()
    manifest = kdistill.label(str(TEACHER), "sst2", data_dir=str(GLUE), output_dir=out, resume=resume, **extra)
    command = "python benchmarks/label_mpnet_sst2.py " + shlex.join(sys.argv[1:])
    row = {"name": name, "command": command, "machine": machine(), "set_dir": str(out), "manifest": manifest}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(row, indent=1))
    dev = manifest.get("teacher_dev_metrics") or {}
    what = (f"{manifest['rows']} Tang et al. perturbations of SST-2 train (settings {AUGMENT}; made from the train "
            f"split less its {manifest['inputs'].get('augment', {}).get('selection_rows_left_out')}-row seed-42 "
            "selection slice)") if args.augment else f"all {manifest['rows']} SST-2 train rows" + (
        " with its last hidden states (float16)" if args.hidden_states else "")
    md = [f"# {name}", "", f"`{command}`", "", f"Machine: {row['machine']}", "",
          f"The MPNet teacher's logits on {what} in {len(manifest['shards'])} Parquet shards (set folder `{out}`, "
          f"not committed). Teacher dev accuracy recorded in the manifest: {dev.get('accuracy')}.", "",
          f"This run computed {manifest.get('rows_computed_here')} rows in {manifest.get('teacher_seconds')} s "
          f"({manifest.get('rows_per_second')} rows/s, eager PyTorch, length-sorted batches of "
          f"{manifest['batch_size']}, {manifest['threads']} threads); a resumed run counts only its own rows. Not a "
          "throughput comparison: that is a separate benchmark, on an idle machine.", ""]
    (RESULTS / f"{name}.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
