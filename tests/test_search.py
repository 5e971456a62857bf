"""`kdistill search` (issue 17, part 2): a 3-trial search on a tiny model and 200 rows runs, is scored on the held-out
selection slice (the dev split is never evaluated by a trial), resumes after an interruption without repeating finished
trials (and draws what an uninterrupted search draws), and its best config re-runs to the same metric."""

from __future__ import annotations

import json
import signal

import pytest
from typer.testing import CliRunner

from kdistill.errors import KDistillError

runner = CliRunner()


def _opts(glue_dir, **over):
    opts = dict(data_dir=str(glue_dir), max_train_samples=200, max_eval_samples=32, selection_size=20, epochs=1,
                batch_size=16, eval_steps=4, show_progress=False)
    opts.update(over)
    return opts


SEARCH = dict(n_trials=3, params=["temperature", "alpha", "learning_rate", "cos_weight"], report_latency_runs=2)


def _sigint_in_trial(n: int, at_step: int):
    """An engine callback: Ctrl-C (a real SIGINT) at ``at_step`` of the ``n``-th run it sees (1-based)."""
    seen = {"runs": 0}

    def cb(state):
        if state.global_step == 1:
            seen["runs"] += 1
        if seen["runs"] == n and state.global_step == at_step:
            signal.raise_signal(signal.SIGINT)

    return cb


def _dev_evaluations(monkeypatch) -> list:
    """Count calls of the engine's dev evaluation after training (what run_recipe calls for the reported split)."""
    import kdistill.engine

    calls, real = [], kdistill.engine.evaluate_model

    def spy(*args, **kw):
        calls.append(len(args[1]))
        return real(*args, **kw)

    monkeypatch.setattr(kdistill.engine, "evaluate_model", spy)
    return calls


def test_search_resumes_without_repeating_trials_and_best_config_reruns(tiny_teacher_dir, glue_dir, tmp_path,
                                                                        engine_spy, monkeypatch):
    from kdistill.config import load_config
    from kdistill.search import search
    from kdistill.search.trial import run_scored

    dev_calls = _dev_evaluations(monkeypatch)
    out = tmp_path / "search"
    first = search(str(tiny_teacher_dir), "sst2", output_dir=out, callbacks=[_sigint_in_trial(2, at_step=5)],
                   **SEARCH, **_opts(glue_dir))
    assert first.interrupted and first.final is None
    states = [(r["trial"], r["state"]) for r in first.rows]
    assert states == [(0, "complete"), (1, "interrupted")]
    assert (out / "trials" / "trial_001" / "checkpoint").exists()  # stopped with a checkpoint
    assert (out / "trials.csv").exists() and (out / "search.png").exists()
    assert len(engine_spy.calls) == 2 and dev_calls == []  # no trial evaluated the dev split
    for call in engine_spy.calls:
        assert len(call["kw"]["eval_ds"]) == 20  # the evaluator saw only the held-out slice
    trial0 = json.loads((out / "trials" / "trial_000" / "train_results.json").read_text())
    assert trial0["dev_evaluated"] is False and trial0["eval"] == {} and "accuracy" in trial0["selection_eval"]
    mtime0 = (out / "trials" / "trial_000" / "train_results.json").stat().st_mtime_ns

    engine_spy.calls.clear()
    res = search(str(tiny_teacher_dir), "sst2", output_dir=out, resume=True, **SEARCH, **_opts(glue_dir))
    assert not res.interrupted and res.final is not None
    counts = {}
    for r in res.rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    assert counts.get("complete", 0) + counts.get("pruned", 0) == 3 and counts.get("interrupted") == 1
    retry = next(r for r in res.rows if r["retry_of"] == 1)
    orig = next(r for r in res.rows if r["trial"] == 1)
    assert retry["run_dir"] == orig["run_dir"] == "trials/trial_001"
    assert {k: retry[k] for k in SEARCH["params"]} == {k: orig[k] for k in SEARCH["params"]}
    dirs = [str(c["kw"]["output_dir"].path if hasattr(c["kw"]["output_dir"], "path") else c["kw"]["output_dir"])
            for c in engine_spy.calls]
    assert not any(d.endswith("trial_000") for d in dirs)  # the finished trial was not run again
    assert (out / "trials" / "trial_000" / "train_results.json").stat().st_mtime_ns == mtime0
    assert engine_spy.calls[0]["kw"]["resume"] is True  # the interrupted trial continued from its checkpoint
    assert len(engine_spy.calls) == 3  # retried trial, the third trial, the final run
    assert dev_calls == [32]  # the dev split was evaluated once: by the final run

    # an uninterrupted search with the same seeds draws the same settings in the same order
    plain = search(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "plain", final=False, **SEARCH,
                   **_opts(glue_dir))
    drawn = [tuple(r[k] for k in SEARCH["params"]) for r in res.rows if r["state"] != "interrupted"]
    assert drawn == [tuple(r[k] for k in SEARCH["params"]) for r in plain.rows]
    assert [r["accuracy"] for r in plain.rows] == [r["accuracy"] for r in res.rows if r["state"] != "interrupted"]

    with pytest.raises(KDistillError, match="settings differ from the search's"):  # a resume must match
        search(str(tiny_teacher_dir), "sst2", output_dir=out, resume=True, **{**SEARCH, "params": ["alpha"]},
               **_opts(glue_dir))

    # the best config re-runs exactly (as `kdistill distill --config best_config.json` does): same dev metric and
    # predictions
    import kdistill.api

    best = load_config(out / "best_config.json")
    assert best.output_dir == str(out / "final") and best.method.temperature == res.best_params["temperature"]
    assert best.train.epochs == 1 and best.train.max_steps is None  # the base run's length, not a trial's
    again = kdistill.api.distill(config=out / "best_config.json", output_dir=tmp_path / "again", report=False)
    assert again.metrics == res.final.metrics
    _assert_same_predictions(out / "final", tmp_path / "again", glue_dir)
    # ... and the best trial's exact config re-runs to the trial's selection metric
    exact = load_config(out / "best_trial.json")
    _, metrics = run_scored(exact.model_copy(update={"output_dir": str(tmp_path / "trial_again")}))
    assert metrics["accuracy"] == res.best_value
    summary = json.loads((out / "search_results.json").read_text())
    assert summary["best_trial"] == res.best_trial and summary["final"]["dev_metrics"] == res.final.metrics
    assert "scored_on" in summary and "selection" in summary["scored_on"]


def _assert_same_predictions(a, b, glue_dir):
    import numpy as np

    from kdistill.config import DataConfig
    from kdistill.data.batching import eval_loader, tokenize
    from kdistill.data.loading import load_data
    from kdistill.engine.evaluation import predict
    from kdistill.models import load_classifier, load_tokenizer

    splits, spec = load_data(DataConfig(task="sst2", data_dir=str(glue_dir), max_eval_samples=32))
    out = []
    for path in (a, b):
        net, tok = load_classifier(str(path), spec, require_trained_head=True), load_tokenizer(str(path))
        logits, _ = predict(net, eval_loader(tokenize(splits["validation"], tok), tok, batch_size=32), show_progress=False)
        out.append(logits)
    np.testing.assert_allclose(out[0], out[1], rtol=0, atol=1e-6)


def test_multi_objective_search_measures_latency_and_keeps_a_pareto_front(tiny_teacher_dir, glue_dir, tmp_path):
    from kdistill.search import search

    res = search(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "mo", n_trials=3, objective="metric-latency",
                 params=["alpha"], ranges={"num_layers": "1:3"}, final=False, latency_runs=3, latency_budget_ms=1e6,
                 **_opts(glue_dir, eval_steps=None))
    assert all(r["latency_ms"] is not None and r["latency_ms"] > 0 for r in res.rows)
    assert res.pareto and res.best_trial in res.pareto and res.best_latency_ms is not None
    front = [r for r in res.rows if r["pareto"]]
    for r in res.rows:  # no trial dominates a front trial (as good in both objectives, better in one)
        for f in front:
            assert not (r["accuracy"] >= f["accuracy"] and r["latency_ms"] <= f["latency_ms"]
                        and (r["accuracy"] > f["accuracy"] or r["latency_ms"] < f["latency_ms"]))
    layers = {len(json.loads((tmp_path / "mo" / r["run_dir"] / "kdistill_run.json").read_text())["student"]["layers"])
              for r in res.rows}
    assert layers <= {1, 2, 3}
    assert json.loads((tmp_path / "mo" / "best_config.json").read_text())["student"]["layers"] is not None
    with pytest.raises(KDistillError, match="Pareto front is within --latency-budget 1e-09 ms: the fastest, trial"):
        search(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "mo", resume=True, n_trials=3,
               objective="metric-latency", params=["alpha"], ranges={"num_layers": "1:3"}, final=False, latency_runs=3,
               latency_budget_ms=1e-9, **_opts(glue_dir, eval_steps=None))


def test_pruning_stops_a_trial_like_ctrl_c():
    from kdistill.engine.state import TrainState
    from kdistill.search.study import _Reporter

    class Trial:
        def __init__(self):
            self.reported = []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return len(self.reported) >= 2

    trial, state = Trial(), TrainState(total_steps=10)
    rep = _Reporter(trial, "accuracy", prune=True)
    state.global_step = 4
    state.history.append({"step": 4, "accuracy": 0.5})
    rep(state)
    assert not state.stop_requested and trial.reported == [(4, 0.5)]
    state.global_step = 5
    rep(state)  # no new evaluation: nothing reported again
    assert trial.reported == [(4, 0.5)]
    state.global_step = 8
    state.history.append({"step": 8, "accuracy": 0.4})
    rep(state)
    assert state.stop_requested and rep.pruned_at == 8
    second = TrainState(total_steps=6)  # a later stage (TinyBERT): its steps continue after the first's
    second.global_step = 2
    second.history.append({"step": 2, "accuracy": 0.6})
    rep(second)
    assert trial.reported[-1] == (12, 0.6)


def test_space_parsing_and_bad_input_is_one_line(tiny_teacher_dir, glue_dir, tmp_path):
    from kdistill.config import RunConfig, merge
    from kdistill.search import build_space, default_params, parse_param, search

    assert parse_param("T=1:8:log") == ("temperature", parse_param("temperature=1:8:log")[1])
    name, rng = parse_param("alpha=0|0.5|1")
    assert name == "alpha" and rng.choices == [0, 0.5, 1]
    assert parse_param("cos_weight=off") == ("cos_weight", None)
    assert parse_param("schedule.temperature=none|linear:4:1")[1].choices == ["none", "linear:4:1"]
    cfg = merge(RunConfig, teacher="t", output_dir="o")
    assert default_params(cfg) == ["temperature", "alpha", "learning_rate", "warmup_ratio", "cos_weight"]
    assert "temperature" not in default_params(merge(RunConfig, teacher="t", output_dir="o", kd_loss="mse"))
    space = build_space(cfg, overrides={"learning_rate": parse_param("lr=1e-4:1e-3:log")[1], "cos_weight": None})
    assert list(space.params) == ["temperature", "alpha", "learning_rate", "warmup_ratio"]
    assert space.params["learning_rate"].low == 1e-4
    for bad, msg in (("temprature=1:2", "not searchable"), ("alpha=2:1", "above high"), ("lr=0:1:log", "low > 0"),
                     ("alpha", "NAME=")):
        with pytest.raises(KDistillError, match=msg):
            parse_param(bad)
    with pytest.raises(KDistillError, match="no default range"):
        build_space(cfg, params=["num_layers"])
    with pytest.raises(KDistillError, match="not with --select-on dev"):
        search(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "dev", n_trials=1, select_on="dev",
               **_opts(glue_dir))
    assert not (tmp_path / "dev").exists()
    from kdistill.cli import app

    result = runner.invoke(app, ["search", "--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir),
                                 "--param", "temprature=1:4", "-o", str(tmp_path / "cli")])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not searchable" in lines[0]


def test_search_command_shows_the_trials_and_writes_the_best_config(tiny_teacher_dir, glue_dir, tmp_path):
    from kdistill.cli import app

    out = tmp_path / "cli"
    result = runner.invoke(app, ["search", "--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir),
                                 "--max-train-samples", "200", "--max-eval-samples", "32", "--selection-size", "20",
                                 "--batch-size", "16", "--epochs", "1", "--trials", "2", "--no-final",
                                 "--param", "lr=1e-4:1e-3:log", "--params", "T,alpha", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "held-out selection slice" in result.output and "best trial" in result.output
    best = json.loads((out / "best_config.json").read_text())
    assert 1e-4 <= best["train"]["learning_rate"] <= 1e-3 and best["output_dir"] == str(out / "final")
    assert not (out / "final").exists()  # --no-final
    rows = (out / "trials.csv").read_text().splitlines()
    assert rows[0].startswith("trial,state,accuracy,temperature,alpha,learning_rate") and len(rows) == 3
