"""Presets: the objectives of each method as weighted term lists (TextBrewer-style string keys).

:data:`PRESETS` maps a key to a builder; the CLI's loss flags (``--alpha``, ``--kd-loss``,
``--cos-weight``, TinyBERT's weights ...) are the builders' arguments. Terms of weight 0 are left
out, so e.g. ``--alpha 1`` without ``--cos-weight`` needs no teacher at all.
"""

from __future__ import annotations

from typing import Callable

from kdistill.config import DistilBertGeneralConfig, DistillConfig, MiniLMConfig, TinyBertConfig
from kdistill.data.tasks import TaskSpec
from kdistill.errors import KDistillError, ModelError
from kdistill.objectives.layer_map import layer_map as make_layer_map
from kdistill.objectives.objective import Objective
from kdistill.objectives.terms import make_term

TINYBERT_STAGES = ("general", "intermediate", "prediction")


def width(config) -> int:
    """Hidden width of a transformers config (``hidden_size``, DistilBERT's ``dim``)."""
    return int(getattr(config, "hidden_size", None) or getattr(config, "dim"))


def depth(config) -> int:
    """Number of Transformer layers of a transformers config (``num_hidden_layers``, DistilBERT's ``n_layers``)."""
    return int(getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers"))


def finetune_objective(task: TaskSpec, cfg: DistillConfig | None = None) -> Objective:
    """Plain supervised fine-tuning: ``loss = CE(student, gold)`` (MSE for regression)."""
    return Objective("finetune", task, [("hard", 1.0, make_term("gold", task=task))])


def kd_objective(task: TaskSpec, cfg: DistillConfig | None = None, *, hidden_align: str = "tokens") -> Objective:
    """Task-specific logit distillation (Hinton et al. 2015), with DistilBERT's optional L_cos.

    ``loss = α·L_hard + (1 − α)·L_soft + w_cos·L_cos`` where ``L_hard`` = CE(student, gold) (MSE for
    regression); ``L_soft`` = ``T²·KL`` of the soft targets (``kd_loss='kl'``, Hinton et al. 2015) or
    ``MSE(z_s, z_t)`` (``kd_loss='mse'``, Tang et al. 2019, Eq. 2), always the MSE to the teacher's
    prediction for regression tasks; ``L_cos`` = mean ``1 − cos`` of the last hidden states (Sanh et
    al. 2019), only when ``cos_weight > 0`` (equal widths; the teacher then runs on every batch), paired token by
    token or, with ``hidden_align="words"`` (teacher and student tokenizers differ), word by word.
    """
    cfg = cfg or DistillConfig()
    terms = []
    if cfg.alpha > 0:
        terms.append(("hard", cfg.alpha, make_term("gold", task=task)))
    if cfg.alpha < 1:
        soft = (make_term("logit_mse", task=task) if cfg.kd_loss == "mse"
                else make_term("soft_kl", task=task, temperature=cfg.temperature))
        terms.append(("soft", 1 - cfg.alpha, soft))
    if cfg.cos_weight > 0:
        terms.append(("cos", cfg.cos_weight, make_term("hidden_cos", align=hidden_align)))
    return Objective("kd", task, terms)


def tinybert_objective(task: TaskSpec | None, cfg: TinyBertConfig, student_config, teacher_config,
                       stage: str) -> Objective:
    """One TinyBERT stage (Jiao et al. 2020, arXiv:1909.10351) as an objective.

    * ``"general"`` / ``"intermediate"`` (general distillation; first step of task distillation):
      ``L = w_attn·Σ_m L_attn(m, g(m)) + w_hidden·Σ_m MSE(H_S^m W_h, H_T^{g(m)}) + w_emb·MSE(E_S W_e, E_T)``
      (Eq. 7–9, 11 without the prediction term); ``L_attn`` the MSE of pre-softmax scores
      (``attention_loss="mse"``, Eq. 7) or the KL of attention distributions (``"kl"``, MiniLM);
      the last student is kept (no dev selection).
    * ``"prediction"``: ``(1 − α)·L_pred + α·CE`` (Eq. 10; MSE for regression); best on dev kept.

    The layer map ``g`` comes from :func:`kdistill.objectives.layer_map.layer_map` (``obj.layer_map``).

    Raises:
        ModelError: a bad layer map or an unknown stage.
    """
    if stage not in TINYBERT_STAGES:
        raise ModelError(f"unknown TinyBERT stage '{stage}'; one of {', '.join(TINYBERT_STAGES)}")
    mapping = make_layer_map(depth(student_config), depth(teacher_config), cfg.layer_map)
    terms = []
    if stage == "prediction":
        terms.append(("pred", 1 - cfg.alpha, make_term("pred_ce", task=task, temperature=cfg.temperature)))
        if cfg.alpha > 0:
            terms.append(("hard", cfg.alpha, make_term("gold", task=task)))
    else:
        hs, ht = width(student_config), width(teacher_config)
        if cfg.attn_weight > 0:
            terms.append(("attn", cfg.attn_weight, make_term(f"attn_{cfg.attention_loss}", layer_map=mapping,
                                                             head_rule=cfg.head_rule)))
        if cfg.hidden_weight > 0:
            terms.append(("hidden", cfg.hidden_weight, make_term("hidden_mse", layer_map=mapping, student_width=hs,
                                                                 teacher_width=ht)))
        if cfg.emb_weight > 0:
            terms.append(("emb", cfg.emb_weight, make_term("emb_mse", student_width=hs, teacher_width=ht)))
    last = stage == "prediction"
    obj = Objective(f"tinybert-{stage}", task, terms, select_best=last, uses_all_parameters=last)
    obj.needs_teacher = True  # even with every weight 0 a TinyBERT stage is distillation
    obj.layer_map = mapping
    return obj


PRESETS: dict[str, Callable[..., Objective]] = {
    "finetune": finetune_objective,
    "kd": kd_objective,
}


def make_objective(method: str, task: TaskSpec, distill_cfg: DistillConfig | None = None) -> Objective:
    """Build the preset registered as ``method`` (``finetune`` or ``kd``; TinyBERT: :func:`tinybert_objective`).

    Raises:
        KDistillError: unknown preset name.
    """
    if method not in PRESETS:
        raise KDistillError(f"unknown method '{method}'; choose one of: {', '.join(PRESETS)}")
    return PRESETS[method](task, distill_cfg)


def distilbert_general_objective(cfg: DistilBertGeneralConfig, tokenizer) -> Objective:
    """DistilBERT's triple loss (Sanh et al. 2019, Sec. 3) on dynamically masked text.

    ``loss = w_ce·L_ce + w_mlm·L_mlm + w_cos·L_cos``: ``L_ce`` = ``T²·KL`` of the teacher's masked-LM distribution from
    the student's over the masked positions, ``L_mlm`` = the student's masked-LM CE, ``L_cos`` = ``1 − cos`` of the last
    hidden states over the real tokens. Each batch is masked by :class:`kdistill.data.masking.Masker` (15 %;
    80 / 10 / 10), from a generator seeded by the batch's place in the run; teacher and student see the same masked text.
    Terms with weight 0 are left out (the paper's ablations).

    Raises:
        KDistillError: every weight 0, or a tokenizer without a mask token.
    """
    from kdistill.data.masking import Masker

    terms = []
    if cfg.ce_weight > 0:
        terms.append(("ce", cfg.ce_weight, make_term("mlm_kl", temperature=cfg.temperature)))
    if cfg.mlm_weight > 0:
        terms.append(("mlm", cfg.mlm_weight, make_term("mlm")))
    if cfg.cos_weight > 0:
        terms.append(("cos", cfg.cos_weight, make_term("hidden_cos")))
    if not terms:
        raise KDistillError("DistilBERT's loss needs at least one of --ce-weight, --mlm-weight, --cos-weight above 0")
    masker = Masker(tokenizer, mlm_probability=cfg.mlm_probability, whole_words=cfg.whole_word_mask)
    return Objective("distilbert-general", None, terms, select_best=False, prepare_batch=masker)


def minilm_objective(cfg: MiniLMConfig, student_config, teacher_config) -> Objective:
    """MiniLM / MiniLMv2 relation transfer from one teacher layer to the student's last layer (see
    :class:`kdistill.config.MiniLMConfig`): v1 = attention (Q-K) + value relation per attention head (Wang et al. 2020,
    Eq. 5-8); v2 = Q-Q + K-K + V-V relations over ``relation_heads`` (Wang et al. 2021, Eq. 2-4). Equal weights.

    Raises:
        ModelError: v1 with different head counts (use v2), a teacher layer beyond the teacher's depth, or relation
            heads that do not divide both widths.
    """
    t_layers, heads_t, heads_s = depth(teacher_config), _heads(teacher_config), _heads(student_config)
    layer = cfg.teacher_layer or t_layers
    if layer > t_layers:
        raise ModelError(f"--teacher-layer {layer} is beyond the teacher's {t_layers} layers")
    if cfg.version == 1:
        if heads_s != heads_t:
            raise ModelError(f"MiniLM (v1) transfers attention head by head: the student has {heads_s} heads, the teacher "
                             f"{heads_t}; use --minilm-version 2 (relation heads free the head count)")
        heads, kinds = heads_t, ("qk", "vv")
    else:
        heads, kinds = cfg.relation_heads, ("qq", "kk", "vv")
        for what, c in (("student", student_config), ("teacher", teacher_config)):
            if width(c) % heads:
                raise ModelError(f"--relation-heads {heads} does not divide the {what}'s width {width(c)}; choose a "
                                 "common divisor of both widths")
    terms = [(k, 1.0, make_term("relation", kind=k, relation_heads=heads, student_layer=-1, teacher_layer=layer - 1))
             for k in kinds]
    return Objective(f"minilm-v{cfg.version}", None, terms, select_best=False, uses_all_parameters=False)


def _heads(config) -> int:
    return int(getattr(config, "num_attention_heads", None) or getattr(config, "n_heads"))
