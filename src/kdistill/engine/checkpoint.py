"""Checkpoints: model, optimizer, scheduler, RNG states (accelerate) plus the :class:`TrainState`."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict

from accelerate import Accelerator

from kdistill.engine.state import TrainState
from kdistill.errors import KDistillError
from kdistill.rundir import STATE_FILE, RunDir


class Checkpointer:
    """Saves and restores the resumable state of a run in ``RUN/checkpoint/``."""

    def __init__(self, accelerator: Accelerator, run: RunDir):
        self.accelerator, self.run = accelerator, run

    def save(self, state: TrainState) -> None:
        """Write the state to ``checkpoint.tmp/``, then put it in place of ``checkpoint/``."""
        acc, tmp, ckpt = self.accelerator, self.run.checkpoint_tmp, self.run.checkpoint
        acc.wait_for_everyone()
        if acc.is_main_process and tmp.exists():
            shutil.rmtree(tmp)
        acc.save_state(str(tmp))
        if acc.is_main_process:
            (tmp / STATE_FILE).write_text(json.dumps(asdict(state), indent=1))
            if ckpt.exists():
                shutil.rmtree(ckpt)
            tmp.rename(ckpt)
        acc.wait_for_everyone()

    def restore(self, total_steps: int) -> TrainState:
        """Load the checkpoint into the prepared objects; return its :class:`TrainState`.

        Raises:
            KDistillError: no checkpoint, one of another run (method, student, settings), or one made
                for a different number of steps.
        """
        ckpt = self.run.checkpoint
        if not (ckpt / STATE_FILE).exists():
            raise KDistillError(f"--resume: no checkpoint in {ckpt}; start without --resume")
        try:
            self.accelerator.load_state(str(ckpt))
        except Exception as err:  # noqa: BLE001 - e.g. a checkpoint of another method or student
            raise KDistillError(f"--resume: the checkpoint in {ckpt} does not fit this run ({type(err).__name__}); "
                                "resume with the same method, student and settings") from err
        state = TrainState(**json.loads((ckpt / STATE_FILE).read_text()))
        if state.total_steps != total_steps:
            raise KDistillError(f"--resume: the checkpoint was made for {state.total_steps} steps, these settings give "
                                f"{total_steps}; resume with the same data, batch size and epochs")
        state.stop_requested = False
        return state
