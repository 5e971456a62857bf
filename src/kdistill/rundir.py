"""The run directory: the only code that knows the on-disk layout of a run.

Layout of ``RUN/`` (a stage of a multi-stage recipe, e.g. TinyBERT's ``intermediate/``, has the
same layout in a subfolder)::

    kdistill_run.json            the typed run config (RunConfig / GeneralDistillConfig as JSON)
    config.json, model.safetensors, tokenizer files   the final student (saved by finish())
    train_results.json           final step, seconds, best metrics
    report.json / .md / .png     teacher vs student (kdistill.reporting)
    checkpoint/                  latest resumable state (accelerate state + trainer_state.json)
    best/                        best student so far (removed once the final student is saved)
    teacher_logits/              cached teacher logits for the train split (a transfer set made on the fly)
    logs/train_log.csv, logs/tb/ every logged value; training_curves.png

Under several processes (``accelerate launch``) every process checks the folder, then the main
process alone changes it; :meth:`RunDir.prepare` holds the barrier between the two.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterable

from kdistill.errors import KDistillError, os_error  # noqa: F401  (os_error: imported from here by callers)
from kdistill.locks import LOCK_FILE, hold_lock, in_use_message, is_this_process, live_holder
from kdistill.results import to_json

RUN_FILE = "kdistill_run.json"
RESULTS_FILE = "train_results.json"
INIT_FILE = "student_init.json"  # the student's weights hash before the first step
STATE_FILE = "trainer_state.json"
CHECKPOINT_PREFIX = "checkpoint-"


def process_state():
    """accelerate's process state; CPU processes form a gloo DDP group when launched several at once.

    ``accelerate launch --multi_gpu --num_processes N`` on a machine without CUDA (or with
    ``ACCELERATE_USE_CPU=1``) gives N CPU processes.
    """
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or (several and not torch.cuda.is_available())
    if cpu:
        os.environ["ACCELERATE_USE_CPU"] = "true"  # so the engine's Accelerator agrees
    return PartialState(cpu=cpu)


class RunDir:
    """Paths and lifecycle of one run (or one stage) folder. Cheap to construct; touches nothing."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # ------------------------------------------------------------------ paths
    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint"

    @property
    def checkpoint_tmp(self) -> Path:
        return self.path / "checkpoint.tmp"

    @property
    def best(self) -> Path:
        return self.path / "best"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def train_log(self) -> Path:
        return self.logs / "train_log.csv"

    @property
    def tensorboard(self) -> Path:
        return self.logs / "tb"

    @property
    def curves(self) -> Path:
        return self.path / "training_curves.png"

    @property
    def teacher_logits(self) -> Path:
        return self.path / "teacher_logits"

    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    @property
    def init_file(self) -> Path:
        """``student_init.json``: the student's weights hash when the run started (see :func:`weights_sha256`)."""
        return self.path / INIT_FILE

    @property
    def results_file(self) -> Path:
        return self.path / RESULTS_FILE

    @property
    def projections(self) -> Path:
        return self.path / "projections.safetensors"

    def stage(self, name: str) -> "RunDir":
        """The folder of a named stage inside this run (``""`` = this run itself)."""
        return RunDir(self.path / name) if name else self

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_dirs(self) -> list[Path]:
        """Complete checkpoint folders, newest first (``trainer_state.json`` is written last: its presence marks
        a complete one). ``checkpoint`` itself is a link to the newest; older kdistill wrote a plain folder."""
        found = []
        for d in self.path.glob(CHECKPOINT_PREFIX + "*"):
            state = d / STATE_FILE
            if d.is_dir() and not d.is_symlink() and state.exists():
                try:
                    found.append((int(json.loads(state.read_text()).get("global_step", -1)), state.stat().st_mtime_ns, d))
                except (OSError, ValueError):
                    continue  # unreadable: not complete
        legacy = self.checkpoint
        if legacy.is_dir() and not legacy.is_symlink() and (legacy / STATE_FILE).exists():
            try:
                found.append((int(json.loads((legacy / STATE_FILE).read_text()).get("global_step", -1)),
                              (legacy / STATE_FILE).stat().st_mtime_ns, legacy))
            except (OSError, ValueError):
                pass
        return [d for *_, d in sorted(found, key=lambda t: (t[0], t[1]), reverse=True)]

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint (highest step; usually the ``checkpoint`` link's target), or None."""
        dirs = self.checkpoint_dirs()
        return dirs[0] if dirs else None

    def new_checkpoint_dir(self, step: int) -> Path:
        """A fresh folder name for the checkpoint of ``step`` (never an existing one)."""
        n = 0
        while (self.path / f"{CHECKPOINT_PREFIX}{step}-{n}").exists():
            n += 1
        return self.path / f"{CHECKPOINT_PREFIX}{step}-{n}"

    def publish_checkpoint(self, new: Path) -> None:
        """Point ``checkpoint`` at the complete folder ``new`` (an atomic rename of a link), then drop the older ones.

        At every instant one complete checkpoint is findable: the old one until the link switches, the
        new one after; an old folder loses its completeness marker before it is deleted.
        """
        link, tmp = self.checkpoint, self.path / "checkpoint.link.tmp"
        if link.exists() and not link.is_symlink():  # a plain folder of an older kdistill: move it aside first
            link.rename(self.path / f"{CHECKPOINT_PREFIX}legacy-{time.time_ns()}")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(new.name, target_is_directory=True)
        os.replace(tmp, link)
        for old in self.path.glob(CHECKPOINT_PREFIX + "*"):
            if old != new and old.is_dir() and not old.is_symlink():
                remove_checkpoint(old)
        shutil.rmtree(self.checkpoint_tmp, ignore_errors=True)  # left by kdistill before checkpoint rotation

    # ------------------------------------------------------------------ questions
    def has_checkpoint(self) -> bool:
        return self.latest_checkpoint() is not None

    def checkpoint_state(self) -> dict[str, Any] | None:
        """The trainer state of the newest complete checkpoint (``trainer_state.json``), or None."""
        ckpt = self.latest_checkpoint()
        return json.loads((ckpt / STATE_FILE).read_text()) if ckpt is not None else None

    def is_finished(self) -> bool:
        """True when this run/stage trained to its end (its checkpoint says ``finished``)."""
        state = self.checkpoint_state()
        return bool(state and state.get("finished"))

    def is_complete(self) -> bool:
        """True when the run finished and its final student and results were written."""
        return self.is_finished() and self.results_file.exists() and not self.best.exists()

    def is_run(self) -> bool:
        """True when a kdistill run made this folder (it holds ``kdistill_run.json``)."""
        return self.run_file.exists()

    def never_checkpointed(self) -> bool:
        """True when the folder holds only a kdistill run that stopped before its first checkpoint completed.

        That is: ``kdistill_run.json`` and nothing but what a run writes before then (:data:`BEFORE_CHECKPOINT`:
        logs, the teacher-logit cache, ``best/``, the lock, temporary files, checkpoint folders without their
        completeness marker), here and in stage subfolders. Nothing in it can be resumed or needs keeping.
        """
        return self.path.is_dir() and self.is_run() and _only_before_checkpoint(self.path, stages=True)

    def live_holder(self) -> dict | None:
        """``{"pid", "host"}`` of the live process whose lock is on this folder, or None (no lock, or a dead one's)."""
        return live_holder(self.path / LOCK_FILE)

    # ------------------------------------------------------------------ lifecycle
    def check(self, *, overwrite: bool, resume: bool, inputs: Iterable[str | Path | None] = (),
              ignore_lock: bool = False) -> None:
        """Raise :class:`KDistillError` (one line) when the folder cannot be used; touch nothing.

        A folder in use by a live run (its lock names a live process other than this one) is refused first,
        naming that process (``ignore_lock``: not checked — the other processes of a distributed run, whose main
        process holds the lock). ``resume`` needs a checkpoint here or in a stage subfolder, or a run that stopped
        before its first checkpoint (:meth:`never_checkpointed`: the caller starts it again from the beginning);
        otherwise the folder must be missing or empty, or, with ``overwrite``, one that a kdistill run made (it
        holds ``kdistill_run.json``) and that holds none of this run's ``inputs`` (teacher, data, student ...).
        """
        out = self.path
        if out.exists() and not out.is_dir():
            raise KDistillError(f"output path '{out}' is a file; pass a directory (it will be created)")
        holder = None if ignore_lock else self.live_holder()
        if holder is not None and not is_this_process(holder):  # before any advice about the folder's contents
            raise KDistillError(in_use_message(out, holder))
        if resume:
            if not (self.has_checkpoint() or any(RunDir(d).has_checkpoint() for d in out.glob("*/") if d.is_dir())
                    or self.never_checkpointed()):  # the last: started again from the beginning (see run_recipe)
                raise KDistillError(f"--resume: '{out}' holds no checkpoint/ to continue from; run without --resume")
            return
        if not (out.exists() and any(p.name != LOCK_FILE for p in out.iterdir())):
            return
        if not overwrite:
            if self.never_checkpointed():
                raise KDistillError(f"output directory '{out}' holds a run that stopped before its first checkpoint "
                                    "(nothing to keep); pass --resume to start it again from the beginning")
            raise KDistillError(f"output directory '{out}' is not empty; pass --overwrite to replace it or --resume to continue")
        if not self.is_run():
            raise KDistillError(f"--overwrite: '{out}' was not made by a kdistill run (no {RUN_FILE}); "
                                "kdistill deletes only its own run folders: choose another --output or empty it yourself")
        root = out.resolve()
        for item in inputs:
            if not item:
                continue
            p = Path(item).expanduser()
            if p.exists() and (p.resolve() == root or root in p.resolve().parents):
                raise KDistillError(f"--overwrite: '{out}' holds '{item}', an input of this run; choose another --output")

    def create(self, *, overwrite: bool, resume: bool, inputs: Iterable[str | Path | None] = ()) -> None:
        """Check, then create (or, with ``overwrite``, clear all but the lock of) the folder. One process only.

        Raises:
            KDistillError: see :meth:`check`; an OS failure (read-only, disk full) in one line naming the path.
        """
        self.check(overwrite=overwrite, resume=resume, inputs=inputs)
        if resume:
            return
        try:
            if self.path.exists() and overwrite:
                for item in self.path.iterdir():
                    if item.name != LOCK_FILE:
                        shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise os_error(err, self.path, "create the output folder") from None

    def prepare(self, config, *, overwrite: bool, resume: bool, procs=None, inputs: Iterable[str | Path | None] = ()) -> None:
        """Every process checks; then the main one creates the folder and writes ``config`` (pydantic).

        On ``resume`` the recorded config is kept (the run's settings are the original ones; see
        :func:`kdistill.rundir.check_resume_settings`).
        """
        procs = procs or process_state()
        inputs = list(inputs)
        # the main process holds the lock (and checked it); the job's other processes must not take it for another run's
        self.check(overwrite=overwrite, resume=resume, inputs=inputs, ignore_lock=not procs.is_main_process)
        procs.wait_for_everyone()  # every process has checked before the main one changes anything
        if procs.is_main_process:
            self.create(overwrite=overwrite, resume=resume, inputs=inputs)
            if not (resume and self.run_file.exists()):
                write_atomically(self.run_file, config.model_dump_json(indent=1))

    def finish(self, student, tokenizer, summary: dict[str, Any]) -> None:
        """Save the final ``student`` + ``tokenizer`` at the root and write the results; only then drop ``best/``.

        Until ``train_results.json`` exists ``best/`` is kept, so a run killed in here and resumed still
        finds the best student.
        """
        try:
            student.save_pretrained(self.path)
            tokenizer.save_pretrained(self.path)
            write_atomically(self.results_file, to_json(summary))  # strict JSON: a NaN becomes null, its path listed
        except OSError as err:
            raise os_error(err, self.path, "save the final student") from None
        shutil.rmtree(self.best, ignore_errors=True)

    @contextlib.contextmanager
    def lock(self, enabled: bool = True):
        """Hold ``RUN/.kdistill.lock`` (this process's id) while the block runs; one run per folder.

        A lock left by a dead process is taken over. See :func:`hold_lock`.

        Raises:
            KDistillError: another live process holds the lock (one line naming its process id).
        """
        if not enabled:
            yield
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise os_error(err, self.path, "create the output folder") from None
        with hold_lock(self.path / LOCK_FILE, lambda holder: in_use_message(self.path, holder), reentrant=True):
            yield

    def slim_checkpoints(self) -> None:
        """Drop the heavy state (model, optimizer, RNG) of this finished run's checkpoints, its stages' too; keep
        ``trainer_state.json`` (it marks the run or stage finished) and ``scheduler.json``."""
        keep = {STATE_FILE, "scheduler.json"}
        for ckpt in [*self.path.glob(CHECKPOINT_PREFIX + "*"), *self.path.glob("*/" + CHECKPOINT_PREFIX + "*")]:
            if ckpt.is_dir() and not ckpt.is_symlink() and (ckpt / STATE_FILE).exists():
                for f in ckpt.iterdir():
                    if f.name not in keep:
                        shutil.rmtree(f) if f.is_dir() else f.unlink()

    def files(self) -> dict[str, str]:
        """The plots a finished run holds (``training_curves``), for :class:`kdistill.api.RunResult`."""
        return {"training_curves": str(self.curves)} if self.curves.exists() else {}


#: What a run writes before its first checkpoint completes (besides ``kdistill_run.json``, unfinished
#: ``checkpoint-*`` folders and ``*.tmp`` files): see :meth:`RunDir.never_checkpointed`.
BEFORE_CHECKPOINT = frozenset({RUN_FILE, INIT_FILE, LOCK_FILE, "logs", "best", "teacher_logits", "teacher_logits.safetensors"})


def _only_before_checkpoint(folder: Path, *, stages: bool) -> bool:
    for p in folder.iterdir():
        if p.name in BEFORE_CHECKPOINT or p.name.endswith(".tmp"):
            continue
        if (p.name.startswith(CHECKPOINT_PREFIX) and p.is_dir() and not p.is_symlink()
                and not (p / STATE_FILE).exists()):
            continue  # a checkpoint killed while it was written
        if stages and p.is_dir() and not p.is_symlink() and _only_before_checkpoint(p, stages=False):
            continue  # a stage folder (e.g. TinyBERT's intermediate/) in the same state
        return False
    return True


def remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint folder, its completeness marker first (so a half-deleted one is never taken as complete)."""
    with contextlib.suppress(FileNotFoundError):
        (path / STATE_FILE).unlink()
    shutil.rmtree(path, ignore_errors=True)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


#: Settings that may differ on --resume without changing what is trained.
RESUME_FREE = frozenset({"overwrite", "resume", "output_dir", "show_progress", "eval_batch_size", "cache_teacher",
                         "teacher_cache_file", "cache_dir", "logging_steps", "keep_checkpoint"})
#: Settings --resume accepts changed (recorded in ``kdistill_resumes.json``): the schedule continues with the new value.
RESUME_ACCEPTED = frozenset({"learning_rate"})
RESUMES_FILE = "kdistill_resumes.json"


def _leaves(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_leaves(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def resume_changes(recorded: dict[str, Any], config) -> tuple[list[str], list[str]]:
    """Settings the user set for this resume that differ from the run's recorded config.

    Only fields set explicitly (``model_dump(exclude_unset=True)``) and present in the record are
    compared, so a field added by a newer kdistill never blocks an older run's resume.

    Returns:
        ``(refused, accepted)``: one ``"section.field old → new"`` string per change.
    """
    new = _leaves(config.model_dump(mode="json", exclude_unset=True))
    old = _leaves(recorded)
    refused, accepted = [], []
    for key, value in new.items():
        name = key.rsplit(".", 1)[-1]
        if key not in old or name in RESUME_FREE or old[key] == value:
            continue
        (accepted if name in RESUME_ACCEPTED else refused).append(f"{key} {old[key]!r} → {value!r}")
    return refused, accepted


def record_resume(run: RunDir, accepted: list[str]) -> None:
    """Append the accepted setting changes of a resume to ``kdistill_resumes.json``."""
    path = run.path / RESUMES_FILE
    history = json.loads(path.read_text()) if path.exists() else []
    history.append({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "changed": accepted})
    write_atomically(path, json.dumps(history, indent=1))
