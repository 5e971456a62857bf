"""Issue 24, locks and gates (items 7-11): the run lock's messages and two real processes on one run folder,
concurrent exports, finite float options and a NaN-free export file, a run killed before its first checkpoint,
and the predictor's one-line errors.

Tiny random models and a few SST-2 rows; the multi-process tests start real ``kdistill`` processes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, get_args

import pytest
from typer.testing import CliRunner

import kdistill
from conftest import make_tiny_bert
from kdistill.cli import app
from kdistill.errors import KDistillError, ModelError

runner = CliRunner()


def _error_line(output: str, *needles: str) -> str:
    """The one ``error:`` line of a refused command (the last thing printed), checked for ``needles``."""
    assert "Traceback" not in output, output
    lines = [ln for ln in output.replace("\r", "\n").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error:" in ln]
    assert len(errors) == 1 and lines[-1] == errors[0], output
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def _opts(glue_dir, **kw) -> dict:
    return {**dict(data_dir=str(glue_dir), max_train_samples=48, max_eval_samples=16, epochs=1, batch_size=16,
                   eval_steps=1, show_progress=False, report=False, select_on="dev"), **kw}


def _distill_cli(teacher, glue_dir, out, *extra: str) -> list[str]:
    return ["distill", "--teacher", str(teacher), "--data-dir", str(glue_dir), "--max-train-samples", "48",
            "--max-eval-samples", "16", "--epochs", "1", "--batch-size", "16", "--select-on", "dev", "--no-report",
            "--output", str(out), *extra]


# ---------------------------------------------------------------------------------------------------- 7: run lock
def test_live_run_is_named_before_any_advice_about_the_folder(tiny_teacher_dir, glue_dir, tmp_path):
    """A second run on the folder of a live run, without --overwrite (or with --resume), is refused in one line
    naming the live run's process — not "not empty; pass --overwrite", which cannot work while it lives."""
    from kdistill.rundir import LOCK_FILE

    out = tmp_path / "run"
    out.mkdir()
    (out / "kdistill_run.json").write_text("{}")  # the live run has started writing
    live = _sleeper()
    try:
        (out / LOCK_FILE).write_text(json.dumps({"pid": live.pid, "host": socket.gethostname()}))
        before = sorted(p.name for p in out.iterdir())
        for extra in ((), ("--resume",), ("--overwrite",)):
            res = runner.invoke(app, _distill_cli(tiny_teacher_dir, glue_dir, out, *extra))
            assert res.exit_code == 2, res.output
            line = _error_line(res.output, f"process {live.pid}", "in use by another kdistill run")
            assert "not empty" not in line and "checkpoint" not in line
        assert sorted(p.name for p in out.iterdir()) == before  # nothing touched
    finally:
        live.kill()
        live.wait()


def test_the_lock_is_taken_whole_never_over_a_half_written_one(tmp_path):
    """Taking the lock (read the holder, decide, write) is atomic among processes: a run that finds the lock file
    while another process is still writing it waits for it and is then refused naming that process — it does not
    take an empty lock file for a stale one and start a second run in the folder (the race of item 7)."""
    fcntl = pytest.importorskip("fcntl")
    import threading

    from kdistill.rundir import LOCK_FILE, RunDir

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    live = _sleeper()
    guard = os.open(run.path, os.O_RDONLY)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)  # another process is taking the lock: file created, not yet written
        (run.path / LOCK_FILE).write_text("")
        result: dict = {}

        def second():
            try:
                with run.lock():
                    result["took"] = True
            except KDistillError as err:
                result["refused"] = str(err)

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.3)
        (run.path / LOCK_FILE).write_text(json.dumps({"pid": live.pid, "host": socket.gethostname()}))
        os.close(guard)  # the other process is done taking it
        guard = None
        t.join(10)
        assert "took" not in result and f"process {live.pid}" in result.get("refused", ""), result
    finally:
        if guard is not None:
            os.close(guard)
        live.kill()
        live.wait()


_RACERS = r"""
import json, os, sys, time, traceback
folder, events = sys.argv[1], sys.argv[2]
racers = json.loads(sys.argv[3])
import kdistill.recipes.base as base
from kdistill.cli import app
import accelerate, datasets, torch, transformers, kdistill.api, kdistill.engine, kdistill.data.loading  # warm

real = base._run_locked

def log(what):
    with open(events, "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "event": what, "t": time.time()}) + "\n")

def logged(*args, **kwargs):  # _run_locked runs while the folder's lock is held: it writes the run into the folder
    log("start")
    try:
        return real(*args, **kwargs)
    finally:
        log("end")

base._run_locked = logged
pids = {}
for name, args in racers.items():  # one real process per run, forked warm so that each starts at once when told
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(f"{folder}/{name}.err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        while not os.path.exists(f"{folder}/{name}.go"):
            time.sleep(0.005)
        rc = 0
        try:
            app(args, prog_name="kdistill")
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc()
            rc = 1
        sys.stdout.flush()
        sys.stderr.flush()
        with open(f"{folder}/{name}.rc", "w") as f:
            f.write(str(rc))
        os._exit(rc)
    pids[name] = pid
with open(f"{folder}/pids.json.tmp", "w") as f:
    json.dump(pids, f)
os.replace(f"{folder}/pids.json.tmp", f"{folder}/pids.json")
for pid in pids.values():
    os.waitpid(pid, 0)
"""


def _small_glue(tmp_path: Path, glue_dir: Path) -> Path:
    """The first 48 train and 16 dev rows of SST-2 in the GLUE layout (quick to load in every process)."""
    d = tmp_path / "glue" / "SST-2"
    d.mkdir(parents=True)
    for split, n in (("train", 48), ("dev", 16)):
        lines = (glue_dir / "SST-2" / f"{split}.tsv").read_text().splitlines(keepends=True)
        (d / f"{split}.tsv").write_text("".join(lines[: n + 1]))
    return tmp_path / "glue"


def test_two_real_runs_on_one_folder_never_train_into_it_together(tiny_teacher_dir, glue_dir, tmp_path):
    """Real ``kdistill distill`` processes on one folder: a first one, and runs with --overwrite told to start with
    it (both in the start-up window), when its lock appears, when its results appear (it is finishing) and when
    its lock goes. Each is refused in one line naming a live run, or runs strictly after the one before released
    the folder (the first, without --overwrite, may instead find another's whole run there: "not empty"): no two
    processes are ever inside the folder at once, and the folder ends as one whole run. (This passes on the main
    branch before issue 24 too; the race it guards is pinned down by the test above.)"""
    out = tmp_path / "run"
    events = tmp_path / "events.jsonl"
    lock = out / ".kdistill.lock"
    data = _small_glue(tmp_path, glue_dir)
    names = ["first", "with_it", "at_lock", "finishing", "released"]
    racers = {n: _distill_cli(tiny_teacher_dir, data, out, "--epochs", "2", *(() if n == "first" else ("--overwrite",)))
              for n in names}
    with open(tmp_path / "launcher.err", "w") as err:
        launcher = subprocess.Popen([sys.executable, "-c", _RACERS, str(tmp_path), str(events), json.dumps(racers)],
                                    stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.time() + 240
        while not (tmp_path / "pids.json").exists():
            assert launcher.poll() is None and time.time() < deadline, (tmp_path / "launcher.err").read_text()
            time.sleep(0.05)
        pids = json.loads((tmp_path / "pids.json").read_text())

        def go(name):
            (tmp_path / f"{name}.go").touch()
            told.add(name)

        def ended(name):
            return (tmp_path / f"{name}.rc").exists()

        told: set[str] = set()
        go("first")
        go("with_it")
        seen_lock = False
        while not all(ended(n) for n in names):
            assert time.time() < deadline and launcher.poll() is None, "runs did not end"
            if lock.exists():
                seen_lock = True
                if "at_lock" not in told:
                    go("at_lock")
            if "finishing" not in told and (out / "train_results.json").exists():
                go("finishing")
            if "released" not in told and seen_lock and not lock.exists():
                go("released")
            if all(ended(n) for n in told):  # everyone told has ended: the other triggers cannot come any more
                for n in names:
                    if n not in told:
                        go(n)
            time.sleep(0.005)
        launcher.wait(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()

    try:
        _check_racers(tmp_path, out, events, names, pids)
    except AssertionError as err:  # say what each process did
        said = {n: ((tmp_path / f"{n}.rc").read_text() if (tmp_path / f"{n}.rc").exists() else "?",
                    (tmp_path / f"{n}.err").read_text()[-600:]) for n in names}
        raise AssertionError(f"{err}\npids {pids}\nevents {events.read_text() if events.exists() else ''}\n{said}") from None


def _check_racers(tmp_path: Path, out: Path, events: Path, names: list[str], pids: dict[str, int]) -> None:
    lock = out / ".kdistill.lock"
    intervals: dict[int, list] = {}
    for line in events.read_text().splitlines():
        e = json.loads(line)
        intervals.setdefault(e["pid"], []).append((e["event"], e["t"]))

    def ended_before(pid):  # another process had finished its run in the folder before this one was refused
        return any(k == "end" for other, ev in intervals.items() if other != pid for k, _ in ev)

    inside = []  # every stay of a process in the folder under its lock, whatever its outcome
    for name, pid in pids.items():
        rc = int((tmp_path / f"{name}.rc").read_text())
        err = (tmp_path / f"{name}.err").read_text()
        ev = intervals.get(pid, [])
        assert rc in (0, 2), (name, rc, err)
        assert [k for k, _ in ev] in ([], ["start", "end"]), (name, ev, err)
        if ev:
            inside.append((ev[0][1], ev[1][1], name))
        if rc == 0:
            assert ev, (name, "trained without entering the folder under its lock")
            continue
        line = _error_line(err)
        if name == "first" and "in use" not in line:  # without --overwrite: another's whole run fills the folder
            assert "is not empty" in line and ended_before(pid), (name, line)
        else:  # with --overwrite: refused only by a live run, before entering the folder
            assert "in use by another kdistill run (process " in line, (name, line)
            named = int(line.split("(process ")[1].split()[0])
            assert named in pids.values() and named != pid, (name, line)
            assert not ev, (name, "refused after it had entered the folder")
    inside.sort()
    assert any(int((tmp_path / f"{n}.rc").read_text()) == 0 for n in names), "no run succeeded"
    for (s1, e1, n1), (s2, e2, n2) in zip(inside, inside[1:]):
        assert e1 < s2, f"{n1} and {n2} were inside the folder together"
    # the folder is one whole run: its results, no lock, one run's log (no step logged twice)
    assert (out / "train_results.json").exists() and (out / "model.safetensors").exists() and not lock.exists()
    rows = [ln.split(",")[:2] for ln in (out / "logs" / "train_log.csv").read_text().splitlines()[1:]]
    assert len(rows) == len({tuple(r) for r in rows}), "two runs logged into one folder"
    print({n: int((tmp_path / f"{n}.rc").read_text()) for n in names}, inside)  # shown with -s


# ---------------------------------------------------------------------------------------------------- exports
@pytest.fixture(scope="module")
def model_dir(tiny_tokenizer, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("i24_model") / "model"
    make_tiny_bert(vocab_size=len(tiny_tokenizer), layers=2, hidden=32, heads=2).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


def _data(glue_dir):
    from kdistill.config import DataConfig

    return DataConfig(task="sst2", data_dir=str(glue_dir), max_train_samples=64, max_eval_samples=16)


@pytest.fixture(scope="module")
def exported(model_dir, glue_dir, tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    from kdistill.deploy.export import export_model

    out = tmp_path_factory.mktemp("i24_export") / "onnx"
    export_model(str(model_dir), out, data=_data(glue_dir))
    return out


_SLOW_EXPORT = r"""
import os, sys, time
go = sys.argv[1]
import kdistill.deploy.export as ex
from kdistill.cli import app

real = ex._write_folder

def held(*args, **kwargs):  # wait (holding the output) until told
    while not os.path.exists(go):
        time.sleep(0.01)
    return real(*args, **kwargs)

ex._write_folder = held
app(sys.argv[2:], prog_name="kdistill")
"""


def test_a_second_export_to_the_same_output_is_refused_in_one_line(model_dir, glue_dir, tmp_path):
    """Two exports to one output: while the first (another process) is writing it, the second is refused in one line
    naming that process — the first is not disturbed and finishes a whole folder; afterwards the lock is gone."""
    pytest.importorskip("onnxruntime")
    out = tmp_path / "onnx"
    args = ["export", "--model", str(model_dir), "--output", str(out), "--data-dir", str(glue_dir),
            "--max-eval-samples", "16"]
    go = tmp_path / "go"
    with open(tmp_path / "first.err", "w") as err:
        first = subprocess.Popen([sys.executable, "-c", _SLOW_EXPORT, str(go), *args], stdout=subprocess.DEVNULL,
                                 stderr=err)
    try:
        deadline = time.time() + 180
        while not (tmp_path / ".onnx.partial" / "model.onnx").exists():
            assert first.poll() is None and time.time() < deadline, (tmp_path / "first.err").read_text()
            time.sleep(0.05)
        for extra in ((), ("--overwrite",)):
            res = runner.invoke(app, [*args, *extra])
            assert res.exit_code == 2, res.output
            _error_line(res.output, f"process {first.pid}", "being written by another kdistill export")
        assert (tmp_path / ".onnx.partial" / "model.onnx").exists()  # the first's staging is untouched
        go.touch()
        assert first.wait(timeout=180) == 0, (tmp_path / "first.err").read_text()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    meta = json.loads((out / "kdistill_export.json").read_text())
    assert (out / "model.onnx").is_file() and meta["files"]["fp32"] == "model.onnx"
    assert not list(tmp_path.glob(".onnx*")), list(tmp_path.iterdir())  # no staging, no lock left


# ---------------------------------------------------------------------------------------------------- 9: finite
def test_export_max_drop_nan_is_refused(model_dir, glue_dir, tmp_path):
    """``--max-drop nan`` would switch the int8 gate off (drop > nan is always false) and write NaN: refused in one
    line (exit 2) by the CLI and by the Python API, nothing written."""
    pytest.importorskip("onnxruntime")
    from kdistill.deploy.export import export_model

    out = tmp_path / "onnx"
    res = runner.invoke(app, ["export", "--model", str(model_dir), "--output", str(out), "--data-dir", str(glue_dir),
                              "--max-eval-samples", "16", "--quantize", "dynamic", "--max-drop", "nan"])
    assert res.exit_code == 2, res.output
    _error_line(res.output, "--max-drop", "finite")
    for bad in (float("nan"), float("inf")):
        with pytest.raises(KDistillError, match="--max-drop must be a finite number"):
            kdistill.export(str(model_dir), out, "sst2", quantize="dynamic", max_drop=bad, data_dir=str(glue_dir),
                            max_eval_samples=16)
        with pytest.raises(KDistillError, match="--max-drop must be a finite number"):
            export_model(str(model_dir), out, data=_data(glue_dir), quantize="dynamic", max_drop=bad)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_export_file_never_holds_nan_and_an_undefined_metric_fails_the_gate(model_dir, glue_dir, tmp_path, monkeypatch):
    """kdistill_export.json is strict JSON: a NaN metric is refused in one line naming the field (nothing written),
    and an undefined int8 metric cannot pass the --max-drop gate."""
    pytest.importorskip("onnxruntime")
    import kdistill.deploy.export as ex

    real = ex._metric
    with monkeypatch.context() as m:
        m.setattr(ex, "_metric", lambda *a, **k: float("nan"))
        with pytest.raises(ModelError, match=r"non-finite number \(.*fp32_metric") as err:
            ex.export_model(str(model_dir), tmp_path / "a", data=_data(glue_dir))
        assert "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())
    calls = {"n": 0}

    def int8_undefined(spec, logits, gold, *rest, **kw):  # fp32, pytorch: defined; the int8 graph's: NaN
        calls["n"] += 1
        return real(spec, logits, gold, *rest, **kw) if calls["n"] <= 2 else float("nan")

    monkeypatch.setattr(ex, "_metric", int8_undefined)
    with pytest.raises(ModelError, match=r"gate: the dev accuracy is undefined"):
        ex.export_model(str(model_dir), tmp_path / "b", data=_data(glue_dir), quantize="dynamic", max_drop=100.0)
    assert not list(tmp_path.iterdir())


def _float_options() -> list[tuple[str, str]]:
    """(command, option) for every float option of every command, found by introspecting the app (typer's own
    parameters carry their annotation; older typer gives click params of type FLOAT)."""
    import click
    import typer

    group = typer.main.get_command(app)
    found = []
    for cmd_name, cmd in sorted(group.commands.items()):
        for param in cmd.params:
            annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
            is_float = (annotation is float or annotation == Optional[float] or float in get_args(annotation)
                        if annotation is not None else isinstance(param.type, click.types.FloatParamType))
            if is_float and getattr(param, "param_type_name", "") == "option":
                found.append((cmd_name, param.opts[0]))
    return found


FLOAT_OPTIONS = _float_options()


def test_the_float_options_were_found():
    assert len(FLOAT_OPTIONS) >= 60 and ("export", "--max-drop") in FLOAT_OPTIONS
    assert {c for c, _ in FLOAT_OPTIONS} >= {"distill", "export", "run", "search", "provision", "compress",
                                              "early-exit", "born-again"}


@pytest.mark.parametrize("value", ["nan", "inf"])
@pytest.mark.parametrize("command,option", FLOAT_OPTIONS, ids=[f"{c}{o}" for c, o in FLOAT_OPTIONS])
def test_every_float_option_refuses_non_finite_values(command, option, value, tmp_path):
    res = runner.invoke(app, [command, option, value])
    assert res.exit_code == 2, res.output
    _error_line(res.output, option, "finite")


# ---------------------------------------------------------------------------------------------------- 10
class Killed(BaseException):
    """Stands for kill -9 (not caught by ``except Exception``)."""


def _killed_before_first_checkpoint(teacher, glue_dir, out: Path, monkeypatch) -> None:
    """The folder a run leaves when it is killed while its first checkpoint is written (its lock stale)."""
    import accelerate

    from kdistill.rundir import LOCK_FILE

    real = accelerate.Accelerator.save_state

    def save_then_die(self, *a, **k):
        real(self, *a, **k)  # the model and optimizer are written; trainer_state.json (the marker) never is
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(accelerate.Accelerator, "save_state", save_then_die)
        with pytest.raises(Killed):
            kdistill.distill(str(teacher), "sst2", output_dir=out, **_opts(glue_dir))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))  # kill -9 leaves it


def test_a_run_killed_before_its_first_checkpoint_gets_advice_that_works(tiny_teacher_dir, glue_dir, tmp_path,
                                                                         monkeypatch):
    """Without --resume: one line saying the folder holds a run that never checkpointed and that --resume starts it
    again; --resume then does so (one line saying it) instead of "holds no checkpoint, run without --resume"."""
    from kdistill.rundir import RunDir

    out = tmp_path / "run"
    _killed_before_first_checkpoint(tiny_teacher_dir, glue_dir, out, monkeypatch)
    assert RunDir(out).is_run() and not RunDir(out).has_checkpoint() and list(out.glob("checkpoint-*"))

    res = runner.invoke(app, _distill_cli(tiny_teacher_dir, glue_dir, out))
    assert res.exit_code == 2, res.output
    line = _error_line(res.output, "stopped before its first checkpoint", "--resume")
    assert "not empty" not in line

    res = runner.invoke(app, _distill_cli(tiny_teacher_dir, glue_dir, out, "--resume"))
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    said = [ln for ln in res.output.splitlines() if "before its first checkpoint" in ln]
    assert len(said) == 1 and "again from the beginning" in said[0], res.output
    assert RunDir(out).is_complete() and not (out / ".kdistill.lock").exists()


def test_a_finished_or_foreign_folder_is_not_taken_for_one_that_never_checkpointed(tmp_path):
    from kdistill.rundir import RunDir

    run = RunDir(tmp_path / "r")
    run.path.mkdir()
    assert not run.never_checkpointed()  # empty: not a run
    (run.path / "logs").mkdir()
    (run.path / "kdistill_run.json").write_text("{}")
    assert run.never_checkpointed()
    (run.path / "student_init.json").write_text("{}")  # written before the first step
    assert run.never_checkpointed()
    (run.path / "intermediate" / "logs").mkdir(parents=True)  # a stage folder in the same state
    assert run.never_checkpointed()
    (run.path / "notes.txt").write_text("mine")
    assert not run.never_checkpointed()
    (run.path / "notes.txt").unlink()
    done = run.path / "checkpoint-4-0"
    done.mkdir()
    (done / "trainer_state.json").write_text(json.dumps({"global_step": 4}))
    assert not run.never_checkpointed()


# ---------------------------------------------------------------------------------------------------- 11: predictor
@pytest.mark.parametrize("bad,index,kind", [([5], 0, "int"), (["fine", None], 1, "NoneType"),
                                            (["ok", "ok", b"bytes"], 2, "bytes")])
def test_predictor_names_a_non_string_input(exported, bad, index, kind):
    from kdistill.serve import Predictor

    pred = Predictor(exported)
    with pytest.raises(TypeError, match=rf"input {index} is {kind} .*not a string") as err:
        pred.predict(bad)
    assert "\n" not in str(err.value)
    if kind == "bytes":
        assert "decode" in str(err.value)
    with pytest.raises(TypeError, match="texts must be a list of strings"):
        pred.predict(None)
    labels, probs = pred.predict(["a fine film", ("a", "b")])  # strings and pairs still work
    assert len(labels) == 2 and probs.shape == (2, 2)


def test_predictor_names_a_damaged_file(exported, tmp_path):
    """A truncated model.onnx (or a broken tokenizer.json / kdistill_export.json) is one line naming the file and
    saying to re-export, from kdistill.serve and from the folder's own predict.py."""
    from kdistill.serve import Predictor

    for name in ("model.onnx", "tokenizer.json", "kdistill_export.json"):
        folder = tmp_path / name
        shutil.copytree(exported, folder)
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
        with pytest.raises(ValueError, match=r"damaged .*re-run `kdistill export`") as err:
            Predictor(folder)
        message = str(err.value)
        assert "\n" not in message and str(folder / name) in message
    code = ("import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None; "
            f"sys.path.insert(0, {str(tmp_path / 'model.onnx')!r}); from predict import Predictor\n"
            "try:\n"
            f"    Predictor({str(tmp_path / 'model.onnx')!r})\n"
            "except ValueError as err:\n"
            "    print(err)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert "model.onnx is damaged" in res.stdout and "re-run `kdistill export`" in res.stdout


def test_search_and_provision_name_the_live_run_before_any_advice(tmp_path):
    """`kdistill search` and `kdistill provision` check their folders themselves: a live run's folder is refused
    naming its process, not with "not empty; pass --overwrite" (item 7, the commands with their own checks)."""
    from kdistill.errors import KDistillError
    from kdistill.provision.run import _prepare
    from kdistill.rundir import LOCK_FILE
    from kdistill.search.study import _prepare_folder

    out = tmp_path / "busy"
    out.mkdir()
    (out / "search.json").write_text("{}")
    live = _sleeper()
    try:
        (out / LOCK_FILE).write_text(json.dumps({"pid": live.pid, "host": socket.gethostname()}))
        for check in (lambda: _prepare_folder(out, None, resume=False, overwrite=False),
                      lambda: _prepare(out, None, overwrite=False, resume=False)):
            with pytest.raises(KDistillError) as err:
                check()
            assert f"process {live.pid}" in str(err.value) and "not empty" not in str(err.value)
    finally:
        live.kill()
        live.wait()


def test_the_other_processes_of_a_distributed_run_do_not_take_their_main_process_for_another_run(tmp_path):
    """In `accelerate launch` every process checks the folder after the main one took the lock: a non-main process
    must not refuse the folder as "in use" by its own job's main process (a race the 2-process DDP smoke test hit)."""
    from types import SimpleNamespace

    from kdistill.errors import KDistillError
    from kdistill.rundir import LOCK_FILE, RunDir

    out = tmp_path / "ddp"
    out.mkdir()
    main = _sleeper()  # stands for rank 0, which holds the lock
    try:
        (out / LOCK_FILE).write_text(json.dumps({"pid": main.pid, "host": socket.gethostname()}))
        config = SimpleNamespace(model_dump_json=lambda indent=1: "{}")
        rank1 = SimpleNamespace(is_main_process=False, wait_for_everyone=lambda: None)
        RunDir(out).prepare(config, overwrite=False, resume=False, procs=rank1)  # no error
        with pytest.raises(KDistillError, match=f"process {main.pid}"):  # a separate run is still refused
            RunDir(out).prepare(config, overwrite=False, resume=False,
                                procs=SimpleNamespace(is_main_process=True, wait_for_everyone=lambda: None))
    finally:
        main.kill()
        main.wait()


def test_a_run_stopped_in_its_deploy_stage_exports_on_resume(tiny_teacher_dir, glue_dir, tmp_path):
    """Never lost work: a run whose training finished but whose --deploy stage did not (a kill, a crash in the
    export) is finished by --resume, which exports the kept student instead of returning without it."""
    import shutil

    out = tmp_path / "run"
    r = runner.invoke(app, _distill_cli(tiny_teacher_dir, glue_dir, out, "--deploy", "fp32"))
    assert r.exit_code == 0, r.output
    assert (out / "onnx" / "kdistill_export.json").exists()
    shutil.rmtree(out / "onnx")  # as if the process died inside the export
    r = runner.invoke(app, _distill_cli(tiny_teacher_dir, glue_dir, out, "--deploy", "fp32", "--resume"))
    assert r.exit_code == 0, r.output
    assert "not its --deploy stage" in r.output and (out / "onnx" / "model.onnx").exists()
    record = json.loads((out / "onnx" / "kdistill_export.json").read_text())
    r = runner.invoke(app, _distill_cli(tiny_teacher_dir, glue_dir, out, "--deploy", "fp32", "--resume"))
    assert r.exit_code == 0 and "not its --deploy stage" not in r.output  # done once: the record is kept
    assert json.loads((out / "onnx" / "kdistill_export.json").read_text()) == record
