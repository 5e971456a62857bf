"""Typed configuration of self-distillation runs (pydantic, ``extra="forbid"`` as :mod:`kdistill.config`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kdistill.config import AugmentConfig, DataConfig, DistillConfig, PretrainedStudent, TrainConfig


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ExitConfig(_Base):
    """Where the exits go and how they learn (FastBERT, Liu et al. 2020; DeeBERT, Xin et al. 2020; PABEE, Zhou et al.
    2020).

    ``every``: an exit after every ``every``-th encoder layer below the last (``layers``: or the 1-based layers
    themselves). ``pooling``: ``mean`` (masked mean of token states) or ``cls``. ``schedule``: ``frozen`` (FastBERT's
    two-step: only the exits train, from the fine-tuned backbone's own final soft targets) or ``joint`` (backbone and
    exits together: ``Σ_k w_k·L_k + final_weight·CE(final)``). Each exit's ``L_k = (1 − gold_weight)·T²·KL(final ‖ exit)
    + gold_weight·CE(exit, gold)``, the final soft targets detached; ``weighting``: ``uniform`` or ``depth``
    (``w_k ∝ k``, PABEE Eq. 5).
    """

    every: int = Field(default=1, ge=1)
    layers: list[int] | None = None
    pooling: Literal["mean", "cls"] = "mean"
    dropout: float | None = Field(default=None, ge=0, lt=1)
    schedule: Literal["frozen", "joint"] = "frozen"
    temperature: float = Field(default=2.0, gt=0)
    gold_weight: float = Field(default=0.0, ge=0, le=1)
    weighting: Literal["uniform", "depth"] = "uniform"
    final_weight: float = Field(default=1.0, ge=0)


#: Thresholds the sweep tries when none are given (normalised entropy: exit below; max probability: exit at or above).
ENTROPY_GRID = [0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
MAX_PROB_GRID = [0.995, 0.99, 0.98, 0.97, 0.95, 0.93, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6]


class SweepConfig(_Base):
    """The threshold sweep of adaptive inference (:mod:`kdistill.selfdistill.sweep`).

    Every ``rules`` × setting is scored on the held-out selection slice and on dev from one pass of all exits
    (the decisions of the batched adaptive path, simulated); batch-1 and batch-``batch_size`` latency is *measured* by
    running the adaptive model on ``latency_examples`` dev rows, ``latency_rounds`` rounds interleaved with the
    full-depth model. The chosen setting is the fastest (fewest average layers on the selection slice) whose selection
    metric is at most ``max_drop`` points below the full model's; dev is reported for it once.
    """

    rules: list[Literal["entropy", "max_prob", "patience"]] = ["entropy", "max_prob", "patience"]
    entropy_thresholds: list[float] | None = None
    max_prob_thresholds: list[float] | None = None
    patiences: list[int] | None = None
    max_drop: float = Field(default=1.0, ge=0)
    latency_examples: int = Field(default=128, ge=1)
    latency_rounds: int = Field(default=3, ge=1)
    batch_size: int = Field(default=32, ge=1)
    timed_points: int = Field(default=6, ge=0)  # settings per rule timed (spread over the curve) besides the chosen one


class EarlyExitRunConfig(_Base):
    """``kdistill early-exit``: exits added to ``student.path`` (the teacher itself or any student) and trained by
    self-distillation; then, unless ``run_sweep`` is off, the threshold sweep. No teacher runs (the final layer teaches).

    ``train`` here defaults to 2 epochs at the engine's learning rate; the CLI and
    :func:`kdistill.recipes.self_distill_api.early_exit` default to 5e-4 for ``schedule="frozen"`` (only the small
    heads train) and 5e-5 for ``"joint"`` (the whole model).
    """

    method: Literal["early-exit"] = "early-exit"
    student: PretrainedStudent
    data: DataConfig = DataConfig()
    exits: ExitConfig = ExitConfig()
    sweep: SweepConfig = SweepConfig()
    run_sweep: bool = True
    train: TrainConfig = TrainConfig(epochs=2.0)
    output_dir: str
    overwrite: bool = False
    resume: bool = False


class BornAgainConfig(_Base):
    """Born-again networks (Furlanello et al. 2018): a student of the teacher's own architecture, initialised from the
    pretrained base the teacher was fine-tuned from (``student.path``; not random), distilled from the teacher; each of
    ``generations`` learns from the one before (the first from ``teacher``). ``ensemble_teacher``: generation ``k >= 2``
    learns from the mean logits of the teacher and every earlier generation instead. The loss is the ``kd`` recipe's
    (``distill``: the paper's setting is the teacher's distribution only, ``alpha = 0``, ``T = 1``)."""

    method: Literal["born-again"] = "born-again"
    teacher: str
    student: PretrainedStudent
    generations: int = Field(default=2, ge=1, le=20)
    ensemble_teacher: bool = False
    data: DataConfig = DataConfig()
    distill: DistillConfig = DistillConfig(alpha=0.0, temperature=1.0)
    augment: AugmentConfig = AugmentConfig()
    train: TrainConfig = TrainConfig()
    output_dir: str
    overwrite: bool = False
    resume: bool = False

    @model_validator(mode="after")
    def _check(self) -> "BornAgainConfig":
        if self.distill.cos_weight > 0 and self.ensemble_teacher:
            raise ValueError("an ensemble teacher gives logits only: use cos_weight 0 with ensemble_teacher")
        return self


__all__ = ["BornAgainConfig", "EarlyExitRunConfig", "ExitConfig", "SweepConfig", "ENTROPY_GRID", "MAX_PROB_GRID"]


def _register_file_kinds() -> None:
    """``--config FILE`` of these runs: :func:`kdistill.config.load_config` tells them apart by ``method``."""
    from kdistill.config import FILE_KINDS

    FILE_KINDS.setdefault("early-exit", EarlyExitRunConfig)
    FILE_KINDS.setdefault("born-again", BornAgainConfig)


_register_file_kinds()
