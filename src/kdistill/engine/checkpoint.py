"""Checkpoints: model, optimizer, RNG states (accelerate, weights-only loads) plus the scheduler and the
:class:`TrainState` as JSON — nothing in a checkpoint is unpickled with code execution.

Rotation (see :meth:`kdistill.rundir.RunDir.publish_checkpoint`): each save writes a fresh
``checkpoint-<step>-<n>/`` (``trainer_state.json`` last, the completeness marker), then switches the
``checkpoint`` link to it atomically, then deletes the older folders. A kill at any instant leaves one
complete checkpoint that ``--resume`` finds (the newest complete one).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from accelerate import Accelerator

from kdistill.engine.state import TrainState
from kdistill.errors import KDistillError
from kdistill.rundir import STATE_FILE, RunDir, os_error, remove_checkpoint

SCHEDULER_FILE = "scheduler.json"


class Checkpointer:
    """Saves and restores the resumable state of a run (``RUN/checkpoint`` → the newest ``checkpoint-*``)."""

    def __init__(self, accelerator: Accelerator, run: RunDir, scheduler=None):
        self.accelerator, self.run, self.scheduler = accelerator, run, scheduler

    def save(self, state: TrainState) -> None:
        """Write a new checkpoint folder, then publish it (atomic). The previous one stays usable on failure.

        Raises:
            KDistillError: an OS failure (disk full, read-only folder) in one line; the previous checkpoint is kept.
        """
        acc = self.accelerator
        acc.wait_for_everyone()
        new = self.run.new_checkpoint_dir(state.global_step)
        if acc.num_processes > 1:  # every process writes into the main process's folder
            from accelerate.utils import broadcast_object_list

            new = Path(broadcast_object_list([str(new)], from_process=0)[0])
        try:
            acc.save_state(str(new))
            if acc.is_main_process:
                if self.scheduler is not None:
                    (new / SCHEDULER_FILE).write_text(json.dumps(self.scheduler.state_dict()))
                (new / STATE_FILE).write_text(json.dumps(asdict(state), indent=1))  # last: marks it complete
                self.run.publish_checkpoint(new)
        except (OSError, RuntimeError) as err:  # torch reports a full disk as RuntimeError("... unexpected pos ...")
            if acc.is_main_process:
                remove_checkpoint(new)
            prev = self.run.latest_checkpoint()
            kept = f"; the previous checkpoint {prev} is kept" if prev else ""
            if isinstance(err, OSError):
                raise KDistillError(str(os_error(err, new, "write the checkpoint")) + kept) from None
            raise KDistillError(f"cannot write the checkpoint in '{new}' ({err}); free disk space, then --resume{kept}") from None
        acc.wait_for_everyone()

    def restore(self, total_steps: int, learning_rate: float | None = None) -> TrainState:
        """Load the newest complete checkpoint into the prepared objects; return its :class:`TrainState`.

        ``learning_rate``: when it differs from the checkpoint's, the schedule continues at the new rate
        (the one setting ``--resume`` accepts changed).

        Raises:
            KDistillError: no checkpoint, one of another run (method, student, settings), or one made
                for a different number of steps.
        """
        ckpt = self.run.latest_checkpoint()
        if ckpt is None:
            raise KDistillError(f"--resume: no checkpoint in {self.run.path}; start without --resume")
        try:
            self.accelerator.load_state(str(ckpt))
            sched = ckpt / SCHEDULER_FILE
            if self.scheduler is not None and sched.exists():
                self.scheduler.load_state_dict(json.loads(sched.read_text()))
        except Exception as err:  # noqa: BLE001 - e.g. a checkpoint of another method or student
            raise KDistillError(f"--resume: the checkpoint in {ckpt} does not fit this run ({type(err).__name__}); "
                                "resume with the same method, student and settings") from err
        state = TrainState(**json.loads((ckpt / STATE_FILE).read_text()))
        if state.total_steps != total_steps:
            raise KDistillError(f"--resume: the checkpoint was made for {state.total_steps} steps, these settings give "
                                f"{total_steps}; resume with the same data, batch size and epochs")
        if learning_rate is not None and self.scheduler is not None:
            sch = self.scheduler
            if any(b != learning_rate for b in sch.base_lrs):
                sch.base_lrs = [learning_rate] * len(sch.base_lrs)
                for group, base, fn in zip(sch.optimizer.param_groups, sch.base_lrs, sch.lr_lambdas):
                    group["lr"] = base * fn(sch.last_epoch)
                sch._last_lr = [g["lr"] for g in sch.optimizer.param_groups]
        state.stop_requested = False
        return state
