"""Where training stands (saved with every checkpoint) and what a training run returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kdistill.rundir import RunDir


@dataclass
class TrainState:
    """Where training stands; saved with every checkpoint (``trainer_state.json``)."""

    epoch: int = 0
    batches_in_epoch: int = 0  # micro-batches of the current epoch already consumed
    global_step: int = 0  # optimizer steps
    total_steps: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    finished: bool = False
    stop_requested: bool = False
    train_seconds: float = 0.0  # wall time spent in training, summed over resumed sessions
    history: list[dict] = field(default_factory=list)
    running: dict[str, float] = field(default_factory=dict)  # loss sums since the last logged step (exact resume of the log)
    running_n: int = 0


@dataclass
class TrainResult:
    """What :func:`kdistill.engine.train` returns: the best eval metrics and where things were written."""

    best_metric: float | None
    best_step: int | None
    eval_metrics: dict[str, float]
    global_step: int
    train_seconds: float
    output_dir: Path
    interrupted: bool = False
    teacher_cache_seconds: float = 0.0  # one-off teacher pass over the train split (0 when reused or not cached)


def diverged_message(what: str, state: TrainState, run: RunDir) -> str:
    """One line for a diverged run: where, the last good checkpoint (if any) and advice that works."""
    ckpt = run.latest_checkpoint()
    where = f"{what} at step {state.global_step} (epoch {state.epoch}); "
    if ckpt is None:
        return where + "no checkpoint was saved yet: start again with a lower --learning-rate (or --mixed-precision no) and --overwrite"
    return (where + f"the last good checkpoint is kept in {ckpt}: --resume with a lower --learning-rate continues from it, "
            "or start again with --mixed-precision no and --overwrite")
