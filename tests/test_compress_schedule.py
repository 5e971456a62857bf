"""The iterative prune → distil schedule (`kdistill compress`) end to end on a tiny teacher."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from kdistill.api import compress
from kdistill.compress import layers_by_importance
from kdistill.errors import KDistillError

FAST = dict(batch_size=16, eval_batch_size=64, show_progress=False, max_train_samples=64, max_eval_samples=32)
# tiny teacher (4 layers x 2 heads): 8 -> 4 heads / 3 layers (round 1) -> 2 / 2 (round 2) -> 1 / 1 (round 3)
SCHEDULE = dict(head_fraction=0.25, ffn_fraction=0.25, layers_per_round=1, steps_per_round=2, importance_batches=2,
                target_heads=1, max_rounds=4, latency_runs=3, **FAST)
# what a round record holds besides timings (latency, speedup and seconds differ between two runs of the same round)
STRUCTURE = ("round", "layers", "heads", "ffn", "params", "metric", "teacher_metric", "retention", "removed_heads",
             "removed_neurons", "removed_layers")


def _snapshot(root: Path) -> dict:
    """Every file and folder under ``root``: its mtime_ns and, for files, a hash of the contents."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.is_file() and hashlib.sha1(p.read_bytes()).hexdigest())
            for p in sorted([root, *root.rglob("*")])}


def _structure(rounds: list[dict]) -> list[dict]:
    return [{k: r[k] for k in STRUCTURE} for r in rounds]


def _weights(path: Path) -> dict:
    return load_file(str(path / "model.safetensors"))


@pytest.fixture(scope="module")
def full_schedule(tmp_path_factory, tiny_teacher_dir, glue_dir):
    """One uninterrupted schedule down to one head (three rounds), shared by the tests that compare with it."""
    out = tmp_path_factory.mktemp("compress") / "c"
    rep = compress(str(tiny_teacher_dir), "sst2", output_dir=out, data_dir=str(glue_dir), **SCHEDULE)
    return out, rep


def test_layers_by_importance_keeps_the_largest_sums():
    scores = torch.tensor([[0.1, 0.2], [0.9, float("nan")], [0.3, 0.3], [0.05, 0.0]])
    assert layers_by_importance(scores, 2) == [1, 2]
    with pytest.raises(KDistillError):
        layers_by_importance(scores, 5)


def test_prune_distil_rounds_until_the_head_target(full_schedule, tiny_teacher_dir, glue_dir, monkeypatch):
    out, rep = full_schedule
    from kdistill.reporting import Report

    assert isinstance(rep, Report) and rep.files["json"].endswith("report.json")  # typed, as distill's report
    rounds = rep["rounds"]
    # tiny teacher: 4 layers x 2 heads. Round 1: 2 heads pruned, 1 layer dropped -> 3 layers; ...
    assert rep["targets_met"] and [r["heads"] for r in rounds] == [4, 2, 1]  # stops at the first round meeting it
    assert [r["layers"] for r in rounds] == [3, 2, 1]
    assert rounds[0]["params"] < sum(p.numel() for p in AutoModelForSequenceClassification.from_pretrained(tiny_teacher_dir).parameters())
    for k in range(1, len(rounds) + 1):
        assert (out / f"round_{k}" / "importance" / "heads.png").exists()
        assert (out / f"round_{k}" / "student" / "report.json").exists()
    assert not (out / "round_4").exists()
    assert (out / "rounds.png").exists() and (out / "rounds.csv").exists()
    import kdistill.compress  # noqa: F401 - registers the compressed model type

    final = AutoModelForSequenceClassification.from_pretrained(out)
    assert sum(p.numel() for p in final.parameters()) == rounds[-1]["params"]
    assert json.loads((out / "report.json").read_text())["method"].startswith("compress")

    import kdistill.compress.importance as importance_mod
    import kdistill.recipes.compress as recipe_mod

    pruned_rounds, importance_calls = [], []
    real_prune, real_importance = recipe_mod._prune_round, importance_mod.compute_importance

    def spy_prune(*args, **kwargs):  # _prune_round(current, teacher_model, batches, ccfg, rdir, rnd, tokenizer)
        pruned_rounds.append(args[5] if len(args) > 5 else kwargs["rnd"])
        return real_prune(*args, **kwargs)

    def spy_importance(*args, **kwargs):
        importance_calls.append(1)
        return real_importance(*args, **kwargs)

    monkeypatch.setattr(recipe_mod, "_prune_round", spy_prune)
    monkeypatch.setattr(importance_mod, "compute_importance", spy_importance)

    # interrupted after round 1: round 2's recovery stops after its first step (as Ctrl-C would)
    part = out.parent / "part"
    real_run_recipe = recipe_mod.run_recipe

    def stop_in_round_2(cfg, **kwargs):
        if Path(cfg.output_dir) == part / "round_2" / "student" and not cfg.resume:
            def stop(state):
                state.stop_requested = True

            kwargs["callbacks"] = [stop]
        return real_run_recipe(cfg, **kwargs)

    monkeypatch.setattr(recipe_mod, "run_recipe", stop_in_round_2)
    first = compress(str(tiny_teacher_dir), "sst2", output_dir=part, data_dir=str(glue_dir), **SCHEDULE)
    assert first["interrupted"] and first["round"] == 2 and _structure(first["rounds"]) == _structure(rounds[:1])
    state = json.loads((part / "round_2" / "student" / "checkpoint" / "trainer_state.json").read_text())
    assert state["global_step"] == 1 and not state["finished"]
    assert pruned_rounds == [1, 2] and len(importance_calls) == 2
    round_1 = _snapshot(part / "round_1")
    round_2_pruned = _snapshot(part / "round_2" / "pruned")
    cache = _snapshot(part / "teacher_logits")

    # resume: round 1 is not redone (files untouched, no importance pass), round 2's recovery continues from its
    # checkpoint (not pruned again), round 3 is new; the result equals the uninterrupted schedule's
    pruned_rounds.clear(), importance_calls.clear()
    resumed = compress(str(tiny_teacher_dir), "sst2", output_dir=part, data_dir=str(glue_dir), resume=True, **SCHEDULE)
    assert pruned_rounds == [3] and len(importance_calls) == 1
    assert _snapshot(part / "round_1") == round_1
    assert _snapshot(part / "round_2" / "pruned") == round_2_pruned
    assert _snapshot(part / "teacher_logits") == cache  # teacher logits cached once for all rounds
    assert json.loads((part / "round_2" / "student" / "checkpoint" / "trainer_state.json").read_text())["global_step"] == 2
    assert resumed["targets_met"] and _structure(resumed["rounds"]) == _structure(rounds)
    assert resumed["rounds"][0] == first["rounds"][0]  # round 1's record is the one written before the interruption
    for k in (2, 3):
        a, b = _weights(out / f"round_{k}" / "student"), _weights(part / f"round_{k}" / "student")
        assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a), k
    a, b = _weights(out), _weights(part)
    assert all(torch.equal(a[n], b[n]) for n in a)

    # resuming a finished schedule redoes no round
    pruned_rounds.clear(), importance_calls.clear()
    before = {k: _snapshot(out / f"round_{k}") for k in (1, 2, 3)}
    again = compress(str(tiny_teacher_dir), "sst2", output_dir=out, data_dir=str(glue_dir), resume=True, **SCHEDULE)
    assert again["rounds"] == rounds and pruned_rounds == [] and importance_calls == []
    assert {k: _snapshot(out / f"round_{k}") for k in (1, 2, 3)} == before
    # a longer final recovery on top of the finished rounds
    final = compress(str(tiny_teacher_dir), "sst2", output_dir=out, data_dir=str(glue_dir), resume=True, final_steps=3,
                     **SCHEDULE)
    assert final["rounds"] == rounds and final["final_recovery"]["student_params"] == rounds[-1]["params"]
    assert pruned_rounds == []
    state = json.loads((out / "final" / "checkpoint" / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and state["finished"]


def test_targets_met_needs_every_given_target():
    from kdistill.compress import RoundRecord, targets_met

    rec = RoundRecord(round=1, layers=3, heads=6, ffn=100, params=1000, metric=0.8, teacher_metric=0.9, retention=0.89,
                      student_latency_ms=4.0, teacher_latency_ms=10.0, speedup=2.5, train_seconds=1.0, removed_heads=2,
                      removed_neurons=10, removed_layers=[1])
    none = dict(target_speedup=None, target_params=None, target_heads=None)
    assert not targets_met(rec, **none)  # no target: never met (the schedule runs to max_rounds)
    assert targets_met(rec, **{**none, "target_speedup": 2.5}) and not targets_met(rec, **{**none, "target_speedup": 2.51})
    assert targets_met(rec, **{**none, "target_params": 1000}) and not targets_met(rec, **{**none, "target_params": 999})
    assert targets_met(rec, **{**none, "target_heads": 6}) and not targets_met(rec, **{**none, "target_heads": 5})
    assert targets_met(rec, target_speedup=2.0, target_params=1000, target_heads=8)
    assert not targets_met(rec, target_speedup=2.0, target_params=999, target_heads=8)  # all of them must hold
    assert not targets_met(rec, target_speedup=3.0, target_params=1000, target_heads=None)


def test_compress_stops_on_target_params_then_lowrank_energy(full_schedule, tiny_teacher_dir, glue_dir, tmp_path):
    """`kdistill compress --target-params N --lowrank-energy E`: stops at the first round with params <= N, then
    factorises every dense layer of that round's student to the rank keeping E of its squared singular values."""
    from typer.testing import CliRunner

    import kdistill.compress as kc
    from kdistill.cli import app
    from kdistill.compress.lowrank import saves_parameters, target_linears

    full = full_schedule[1]["rounds"]
    target = full[1]["params"]  # reached in round 2, not in round 1
    assert full[0]["params"] > target
    out = tmp_path / "tp"
    r = CliRunner().invoke(app, ["compress", "--teacher", str(tiny_teacher_dir), "--task", "sst2", "--data-dir", str(glue_dir),
                                 "--head-fraction", "0.25", "--ffn-fraction", "0.25", "--layers-per-round", "1",
                                 "--steps-per-round", "2", "--importance-batches", "2", "--max-rounds", "4",
                                 "--target-params", str(target), "--lowrank-energy", "0.5", "--batch-size", "16",
                                 "--max-train-samples", "64", "--max-eval-samples", "32", "--latency-runs", "3",
                                 "--output", str(out)])
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["targets_met"] and _structure(rep["rounds"]) == _structure(full[:2])
    assert (out / "round_2").exists() and not (out / "round_3").exists()

    base = AutoModelForSequenceClassification.from_pretrained(out / "round_2" / "student")
    factorized = AutoModelForSequenceClassification.from_pretrained(out / "lowrank" / "factorized")
    ranks = factorized.config.kdistill_lowrank
    expected = {}
    for path in target_linears(base):
        lin = base.get_submodule(path)
        rank = kc.rank_for_energy(torch.linalg.svdvals(lin.weight.detach().double()), 0.5)
        if saves_parameters(lin.in_features, lin.out_features, rank):
            expected[path] = rank
    assert expected and ranks == expected
    for path, rank in ranks.items():
        assert factorized.get_submodule(path)[0].weight.shape == (rank, base.get_submodule(path).in_features)
    recovered = json.loads((out / "lowrank" / "student" / "config.json").read_text())
    assert recovered["kdistill_lowrank"] == expected  # the factorised layers were distilled and saved as such
    assert rep["lowrank"]["student_params"] == kc.parameter_count(AutoModelForSequenceClassification.from_pretrained(out))
    assert rep["lowrank"]["student_params"] < full[1]["params"]


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
