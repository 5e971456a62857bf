"""Loss terms: one named, registered module per thing a student can learn from.

A term wraps one pure loss function of :mod:`kdistill.losses` and says what it needs
(teacher or not, hidden states, attention); an :class:`~kdistill.objectives.objective.Objective`
is a weighted list of terms and derives its needs from theirs. Terms with trainable parameters
(TinyBERT's projections ``W_h``, ``W_e``) own them as submodules, so they are optimised and
checkpointed with the student and never exported with it.

Registry keys (:data:`TERMS`): ``gold``, ``soft_kl``, ``logit_mse``, ``hidden_cos``, ``attn_mse``,
``attn_kl``, ``hidden_mse``, ``emb_mse``, ``pred_ce``, ``mlm_kl``, ``mlm``, ``relation``. A new term is a class here decorated with
:func:`register` (plus its place in a preset of :mod:`kdistill.objectives.presets`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from kdistill.data.tasks import TaskSpec
from kdistill.errors import KDistillError
from kdistill.losses import (hard_label_ce, hidden_cosine, logit_mse, multilabel_bce, multilabel_soft_kl, regression_mse,
                             soft_target_kl)
from kdistill.losses.qa import span_ce, span_logit_mse, span_soft_kl
from kdistill.losses.align import word_aligned_cosine
from kdistill.losses.general import mlm_ce, mlm_soft_kl, relation_kl, relations
from kdistill.losses.tinybert import (attention_kl_loss, attention_score_loss, embedding_loss, hidden_state_loss,
                                      prediction_loss)
from kdistill.objectives.signals import ModelSignal

TERMS: dict[str, type["Term"]] = {}
REGRESSION_TO_TEACHER = ("soft_kl", "logit_mse", "pred_ce")  # these become MSE to the teacher's prediction


def register(name: str) -> Callable[[type["Term"]], type["Term"]]:
    """Class decorator: register a :class:`Term` subclass under ``name`` (raises on a duplicate name)."""

    def deco(cls: type[Term]) -> type[Term]:
        if name in TERMS:
            raise KDistillError(f"loss term '{name}' is registered twice")
        cls.key = name
        TERMS[name] = cls
        return cls

    return deco


def make_term(name: str, **kwargs) -> "Term":
    """The registered term ``name`` built with ``kwargs``.

    Raises:
        KDistillError: unknown term name (the message lists the registered ones).
    """
    if name not in TERMS:
        raise KDistillError(f"unknown loss term '{name}'; registered: {', '.join(sorted(TERMS))}")
    return TERMS[name](**kwargs)


#: What a term computes for question answering (start/end logits per window; :mod:`kdistill.losses.qa`).
QA_TERMS = {"gold": "CE of the gold start and end tokens, averaged (Devlin et al. 2019, Sec. 4.2)",
            "soft_kl": "T²·KL of the teacher's start and end distributions, averaged (Sanh et al. 2019, SQuAD)",
            "pred_ce": "TinyBERT's soft CE (Eq. 10) on the teacher's start and end distributions, averaged",
            "logit_mse": "MSE of the start and end logits at each window's real tokens (Tang et al. 2019, per position)"}


class Term(nn.Module):
    """Base class: ``forward(student, teacher, batch) -> scalar loss`` (with graph).

    Class attributes say what the term needs: ``needs_teacher``, ``needs_hidden_states``,
    ``needs_attentions``; attention terms also give ``student_attention_layers`` /
    ``teacher_attention_layers`` (0-based layers to record; ``None`` = all).
    """

    key = "base"
    needs_teacher = True
    needs_hidden_states = False
    needs_attentions = False
    student_attention_layers: list[int] | None = None
    teacher_attention_layers: list[int] | None = None

    def forward(self, student: ModelSignal, teacher: ModelSignal | None, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def describe(self, task: TaskSpec | None) -> str:
        """What this term computes (for reports): the first line of its docstring, or the regression MSE."""
        if task is not None and task.qa and self.key in QA_TERMS:
            return QA_TERMS[self.key]
        if getattr(self, "task", None) is not None and self.task.is_regression and self.key in REGRESSION_TO_TEACHER:
            return "MSE to the teacher's prediction (regression task)"
        if self.key == "gold" and task is not None and task.is_regression:
            return "MSE to the gold scores (regression task)"
        return (type(self).__doc__ or self.key).strip().split("\n")[0].rstrip(".")


def gold_loss(task: TaskSpec, logits: torch.Tensor, labels: torch.Tensor,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """CE on class ids, or MSE on scores for regression tasks, over the rows that have a gold label.

    Rows without one (augmented examples: label ``-1`` for classification, NaN for regression) are
    left out; a batch with none gives a zero that keeps the graph.

    Args:
        task: decides CE (classification) or MSE (regression).
        logits: ``[B, C]`` (``[B, 1]`` for regression).
        labels: ``[B]`` class ids (``-1`` = none) or float scores (NaN = none); multi-label: ``[B, C]`` multi-hot
            (binary cross-entropy; a row of ``-1`` = none).
        mask: question answering: the ``[B, T]`` attention mask (padding is never an answer); logits ``[B, T, 2]``,
            labels ``[B, 2]`` (:func:`kdistill.losses.qa.span_ce`).
    """
    if task.qa:  # [B, T, 2] start/end logits per window, labels [B, 2] the gold span
        return span_ce(logits, labels, mask)
    if task.token_level:  # [B, T, C] per position: the labelled ones (first sub-tokens; -100 elsewhere)
        keep = labels != -100
        return hard_label_ce(logits[keep], labels[keep]) if bool(keep.any()) else logits.sum() * 0.0
    if task.multi_label:  # multi-hot [B, C]; an augmented row (no gold) is all -1
        has_gold, loss = (labels >= 0).all(dim=-1), multilabel_bce
    elif task.is_regression:
        has_gold, loss = ~torch.isnan(labels.float()), regression_mse
    else:
        has_gold, loss = labels >= 0, hard_label_ce
    if bool(has_gold.all()):
        return loss(logits, labels)
    if not bool(has_gold.any()):
        return logits.sum() * 0.0
    return loss(logits[has_gold], labels[has_gold])


def labelled_positions(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Token classification: the ``[M, C]`` student and teacher logits at the ``M`` labelled positions (``labels`` !=
    -100: each word's first sub-token) of ``[B, T, C]`` logits and ``[B, T]`` labels; a ``[M, C]`` teacher signal
    (word level, from another tokenizer: :class:`kdistill.engine.teacher.CachedLogits`) is paired word by word.

    Raises:
        KDistillError: the student's, the teacher's and the labels' ``[B, T]`` shapes differ (another tokenisation).
    """
    keep = labels != -100
    if teacher_logits.dim() == 2:  # word level already (the teacher tokenised the words its own way)
        if int(keep.sum()) != teacher_logits.shape[0]:
            raise KDistillError(f"word-level KD: the student's rows hold {int(keep.sum())} words, the teacher's "
                                f"{teacher_logits.shape[0]}: the two tokenizations split the sentences into different "
                                "windows; raise --max-length so that every sentence fits one window")
        return student_logits[keep], teacher_logits
    if student_logits.shape[:2] != labels.shape or teacher_logits.shape[:2] != labels.shape:
        raise KDistillError(f"per-token KD needs one tokenisation: student logits {tuple(student_logits.shape)}, "
                            f"teacher {tuple(teacher_logits.shape)}, labels {tuple(labels.shape)}")
    return student_logits[keep], teacher_logits[keep]


@register("gold")
class Gold(Term):
    """The hard-label term of Hinton et al. (2015): CE with the gold labels (MSE for regression)."""

    needs_teacher = False

    def __init__(self, task: TaskSpec):
        super().__init__()
        self.task = task

    def forward(self, student, teacher, batch):
        return gold_loss(self.task, student.logits, batch["labels"], batch.get("attention_mask"))


class _SoftTargets(Term):
    """Soft targets from the teacher's logits at temperature T: ``soft(z_s, z_t, T)`` for single-label tasks,
    per-label sigmoid soft targets (binary KL per label, :func:`kdistill.losses.multilabel_soft_kl`) for
    multi-label tasks, MSE to the teacher's prediction for regression tasks."""

    soft = staticmethod(soft_target_kl)

    def __init__(self, task: TaskSpec, temperature: float):
        super().__init__()
        self.task, self.temperature = task, temperature

    def forward(self, student, teacher, batch):
        if self.task.is_regression:
            return regression_mse(student.logits, teacher.logits)
        if self.task.multi_label:  # one sigmoid per label: binary KL per label
            return multilabel_soft_kl(student.logits, teacher.logits, self.temperature)
        if self.task.qa:  # the start and the end distributions over each window's tokens, averaged
            return span_soft_kl(student.logits, teacher.logits, self.temperature, batch.get("attention_mask"),
                                loss=self.soft)
        if self.task.token_level:  # per position: the teacher's tag distribution at each labelled position
            s_logits, t_logits = labelled_positions(student.logits, teacher.logits, batch["labels"])
            return self.soft(s_logits, t_logits, self.temperature)
        return self.soft(student.logits, teacher.logits, self.temperature)


@register("soft_kl")
class SoftKL(_SoftTargets):
    """Soft targets ``T²·KL(softmax(z_t/T) ‖ softmax(z_s/T))`` (Hinton et al. 2015, Sec. 2); per-label sigmoid soft
    targets (binary KL per label) for multi-label tasks; MSE to the teacher's prediction for regression tasks."""

    soft = staticmethod(soft_target_kl)

    def __init__(self, task: TaskSpec, temperature: float = 2.0):
        super().__init__(task, temperature)


@register("logit_mse")
class LogitMSE(Term):
    """Logit regression ``MSE(z_s, z_t)`` (Tang et al. 2019, Eq. 2); MSE to the prediction for regression."""

    def __init__(self, task: TaskSpec):
        super().__init__()
        self.task = task

    def forward(self, student, teacher, batch):
        if self.task.is_regression:
            return regression_mse(student.logits, teacher.logits)
        if self.task.qa:
            return span_logit_mse(student.logits, teacher.logits, batch.get("attention_mask"))
        if self.task.token_level:
            return logit_mse(*labelled_positions(student.logits, teacher.logits, batch["labels"]))
        return logit_mse(student.logits, teacher.logits)


@register("hidden_cos")
class HiddenCos(Term):
    """DistilBERT's L_cos (Sanh et al. 2019): ``1 − cos`` of the last hidden states over real tokens (or words).

    ``align="tokens"``: token by token (one tokenizer). ``align="words"``: each model's token states mean-pooled per
    whitespace word of the raw text and paired word by word (:func:`kdistill.losses.align.word_aligned_cosine`):
    works across tokenizers; needs ``word_ids`` in the batch (the student's) and in the teacher's signal (or the
    batch's, when both share one tokenization).
    """

    needs_hidden_states = True

    def __init__(self, align: str = "tokens"):
        super().__init__()
        if align not in ("tokens", "words"):
            raise KDistillError(f"hidden_cos align must be 'tokens' or 'words', got '{align}'")
        self.align = align

    def forward(self, student, teacher, batch):
        if self.align == "tokens":
            return hidden_cosine(student.hidden_states[-1], teacher.hidden_states[-1], batch.get("attention_mask"))
        if "word_ids" not in batch:
            raise KDistillError("word-aligned L_cos needs word_ids in the batch (tokenize(..., word_ids=True))")
        teacher_words = teacher.word_ids if teacher.word_ids is not None else batch["word_ids"]
        return word_aligned_cosine(student.hidden_states[-1], batch["word_ids"], teacher.hidden_states[-1], teacher_words)


@register("mlm_kl")
class MlmKL(Term):
    """DistilBERT's L_ce (Sanh et al. 2019): ``T²·KL`` of the teacher's masked-LM distribution from the student's, over
    the masked positions (``batch["labels"]`` != -100)."""

    def __init__(self, temperature: float = 2.0):
        super().__init__()
        self.temperature = float(temperature)

    def forward(self, student, teacher, batch):
        return mlm_soft_kl(student.logits, teacher.logits, batch["labels"], self.temperature)


@register("mlm")
class Mlm(Term):
    """The student's own masked-LM loss L_mlm (Devlin et al. 2019): CE with the original tokens at the masked positions."""

    needs_teacher = False

    def forward(self, student, teacher, batch):
        return mlm_ce(student.logits, batch["labels"])


@register("relation")
class Relation(Term):
    """MiniLM (Wang et al. 2020) / MiniLMv2 (Wang et al. 2021) relation transfer: KL of the teacher's relation
    distributions from the student's, ``softmax(X_r·Y_rᵀ/√d_r)`` over ``relation_heads`` slices of one layer's
    projections (``kind``: ``qk`` = attention, ``qq``, ``kk``, ``vv``), over real tokens."""

    KINDS = {"qk": ("query", "key"), "qq": ("query", None), "kk": ("key", None), "vv": ("value", None)}

    def __init__(self, kind: str, relation_heads: int, student_layer: int = -1, teacher_layer: int = -1):
        super().__init__()
        if kind not in self.KINDS:
            raise KDistillError(f"relation kind must be one of {', '.join(self.KINDS)}, got '{kind}'")
        self.kind, self.relation_heads = kind, int(relation_heads)
        self.qkv_layers = (int(student_layer), int(teacher_layer))

    def forward(self, student, teacher, batch):
        a, b = self.KINDS[self.kind]
        mask = batch.get("attention_mask")

        def rel(sig):
            return relations(sig.qkv[a], self.relation_heads, mask, other=None if b is None else sig.qkv[b])

        return relation_kl(rel(student), rel(teacher), mask)


class _LayerMapped(Term):
    """A term over mapped layers: student layer ``m`` (1-based) learns from teacher layer ``layer_map[m-1]``."""

    def __init__(self, layer_map: Sequence[int]):
        super().__init__()
        self.layer_map = list(layer_map)


class _Attention(_LayerMapped):
    needs_attentions = True

    def __init__(self, layer_map: Sequence[int], head_rule: str = "group"):
        super().__init__(layer_map)
        self.head_rule = head_rule
        self.student_attention_layers = list(range(len(self.layer_map)))
        self.teacher_attention_layers = sorted(g - 1 for g in self.layer_map)


@register("attn_mse")
class AttnMSE(_Attention):
    """TinyBERT's attention loss (Jiao et al. 2020, Eq. 7): MSE of pre-softmax scores, summed over mapped layers."""

    def forward(self, student, teacher, batch):
        mask, total = batch.get("attention_mask"), 0.0
        for m, g in enumerate(self.layer_map, start=1):
            total = total + attention_score_loss(student.attention_scores[m - 1], teacher.attention_scores[g - 1],
                                                 mask, self.head_rule)
        return total


@register("attn_kl")
class AttnKL(_Attention):
    """MiniLM's attention loss (Wang et al. 2020): KL of attention distributions, summed over mapped layers."""

    def forward(self, student, teacher, batch):
        mask, total = batch.get("attention_mask"), 0.0
        for m, g in enumerate(self.layer_map, start=1):
            total = total + attention_kl_loss(student.attention_probs[m - 1], teacher.attention_probs[g - 1],
                                              mask, self.head_rule)
        return total


def _projection(student_width: int, teacher_width: int) -> nn.Linear | None:
    """TinyBERT's width projection ``nn.Linear(Hs, Ht)``; ``None`` when the widths are equal."""
    return nn.Linear(student_width, teacher_width) if student_width != teacher_width else None


@register("hidden_mse")
class HiddenMSE(_LayerMapped):
    """TinyBERT's hidden-state loss (Eq. 8): ``Σ_m MSE(H_S^m W_h, H_T^{g(m)})``; ``W_h`` (``proj``) one
    ``nn.Linear(Hs, Ht)`` shared by all layers, only when the widths differ."""

    needs_hidden_states = True
    proj_name = "proj_hidden"

    def __init__(self, layer_map: Sequence[int], student_width: int, teacher_width: int):
        super().__init__(layer_map)
        self.proj = _projection(student_width, teacher_width)

    def forward(self, student, teacher, batch):
        mask = batch.get("attention_mask")
        return sum(hidden_state_loss(student.hidden_states[m], teacher.hidden_states[g], self.proj, mask)
                   for m, g in enumerate(self.layer_map, start=1))


@register("emb_mse")
class EmbMSE(Term):
    """TinyBERT's embedding loss (Eq. 9): ``MSE(E_S W_e, E_T)``; ``W_e`` (``proj``) only when the widths differ."""

    needs_hidden_states = True
    proj_name = "proj_emb"

    def __init__(self, student_width: int, teacher_width: int):
        super().__init__()
        self.proj = _projection(student_width, teacher_width)

    def forward(self, student, teacher, batch):
        return embedding_loss(student.hidden_states[0], teacher.hidden_states[0], self.proj, batch.get("attention_mask"))


@register("pred_ce")
class PredCE(_SoftTargets):
    """TinyBERT's prediction-layer loss (Eq. 10): soft CE ``−softmax(z_T/t)·log_softmax(z_S/t)``; per-label
    sigmoid soft targets for multi-label tasks; MSE to the teacher's prediction for regression tasks."""

    soft = staticmethod(prediction_loss)

    def __init__(self, task: TaskSpec, temperature: float = 1.0):
        super().__init__(task, temperature)
