"""The settings of each method: KD, Tang augmentation, TinyBERT, DistilBERT/MiniLM general distillation, early exits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kdistill.config.base import ConfigBase as _Base


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


class ExitConfig(_Base):
    """Where the exits go and how they learn (FastBERT, Liu et al. 2020; DeeBERT, Xin et al. 2020; PABEE, Zhou et al.
    2020).

    ``every``: an exit after every ``every``-th encoder layer below the last (``layers``: or the 1-based layers
    themselves). ``pooling``: ``mean`` (masked mean of token states) or ``cls``. ``schedule``: ``frozen`` (FastBERT's
    two-step: only the exits train, from the fine-tuned backbone's own final soft targets) or ``joint`` (backbone and
    exits together: ``Σ_k w_k·L_k + final_weight·CE(final)``). Each exit's ``L_k = (1 − gold_weight)·T²·KL(final ‖ exit)
    + gold_weight·CE(exit, gold)``, the final soft targets detached; ``weighting``: ``uniform`` or ``depth``
    (``w_k ∝ k``, PABEE Eq. 5).
    """

    every: int = Field(default=1, ge=1)
    layers: list[int] | None = None
    pooling: Literal["mean", "cls"] = "mean"
    dropout: float | None = Field(default=None, ge=0, lt=1)
    schedule: Literal["frozen", "joint"] = "frozen"
    temperature: float = Field(default=2.0, gt=0)
    gold_weight: float = Field(default=0.0, ge=0, le=1)
    weighting: Literal["uniform", "depth"] = "uniform"
    final_weight: float = Field(default=1.0, ge=0)


#: Thresholds the sweep tries when none are given (normalised entropy: exit below; max probability: exit at or above).
ENTROPY_GRID = [0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
MAX_PROB_GRID = [0.995, 0.99, 0.98, 0.97, 0.95, 0.93, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6]


class SweepConfig(_Base):
    """The threshold sweep of adaptive inference (:mod:`kdistill.selfdistill.sweep`).

    Every ``rules`` × setting is scored on the held-out selection slice and on dev from one pass of all exits
    (the decisions of the batched adaptive path, simulated); batch-1 and batch-``batch_size`` latency is *measured* by
    running the adaptive model on ``latency_examples`` dev rows, ``latency_rounds`` rounds interleaved with the
    full-depth model. The chosen setting is the fastest (fewest average layers on the selection slice) whose selection
    metric is at most ``max_drop`` points below the full model's; dev is reported for it once.
    """

    rules: list[Literal["entropy", "max_prob", "patience"]] = ["entropy", "max_prob", "patience"]
    entropy_thresholds: list[float] | None = None
    max_prob_thresholds: list[float] | None = None
    patiences: list[int] | None = None
    max_drop: float = Field(default=1.0, ge=0)
    latency_examples: int = Field(default=128, ge=1)
    latency_rounds: int = Field(default=3, ge=1)
    batch_size: int = Field(default=32, ge=1)
    timed_points: int = Field(default=6, ge=0)  # settings per rule timed (spread over the curve) besides the chosen one
