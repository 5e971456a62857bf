"""The iterative prune → distil schedule (`kdistill compress`) end to end on a tiny teacher."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from kdistill.api import compress
from kdistill.compress import layers_by_importance
from kdistill.errors import KDistillError

FAST = dict(batch_size=16, eval_batch_size=64, show_progress=False, max_train_samples=64, max_eval_samples=32)


def test_layers_by_importance_keeps_the_largest_sums():
    scores = torch.tensor([[0.1, 0.2], [0.9, float("nan")], [0.3, 0.3], [0.05, 0.0]])
    assert layers_by_importance(scores, 2) == [1, 2]
    with pytest.raises(KDistillError):
        layers_by_importance(scores, 5)


def test_prune_distil_rounds_until_the_head_target(tmp_path, tiny_teacher_dir, glue_dir):
    out = tmp_path / "c"
    rep = compress(str(tiny_teacher_dir), "sst2", output_dir=out, head_fraction=0.25, ffn_fraction=0.25,
                   layers_per_round=1, steps_per_round=2, importance_batches=2, target_heads=4, max_rounds=4,
                   latency_runs=3, data_dir=str(glue_dir), **FAST)
    rounds = rep["rounds"]
    # tiny teacher: 4 layers x 2 heads. Round 1: 2 heads pruned, 1 layer dropped -> 3 layers; ...
    assert rep["targets_met"] and rounds[-1]["heads"] <= 4
    assert [r["layers"] for r in rounds] == sorted([r["layers"] for r in rounds], reverse=True)
    assert rounds[0]["params"] < sum(p.numel() for p in AutoModelForSequenceClassification.from_pretrained(tiny_teacher_dir).parameters())
    for k in range(1, len(rounds) + 1):
        assert (out / f"round_{k}" / "importance" / "heads.png").exists()
        assert (out / f"round_{k}" / "student" / "report.json").exists()
    assert (out / "rounds.png").exists() and (out / "rounds.csv").exists()
    import kdistill.compress  # noqa: F401 - registers the compressed model type

    final = AutoModelForSequenceClassification.from_pretrained(out)
    assert sum(p.numel() for p in final.parameters()) == rounds[-1]["params"]
    assert json.loads((out / "report.json").read_text())["method"].startswith("compress")
    # resuming a finished schedule redoes nothing
    again = compress(str(tiny_teacher_dir), "sst2", output_dir=out, head_fraction=0.25, ffn_fraction=0.25,
                     layers_per_round=1, steps_per_round=2, importance_batches=2, target_heads=4, max_rounds=4,
                     latency_runs=3, data_dir=str(glue_dir), resume=True, **FAST)
    assert again["rounds"] == rounds
    # a longer final recovery on top of the finished rounds
    final = compress(str(tiny_teacher_dir), "sst2", output_dir=out, head_fraction=0.25, ffn_fraction=0.25,
                     layers_per_round=1, steps_per_round=2, importance_batches=2, target_heads=4, max_rounds=4,
                     final_steps=3, latency_runs=3, data_dir=str(glue_dir), resume=True, **FAST)
    assert final["rounds"] == rounds and final["final_recovery"]["student_params"] == rounds[-1]["params"]
    state = json.loads((out / "final" / "checkpoint" / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and state["finished"]


def test_compress_refuses_nothing_to_prune(tmp_path, tiny_teacher_dir):
    with pytest.raises(KDistillError, match="nothing to prune"):
        compress(str(tiny_teacher_dir), output_dir=tmp_path / "x", head_fraction=0, ffn_fraction=0)


def test_importance_chosen_layers_for_a_layers_from_teacher_student(tmp_path, tiny_teacher_dir, glue_dir):
    import kdistill

    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "imp", layers="importance", num_layers=2,
                           data_dir=str(glue_dir), report=False, epochs=1, **FAST)
    cfg = json.loads((tmp_path / "imp" / "kdistill_run.json").read_text())
    chosen = cfg["student"]["layers"]
    assert len(chosen) == 2 and chosen == sorted(chosen) and all(0 <= i < 4 for i in chosen)
    assert AutoModelForSequenceClassification.from_pretrained(res.output_dir).config.num_hidden_layers == 2


def test_importance_chosen_heads_for_a_layers_from_teacher_student(tmp_path, tiny_teacher_dir, glue_dir):
    import kdistill
    from kdistill.students.build import keep_teacher_heads
    from kdistill.compress.importance import compute_importance, gated
    from kdistill.errors import ModelError
    from kdistill.students import layers_from_teacher

    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "h", layers=[0, 3], keep_heads=1,
                           data_dir=str(glue_dir), epochs=1, latency_runs=3, **FAST)
    cfg = json.loads((tmp_path / "h" / "kdistill_run.json").read_text())
    heads = cfg["student"]["heads"]
    assert cfg["student"]["layers"] == [0, 3] and len(heads) == 2 and all(len(h) == 1 for h in heads)
    assert json.loads((tmp_path / "h" / "report.json").read_text())["student_heads"] == heads
    import kdistill.compress  # noqa: F401 - registers the compressed model type

    saved = AutoModelForSequenceClassification.from_pretrained(res.output_dir)
    assert saved.config.kdistill_heads_per_layer == [1, 1] and saved.config.num_hidden_layers == 2

    # the kept head is each layer's most important one, and the pruned copy equals the gated copy
    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_teacher_dir).eval()
    from kdistill.compress.importance import importance_batches
    from kdistill.data import load_splits
    from kdistill.data.batching import tokenize
    from kdistill.models import load_tokenizer

    tok = load_tokenizer(str(tiny_teacher_dir))
    splits = load_splits("sst2", data_dir=str(glue_dir), max_train_samples=64)[0]
    batches = importance_batches(tokenize(splits["train"], tok, max_length=128), tok, n_batches=16, batch_size=32, seed=42)
    raw = compute_importance(teacher, batches, loss="ce", exponent=None).head_importance
    assert heads == [[int(raw[0].argmax())], [int(raw[3].argmax())]]
    copy = layers_from_teacher(teacher, [0, 3]).eval()
    pruned = keep_teacher_heads(copy, heads).eval()
    gates = [torch.tensor([1.0 if h in kept else 0.0 for h in range(2)]) for kept in heads]
    x = {"input_ids": torch.randint(5, 60, (2, 7)), "attention_mask": torch.ones(2, 7, dtype=torch.long)}
    with torch.no_grad(), gated(copy, head_gates=gates):
        expect = copy(**x).logits
    torch.testing.assert_close(pruned(**x).logits, expect, atol=1e-5, rtol=1e-4)
    with pytest.raises(ModelError, match="at least one head"):
        keep_teacher_heads(copy, [[0], []])
    with pytest.raises(KDistillError, match="only 2 heads"):
        kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "x", keep_heads=3,
                         data_dir=str(glue_dir), epochs=1, report=False, **FAST)
    with pytest.raises(KDistillError, match="method kd"):
        kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "y", keep_heads=1, method="tinybert",
                         data_dir=str(glue_dir), report=False, **FAST)


def test_compress_cli_bad_fraction(tmp_path, tiny_teacher_dir):
    from typer.testing import CliRunner

    from kdistill.cli import app

    res = CliRunner().invoke(app, ["compress", "--teacher", str(tiny_teacher_dir), "--head-fraction", "1.5",
                                   "--output", str(tmp_path / "c")])
    assert res.exit_code == 2 and "--head-fraction" in res.output


def test_compress_with_lowrank_recovery_and_vocabulary_pruning(tmp_path, tiny_teacher_dir, glue_dir):
    out = tmp_path / "lv"
    rep = compress(str(tiny_teacher_dir), "sst2", output_dir=out, head_fraction=0.25, ffn_fraction=0.0,
                   steps_per_round=2, importance_batches=1, max_rounds=1, lowrank_rank=4, prune_vocab=True,
                   latency_runs=3, data_dir=str(glue_dir), **FAST)
    import kdistill.compress  # noqa: F401
    from transformers import AutoTokenizer

    lowrank_cfg = json.loads((out / "lowrank" / "student" / "config.json").read_text())
    assert lowrank_cfg.get("kdistill_lowrank")  # the factorised layers survived distillation and saving
    assert rep["vocab"]["kept_tokens"] < rep["vocab"]["vocab_before"]
    model = AutoModelForSequenceClassification.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.vocab_size == len(tok) == rep["vocab"]["kept_tokens"]
    assert (out / "report.json").exists()
