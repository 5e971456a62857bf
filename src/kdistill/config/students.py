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

    kind: Literal["layers-from-teacher"] = Field(default="layers-from-teacher", description=(
        "Student kind: layers copied from the teacher (DistilBERT's initialisation)."))
    layers: list[int] | None = Field(default=None, description=(
        "Teacher layers to copy, e.g. 0,2,5 (default: every other, first and last kept), or 'importance' on the "
        "command line (top layers by head importance: layer_selection importance; count: --num-layers)."))
    layer_selection: Literal["default", "importance"] = Field(default="default", description=(
        "default (layers, else every other) | importance (the teacher layers with the largest summed head importance, "
        "Michel et al. 2019; how many: len(layers), else num_layers, else the every-other count); --layers importance "
        "sets it."))
    num_layers: int | None = Field(default=None, ge=1, description=(
        "With --layers importance: how many teacher layers to copy."))
    keep_heads: int | None = Field(default=None, ge=1, description=(
        "layers-from-teacher: keep each copied layer's N most important heads (teacher head importance, Michel et al. "
        "2019); prune the rest."))
    heads: list[list[int]] | None = Field(default=None, description=(
        "The teacher heads kept, one list per copied layer: recorded by keep_heads (or, given by a user, fixed)."))


class SpecStudent(_StudentBase):
    """A fresh, randomly initialised model of the teacher's family, ``num_layers`` × ``hidden_size``."""

    kind: Literal["spec"] = Field(default="spec", description=(
        "Student kind: a fresh, randomly initialised model of the teacher's family."))
    num_layers: int = Field(ge=1, description="spec student: layers.")
    hidden_size: int = Field(ge=8, description="spec student: hidden size.")
    num_heads: int = Field(ge=1, description="spec student: attention heads.")
    intermediate_size: int | None = Field(default=None, ge=8, description=(
        "spec student: FFN size (default: 4 × hidden size)."))


class PretrainedStudent(_StudentBase):
    """A saved model (``path``: a folder or hub id), e.g. a general-distillation result."""

    kind: Literal["pretrained"] = Field(default="pretrained", description=(
        "Student kind: a saved model (on the command line, --student PATH)."))
    path: str = Field(description=(
        "The model the student starts from: a saved folder or hub id (a pretrained encoder, a general-distillation "
        "result, or for early exits the fine-tuned classifier that gets the exits)."))


class BiLSTMStudent(_StudentBase):
    """Tang et al. (2019): embedding → one-layer BiLSTM → ReLU layer → logits, siamese for pairs.

    Sizes ``None`` = the paper's (hidden 150 / FC 200 single sentence, 300 / 400 pairs); embeddings
    from ``word_vectors`` (word2vec/GloVe text) or else the teacher's input embeddings over its
    tokenizer; ``embedding_mode`` ``trainable``, ``frozen`` or ``multichannel`` (one frozen + one
    trainable copy, summed; the paper's setup). See :mod:`kdistill.students.bilstm`.
    """

    kind: Literal["bilstm"] = Field(default="bilstm", description=(
        "Student kind: a BiLSTM (Tang et al. 2019)."))
    bilstm_hidden: int | None = Field(default=None, ge=1, description=(
        "bilstm student: LSTM hidden size per direction (default: the paper's 150 single sentence, 300 pairs)."))
    bilstm_fc: int | None = Field(default=None, ge=1, description=(
        "bilstm student: ReLU layer width (default: 200 single sentence, 400 pairs)."))
    bilstm_dropout: float = Field(default=0.1, ge=0, lt=1, description=(
        "bilstm student: dropout on embeddings and the ReLU layer."))
    word_vectors: str | None = Field(default=None, description=(
        "bilstm student: word2vec/GloVe text file for the embeddings (default: copy the teacher's input embeddings)."))
    embedding_mode: Literal["trainable", "frozen", "multichannel"] = Field(default="multichannel", description=(
        "bilstm student: trainable | frozen | multichannel (one frozen + one trainable copy, summed)."))


#: Which student to train: one of the kinds above, told apart by ``kind``.
StudentConfig = Annotated[Union[LayersFromTeacherStudent, SpecStudent, PretrainedStudent, BiLSTMStudent],
                          Field(discriminator="kind")]
STUDENT_KINDS = {"layers-from-teacher": LayersFromTeacherStudent, "spec": SpecStudent,
                 "pretrained": PretrainedStudent, "bilstm": BiLSTMStudent}


def student_config(kind: str = "layers-from-teacher", **fields: Any):
    """The :data:`StudentConfig` of ``kind`` with ``fields`` (``None`` values dropped = defaults).

    ``kind`` other than the four names is a path: a :class:`PretrainedStudent`.

    ``layers="importance"`` (the command line's ``--layers importance``) means ``layer_selection="importance"``;
    ``num_layers`` counts layers only then (a layers-from-teacher student ignores it otherwise: the flag is shared with
    the spec student's depth).

    Raises:
        KDistillError: a field that the kind does not take (one line naming the kind's fields); ``layers`` text other
            than ``importance``.
    """
    fields = {k: v for k, v in fields.items() if v is not None}
    if kind not in STUDENT_KINDS:
        kind, fields = "pretrained", {"path": kind, **fields}
    if isinstance(fields.get("layers"), str):  # "importance": chosen by head importance (Michel et al. 2019)
        if fields["layers"] != "importance" or kind != "layers-from-teacher":
            raise KDistillError(f"layers must be a list of teacher layers or 'importance' (layers-from-teacher); "
                                f"got '{fields['layers']}'")
        del fields["layers"]
        fields["layer_selection"] = "importance"
    if kind == "layers-from-teacher" and fields.get("layer_selection") != "importance":
        fields.pop("num_layers", None)  # only counts layers chosen by importance
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
