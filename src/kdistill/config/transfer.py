"""Transfer sets: the teacher's outputs as a dataset (:class:`LabelConfig`, ``kdistill label``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kdistill.config.base import ConfigBase as _Base
from kdistill.config.data import DataConfig
from kdistill.config.methods import AugmentConfig


class LabelConfig(_Base):
    """A transfer set to write (Hinton et al. 2015, Sec. 2: the data a student learns the teacher's soft targets on):
    the inputs (the train split of ``data``, ``text_files`` of unlabeled text, or with ``augment.augment='tang'`` the
    augmented rows made from the train split less its held-out selection slice), labelled once by ``teacher`` into
    Parquet shards of ``shard_rows`` rows under ``output_dir`` with a manifest (:mod:`kdistill.transfer`)."""

    method: Literal["label"] = Field(default="label", description="The kind of run: a transfer set labelled.")
    teacher: str = Field(description="Teacher fine-tuned on the task (directory or hub id) whose outputs are stored.")
    data: DataConfig = Field(default=DataConfig(), description="Where the inputs come from (the train split).")
    text_files: list[str] = Field(default=[], description=(
        "Or unlabeled text, one input per line (repeatable): rows with no gold label."))
    augment: AugmentConfig = Field(default=AugmentConfig(), description=(
        "Instead of the train rows: their Tang et al. (2019) perturbations (no gold label; each row's source_idx names "
        "the train row it came from), made from the train split less the held-out selection slice (--select-on "
        "holdout, chosen with --seed as distill does), so no student ever trains on rows made from its selection rows."))
    seed: int = Field(default=42, ge=0, le=2**32 - 1, description=(
        "Seed of the held-out selection slice left out of augmentation and of the augmentation itself (use the "
        "students' --seed)."))
    hidden_states: bool = Field(default=False, description=(
        "Also store the teacher's last hidden states (float16, one [tokens, hidden] matrix per row: what L_cos reads; "
        "the size is estimated and printed before the pass starts)."))
    shard_rows: int = Field(default=4096, ge=1, description=(
        "Rows per Parquet shard: the unit that is written atomically and never recomputed on --resume."))
    batch_size: int = Field(default=64, ge=1, description="Teacher batch size (length-sorted within each shard).")
    runtime: Literal["eager", "ort"] = Field(default="eager", description=(
        "The teacher pass: eager (PyTorch) | ort (ONNX Runtime fp32, the deploy path, fused where ORT's optimizer "
        "matches; checked against eager on the first shard, max |logit difference| <= 1e-4, else eager with a note)."))
    output_dir: str = Field(description="The transfer set's folder (manifest.json, shards/part-*.parquet).")
    overwrite: bool = Field(default=False, description="Replace a transfer set in the output folder.")
    resume: bool = Field(default=False, description="Finish an interrupted transfer set (finished shards are kept).")

    @model_validator(mode="after")
    def _check(self) -> "LabelConfig":
        if self.overwrite and self.resume:
            raise ValueError("--overwrite and --resume exclude each other: replace the set, or finish it")
        if self.augment.augment != "none" and self.text_files:
            raise ValueError("--augment perturbs the task's train split, not --text-file inputs: drop one of them")
        return self
