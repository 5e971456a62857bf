"""Build the student a :data:`~kdistill.config.StudentConfig` describes, from the teacher."""

from __future__ import annotations

from typing import Sequence

from kdistill.data.tasks import TaskSpec
from kdistill.errors import ModelError


def is_bilstm(model) -> bool:
    """True for a :mod:`kdistill.students.bilstm` model."""
    return getattr(getattr(model, "config", None), "model_type", None) == "kdistill-bilstm"


def build_student(cfg, teacher, task: TaskSpec, seed: int = 42, tokenizer=None):
    """The student ``cfg`` describes, derived from ``teacher`` (see :mod:`kdistill.students`).

    ``layers-from-teacher``: copies of ``cfg.layers`` (default every other), pruned to ``cfg.heads``
    when given; ``spec``: fresh model of the teacher's family; ``bilstm``: Tang et al. (2019), needs
    the teacher's ``tokenizer``; ``pretrained``: loaded from ``cfg.path``. Whatever the teacher's config says, the
    student's says the run's task: its ``problem_type`` and, for your own data, its labels
    (:func:`kdistill.models.set_task_labels`).

    Raises:
        ModelError: see :func:`keep_teacher_heads`, :func:`kdistill.students.from_spec`, the BiLSTM builder
            and :func:`kdistill.models.load_classifier`.
    """
    from kdistill.models import load_classifier, set_task_labels
    from kdistill.students.transformer import from_spec, layers_from_teacher

    said = getattr(getattr(teacher, "config", None), "problem_type", None)
    if said and said != task.problem_type:
        import logging

        logging.getLogger("kdistill").warning(
            "the teacher's config says %s but this run is %s; the student is saved as %s", said, task.problem_type,
            task.problem_type)
    if cfg.kind == "bilstm":
        from kdistill.students.bilstm.build import build_bilstm_student

        student = build_bilstm_student(cfg, teacher, task, tokenizer, seed=seed)
    elif cfg.kind == "layers-from-teacher":
        student = layers_from_teacher(teacher, cfg.layers)
        student = student if cfg.heads is None else keep_teacher_heads(student, cfg.heads)
    elif cfg.kind == "spec":
        student = from_spec(teacher.config, num_layers=cfg.num_layers, hidden_size=cfg.hidden_size,
                            num_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size, seed=seed)
    else:
        student = load_classifier(cfg.path, task, require_trained_head=False, what="student")
    set_task_labels(student.config, task)
    return student


def keep_teacher_heads(student, heads: Sequence[Sequence[int]]):
    """Prune a ``layers-from-teacher`` student down to the given heads of each copied layer.

    Args:
        student: a copy of teacher layers (:func:`kdistill.students.layers_from_teacher`).
        heads: one list per student layer of the head indices to keep (the teacher's numbering).

    Returns:
        A ``kdistill-compressed-*`` model (:func:`kdistill.compress.prune_heads`); it loads with
        ``AutoModelForSequenceClassification.from_pretrained`` once ``kdistill.compress`` is imported.

    Raises:
        ModelError: one list per layer missing, a head index out of range, or a layer left with no head.
    """
    from kdistill.compress.modeling import heads_per_layer
    from kdistill.compress.prune import prune_heads

    counts = heads_per_layer(student)
    if len(heads) != len(counts):
        raise ModelError(f"heads: need one list of kept heads per student layer ({len(counts)}), got {len(heads)}")
    remove = {}
    for layer, (kept, n) in enumerate(zip(heads, counts)):
        kept = {int(h) for h in kept}
        if not kept or not kept <= set(range(n)):
            raise ModelError(f"heads: layer {layer} must keep at least one head in 0..{n - 1}, got {sorted(kept)}")
        remove[layer] = sorted(set(range(n)) - kept)
    return prune_heads(student, remove) if any(remove.values()) else student
