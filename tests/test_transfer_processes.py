"""Transfer sets made by real processes (issue 26): `kill -9` in the middle of `kdistill label`, then `--resume`, gives
the bytes of an uninterrupted run; `accelerate launch` with 2 CPU processes (1 thread each) gives the same shards as
1 process with 1 thread."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_end_to_end import _free_port, _run_launcher

ARGS = ["--task", "sst2", "--max-train-samples", "300", "--max-eval-samples", "16", "--shard-rows", "20",
        "--batch-size", "8"]


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                ACCELERATE_USE_CPU="1")


def _label(teacher: Path, glue: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "kdistill.cli", "label", "--teacher", str(teacher), "--data-dir", str(glue),
           "--output", str(out), *ARGS, *extra]
    return subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _shards(out: Path) -> dict[str, str]:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"]
    return {s["file"]: s["sha256"] for s in manifest["shards"]}


@pytest.fixture(scope="module")
def whole(tiny_teacher_dir, glue_dir, tmp_path_factory):
    """One uninterrupted 1-process, 1-thread run: the reference bytes."""
    out = tmp_path_factory.mktemp("whole") / "set"
    proc = _label(tiny_teacher_dir, glue_dir, out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return out


def test_kill_9_mid_run_then_resume_gives_the_same_bytes(whole, tiny_teacher_dir, glue_dir, tmp_path):
    out = tmp_path / "set"
    proc = _label(tiny_teacher_dir, glue_dir, out)
    deadline = time.time() + 120
    while not (out / "shards" / "part-00003.parquet").exists():  # killed while writing later shards
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"] and 0 < len(manifest["shards"]) < 15
    done_before = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("part-*.parquet")}

    import kdistill
    from kdistill.errors import KDistillError

    with pytest.raises(KDistillError, match="--resume"):  # without --resume: one line, nothing changed
        kdistill.label(str(tiny_teacher_dir), "sst2", output_dir=out, data_dir=str(glue_dir), max_train_samples=300,
                       max_eval_samples=16, shard_rows=20, batch_size=8, show_progress=False)
    resumed = _label(tiny_teacher_dir, glue_dir, out, "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    assert _shards(out) == _shards(whole)  # bit-identical to the uninterrupted run
    for name, mtime in done_before.items():  # finished shards were kept, not recomputed
        assert (out / "shards" / name).stat().st_mtime_ns == mtime
    assert json.loads((out / "manifest.json").read_text())["rows_computed_here"] < 300


def test_two_processes_make_the_set_one_process_makes(whole, tiny_teacher_dir, glue_dir, tmp_path):
    out = tmp_path / "set"
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or "accelerate"
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
           "no", "--main_process_port", str(_free_port()), "--dynamo_backend", "no", "-m", "kdistill.cli", "label",
           "--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir), "--output", str(out), *ARGS]
    proc = _run_launcher(cmd, _env(), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["processes"] == 2 and manifest["rows"] == 300 and manifest["rows_computed_here"] == 300
    assert _shards(out) == _shards(whole)  # same batches, same kernels, same thread count: the same bytes
