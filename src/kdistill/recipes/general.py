"""Recipe ``general``: general (task-agnostic) distillation on a stream of unlabeled passages.

``objective="tinybert"`` — TinyBERT's stage 1 (Jiao et al. 2020, Sec. 3.2): the pretrained (not fine-tuned) encoder
teaches attention + hidden-state + embedding (no prediction layer); the projections are saved beside the result in
``projections.safetensors``. ``objective="distilbert"`` — DistilBERT (Sanh et al. 2019, Sec. 3): teacher and student
are masked-LM models (the student's decoder tied to its input embeddings), every batch is masked dynamically, the loss
is ``w_ce·L_ce + w_mlm·L_mlm + w_cos·L_cos``. ``objective="minilm"`` — MiniLM / MiniLMv2 (Wang et al. 2020 / 2021):
self-attention relations of one teacher layer. Each result (an encoder + tokenizer; DistilBERT's keeps its MLM head)
initialises task students (``kdistill distill --student DIR``).
"""

from __future__ import annotations

from kdistill.errors import KDistillError
from kdistill.recipes.base import Prepared, Recipe, Stage, register


def check_general(cfg) -> None:
    from kdistill.data.streaming import count_passages

    if cfg.text_files:
        count_passages(cfg.text_files)  # missing or empty files fail here, before any model is loaded
    elif not cfg.train.max_steps:
        raise KDistillError("a streamed --text-dataset has no known length: pass --max-steps")


def load_general(cfg) -> Prepared:
    """Pretrained teacher, student, objective (its projections initialised here) and text stream.

    DistilBERT's objective takes masked-LM models on both sides (:func:`_models`); TinyBERT's and MiniLM's bare encoders.

    Raises:
        ModelError: an unloadable teacher/student, no masked-LM head on a DistilBERT teacher, an unsupported layout, a
            student deeper than the teacher, a bad layer map, different vocabularies, L_cos across widths.
    """
    from kdistill.data.streaming import stream_loader, text_stream

    teacher_name, teacher, tokenizer, student = _models(cfg)
    objective = _objective(cfg, student, teacher, tokenizer)
    tcfg = _steps(cfg, cfg.train)
    whole_words = cfg.objective.name == "distilbert" and cfg.objective.whole_word_mask
    stream = text_stream(tokenizer, files=cfg.text_files, dataset=cfg.text_dataset, dataset_config=cfg.text_dataset_config,
                         text_column=cfg.text_column, max_length=cfg.max_length, seed=tcfg.seed, word_ids=whole_words)
    loader = stream_loader(stream, tokenizer, batch_size=tcfg.batch_size)
    return Prepared(cfg=cfg, task=None, tokenizer=tokenizer, student=student, teacher=teacher, loader=loader,
                    info={"objective": objective, "train": tcfg, "teacher_name": teacher_name})


def _models(cfg):
    """``(teacher name, teacher, tokenizer, student)``. The student: ``spec`` (fresh), a path, or the teacher's layers
    (DistilBERT's initialisation: embeddings, chosen layers and, for masked-LM models, the head copied)."""
    from kdistill.models import check_same_vocab, default_pretrained_model, load_encoder, load_mlm, load_tokenizer
    from kdistill.students.transformer import from_spec, layers_from_teacher

    mlm = cfg.objective.name == "distilbert"
    teacher_name = cfg.teacher or default_pretrained_model()
    teacher = load_mlm(teacher_name, "teacher") if mlm else load_encoder(teacher_name, "teacher")
    tokenizer = load_tokenizer(teacher_name)
    sc = cfg.student
    if sc.kind == "spec":
        student = from_spec(teacher.config, num_layers=sc.num_layers, hidden_size=sc.hidden_size, num_heads=sc.num_heads,
                            intermediate_size=sc.intermediate_size, seed=cfg.train.seed, head="mlm" if mlm else "classifier")
        student = student if mlm else student.base_model
    elif sc.kind == "pretrained":
        student = load_mlm(sc.path, "student", require_head=False) if mlm else load_encoder(sc.path, "student")
        check_same_vocab(tokenizer, load_tokenizer(sc.path))
    elif mlm:
        student = layers_from_teacher(teacher, sc.layers)
    else:
        from transformers import AutoModelForSequenceClassification

        student = layers_from_teacher(AutoModelForSequenceClassification.from_pretrained(teacher_name), sc.layers).base_model
    return teacher_name, teacher, tokenizer, student


def _objective(cfg, student, teacher, tokenizer):
    from kdistill.errors import ModelError
    from kdistill.objectives import distilbert_general_objective, minilm_objective, tinybert_objective
    from kdistill.students.transformer import check_layerwise_pair

    if cfg.objective.name == "distilbert":
        d = cfg.objective
        if d.cos_weight > 0 and student.config.hidden_size != teacher.config.hidden_size:
            raise ModelError(f"L_cos compares hidden states of equal width; the student is {student.config.hidden_size} "
                             f"wide, the teacher {teacher.config.hidden_size}: pass --cos-weight 0 or a student of the "
                             "teacher's width")
        return distilbert_general_objective(d, tokenizer)
    if cfg.objective.name == "minilm":  # relations of one layer's projections: any widths (v2), no attention capture
        return minilm_objective(cfg.objective, student.config, teacher.config)
    check_layerwise_pair(student, teacher)
    return tinybert_objective(None, cfg.objective, student.config, teacher.config, "general")


def _steps(cfg, tcfg):
    from kdistill.data.streaming import count_passages

    if tcfg.max_steps:
        return tcfg
    n = count_passages(cfg.text_files)
    steps = max(1, int(-(-n * tcfg.epochs // (tcfg.batch_size * tcfg.gradient_accumulation_steps))))
    return tcfg.model_copy(update={"max_steps": steps})


def general_summary(p: Prepared, result) -> dict:
    if p.cfg.objective.name == "minilm":
        return {"method": f"minilm-v{p.cfg.objective.version}", "loss": p.cfg.objective.model_dump(),
                "student": p.cfg.student.model_dump(), "teacher": p.info["teacher_name"]}
    if p.cfg.objective.name == "distilbert":
        return {"method": "distilbert-general", "loss": p.cfg.objective.model_dump(),
                "student": p.cfg.student.model_dump(), "teacher": p.info["teacher_name"]}
    return {"method": "tinybert-general", "layer_map": p.info["objective"].layer_map,
            "student": p.cfg.student.model_dump(), "teacher": p.info["teacher_name"]}


GENERAL = register(Recipe(
    name="general", students=("spec", "pretrained", "layers-from-teacher"), check=check_general, load=load_general,
    stages=lambda p: [Stage("", lambda p: p.info["objective"], lambda p: p.info["train"])], summary=general_summary,
))
