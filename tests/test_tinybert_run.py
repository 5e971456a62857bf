"""TinyBERT through the engine: general distillation on streamed text, two-step task distillation, resume."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

import kdistill
from kdistill.config import TinyBertConfig
from kdistill.data.tasks import get_task
from kdistill.errors import KDistillError, ModelError
from kdistill.objectives import ModelSignal
from kdistill.objectives import tinybert_objective as TinyBertObjective

from conftest import make_tiny_bert

FAST = dict(batch_size=16, eval_batch_size=64, show_progress=False, logging_steps=2, max_train_samples=64,
            max_eval_samples=32)


def test_objective_projections_and_terms():
    """Width 16 → 32: projections exist, terms are finite, gradients reach the student and W_h."""
    student, teacher = make_tiny_bert(layers=2, hidden=16, heads=2), make_tiny_bert(layers=4, hidden=32, heads=2)
    obj = TinyBertObjective(get_task("sst2"), TinyBertConfig(), student.config, teacher.config, "intermediate")
    assert obj.layer_map == [2, 4] and obj.terms["hidden"].proj.weight.shape == (32, 16)
    from kdistill.students.capture import capture_attention

    ids = torch.randint(5, 1000, (3, 7))
    mask = torch.ones_like(ids)
    mask[0, 5:] = 0
    with capture_attention(student) as rs, capture_attention(teacher) as rt:
        so = student(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        with torch.no_grad():
            to = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    s = ModelSignal(so.logits, so.hidden_states, list(rs.scores), list(rs.probs))
    t = ModelSignal(to.logits, to.hidden_states, list(rt.scores), list(rt.probs))
    terms = obj(s, {"attention_mask": mask}, t)
    assert set(terms) == {"attn", "hidden", "emb", "loss"}
    terms["loss"].backward()
    assert obj.terms["hidden"].proj.weight.grad.abs().sum() > 0
    assert student.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    assert set(obj.projection_state()) == {"proj_hidden.weight", "proj_hidden.bias", "proj_emb.weight", "proj_emb.bias"}


def test_objective_bad_map():
    with pytest.raises(ModelError, match="strictly increasing"):
        TinyBertObjective(get_task("sst2"), TinyBertConfig(layer_map=[3, 2]), make_tiny_bert(layers=2).config,
                          make_tiny_bert(layers=4).config, "intermediate")


def _stop_at(stops):
    """A callback that stops the stage whose ``total_steps`` is a key of ``stops`` at that global step (once)."""
    def callback(state):
        if stops.get(state.total_steps) == state.global_step:
            del stops[state.total_steps]
            state.stop_requested = True

    return callback


def _weights(path):
    return load_file(str(path))


def _assert_same(a, b, what):
    assert a.keys() == b.keys(), what
    for k in a:
        assert torch.equal(a[k], b[k]), f"{what}: {k}"


def test_two_step_task_distillation_and_resume(tmp_path, tiny_teacher_dir, glue_dir, engine_spy):
    """Interrupted once in each step and resumed twice = one uninterrupted run, bit for bit (student, projections,
    dev metrics); a finished step 1 is not redone on the second resume."""
    # 64 rows / batch 16: step 1 (intermediate) has 4 steps, step 2 (prediction, 2 epochs) 8; told apart by total_steps
    common = dict(num_layers=2, hidden_size=16, num_heads=2, intermediate_size=32, method="tinybert",
                  data_dir=str(glue_dir), intermediate_epochs=1, prediction_epochs=2, latency_runs=5, **FAST)
    full_dir, out = tmp_path / "full", tmp_path / "tb"
    full = kdistill.distill(str(tiny_teacher_dir), "sst2", "spec", output_dir=full_dir, report=False, **common)
    assert not full.interrupted

    stops = {4: 2, 8: 5}  # step 1 at its step 2 (mid-epoch), step 2 at its step 5 (mid second epoch)
    first = kdistill.distill(str(tiny_teacher_dir), "sst2", "spec", output_dir=out, report=False,
                             callbacks=[_stop_at(stops)], **common)
    assert first.interrupted and stops == {8: 5}
    state = json.loads((out / "intermediate" / "checkpoint" / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and not state["finished"] and not (out / "checkpoint").exists()
    second = kdistill.distill(str(tiny_teacher_dir), "sst2", "spec", output_dir=out, report=False, resume=True,
                              callbacks=[_stop_at(stops)], **common)
    assert second.interrupted and stops == {}
    step1 = (out / "intermediate" / "checkpoint" / "trainer_state.json")
    assert json.loads(step1.read_text())["finished"]
    assert json.loads((out / "checkpoint" / "trainer_state.json").read_text())["global_step"] == 5
    step1_before = (step1.read_text(), step1.stat().st_mtime_ns, (out / "intermediate" / "logs" / "train_log.csv").read_text())
    res = kdistill.distill(str(tiny_teacher_dir), "sst2", "spec", output_dir=out, resume=True, **common)
    assert not res.interrupted
    assert (step1.read_text(), step1.stat().st_mtime_ns,
            (out / "intermediate" / "logs" / "train_log.csv").read_text()) == step1_before  # step 1 not redone

    # engine calls: full (step 1, step 2), first (step 1 to 2), second (step 1 from 2, step 2 to 5), third (step 2 from 5)
    full1, full2, _, part1, _, part2 = engine_spy.calls
    assert [c["last_step"] for c in engine_spy.calls] == [4, 8, 2, 4, 5, 8]
    for a, b, what in ((full1, part1, "step 1"), (full2, part2, "step 2")):  # the last weights, not only the best
        _assert_same(a["last"], b["last"], f"{what} student")
        _assert_same(a["last_objective"], b["last_objective"], f"{what} objective (projections)")
    _assert_same(_weights(full_dir / "intermediate" / "projections.safetensors"),
                 _weights(out / "intermediate" / "projections.safetensors"), "projections")
    _assert_same(_weights(full_dir / "model.safetensors"), _weights(out / "model.safetensors"), "final student")
    assert res.metrics == full.metrics
    r_full, r_out = (json.loads((d / "train_results.json").read_text()) for d in (full_dir, out))
    assert r_out["best_step"] == r_full["best_step"] and r_out["global_step"] == r_full["global_step"] == 8

    log = (out / "intermediate" / "logs" / "train_log.csv").read_text()
    assert "train/attn" in log and "train/hidden" in log and "train/emb" in log
    assert "train/pred" in (out / "logs" / "train_log.csv").read_text()
    assert set(load_file(str(out / "intermediate" / "projections.safetensors"))) >= {"proj_hidden.weight"}
    rep = json.loads((out / "report.json").read_text())
    assert rep["method"] == "tinybert" and rep["layer_map"] == [2, 4]
    model = AutoModelForSequenceClassification.from_pretrained(out)  # the exported student has no projections
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 16
    assert not any("proj" in k for k in load_file(str(out / "model.safetensors")))


def test_general_distillation_streams_text_and_initialises_a_task_student(tmp_path, tiny_teacher_dir, glue_dir, engine_spy):
    """General distillation trains a base encoder on streamed text; a task run from it starts from exactly its weights."""
    text = tmp_path / "corpus.txt"
    rows = (glue_dir / "SST-2" / "train.tsv").read_text().splitlines()[1:81]
    text.write_text("\n".join(r.split("\t")[0] for r in rows) + "\n\n")
    gen = tmp_path / "general"
    res = kdistill.general_distill(str(tiny_teacher_dir), output_dir=gen, text_files=[str(text)], num_layers=2,
                                   hidden_size=16, num_heads=2, intermediate_size=32, batch_size=16, epochs=1,
                                   show_progress=False, logging_steps=1, layer_map="last")
    assert res.train_seconds > 0 and (gen / "model.safetensors").exists()
    summary = json.loads((gen / "train_results.json").read_text())
    assert summary["global_step"] == 5 and summary["layer_map"] == [3, 4]  # 80 passages / 16
    general = load_file(str(gen / "model.safetensors"))
    (g_call,) = engine_spy.calls
    _assert_same(general, g_call["end"], "saved general student vs the trained one")
    trained = [k for k in general if not torch.equal(general[k], g_call["start"][k])]
    assert any("encoder.layer" in k for k in trained)  # it was trained, so equal starting weights below mean "loaded"

    task = kdistill.distill(str(tiny_teacher_dir), "sst2", str(gen), output_dir=tmp_path / "task", method="tinybert",
                            data_dir=str(glue_dir), intermediate_epochs=0, prediction_epochs=1, report=False, **FAST)
    assert not task.interrupted
    (_, t_call) = engine_spy.calls  # intermediate_epochs=0: only the prediction step
    start = t_call["start"]
    prefix = t_call["kw"]["student"].base_model_prefix + "."
    for k, v in general.items():
        assert torch.equal(start[prefix + k], v), k
    assert set(start) - {prefix + k for k in general} == {"classifier.weight", "classifier.bias"}  # only the head is new


def test_general_distillation_needs_text(tmp_path):
    with pytest.raises(KDistillError, match="does not exist"):
        kdistill.general_distill(output_dir=tmp_path / "g", text_files=[str(tmp_path / "missing.txt")])


def test_augment_cli_writes_a_train_file_that_distill_reads(tmp_path, tiny_teacher_dir, glue_dir):
    from typer.testing import CliRunner

    from kdistill.cli import app

    out = tmp_path / "aug.tsv"
    res = CliRunner().invoke(app, ["augment", "--task", "sst2", "--data-dir", str(glue_dir), "--max-train-samples", "30",
                                   "--teacher", str(tiny_teacher_dir), "--n-aug", "2", "--output", str(out)])
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert lines[0] == "sentence\tlabel" and 30 < len(lines) - 1 <= 90
    bad = CliRunner().invoke(app, ["augment", "--task", "sst2", "--data-dir", str(glue_dir), "--teacher", str(tiny_teacher_dir),
                                   "--p-t", "1.5", "--output", str(tmp_path / "x.tsv")])
    assert bad.exit_code == 2 and "p_t" in bad.output
