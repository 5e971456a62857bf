"""Issue 24, items 12 and 13 (chain stop) and the undefined-metric parts of items 9 and 13: `kdistill run`'s teacher
stage has its own settings (learning rate, batch, an epoch cap, early stopping on the held-out metric), warns when it
ends still rising or when the student beats it; a teacher no better than the constant baseline stops the chain in one
line; an undefined metric (a correlation of constant predictions, a ratio to a metric of 0) is written as null with a
reason and every report, card and printer shows it as n/a. Tiny random models and small files made here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import make_tiny_bert
from kdistill.cli import app

runner = CliRunner()
FILLER = "the film has a plot with actors in every scene of the story and music".split()


def _strict_json(path: Path):
    """Parse ``path`` refusing NaN / Infinity (Python's json accepts them by default)."""
    def refuse(token):
        raise AssertionError(f"{path.name} holds {token}")

    return json.loads(Path(path).read_text(), parse_constant=refuse)


def _sentences(i: int, n: int = 8) -> str:
    return " ".join(FILLER[(i + j) % len(FILLER)] for j in range(n))


@pytest.fixture(autouse=True)
def _quick_reports(monkeypatch):
    """Reports without the ONNX Runtime rows and with 100 bootstrap resamples (neither is what these tests look at;
    1000 resamples of a multi-label F1 cost seconds)."""
    import kdistill.reporting.compare as compare

    monkeypatch.setattr(compare, "ORT_ROWS", False)
    real = compare.make_report
    monkeypatch.setattr(compare, "make_report", lambda **kw: real(**{**kw, "n_resamples": 100}))


@pytest.fixture()
def base_encoder(tmp_path, tiny_tokenizer):
    """A tiny random encoder with no task head: `kdistill run` fine-tunes it first (the teacher stage)."""
    path = tmp_path / "base"
    make_tiny_bert(layers=2).bert.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


def _keyword_csv(path: Path, n: int = 120) -> Path:
    """Two classes told apart by one word (wonderful / terrible) in 17-word rows: learnable by a tiny model."""
    rows = ["text,label"] + [f"{_sentences(i)} {'wonderful' if i % 2 else 'terrible'} {_sentences(i + 3)},{i % 2}"
                             for i in range(n)]
    path.write_text("\n".join(rows) + "\n")
    return path


# --------------------------------------------------------------------------- 12: the teacher stage's own settings
def test_teacher_stage_defaults_are_its_own_and_not_the_students():
    from kdistill.config import ChainConfig, RunConfig, TrainConfig
    from kdistill.recipes.chain import teacher_train_config

    student_train = TrainConfig(learning_rate=1e-3, batch_size=8, epochs=30, schedules={"temperature": "linear:4:1"},
                                max_steps=7, seed=5, eval_batch_size=16)
    chain = ChainConfig(run=RunConfig(output_dir="x", train=student_train))
    t = teacher_train_config(chain)
    assert (t.learning_rate, t.batch_size, t.epochs, t.early_stopping_patience, t.eval_steps) == (5e-5, 32, 10.0, 2, None)
    assert t.max_steps is None and t.schedules == {}  # nothing of the student's optimisation
    assert (t.seed, t.eval_batch_size) == (5, 16)  # the machine / bookkeeping settings carry over


def test_run_trains_the_teacher_with_its_own_settings_stops_early_and_records_them(tmp_path, base_encoder):
    data = _keyword_csv(tmp_path / "d.csv")
    out = tmp_path / "run"
    r = runner.invoke(app, ["run", "--teacher", str(base_encoder), "--train-file", str(data), "--validation-file", str(data),
                            "--text-columns", "text", "--label-column", "label", "--lr", "1e-3", "--batch-size", "8",
                            "--epochs", "1", "--teacher-lr", "1e-2", "--teacher-batch-size", "16", "--teacher-epochs", "12",
                            "--teacher-patience", "3", "--latency-runs", "2", "--output", str(out)])
    assert r.exit_code == 0, r.output
    teacher_cfg = json.loads((out / "teacher" / "kdistill_run.json").read_text())["train"]
    student_cfg = json.loads((out / "student" / "kdistill_run.json").read_text())["train"]
    assert (teacher_cfg["learning_rate"], teacher_cfg["batch_size"], teacher_cfg["epochs"],
            teacher_cfg["early_stopping_patience"]) == (1e-2, 16, 12.0, 3)
    assert (student_cfg["learning_rate"], student_cfg["batch_size"], student_cfg["epochs"]) == (1e-3, 8, 1.0)
    # early stopping on the held-out metric ended the teacher stage under its epoch cap
    state = json.loads((out / "teacher" / "checkpoint" / "trainer_state.json").read_text())
    assert state["finished"] and state["global_step"] < state["total_steps"], state
    # the chain's own record: the run and the teacher stage, read back by --config
    record = _strict_json(out / "kdistill_run.json")
    assert record["method"] == "chain" and record["teacher_stage"]["learning_rate"] == 1e-2
    assert record["teacher_stage"]["batch_size"] == 16 and record["run"]["train"]["learning_rate"] == 1e-3
    from kdistill.config import ChainConfig, load_config

    again = load_config(out / "kdistill_run.json")
    assert isinstance(again, ChainConfig) and again.teacher_stage.epochs == 12.0
    # a bad teacher option is named as such in one line (not as the student's --lr)
    r = runner.invoke(app, ["run", "--teacher", str(base_encoder), "--train-file", str(data), "--teacher-lr", "nan",
                            "--output", str(tmp_path / "bad")])
    assert r.exit_code == 2 and "--teacher-lr" in r.output and not (tmp_path / "bad").exists(), r.output


def _fake_stages(monkeypatch, tmp_path, *, history, selection, report):
    """Stand-ins for the two recipe runs of the chain: the teacher stage leaves its folder as a finished run does
    (train_results.json, a checkpoint's trainer_state.json with the held-out history), the student stage returns a
    result with ``report``. No training: these tests look at what the chain does with the stages' results."""
    import kdistill.recipes.chain as chain
    from kdistill.recipes.base import RunResult

    calls = []

    def fake(cfg, **kw):
        calls.append(cfg)
        out = Path(cfg.output_dir)
        (out / "checkpoint").mkdir(parents=True)
        if cfg.method.name == "finetune":
            (out / "train_results.json").write_text(json.dumps({"eval": {"accuracy": selection},
                                                                "selection_eval": {"accuracy": selection}}))
            (out / "checkpoint" / "trainer_state.json").write_text(json.dumps(
                {"global_step": 30, "total_steps": 30, "finished": True,
                 "history": [{"step": 10 * (i + 1), "accuracy": v} for i, v in enumerate(history)]}))
            return RunResult(out, {"accuracy": selection}, 1.0)
        return RunResult(out, {"accuracy": report["student_metric"]}, 1.0, report=report)

    monkeypatch.setattr(chain, "run_recipe", fake)
    return calls


def test_warns_when_the_teacher_was_still_rising_and_when_the_student_beats_it(tmp_path, base_encoder, monkeypatch,
                                                                                 caplog):
    import kdistill

    data = _keyword_csv(tmp_path / "d.csv")
    report = {"metric_name": "accuracy", "teacher_metric": 0.80, "student_metric": 0.88, "difference": -0.08,
              "ci_level": 0.95, "paired_test": {"name": "McNemar", "p_value": 0.002}}
    calls = _fake_stages(monkeypatch, tmp_path, history=[0.55, 0.70, 0.80], selection=0.80, report=report)
    seen = []
    with caplog.at_level("WARNING", logger="kdistill"):
        res = kdistill.run(str(base_encoder), None, output_dir=tmp_path / "run", train_file=str(data),
                           validation_file=str(data), text_columns=["text"], label_column="label", learning_rate=1e-3,
                           on_stage=lambda name, r: seen.append(name))
    assert [c.method.name for c in calls] == ["finetune", "kd"] and seen == ["teacher", "student"]
    assert calls[0].train.learning_rate == 5e-5 and calls[1].train.learning_rate == 1e-3  # not the student's lr
    rising, beaten = res.warnings
    assert "still rising" in rising and "0.5500 → 0.7000 → 0.8000" in rising and "--teacher-epochs" in rising
    assert "beats its teacher" in beaten and "p = 0.002" in beaten and "--teacher-lr" in beaten
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [rising, beaten]
    assert all("\n" not in w for w in res.warnings)
    # a teacher that stopped rising (early stopping) and a student not significantly better: no warning
    # (run again from the chain's record, --config RUN/kdistill_run.json, a teacher option given over it)
    report2 = {**report, "paired_test": {"name": "McNemar", "p_value": 0.4}}
    calls = _fake_stages(monkeypatch, tmp_path, history=[0.70, 0.80, 0.78], selection=0.80, report=report2)
    res = kdistill.run(config=tmp_path / "run" / "kdistill_run.json", output_dir=tmp_path / "run2", teacher_batch_size=8)
    assert res.warnings == []
    assert (calls[0].train.batch_size, calls[0].train.learning_rate, calls[1].train.learning_rate) == (8, 5e-5, 1e-3)


# --------------------------------------------------------------------------- 13: the chain stops at a useless teacher
def _goemotions_like(tmp_path: Path, n: int = 80) -> Path:
    """Multi-label rows with rare labels (each on at most a third of the rows): the per-label majority is all-negative."""
    names = ["joy", "anger", "fear", "love", "grief", "pride"]
    rows = ["text,labels"]
    for i in range(n):
        labels = [names[i % 6]] + ([names[(i + 2) % 6]] if i % 3 == 0 else [])
        rows.append(f"{_sentences(i, 12)} {' '.join(labels)},{'|'.join(labels)}")
    path = tmp_path / "emotions.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_teacher_stage_at_the_baseline_stops_the_chain_in_one_line(tmp_path, base_encoder, monkeypatch):
    """The all-negative collapse of a multi-label teacher (micro-F1 0.0, as the all-negative baseline): exit 2 with
    advice, the teacher kept, no student; the advice (--overwrite, more --teacher-epochs, a higher --teacher-lr) works."""
    from kdistill.recipes.base import RECIPES

    finetune = RECIPES["finetune"]
    real_load = finetune.load

    def collapsed(cfg):  # every label's logit about -20: the teacher predicts no label at any threshold
        p = real_load(cfg)
        with torch.no_grad():
            p.student.classifier.weight.zero_()
            p.student.classifier.bias.fill_(-20.0)
        return p

    monkeypatch.setattr(finetune, "load", collapsed)
    data = _goemotions_like(tmp_path)
    out = tmp_path / "run"
    args = ["run", "--teacher", str(base_encoder), "--train-file", str(data), "--validation-file", str(data),
            "--text-columns", "text", "--label-column", "labels", "--problem-type", "multi_label", "--teacher-epochs", "1",
            "--epochs", "1", "--batch-size", "16", "--latency-runs", "2", "--output", str(out)]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    error = next(line for line in r.output.splitlines() if line.startswith("error:"))
    assert "micro_f1 is 0.0000, not above the per-label-majority baseline's 0.0000" in error, error
    for advice in ("--overwrite", "--teacher-epochs", "--teacher-lr", "check the labels"):
        assert advice in error
    assert (out / "teacher" / "model.safetensors").exists() and not (out / "student").exists()
    # --resume does not slip past it either
    r = runner.invoke(app, args + ["--resume"])
    assert r.exit_code == 2 and "not above" in r.output and not (out / "student").exists(), r.output
    # the advice works: a new teacher stage replaces the kept one, and a teacher that learns goes on to a student
    monkeypatch.setattr(finetune, "load", real_load)
    r = runner.invoke(app, args + ["--overwrite", "--teacher-epochs", "3", "--teacher-lr", "1e-2"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "teacher" / "kdistill_run.json").read_text())["train"]["learning_rate"] == 1e-2
    assert (out / "student" / "report.json").exists()


# --------------------------------------------------------------------------- 9 / 13: undefined metrics, strict JSON
def test_to_json_maps_non_finite_values_to_null_with_a_reason():
    import numpy as np

    from kdistill.results import fmt_num, to_json

    text = to_json({"a": float("nan"), "b": [1.0, float("inf")], "c": np.float32(0.5), "d": np.array([1, 2]),
                    "undefined": {"a": "known reason"}})
    data = json.loads(text, parse_constant=lambda t: pytest.fail(t))
    assert data == {"a": None, "b": [1.0, None], "c": 0.5, "d": [1, 2],
                    "undefined": {"a": "known reason", "b.1": data["undefined"]["b.1"]}}
    assert "not a finite number" in data["undefined"]["b.1"]
    assert (fmt_num(None), fmt_num(float("nan")), fmt_num(0.25, ".1f", "%", scale=100)) == ("n/a", "n/a", "25.0%")


def test_report_with_an_undefined_teacher_metric_is_written_and_rendered(tmp_path):
    from kdistill.reporting import LatencyStats, ModelEntry, SizeStats, build_report, render_markdown, write_report

    def entry(name, metric):
        return ModelEntry(name=name, path=f"/runs/{name}", metric=metric,
                          size=SizeStats(params_total=100, params_non_embedding=50, disk_mb=1.0),
                          latency=LatencyStats(seq_len=8, batch1_median_ms=2.0, batch1_p90_ms=2.5, n_runs=5,
                                               throughput_bs32=10.0, threads=1))

    rep = build_report(task="stsb", metric_name="pearson", teacher=entry("teacher", None), student=entry("student", 0.3),
                       extra={"undefined": {"teacher_metric": "the teacher's predictions are constant"},
                              "odd": float("nan")})
    assert rep["teacher_metric"] is None and rep["retention"] is None
    assert "undefined" in rep["undefined"]["retention"] and rep["undefined"]["teacher_metric"].endswith("constant")
    md = render_markdown(rep)
    assert "n/a" in md and "the teacher's predictions are constant" in md
    paths = write_report(rep, tmp_path)
    saved = _strict_json(paths["json"])
    assert saved["teacher_metric"] is None and saved["odd"] is None and "not a finite number" in saved["undefined"]["odd"]
    zero = build_report(task="sst2", metric_name="accuracy", teacher=entry("teacher", 0.0), student=entry("student", 0.5))
    assert zero["retention"] is None and "is 0" in zero["undefined"]["retention"]


def test_printer_and_model_card_show_undefined_values_as_n_a(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich tables: one reason on one line
    from kdistill.cli.common import _print_result
    from kdistill.deploy.card import model_card
    from kdistill.recipes.base import RunResult

    rep = {"teacher_metric": None, "student_metric": 0.0, "retention": None, "speedup": None, "teacher_params": 1e6,
           "student_params": 5e5, "teacher_latency_ms": None, "student_latency_ms": 1.0, "metric_name": "micro_f1",
           "undefined": {"retention": "the teacher's micro_f1 is 0: a ratio to it is undefined"}}
    _print_result(RunResult(tmp_path, {"micro_f1": 0.0, "pearson": None}, 3.0, report=rep), exit_on_stop=False)
    printed = capsys.readouterr().out
    assert "n/a" in printed and "a ratio to it is undefined" in printed
    (tmp_path / "report.json").write_text(json.dumps(rep))
    meta = {"task": None, "metric_name": "micro_f1", "fp32_metric": None, "pytorch_metric": 0.0, "dev_examples": 8,
            "files": {"fp32": "model.onnx"}, "sizes_mb": {"fp32": 1.0}, "parity": {"max_abs_diff": 1e-6, "atol": 1e-4},
            "labels": ["joy", "anger"], "inputs": ["input_ids"], "max_length": 128}
    card = model_card(meta, str(tmp_path))
    assert "retention n/a" in card and "speedup n/a" in card and "value: null" in card
    assert "a ratio to it is undefined" in card


def _constant_regressor(path: Path, tokenizer, value: float = 2.5, seed: int = 0) -> Path:
    m = make_tiny_bert(layers=2, num_labels=1, seed=seed)
    m.config.problem_type = "regression"
    with torch.no_grad():
        m.classifier.weight.zero_()
        m.classifier.bias.fill_(value)
    m.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _scores_csv(path: Path, n: int = 40) -> Path:
    rows = ["text,score"] + [f"{_sentences(i)},{(i * 7 % 11) / 2:.2f}" for i in range(n)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_kdistill_report_of_a_constant_teacher_writes_null_pearson_with_a_reason(tmp_path, tiny_tokenizer):
    teacher = _constant_regressor(tmp_path / "teacher", tiny_tokenizer)
    student = make_tiny_bert(layers=2, num_labels=1, seed=3)
    student.config.problem_type = "regression"
    student.save_pretrained(tmp_path / "student")
    tiny_tokenizer.save_pretrained(tmp_path / "student")
    data = _scores_csv(tmp_path / "scores.csv")
    r = runner.invoke(app, ["report", "--teacher", str(teacher), "--student", str(tmp_path / "student"), "--train-file",
                            str(data), "--validation-file", str(data), "--text-columns", "text", "--label-column", "score",
                            "--problem-type", "regression", "--latency-runs", "2", "--output", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    rep = _strict_json(tmp_path / "rep" / "report.json")
    assert rep["teacher_metric"] is None and rep["teacher_metrics"] == {"pearson": None, "spearmanr": None}
    assert "constant" in rep["undefined"]["teacher_metric"] and "constant" in rep["undefined"]["teacher_metrics.pearson"]
    assert rep["retention"] is None and "undefined" in rep["undefined"]["retention"]
    assert isinstance(rep["student_metric"], float) and "n/a" in r.output
    assert any("at chance" in f for f in rep["flags"])  # the comparison with the baseline still says so


def test_train_results_write_an_undefined_metric_as_null_and_the_printer_says_n_a(tmp_path, tiny_tokenizer):
    model = _constant_regressor(tmp_path / "m", tiny_tokenizer)
    data = _scores_csv(tmp_path / "scores.csv")
    r = runner.invoke(app, ["finetune", "--model", str(model), "--train-file", str(data), "--validation-file", str(data),
                            "--text-columns", "text", "--label-column", "score", "--problem-type", "regression",
                            "--lr", "1e-12", "--epochs", "1", "--batch-size", "16", "--output", str(tmp_path / "ft")])
    assert r.exit_code == 0, r.output
    results = _strict_json(tmp_path / "ft" / "train_results.json")
    assert results["eval"]["pearson"] is None and "constant" in results["undefined"]["eval.pearson"]
    assert "n/a" in r.output
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in results["eval"].values() if v is not None)
