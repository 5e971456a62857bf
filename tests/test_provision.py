"""`kdistill provision` (issue 17, part 4): on tiny models it picks a candidate whose own measured latency is under the
budget (the rule, not a timing that could flake: only relations that hold under noise are asserted), caches the
measurements per machine / runtime / shape, distils the winner with the usual report, and a budget nothing fits is
one line naming the fastest candidate's latency."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kdistill.errors import KDistillError

runner = CliRunner()


def _opts(glue_dir, **over):
    opts = dict(data_dir=str(glue_dir), max_train_samples=200, max_eval_samples=32, selection_size=20, epochs=1,
                batch_size=16, show_progress=False)
    opts.update(over)
    return opts


FAST = dict(latency_runs=5, warmup=1, report_latency_runs=2, kinds=["layers", "pruned", "spec", "bilstm"],
            layer_counts=[1, 2, 3], spec_layers=[1, 2], bilstm_hidden=[16], prune_shares=[(0.5, 1.0), (1.0, 0.5)])


def test_provision_picks_a_candidate_under_the_budget_and_distils_it(tiny_teacher_dir, glue_dir, tmp_path):
    from kdistill.provision import provision

    cache = tmp_path / "latency.json"
    # 1) measure every candidate once (a budget everything fits; nothing trained) — this fills the cache
    survey = provision(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "survey", latency_budget_ms=1e9,
                       runtime="eager", rank="capacity", distill=False, cache_file=cache, **FAST, **_opts(glue_dir))
    lat = sorted(c["latency_ms"] for c in survey.candidates)
    assert len(lat) == len(survey.candidates) >= 8 and all(x > 0 for x in lat)
    assert {c["kind"] for c in survey.candidates} == {"layers", "pruned", "spec", "bilstm"}
    budget = lat[len(lat) // 2]  # about half the candidates fit
    # 2) provision at that budget: cached measurements, short runs of the top 2, the winner distilled
    seen = []
    res = provision(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "prov", latency_budget_ms=budget,
                    runtime="eager", rank="short-run", top_k=2, short_steps=3, cache_file=cache,
                    on_candidate=seen.append, **FAST, **_opts(glue_dir))
    assert all(c["cached"] for c in res.candidates)  # every latency came from the cache
    by_name = {c["name"]: c for c in survey.candidates}
    for c in res.candidates:
        assert c["latency_ms"] == by_name[c["name"]]["latency_ms"]
        assert c["fits"] == (c["latency_ms"] <= budget)
    chosen = res.chosen
    assert chosen["chosen"] and chosen["latency_ms"] <= budget  # the chosen student's own measured latency
    shorts = [c for c in res.candidates if c["short_metric"] is not None]
    assert len(shorts) == 2 and chosen["name"] in {c["name"] for c in shorts}
    assert chosen["short_metric"] == max(c["short_metric"] for c in shorts)
    for c in shorts:  # short runs were scored on the selection slice, never on dev
        results = json.loads((tmp_path / "prov" / "short").joinpath(c["short_run"].split("/")[-1],
                                                                    "train_results.json").read_text())
        assert results["dev_evaluated"] is False and results["eval"] == {}
    assert res.final is not None and not res.final.interrupted and res.final.report is not None
    assert (tmp_path / "prov" / "student" / "report.json").exists()
    assert res.trained_latency_ms is not None and res.trained_latency_ms > 0
    out = tmp_path / "prov"
    for name in ("candidates.json", "candidates.csv", "candidates.md", "provision.png", "provision_results.json",
                 "student_config.json"):
        assert (out / name).exists(), name
    table = (out / "candidates.csv").read_text().splitlines()
    assert len(table) == len(res.candidates) + 1
    md = (out / "candidates.md").read_text()
    assert "★" in md and f"Budget {budget:g} ms" in md
    summary = json.loads((out / "provision_results.json").read_text())
    assert summary["chosen"]["name"] == chosen["name"] and summary["final"]["dev_metrics"] == res.final.metrics
    # the cache is keyed by machine, then runtime | batch | length | threads | shape
    data = json.loads(cache.read_text())
    (machine,) = data["machines"].values()
    keys = list(machine["entries"])
    assert keys and all(k.startswith("eager|bs1|len") for k in keys)
    assert len(keys) == len(res.candidates) + 1  # + the teacher


def test_an_impossible_budget_is_one_line_naming_the_fastest(tiny_teacher_dir, glue_dir, tmp_path):
    from kdistill.cli import app
    from kdistill.provision import provision

    cache = tmp_path / "latency.json"
    with pytest.raises(KDistillError) as err:
        provision(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "none", latency_budget_ms=1e-6, runtime="eager",
                  cache_file=cache, **FAST, **_opts(glue_dir))
    msg = str(err.value)
    assert "\n" not in msg and "no candidate student fits --latency-budget 1e-06 ms" in msg
    fastest = min(json.loads((tmp_path / "none" / "candidates.json").read_text())["candidates"],
                  key=lambda c: c["latency_ms"])
    assert f"the fastest, {fastest['name']}, measures {fastest['latency_ms']:.3f} ms" in msg
    assert not (tmp_path / "none" / "student").exists()  # nothing trained
    result = runner.invoke(app, ["provision", "--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir),
                                 "--max-train-samples", "200", "--max-eval-samples", "32", "--latency-budget", "0.000001",
                                 "--runtime", "eager", "--kinds", "layers,bilstm", "--layer-counts", "1",
                                 "--bilstm-hidden", "16", "--latency-runs", "3", "--latency-cache", str(cache),
                                 "-o", str(tmp_path / "cli")])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error")]
    assert len(lines) == 1 and "the fastest" in lines[0] and "measures" in lines[0]
    with pytest.raises(KDistillError, match="--runtime must be one of eager, ort, ort-int8"):
        provision(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "bad", latency_budget_ms=1.0, runtime="gpu",
                  **_opts(glue_dir))


def test_ort_int8_candidates_are_measured_in_onnx_runtime(tiny_teacher_dir, glue_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from kdistill.provision import provision

    res = provision(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "ort", latency_budget_ms=1e9,
                    runtime="ort-int8", rank="capacity", distill=False, cache_file=tmp_path / "lat.json",
                    latency_runs=3, warmup=1, kinds=["layers", "bilstm"], layer_counts=[1, 3], bilstm_hidden=[16],
                    **_opts(glue_dir))
    assert len(res.candidates) == 3 and all(c["latency_ms"] > 0 for c in res.candidates)
    assert all(c["size_mb"] > 0 for c in res.candidates)  # the .onnx file's size (MB)
    assert res.chosen["name"] == "layers 3 (0, 2, 3)"  # capacity: teacher weights first, then the most parameters
    keys = list(json.loads((tmp_path / "lat.json").read_text())["machines"].values())[0]["entries"]
    assert all(k.startswith("ort-int8|") for k in keys)


def test_candidates_enumeration_and_importance_pruning(tiny_teacher_dir, glue_dir, tmp_path):
    from kdistill.compress.modeling import ffn_per_layer, heads_per_layer
    from kdistill.config import DataConfig, LayersFromTeacherStudent, PretrainedStudent
    from kdistill.data.batching import tokenize
    from kdistill.data.loading import load_data
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.provision.candidates import build, enumerate_candidates, student_config, teacher_shape

    splits, task = load_data(DataConfig(task="sst2", data_dir=str(glue_dir), max_train_samples=64, max_eval_samples=8))
    teacher = load_classifier(str(tiny_teacher_dir), task, require_trained_head=True)
    tok = load_tokenizer(str(tiny_teacher_dir))
    t = teacher_shape(teacher)
    assert (t.layers, t.hidden, t.heads, t.ffn) == (4, 32, 2, 64)
    cands = enumerate_candidates(t)
    names = [c.name for c in cands]
    assert len(names) == len(set(names))
    assert "layers 4 (0, 1, 2, 3)" not in names  # the teacher itself is no candidate
    assert all(c.shape["hidden"] < t.hidden for c in cands if c.kind == "spec")  # a random teacher-width model is not
    with pytest.raises(KDistillError, match="unknown candidate kind"):
        enumerate_candidates(t, kinds=["layers", "lstm"])
    pruned = next(c for c in cands if c.kind == "pruned" and c.shape["keep_ffn"] < t.ffn and c.shape["keep_heads"] < t.heads
                  and len(c.shape["layers"]) == 2)
    net = build(pruned, teacher, task, tok)
    assert heads_per_layer(net) == [pruned.shape["keep_heads"]] * 2 and ffn_per_layer(net) == [pruned.shape["keep_ffn"]] * 2
    heads_only = next(c for c in cands if c.kind == "pruned" and c.shape["keep_ffn"] == t.ffn)
    assert student_config(heads_only, teacher=teacher) == LayersFromTeacherStudent(
        layers=heads_only.shape["layers"], keep_heads=heads_only.shape["keep_heads"])
    ds = tokenize(splits["train"], tok, max_length=64)
    sc = student_config(pruned, teacher=teacher, tokenizer=tok, train_ds=ds, workdir=tmp_path / "p", seed=0)
    assert isinstance(sc, PretrainedStudent)
    saved = load_classifier(sc.path, task, require_trained_head=False)
    assert heads_per_layer(saved) == [pruned.shape["keep_heads"]] * 2
    assert ffn_per_layer(saved) == [pruned.shape["keep_ffn"]] * 2
