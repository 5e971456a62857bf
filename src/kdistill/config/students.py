"""Which student to train: the student kinds (a discriminated union on ``kind``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field

from kdistill.config.base import ConfigBase as _Base
from kdistill.errors import KDistillError


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


GENERAL_STUDENT = SpecStudent(num_layers=4, hidden_size=192, num_heads=12, intermediate_size=768)
