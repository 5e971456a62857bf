"""Recipes as data: a custom recipe in a few lines runs through the one lifecycle; presets derive their needs."""

import json

import pytest
import torch

from conftest import make_tiny_bert
from kdistill.config import LayersFromTeacherStudent, PretrainedStudent, RunConfig, merge, student_config
from kdistill.data.tasks import get_task
from kdistill.errors import KDistillError
from kdistill.objectives import Objective, kd_objective, make_term, tinybert_objective
from kdistill.config import DistillConfig, TinyBertConfig
from kdistill.recipes import RECIPES, Recipe, Stage, get_recipe, register, run_recipe
from kdistill.recipes.kd import kd_report_extra, load_task, prepare_task_data, task_summary


def test_custom_recipe_runs_through_the_lifecycle(tiny_teacher_dir, glue_dir, tmp_path):
    """The README's born-again example: one objective, one stage, registered and run like a built-in."""

    def soft_only(p):
        return Objective("born-again", p.task, [("soft", 1.0, make_term("soft_kl", task=p.task, temperature=2.0))])

    name = "born-again-test"
    recipe = RECIPES.get(name) or register(Recipe(
        name=name, students=("pretrained",), load=load_task, data=prepare_task_data,
        stages=lambda p: [Stage("", soft_only)], summary=task_summary, report_extra=kd_report_extra))
    t = str(tiny_teacher_dir)
    cfg = RunConfig(teacher=t, student=PretrainedStudent(path=t), output_dir=str(tmp_path / "ba"),
                    data={"data_dir": str(glue_dir), "max_train_samples": 64, "max_eval_samples": 32},
                    train={"epochs": 1, "batch_size": 16, "show_progress": False, "logging_steps": 1})
    res = run_recipe(cfg, recipe=recipe, latency_runs=3)
    out = tmp_path / "ba"
    assert not res.interrupted and res.report is not None
    results = json.loads((out / "train_results.json").read_text())
    assert results["method"] == name and results["global_step"] == 4
    keys = {line.split(",")[1] for line in (out / "logs" / "train_log.csv").read_text().splitlines()[1:]}
    assert {"train/soft", "train/loss"} <= keys and "train/hard" not in keys  # only the recipe's term
    assert json.loads((out / "report.json").read_text())["method"] == name
    with pytest.raises(KDistillError, match="registered twice"):
        register(recipe)


def test_recipe_checks_student_kind_before_loading(tmp_path):
    cfg = RunConfig(method="tinybert", teacher="/does/not/exist", student={"kind": "bilstm"}, output_dir=str(tmp_path / "x"))
    with pytest.raises(KDistillError, match="BiLSTM student has no per-token"):
        run_recipe(cfg)
    assert not (tmp_path / "x").exists()
    with pytest.raises(KDistillError, match="unknown method 'nope'"):
        get_recipe("nope")


def test_merge_routes_flat_options_and_never_mutates():
    cfg = merge(RunConfig, method="tinybert", teacher="t", student="spec", output_dir="o", num_layers=2, hidden_size=16,
                num_heads=2, temperature=3.0, alpha=0.2, epochs=1.5, data_dir="d")
    assert cfg.student.kind == "spec" and cfg.student.num_layers == 2
    assert cfg.method.name == "tinybert" and cfg.method.temperature == 3.0 and "distill" not in cfg.model_dump()
    assert cfg.train.epochs == 1.5 and cfg.data.data_dir == "d"
    kd = merge(RunConfig, teacher="t", output_dir="o", temperature=3.0, layers="importance", num_layers=2)
    assert kd.method.temperature == 3.0 and kd.student.layer_selection == "importance" and kd.student.num_layers == 2
    assert merge(RunConfig, teacher="t", output_dir="o").method.temperature == DistillConfig().temperature
    with pytest.raises(KDistillError, match="unknown option"):
        merge(RunConfig, teacher="t", output_dir="o", temprature=3.0)
    with pytest.raises(KDistillError, match="bilstm student only"):
        student_config("spec", num_layers=1, hidden_size=16, num_heads=2, bilstm_hidden=8)
    sc = LayersFromTeacherStudent()
    assert sc.model_copy(update={"layers": [0]}).layers == [0] and sc.layers is None


def test_presets_derive_needs_from_terms():
    task = get_task("sst2")
    assert not kd_objective(task, DistillConfig(alpha=1.0)).needs_teacher  # gold only: no teacher run
    cos = kd_objective(task, DistillConfig(alpha=0.5, cos_weight=1.0))
    assert cos.needs_teacher and cos.needs_hidden_states and list(cos.terms) == ["hard", "soft", "cos"]
    mse = kd_objective(task, DistillConfig(alpha=0.0, kd_loss="mse"))
    assert list(mse.terms) == ["soft"] and type(mse.terms["soft"]).key == "logit_mse"
    s, t = make_tiny_bert(layers=2, hidden=16).config, make_tiny_bert(layers=4, hidden=32).config
    inter = tinybert_objective(task, TinyBertConfig(hidden_weight=0.0), s, t, "intermediate")
    assert inter.needs_attentions and inter.needs_hidden_states  # emb_mse still needs hidden states
    assert inter.teacher_attention_layers == [1, 3] and inter.student_attention_layers == [0, 1]
    assert set(inter.projection_state()) == {"proj_emb.weight", "proj_emb.bias"}  # no W_h: hidden weight 0
    pred = tinybert_objective(task, TinyBertConfig(), s, t, "prediction")
    assert pred.select_best and not pred.needs_attentions and not pred.projection_state()
    with pytest.raises(KDistillError, match="unknown loss term"):
        make_term("soft_kll")


def test_objective_sums_in_order_and_keeps_graph_without_terms():
    task = get_task("sst2")
    zs = torch.tensor([[0.3, -0.2], [1.0, 0.5]], requires_grad=True)

    class Sig:
        logits = zs
        hidden_states = None

    teacher = Sig()
    teacher.logits = torch.tensor([[2.0, -1.0], [0.0, 1.0]])
    obj = kd_objective(task, DistillConfig(alpha=0.25, temperature=2.0))
    terms = obj(Sig, {"labels": torch.tensor([0, 1])}, teacher)
    assert torch.equal(terms["loss"], 0.25 * terms["hard"] + 0.75 * terms["soft"])
    empty = Objective("none", task, [])(Sig, {}, None)["loss"]
    empty.backward()
    assert empty.item() == 0.0 and zs.grad is not None
