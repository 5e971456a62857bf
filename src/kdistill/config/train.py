"""How the engine trains (:class:`TrainConfig`) and the output stage (:class:`ExportConfig`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kdistill.config.base import ConfigBase as _Base
from kdistill.config.schedules import check_schedules


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
