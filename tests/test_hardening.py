"""Hardening (issue 11): faults injected in-process at every point of the checkpoint rotation and the cache
writes, then resumed to bit-identical weights; locks, --overwrite safety, crafted checkpoints, stale caches,
changed settings on resume, non-finite values, OS failures, signals and exit codes.

A "kill" is a :class:`Killed` (a ``BaseException``, as un-catchable by ``except Exception`` as a real kill is
by the process) raised from inside the code path; CI runs as root, so read-only and disk-full cases are
injected failing writes, not chmod.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import kdistill
from kdistill.cli import app
from kdistill.errors import KDistillError, TrainingDiverged

runner = CliRunner()


class Killed(BaseException):
    """Stands for kill -9 at the injection point."""


def _opts(glue_dir, **kw):
    return {**dict(data_dir=str(glue_dir), max_train_samples=64, max_eval_samples=16, epochs=2, batch_size=16, eval_steps=2,
                   learning_rate=1e-3, show_progress=False, report=False, logging_steps=1, keep_checkpoint=True), **kw}


def _weights(path):
    return load_file(str(path / "model.safetensors"))


def _same(a, b):
    assert a.keys() == b.keys()
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference(tiny_teacher_dir, glue_dir, tmp_path_factory):
    """An uninterrupted run: 8 optimizer steps, a checkpoint every 2."""
    out = tmp_path_factory.mktemp("ref") / "run"
    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, **_opts(glue_dir))
    assert not res.interrupted
    return out


def _after_nth_save(monkeypatch, target, attr, n, action):
    """Wrap ``target.attr`` so that its ``n``-th call runs ``action(*args)`` (which may raise Killed)."""
    original = getattr(target, attr)
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            return action(original, *args, **kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(target, attr, wrapped)
    return calls


def _kill(*_a, **_k):
    raise Killed


def _write_then_kill(original, *args, **kwargs):
    original(*args, **kwargs)
    raise Killed


@pytest.mark.parametrize("point", ["inside save_state", "before the link switch", "inside the link switch",
                                   "after the link switch", "inside deleting the old one"])
def test_kill_at_each_point_of_checkpoint_rotation_then_resume_is_bit_exact(point, reference, tiny_teacher_dir, glue_dir,
                                                                             tmp_path, monkeypatch):
    import accelerate

    import kdistill.rundir as rundir

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        if point == "inside save_state":  # a folder without its completeness marker
            _after_nth_save(m, accelerate.Accelerator, "save_state", 2, lambda orig, *a, **k: (orig(*a, **k), _kill()))
        elif point == "before the link switch":
            _after_nth_save(m, rundir.RunDir, "publish_checkpoint", 2, lambda orig, *a, **k: _kill())
        elif point == "inside the link switch":  # the new link made, not yet renamed over the old one
            real = os.replace
            seen = {"n": 0}

            def replace(src, dst):
                if str(dst).endswith("checkpoint"):
                    seen["n"] += 1
                    if seen["n"] == 2:
                        raise Killed
                return real(src, dst)

            m.setattr(rundir.os, "replace", replace)
        elif point == "after the link switch":
            _after_nth_save(m, rundir, "remove_checkpoint", 1, lambda orig, *a, **k: _kill())
        else:  # the old folder half deleted: its marker gone, one file left
            def half(orig, path):
                (path / rundir.STATE_FILE).unlink()
                (path / "model.safetensors").unlink()
                raise Killed

            _after_nth_save(m, rundir, "remove_checkpoint", 1, half)
        with pytest.raises(Killed):
            kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, **_opts(glue_dir))
    assert rundir.RunDir(out).latest_checkpoint() is not None  # one complete checkpoint is always findable
    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, resume=True, **_opts(glue_dir))
    assert not res.interrupted
    assert _same(_weights(out / "checkpoint"), _weights(reference / "checkpoint"))
    assert _same(_weights(out), _weights(reference))


def test_legacy_plain_checkpoint_folder_is_resumed_and_replaced(tiny_teacher_dir, glue_dir, tmp_path, reference):
    """A run of an older kdistill (checkpoint/ a plain folder) resumes; the folder is rotated away afterwards."""
    import shutil

    out = tmp_path / "run"

    def stop(state):
        if state.global_step == 4:
            state.stop_requested = True

    kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, callbacks=[stop], **_opts(glue_dir))
    target = (out / "checkpoint").resolve()
    (out / "checkpoint").unlink()
    shutil.move(str(target), str(out / "checkpoint"))  # now a plain folder, as before rotation
    kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, resume=True, **_opts(glue_dir))
    assert (out / "checkpoint").is_symlink() and _same(_weights(out), _weights(reference))


def test_best_model_survives_a_kill_in_finish_and_a_finished_run_is_not_redone(tiny_teacher_dir, glue_dir, tmp_path,
                                                                              monkeypatch):
    import kdistill.rundir as rundir

    out = tmp_path / "run"
    opts = _opts(glue_dir, learning_rate=5e-2, eval_steps=1, seed=3)
    real = rundir.write_atomically

    def kill_results(path, text):
        if path.name == rundir.RESULTS_FILE:
            raise Killed
        return real(path, text)

    with monkeypatch.context() as m:
        m.setattr(rundir, "write_atomically", kill_results)
        with pytest.raises(Killed):
            kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, **opts)
    assert (out / "best" / "model.safetensors").exists()  # kept until the results are written
    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, resume=True, **opts)
    results = json.loads((out / "train_results.json").read_text())
    assert results["best_step"] != results["global_step"], "precondition: the best evaluation is not the last"
    got = kdistill.evaluate(str(out), "sst2", data_dir=str(glue_dir), max_eval_samples=16)
    assert got["accuracy"] == pytest.approx(results["eval"]["accuracy"]) == pytest.approx(res.metrics["accuracy"])
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    again = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, resume=True, **opts)
    assert again.metrics == res.metrics and not again.interrupted
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == before  # nothing changed


def test_overwrite_deletes_only_kdistill_runs_and_never_an_input(tiny_teacher_dir, glue_dir, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    with pytest.raises(KDistillError, match="not made by a kdistill run"):
        kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=foreign, overwrite=True, **_opts(glue_dir))
    assert (foreign / "thesis.tex").read_text() == "years of work"
    run = tmp_path / "run"
    kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=run, **_opts(glue_dir, epochs=1))
    teacher_inside = run / "teacher"
    import shutil

    shutil.copytree(tiny_teacher_dir, teacher_inside)
    with pytest.raises(KDistillError, match="an input of this run"):
        kdistill.distill(str(teacher_inside), "sst2", output_dir=run, overwrite=True, **_opts(glue_dir, epochs=1))
    assert (teacher_inside / "config.json").exists()
    shutil.rmtree(teacher_inside)
    kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=run, overwrite=True, **_opts(glue_dir, epochs=1))  # own run: replaced


def test_run_folder_lock_refuses_a_live_holder_and_takes_over_a_dead_one(tiny_teacher_dir, glue_dir, tmp_path):
    import socket

    from kdistill.rundir import LOCK_FILE

    out = tmp_path / "run"
    out.mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK_FILE).write_text(json.dumps({"pid": live.pid, "host": socket.gethostname()}))
        with pytest.raises(KDistillError, match=f"process {live.pid}"):
            kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, **_opts(glue_dir, epochs=1))
        assert [p.name for p in out.iterdir()] == [LOCK_FILE]  # nothing else touched
    finally:
        live.kill()
        live.wait()
    (out / LOCK_FILE).write_text(json.dumps({"pid": live.pid, "host": socket.gethostname()}))  # now dead: stale
    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, **_opts(glue_dir, epochs=1))
    assert not res.interrupted and not (out / LOCK_FILE).exists()  # released at the end


def test_teacher_logit_cache_is_atomic_and_a_broken_one_is_not_trusted(tiny_teacher_dir, glue_dir, tmp_path, monkeypatch,
                                                                       reference):
    import pyarrow.parquet as pq

    from kdistill.transfer.runcache import read_cache

    cache = tmp_path / "cache"
    real = pq.write_table

    def partial(table, path, *a, **k):  # a kill while the cache is written: half a shard on disk
        open(path, "wb").write(b"\x00" * 100)
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(pq, "write_table", partial)
        with pytest.raises(Killed):
            kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "a", teacher_cache_file=str(cache),
                             **_opts(glue_dir))
    assert pq.write_table is real and not cache.exists()  # only the hidden .tmp folder was written: never trusted
    cache.mkdir()
    (cache / "manifest.json").write_text('{"complete": tr')  # a foreign or truncated cache at the path
    kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "b", teacher_cache_file=str(cache), **_opts(glue_dir))
    assert torch.equal(read_cache(cache), read_cache(reference / "teacher_logits"))


def test_crafted_checkpoint_pickle_never_runs(tiny_teacher_dir, glue_dir, tmp_path):
    out = tmp_path / "run"

    def stop(state):
        if state.global_step == 2:
            state.stop_requested = True

    kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, callbacks=[stop], **_opts(glue_dir))
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save(Evil(), str(out / "checkpoint" / "custom_checkpoint_0.pkl"))  # where accelerate keeps registered state
    with pytest.raises(KDistillError, match="does not fit this run"):  # refused; its code never ran
        kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, resume=True, **_opts(glue_dir))
    assert not marker.exists()


def test_changed_train_texts_recompute_the_teacher_cache(tiny_teacher_dir, tmp_path):
    from kdistill.transfer.runcache import read_cache

    rows = ["sentence\tlabel"] + [f"a {'good' if i % 2 else 'bad'} film number {i}\t{i % 2}" for i in range(32)]
    train, dev = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    train.write_text("\n".join(rows) + "\n")
    dev.write_text("\n".join(rows[:9]) + "\n")
    cache = tmp_path / "cache.safetensors"  # an old cache name: the folder "cache" holds the set
    opts = dict(train_file=str(train), validation_file=str(dev), text_columns=["sentence"], label_column="label",
                epochs=1, batch_size=16, show_progress=False, report=False, teacher_cache_file=str(cache), select_on="dev")
    kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "a", **opts)
    first = read_cache(cache)
    rows[5] = "an entirely different and much longer sentence about the weather today\t0"  # same path, same count
    train.write_text("\n".join(rows) + "\n")
    kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "b", **opts)
    second = read_cache(cache)
    assert (tmp_path / "cache" / "manifest.json").exists() and not cache.exists()
    assert not torch.equal(first[4], second[4]) and torch.equal(first[0], second[0])  # idx 4 = data row 5


def test_tokenizer_edited_in_place_gets_new_ids(tiny_tokenizer, tmp_path):
    import datasets

    from kdistill.data.batching import tokenize
    from transformers import AutoTokenizer

    d = tmp_path / "tok"
    tiny_tokenizer.save_pretrained(d)
    ds = datasets.Dataset.from_dict({"text_a": ["good film", "bad film"], "label": [1, 0], "idx": [0, 1]})
    a = tokenize(ds, AutoTokenizer.from_pretrained(str(d)), cache_dir=tmp_path / "c")["input_ids"][0].tolist()
    spec = json.loads((d / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    vocab["good"], vocab["bad"] = vocab["bad"], vocab["good"]  # same size, two ids swapped
    (d / "tokenizer.json").write_text(json.dumps(spec))
    b = tokenize(ds, AutoTokenizer.from_pretrained(str(d)), cache_dir=tmp_path / "c")["input_ids"][0].tolist()
    assert a != b and len(a) == len(b)


def test_resume_refuses_changed_settings_and_accepts_a_new_learning_rate(tiny_teacher_dir, glue_dir, tmp_path):
    out = tmp_path / "run"

    def stop(state):
        if state.global_step == 2:
            state.stop_requested = True

    kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, callbacks=[stop], temperature=2.0, **_opts(glue_dir))
    recorded = (out / "kdistill_run.json").read_text()
    with pytest.raises(KDistillError, match=r"method\.temperature 2\.0 → 4\.0"):
        kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, resume=True, temperature=4.0, **_opts(glue_dir))
    opts = _opts(glue_dir)
    opts["learning_rate"] = 5e-4
    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, resume=True, temperature=2.0, **opts)
    assert not res.interrupted and (out / "kdistill_run.json").read_text() == recorded  # the record is not rewritten
    changes = json.loads((out / "kdistill_resumes.json").read_text())
    assert "train.learning_rate 0.001 → 0.0005" in changes[0]["changed"][0]
    lrs = [(int(r.split(",")[0]), float(r.split(",")[2])) for r in (out / "logs" / "train_log.csv").read_text().splitlines()[1:]
           if ",train/lr," in r]
    assert dict(lrs)[3] < 5e-4 + 1e-12 < dict(lrs)[2]  # step 3 onwards follows the new rate


@pytest.mark.parametrize("flag,value", [("--epochs", "inf"), ("--weight-decay", "inf"), ("--temperature", "nan"),
                                        ("--cos-weight", "inf"), ("--seed", "-1")])
def test_non_finite_and_out_of_range_options_are_one_line_and_touch_nothing(flag, value, tiny_teacher_dir, glue_dir, tmp_path):
    out = tmp_path / "o"
    r = runner.invoke(app, ["distill", "--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir), "--output", str(out),
                            flag, value])
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {flag}:"), r.output
    assert not out.exists()


def test_non_finite_weights_are_never_saved(tiny_teacher_dir, glue_dir, tmp_path):
    out = tmp_path / "run"

    from kdistill.engine import loop

    def poison_step(*args, **kwargs):
        terms = real_step(*args, **kwargs)
        if args[6].global_step == 7:  # after the last optimizer step: no loss would show it
            with torch.no_grad():
                next(args[0].parameters()).fill_(float("nan"))  # the trainee's first weight
        return terms

    real_step = loop._step
    loop._step = poison_step
    try:
        with pytest.raises(TrainingDiverged, match="non-finite"):
            kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, **_opts(glue_dir))
    finally:
        loop._step = real_step
    assert not (out / "model.safetensors").exists()
    for f in (out / "best").glob("model.safetensors"):
        assert all(torch.isfinite(v).all() for v in load_file(str(f)).values())


def test_divergence_without_a_checkpoint_says_so(tiny_teacher_dir, glue_dir, tmp_path, monkeypatch):
    from kdistill.engine import loop

    real_step = loop._step

    def nan_first(trainee, *args, **kwargs):
        with torch.no_grad():
            next(trainee.parameters()).fill_(float("nan"))
        return real_step(trainee, *args, **kwargs)

    monkeypatch.setattr(loop, "_step", nan_first)
    with pytest.raises(TrainingDiverged, match="no checkpoint was saved yet"):
        kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "r", **_opts(glue_dir))


def test_disk_full_during_a_checkpoint_is_one_line_and_the_previous_one_resumes(tiny_teacher_dir, glue_dir, tmp_path,
                                                                                  monkeypatch, reference):
    import accelerate

    out = tmp_path / "run"

    def full(orig, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        _after_nth_save(m, accelerate.Accelerator, "save_state", 2, full)
        with pytest.raises(KDistillError, match=r"No space left on device.*previous checkpoint .* is kept"):
            kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, **_opts(glue_dir))
    kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, resume=True, **_opts(glue_dir))
    assert _same(_weights(out), _weights(reference))


def test_read_only_output_and_cache_folders_are_one_line(tiny_teacher_dir, glue_dir, tmp_path, monkeypatch):
    from pathlib import Path

    real_mkdir = Path.mkdir

    def ro_mkdir(self, *a, **k):
        if "ro-out" in str(self):
            raise PermissionError(errno.EROFS, "Read-only file system")
        return real_mkdir(self, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(Path, "mkdir", ro_mkdir)
        r = runner.invoke(app, ["distill", "--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir),
                                "--max-train-samples", "32", "--output", str(tmp_path / "ro-out")])
    assert r.exit_code == 2 and "Read-only file system" in r.output and "ro-out" in r.output, r.output
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if "ro-cache" in str(p) else real_access(p, mode))
    monkeypatch.setenv("KDISTILL_CACHE", str(tmp_path / "ro-cache"))
    r = runner.invoke(app, ["distill", "--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir),
                            "--max-train-samples", "32", "--output", str(tmp_path / "o2")])
    assert r.exit_code == 2 and "ro-cache" in r.output and "KDISTILL_CACHE" in r.output, r.output


def test_sigterm_checkpoints_like_ctrl_c_and_the_cli_exits_3(tiny_teacher_dir, glue_dir, tmp_path, monkeypatch, reference):
    from kdistill.engine import loop

    real_step = loop._step
    calls = {"n": 0}

    def term_at_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            signal.raise_signal(signal.SIGTERM)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "_step", term_at_3)
    out = tmp_path / "run"
    r = runner.invoke(app, ["distill", "--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir), "--output", str(out),
                            "--max-train-samples", "64", "--max-eval-samples", "16", "--epochs", "2", "--batch-size", "16",
                            "--eval-steps", "2", "--lr", "1e-3", "--no-report"])
    assert r.exit_code == 3, r.output
    assert json.loads((out / "checkpoint" / "trainer_state.json").read_text())["global_step"] == 3
    monkeypatch.setattr(loop, "_step", real_step)
    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, resume=True, **_opts(glue_dir))
    assert not res.interrupted


def test_ctrl_c_during_data_preparation_is_one_line(tiny_teacher_dir, glue_dir, tmp_path, monkeypatch):
    from kdistill.recipes import kd

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(kd.KD, "data", interrupted)
    r = runner.invoke(app, ["distill", "--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir),
                            "--max-train-samples", "32", "--output", str(tmp_path / "o")])
    assert r.exit_code == 130 and "interrupted" in r.output, r.output


def test_a_real_bug_keeps_its_traceback(tiny_teacher_dir, glue_dir, tmp_path, monkeypatch):
    from kdistill.recipes import kd

    def bug(*a, **k):
        raise ValueError("an internal bug")

    monkeypatch.setattr(kd.KD, "data", bug)
    r = runner.invoke(app, ["distill", "--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir),
                            "--max-train-samples", "32", "--output", str(tmp_path / "o")])
    assert r.exit_code == 1 and isinstance(r.exception, ValueError)


def test_label_error_points_at_an_option_that_exists(tiny_teacher_dir, tmp_path):
    train = tmp_path / "t.csv"
    train.write_text("text,y\ngood,yes\nbad,no\nfine,yes\n")
    r = runner.invoke(app, ["distill", "--teacher", str(tiny_teacher_dir), "--task", "sst2", "--train-file", str(train),
                            "--validation-file", str(train), "--text-columns", "text", "--label-column", "y",
                            "--output", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--labels" in r.output
    assert "--labels" in runner.invoke(app, ["distill", "--help"]).output


def test_log_has_each_step_once_and_the_same_means_after_resume(tiny_teacher_dir, glue_dir, tmp_path):
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    opts = _opts(glue_dir, logging_steps=3, eval_steps=4)
    kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out_a, **opts)

    def stop(state):
        if state.global_step == 5:
            state.stop_requested = True

    kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out_b, callbacks=[stop], **opts)
    kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out_b, resume=True, **opts)
    assert (out_a / "logs" / "train_log.csv").read_text() == (out_b / "logs" / "train_log.csv").read_text()
