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

    temperature: float = Field(default=2.0, gt=0, description=(
        "Soft-target temperature T of the KD loss (kd: 2; born-again: 1, the paper's; method tinybert's prediction "
        "step has its own: 1)."))
    alpha: float = Field(default=0.5, ge=0, le=1, description=(
        "Weight of the gold-label loss; 1 - alpha goes to the KD loss (kd: 0.5; born-again: 0, the teacher's "
        "distribution only, the paper's; method tinybert's prediction step has its own: 0)."))
    kd_loss: Literal["kl", "mse"] = Field(default="kl", description=(
        "kl (T²·KL of soft targets, Hinton 2015) | mse (logit MSE, Tang 2019)."))
    cos_weight: float = Field(default=0.0, ge=0, description=(
        "Weight of DistilBERT's cosine loss on last hidden states (equal widths)."))
    hidden_align: Literal["auto", "tokens", "words"] = Field(default="auto", description=(
        "How --cos-weight pairs hidden states: auto (token by token, or word by word when the student's tokenizer "
        "differs from the teacher's) | tokens | words."))


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

    augment: Literal["none", "tang", "tinybert"] = Field(default="none", description=(
        "none | tang: add Tang et al. (2019) perturbations of the train set, labelled by the teacher | tinybert "
        "(kdistill label only): TinyBERT's word replacement by embedding neighbours (Jiao et al. 2020, Algorithm 1)."))
    p_mask: float = Field(default=0.1, ge=0, le=1, description="augment: per-word probability of the mask token.")
    p_pos: float = Field(default=0.1, ge=0, le=1, description=(
        "augment: per-word probability of a same-POS replacement (needs spaCy; 0 = off)."))
    p_ng: float = Field(default=0.25, ge=0, le=1, description="augment: probability of keeping a random 1-5-gram.")
    n_iter: int = Field(default=20, ge=1, description="augment: perturbations per example, duplicates dropped.")
    pair_mode: Literal["both", "first", "second", "cycle"] = Field(default="cycle", description=(
        "augment, pair tasks: cycle (first, second, both in turn) | both | first | second."))
    augment_seed: int | None = Field(default=None, description="augment: seed (default: --seed).")
    max_augmented: int | None = Field(default=None, ge=1, description=(
        "augment: keep at most N augmented rows (a seeded random subset), to fit the machine."))

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

    layer_map: str | list[int] = Field(default="uniform", description=(
        "tinybert: uniform | last | first | teacher layers like 2,4,6 (1-based, one per student layer)."))
    attention_loss: Literal["mse", "kl"] = Field(default="mse", description=(
        "tinybert: mse (pre-softmax scores, the paper) | kl (probabilities, MiniLM)."))
    head_rule: Literal["group", "mean"] = Field(default="group", description=(
        "tinybert, head counts differ: group | mean."))
    attn_weight: float = Field(default=1.0, ge=0, description="tinybert: weight of the attention loss (0 = off).")
    hidden_weight: float = Field(default=1.0, ge=0, description="tinybert: weight of the hidden-state loss (0 = off).")
    emb_weight: float = Field(default=1.0, ge=0, description="tinybert: weight of the embedding loss (0 = off).")
    intermediate_epochs: float = Field(default=10.0, ge=0, description=(
        "tinybert: epochs of intermediate-layer distillation (0 skips)."))
    prediction_epochs: float = Field(default=3.0, gt=0, description=(
        "tinybert: epochs of prediction-layer distillation."))
    intermediate_learning_rate: float | None = Field(default=None, gt=0, description=(
        "tinybert: learning rate of the intermediate step (default --lr)."))
    temperature: float = Field(default=1.0, gt=0, description=(
        "tinybert: soft-target temperature T of the prediction step (1: the paper's; method kd's temperature "
        "defaults to 2)."))
    alpha: float = Field(default=0.0, ge=0, le=1, description=(
        "tinybert: weight of the gold-label loss in the prediction step; 1 - alpha goes to the KD loss (0: the "
        "paper's, no gold labels; method kd's alpha defaults to 0.5)."))


class DistilBertGeneralConfig(_Base):
    """DistilBERT's general distillation loss (Sanh et al. 2019, Sec. 3): ``ce_weight · T²·KL`` of the teacher's
    masked-LM distribution + ``mlm_weight · L_mlm`` + ``cos_weight · L_cos``, on dynamically masked text (the paper's
    weights 5, 2, 1 and T = 2)."""

    ce_weight: float = Field(default=5.0, ge=0, description=(
        "distilbert: weight of T²·KL of the teacher's masked-LM distribution."))
    mlm_weight: float = Field(default=2.0, ge=0, description="distilbert: weight of the student's masked-LM loss.")
    cos_weight: float = Field(default=1.0, ge=0, description=(
        "distilbert: weight of L_cos on the last hidden states (equal widths)."))
    temperature: float = Field(default=2.0, gt=0, description="distilbert: soft-target temperature.")
    mlm_probability: float = Field(default=0.15, gt=0, lt=1, description=(
        "distilbert: share of tokens masked (80/10/10)."))
    whole_word_mask: bool = Field(default=False, description="distilbert: mask whole words (all their pieces).")


class MiniLMConfig(_Base):
    """MiniLM (Wang et al. 2020, deep self-attention distillation) and MiniLMv2 (Wang et al. 2021, multi-head
    self-attention relation distillation) on one layer of each model.

    ``version=1``: KL of the attention distributions (Q-K relation) + KL of the value relation (V-V), per attention head
    (teacher and student need the same head count). ``version=2``: Q-Q, K-K and V-V relations over ``relation_heads``
    slices of the concatenated projections, independent of either model's width and head count. ``teacher_layer`` is
    1-based (default: the last; the v2 paper takes an upper-middle one for large teachers); the student's last layer
    learns from it.
    """

    version: Literal[1, 2] = Field(default=2, description=(
        "minilm: 1 (attention + value relation, equal head counts) | 2 (Q-Q, K-K, V-V relations)."))
    relation_heads: int = Field(default=12, ge=1, description=(
        "minilm v2: relation heads (must divide both widths)."))
    teacher_layer: int | None = Field(default=None, ge=1, description=(
        "minilm: 1-based teacher layer to learn from (default the last)."))


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

    every: int = Field(json_schema_extra={"flat": "exit_every"}, default=1, ge=1, description=(
        "An exit after every k-th encoder layer below the last (1: after each)."))
    layers: list[int] | None = Field(json_schema_extra={"flat": "exit_layers"}, default=None, description="Or the 1-based layers that get an exit, e.g. 2,4.")
    pooling: Literal["mean", "cls"] = Field(default="mean", description=(
        "Exit input: mean (masked mean of the layer's tokens) | cls (first token)."))
    dropout: float | None = Field(json_schema_extra={"flat": "exit_dropout"}, default=None, ge=0, lt=1, description=(
        "Dropout in the exit heads (default the model's hidden dropout)."))
    schedule: Literal["frozen", "joint"] = Field(json_schema_extra={"flat": "exit_schedule", "was": "schedule"}, default="frozen", description=(
        "frozen (FastBERT's two-step: only the exits train) | joint (exits and backbone, weighted sum over exits + "
        "final gold CE). The command line's learning-rate default follows it: 5e-4 frozen, 5e-5 joint."))
    temperature: float = Field(default=2.0, gt=0, description=(
        "Soft-target temperature of the exits' T²·KL to the final layer."))
    gold_weight: float = Field(default=0.0, ge=0, le=1, description=(
        "Share β of gold CE in each exit's loss: (1-β)·KD + β·CE."))
    weighting: Literal["uniform", "depth"] = Field(default="uniform", description=(
        "Exit weights of the sum: uniform | depth (w_k ∝ k, PABEE)."))
    final_weight: float = Field(default=1.0, ge=0, description="joint: weight of the final layer's gold CE.")


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

    rules: list[Literal["entropy", "max_prob", "patience"]] = Field(
        default=["entropy", "max_prob", "patience"],
        description="Exit rules to sweep, comma-separated: entropy (FastBERT/DeeBERT) | max_prob | patience (PABEE).")
    entropy_thresholds: list[float] | None = Field(default=None, description=(
        "Normalised-entropy thresholds to sweep (exit below), e.g. 0.05,0.1,0.2 (default: a grid from 0.02 to 0.8)."))
    max_prob_thresholds: list[float] | None = Field(default=None, description=(
        "Max-probability thresholds to sweep (exit at or above), e.g. 0.99,0.95,0.9 (default: a grid from 0.995 to "
        "0.6)."))
    patiences: list[int] | None = Field(default=None, description=(
        "PABEE patiences to sweep, e.g. 0,1,2 (default 0 .. exits-1)."))
    max_drop: float = Field(json_schema_extra={"flat": "max_exit_drop", "was": "max_drop"}, default=1.0, ge=0, description=(
        "Choose the fastest setting whose selection-slice metric is at most this many points below full depth."))
    latency_examples: int = Field(default=128, ge=1, description="Dev rows timed per setting.")
    latency_rounds: int = Field(default=3, ge=1, description="Interleaved timing rounds.")
    batch_size: int = Field(json_schema_extra={"flat": "sweep_batch_size"}, default=32, ge=1, description="The batched latency's batch size.")
    timed_points: int = Field(default=6, ge=0, description=(
        "Settings per rule whose latency is measured (spread over the curve), besides the chosen one."))


# --------------------------------------------------------------------------- the method of a task run
class FinetuneMethod(_Base):
    """Method ``finetune``: no teacher, the student trained on the gold labels (cross-entropy, or MSE for regression;
    BCE for multi-label)."""

    name: Literal["finetune"] = Field(default="finetune", description="The method: plain fine-tuning (no teacher).")


class KDMethod(DistillConfig):
    """Method ``kd``: task-specific distillation of the soft targets (Hinton et al. 2015), DistilBERT's L_cos optional
    (Sanh et al. 2019), the logit MSE of Tang et al. (2019); the settings of :class:`DistillConfig`."""

    name: Literal["kd"] = Field(default="kd", description="The method: soft-target distillation (Hinton 2015).")


class TinyBertMethod(TinyBertConfig):
    """Method ``tinybert``: TinyBERT's two-step task-specific distillation (Jiao et al. 2020, Sec. 3.2); the settings of
    :class:`TinyBertConfig` (its prediction step has its own temperature 1 and alpha 0, the paper's)."""

    name: Literal["tinybert"] = Field(default="tinybert", description=(
        "The method: TinyBERT (layer-wise, then prediction layer; Jiao 2020)."))


#: The methods of a task run by name: ``RunConfig.method`` is one of these (a union discriminated by ``name``).
METHODS: dict[str, type[_Base]] = {"finetune": FinetuneMethod, "kd": KDMethod, "tinybert": TinyBertMethod}


# --------------------------------------------------------------------------- the objective of general distillation
class TinyBertGeneralObjective(TinyBertConfig):
    """Objective ``tinybert`` of general distillation: TinyBERT's stage 1 (Jiao et al. 2020, Sec. 3.2), attention,
    hidden-state and embedding losses; the settings of :class:`TinyBertConfig` (its prediction-step fields unused)."""

    name: Literal["tinybert"] = Field(default="tinybert", description=(
        "The objective: TinyBERT's attention + hidden-state + embedding losses."))


class DistilBertGeneralObjective(DistilBertGeneralConfig):
    """Objective ``distilbert`` of general distillation: DistilBERT's triple loss (Sanh et al. 2019, Sec. 3)."""

    name: Literal["distilbert"] = Field(default="distilbert", description=(
        "The objective: DistilBERT's masked-LM soft targets + MLM + cosine (the teacher needs a masked-LM head)."))


class MiniLMGeneralObjective(MiniLMConfig):
    """Objective ``minilm`` of general distillation: MiniLM's self-attention relations (Wang et al. 2020, 2021)."""

    name: Literal["minilm"] = Field(default="minilm", description=(
        "The objective: MiniLM's self-attention relations of one layer."))


#: The objectives of general distillation by name: ``GeneralDistillConfig.objective`` is one of these.
GENERAL_OBJECTIVES: dict[str, type[_Base]] = {"tinybert": TinyBertGeneralObjective,
                                              "distilbert": DistilBertGeneralObjective, "minilm": MiniLMGeneralObjective}
