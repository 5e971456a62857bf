"""The run directory: the only code that knows the on-disk layout of a run.

Layout of ``RUN/`` (a stage of a multi-stage recipe, e.g. TinyBERT's ``intermediate/``, has the
same layout in a subfolder)::

    kdistill_run.json            the typed run config (RunConfig / GeneralDistillConfig as JSON)
    config.json, model.safetensors, tokenizer files   the final student (saved by finish())
    train_results.json           final step, seconds, best metrics
    report.json / .md / .png     teacher vs student (kdistill.reporting)
    checkpoint/                  latest resumable state (accelerate state + trainer_state.json)
    best/                        best student so far (removed once the final student is saved)
    teacher_logits.safetensors   cached teacher logits for the train split
    logs/train_log.csv, logs/tb/ every logged value; training_curves.png

Under several processes (``accelerate launch``) every process checks the folder, then the main
process alone changes it; :meth:`RunDir.prepare` holds the barrier between the two.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from kdistill.errors import KDistillError

RUN_FILE = "kdistill_run.json"
RESULTS_FILE = "train_results.json"
STATE_FILE = "trainer_state.json"


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
        return self.path / "teacher_logits.safetensors"

    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    @property
    def results_file(self) -> Path:
        return self.path / RESULTS_FILE

    @property
    def projections(self) -> Path:
        return self.path / "projections.safetensors"

    def stage(self, name: str) -> "RunDir":
        """The folder of a named stage inside this run (``""`` = this run itself)."""
        return RunDir(self.path / name) if name else self

    # ------------------------------------------------------------------ questions
    def has_checkpoint(self) -> bool:
        return (self.checkpoint / STATE_FILE).exists()

    def checkpoint_state(self) -> dict[str, Any] | None:
        """The saved trainer state (``trainer_state.json`` of ``checkpoint/``), or None."""
        f = self.checkpoint / STATE_FILE
        return json.loads(f.read_text()) if f.exists() else None

    def is_finished(self) -> bool:
        """True when this run/stage trained to its end (its checkpoint says ``finished``)."""
        state = self.checkpoint_state()
        return bool(state and state.get("finished"))

    # ------------------------------------------------------------------ lifecycle
    def check(self, *, overwrite: bool, resume: bool) -> None:
        """Raise :class:`KDistillError` (one line) when the folder cannot be used; touch nothing.

        ``resume`` needs a checkpoint here or in a stage subfolder; otherwise the folder must be
        missing, empty, or replaced with ``overwrite``.
        """
        out = self.path
        if out.exists() and not out.is_dir():
            raise KDistillError(f"output path '{out}' is a file; pass a directory (it will be created)")
        if resume:
            if not (self.checkpoint.exists() or any(out.glob("*/checkpoint"))):
                raise KDistillError(f"--resume: '{out}' holds no checkpoint/ to continue from; run without --resume")
            return
        if out.exists() and any(out.iterdir()) and not overwrite:
            raise KDistillError(f"output directory '{out}' is not empty; pass --overwrite to replace it or --resume to continue")

    def create(self, *, overwrite: bool, resume: bool) -> None:
        """Check, then create (or, with ``overwrite``, clear) the folder. One process only."""
        self.check(overwrite=overwrite, resume=resume)
        if resume:
            return
        if self.path.exists() and overwrite:
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)

    def prepare(self, config, *, overwrite: bool, resume: bool, procs=None) -> None:
        """Every process checks; then the main one creates the folder and writes ``config`` (pydantic)."""
        procs = procs or process_state()
        self.check(overwrite=overwrite, resume=resume)
        procs.wait_for_everyone()  # every process has checked before the main one changes anything
        if procs.is_main_process:
            self.create(overwrite=overwrite, resume=resume)
            self.run_file.write_text(config.model_dump_json(indent=1))

    def finish(self, student, tokenizer, summary: dict[str, Any]) -> None:
        """Save the final ``student`` + ``tokenizer`` at the root, drop ``best/`` (now a duplicate), write the results."""
        student.save_pretrained(self.path)
        tokenizer.save_pretrained(self.path)
        shutil.rmtree(self.best, ignore_errors=True)
        self.results_file.write_text(json.dumps(summary, indent=1))

    def files(self) -> dict[str, str]:
        """The plots a finished run holds (``training_curves``), for :class:`kdistill.api.RunResult`."""
        return {"training_curves": str(self.curves)} if self.curves.exists() else {}
