"""How the engine trains (:class:`TrainConfig`) and the output stage (:class:`ExportConfig`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from kdistill.config.base import ConfigBase as _Base
from kdistill.config.schedules import check_schedules


class TrainConfig(_Base):
    """Optimisation and bookkeeping of the one training engine."""

    epochs: float = Field(default=3.0, gt=0, description=(
        "Passes over the training data (--max-steps overrides it); defaults by run: 3 for task runs, 1 for general "
        "distillation (passes over the text files, turned into steps by counting lines), 2 for early exits."))
    max_steps: int | None = Field(default=None, ge=1, description=(
        "Optimizer steps (overrides --epochs; needed for streamed data such as --text-dataset); fit-mlm-head: 300."))
    batch_size: int = Field(default=32, ge=1, description="Training batch size.")
    eval_batch_size: int = Field(default=64, ge=1, description=(
        "Batch size of evaluation and of the teacher's cached logits."))
    learning_rate: float = Field(default=1e-4, gt=0, description=(
        "Peak learning rate (AdamW, linear warm-up and decay); fit-mlm-head: 1e-3 (only the head trains); early-exit "
        "on the command line: 5e-4 frozen (heads only), 5e-5 joint."))
    weight_decay: float = Field(default=0.01, ge=0, description="AdamW weight decay (none on biases and LayerNorm).")
    warmup_ratio: float = Field(default=0.06, ge=0, lt=1, description=(
        "Share of the optimizer steps with a linear learning-rate warm-up (then linear decay)."))
    max_grad_norm: float | None = Field(default=1.0, description="Gradient clipping norm (None or 0: no clipping).")
    gradient_accumulation_steps: int = Field(default=1, ge=1, description="Batches accumulated per optimizer step.")
    mixed_precision: Literal["no", "fp16", "bf16"] = Field(default="no", description=(
        "no | fp16 (GPU) | bf16 (CPU or GPU)"))
    eval_steps: int | None = Field(default=None, ge=1, description=(
        "Evaluate (and checkpoint) every N steps; default once per epoch."))
    logging_steps: int | None = Field(default=None, ge=1, description=(
        "Log the loss terms every N steps (default: about 100 logged points per run)."))
    keep_checkpoint: bool = Field(default=False, description=(
        "Keep the finished run's model + optimizer checkpoint (default: only its small state)."))
    early_stopping_patience: int | None = Field(default=None, ge=1, description=(
        "Stop after N evaluations without improvement."))
    seed: int = Field(default=42, ge=0, le=2**32 - 1, description=(
        "Seed of the run (initialisation, data order, the held-out selection slice)."))
    group_by_length: bool = Field(default=True, description=(
        "Batch rows of similar length together (less padding; reseeded per epoch)."))
    cache_teacher: bool = Field(default=True, description="Compute teacher logits once and reuse them.")
    teacher_cache_file: str | None = Field(default=None, description=(
        "Where the run's teacher-logit cache lives: a folder, a transfer set made on the fly (default: "
        "<output>/teacher_logits; an old name ending in .safetensors means that folder without the suffix)."))
    transfer_set: list[str] = Field(default=[], description=(
        "Transfer set(s) (kdistill label) made by this teacher (repeatable): their stored logits replace the teacher "
        "pass (rows looked up by text; logit-only KD); a set's unlabeled rows (augmented, text files) are added to "
        "the train rows, less those made from the selection slice."))
    transfer_set_ratio: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(default=[], description=(
        "Per --transfer-set, in order: the share of its added rows used (a seeded sample; above 1 repeats them); "
        "default 1 each."))
    show_progress: bool = Field(default=True, description="Show progress bars.")
    schedules: dict[str, str] = Field(default={}, description=(
        "Knobs as functions of training progress, KEY: KIND:START[:END] (--schedule KEY=KIND:START[:END], repeatable): "
        "temperature, alpha or a loss term's weight (cos, attn, hidden ...), e.g. temperature=linear:4:1, "
        "alpha=cosine:0.9:0.1 (kinds: constant, linear, cosine); logged per step as train/sched_<key>."))
    max_tokens: int | None = Field(default=None, ge=8, description=(
        "Dynamic batch size: batches of at most N padded tokens (lengths grouped; fairseq-style); --batch-size is then "
        "the reference size of --lr-scaling."))
    lr_scaling: Literal["none", "linear", "sqrt"] = Field(default="none", description=(
        "With --max-tokens: scale the learning rate per step by rows/batch-size: none | linear (Goyal et al. 2017) | "
        "sqrt (Krizhevsky 2014; Hoffer et al. 2017)."))

    @field_validator("transfer_set", mode="before")
    @classmethod
    def _one_set(cls, value):  # configs saved before several sets were taken: one path, or null
        return [] if value is None else [value] if isinstance(value, str) else value

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

    deploy: Literal["none", "fp32", "int8"] = Field(default="none", description=(
        "Output stage: none | fp32 | int8 — the kept student exported to ONNX Runtime in OUTPUT/onnx (parity-checked; "
        "int8 behind the --max-drop gate), with predict.py and a model card."))
    quantize: Literal["dynamic", "static", "auto"] = Field(default="auto", description=(
        "--deploy int8: auto (dynamic and static, the better on the selection slice) | dynamic | static."))
    optimize: bool = Field(default=True, description=(
        "ONNX Runtime's transformer fusions, kept only where parity holds."))
    max_drop: float = Field(json_schema_extra={"flat": "max_int8_drop", "was": "max_drop"}, default=1.0, ge=0, description=(
        "--deploy int8: refuse an int8 student more than this many points of the main metric below its fp32 self."))
    calibration_size: int = Field(default=300, ge=1, description=(
        "--quantize static/auto: train rows that calibrate the activation ranges."))
