"""Recipe ``tinybert``: TinyBERT's task-specific distillation (Jiao et al. 2020, Sec. 3.2) in two stages.

1. ``intermediate/``: attention + hidden-state + embedding losses for ``tinybert.intermediate_epochs``
   (its own checkpoint, logs, last student and ``projections.safetensors``);
2. the run root: the prediction-layer loss for ``tinybert.prediction_epochs``, from step 1's student;
   the best student on the dev metric is kept.

``--resume`` continues the unfinished stage (a finished step 1 is not redone).
"""

from __future__ import annotations

from kdistill.errors import KDistillError
from kdistill.recipes.base import Prepared, Recipe, Stage, register
from kdistill.recipes.kd import check_augment, load_task, prepare_task_data, student_facts, task_summary

TRANSFORMER_STUDENTS = ("layers-from-teacher", "spec", "pretrained")
NO_BILSTM = ("; a BiLSTM student has no per-token hidden states or attention: distil it with --method kd and "
             "--cos-weight 0 (the paper: --kd-loss mse)")


def check_tinybert(cfg) -> None:
    check_augment(cfg)
    sc = cfg.student
    if getattr(sc, "keep_heads", None) or getattr(sc, "heads", None) is not None:  # before any importance pass
        raise KDistillError("--keep-heads gives layers different head counts, which TinyBERT's attention loss "
                            "does not map; use it with --method kd")


def load_tinybert(cfg) -> Prepared:
    """:func:`~kdistill.recipes.kd.load_task`, then the layer-wise checks (encoder layouts, depth, layer map)."""
    from kdistill.objectives.layer_map import layer_map
    from kdistill.students.transformer import check_layerwise_pair, num_layers

    p = load_task(cfg)
    check_layerwise_pair(p.student, p.teacher)
    layer_map(num_layers(p.student.config), num_layers(p.teacher.config), cfg.method.layer_map)  # raises on a bad map
    return p


def _objective(stage: str):
    def build(p: Prepared):
        from kdistill.objectives import tinybert_objective

        return tinybert_objective(p.task, p.cfg.method, p.student.config, p.teacher.config, stage)

    return build


def _intermediate_train(p: Prepared):
    tb, tr = p.cfg.method, p.cfg.train
    return tr.model_copy(update={"epochs": tb.intermediate_epochs, "max_steps": None,
                                 "learning_rate": tb.intermediate_learning_rate or tr.learning_rate})


def _prediction_train(p: Prepared):
    return p.cfg.train.model_copy(update={"epochs": p.cfg.method.prediction_epochs})


def tinybert_stages(p: Prepared) -> list[Stage]:
    stages = [Stage("intermediate", _objective("intermediate"), _intermediate_train)] if p.cfg.method.intermediate_epochs > 0 else []
    return stages + [Stage("", _objective("prediction"), _prediction_train)]


def tinybert_report_extra(p: Prepared, objective) -> dict:
    tb = p.cfg.method
    return {"temperature": None if p.task.is_regression else tb.temperature, "alpha": tb.alpha, "tinybert": tb.model_dump(), "layer_map": objective.layer_map,
            **student_facts(p)}


TINYBERT = register(Recipe(
    name="tinybert", students=TRANSFORMER_STUDENTS, student_kind_hint=NO_BILSTM, check=check_tinybert,
    load=load_tinybert, data=prepare_task_data, stages=tinybert_stages, summary=task_summary,
    report_extra=tinybert_report_extra,
))
