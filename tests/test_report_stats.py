"""Tests for the report's statistics (kdistill.reporting.stats) and the fields make_report adds:
constant baselines, bootstrap intervals, McNemar / paired bootstrap, flags, versions and dev-set facts."""

from __future__ import annotations

import json
from math import comb

import numpy as np
import pytest

from kdistill.data.tasks import get_task
from kdistill.reporting import (
    LatencyStats,
    ModelEntry,
    SizeStats,
    assess,
    baseline_metric,
    bootstrap_ci,
    build_report,
    mcnemar,
    paired_bootstrap_diff,
    render_markdown,
)

SST2, STSB, MRPC = get_task("sst2"), get_task("stsb"), get_task("mrpc")


def noisy_copy(labels: np.ndarray, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    """Class-id predictions right with probability ``accuracy`` (binary labels)."""
    right = rng.random(labels.shape[0]) < accuracy
    return np.where(right, labels, 1 - labels).astype(np.int64)


# --------------------------------------------------------------------------- intervals


def test_bootstrap_ci_covers_the_true_accuracy_about_95_percent_of_the_time():
    """200 dev sets of 300 examples from a model of true accuracy 0.8: the 95 % interval covers 0.8 on 90-99 % of them."""
    rng = np.random.default_rng(123)
    covered = 0
    for i in range(200):
        labels = rng.integers(0, 2, 300)
        preds = noisy_copy(labels, 0.8, rng)
        lo, hi = bootstrap_ci(SST2, preds, labels, n_resamples=1000, seed=i)
        assert lo <= float(np.mean(preds == labels)) <= hi
        covered += lo <= 0.8 <= hi
    assert 0.90 <= covered / 200 <= 0.99, covered


def test_bootstrap_ci_is_seeded_and_narrows_with_more_examples():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 2, 100)
    big = rng.integers(0, 2, 4000)
    ps, pb = noisy_copy(small, 0.8, rng), noisy_copy(big, 0.8, rng)
    assert bootstrap_ci(SST2, ps, small, seed=3) == bootstrap_ci(SST2, ps, small, seed=3)
    w_small = np.subtract(*bootstrap_ci(SST2, ps, small)[::-1])
    w_big = np.subtract(*bootstrap_ci(SST2, pb, big)[::-1])
    # binomial standard error: 1.96 * sqrt(.8 * .2 / n) each side
    assert w_small == pytest.approx(2 * 1.96 * np.sqrt(0.16 / 100), rel=0.2)
    assert w_big == pytest.approx(2 * 1.96 * np.sqrt(0.16 / 4000), rel=0.2)
    logits = np.eye(2)[ps] * 3.0  # logits [N, 2] give the same interval as their argmax
    assert bootstrap_ci(SST2, logits, small) == bootstrap_ci(SST2, ps, small)
    with pytest.raises(ValueError):
        bootstrap_ci(SST2, ps, small, level=95)
    with pytest.raises(ValueError):
        bootstrap_ci(SST2, ps[:-1], small)


# --------------------------------------------------------------------------- McNemar


def test_mcnemar_against_a_hand_computation():
    # 40 both right, 5 both wrong, a wrong & b right: 3 (b01), a right & b wrong: 12 (b10)
    a = np.array([1] * 40 + [0] * 5 + [0] * 3 + [1] * 12, dtype=bool)
    b = np.array([1] * 40 + [0] * 5 + [1] * 3 + [0] * 12, dtype=bool)
    res = mcnemar(a, b)
    assert (res["b01"], res["b10"], res["n"]) == (3, 12, 60)
    # exact: p = 2 * P(X <= 3), X ~ Binomial(15, 1/2) = 2 * (1 + 15 + 105 + 455) / 2**15
    hand_p = 2 * sum(comb(15, k) for k in range(4)) / 2**15
    assert hand_p == pytest.approx(0.03515625)
    assert res["p_value"] == pytest.approx(hand_p, abs=1e-12)
    assert res["statistic"] == pytest.approx((abs(3 - 12) - 1) ** 2 / 15)  # continuity-corrected chi-square
    swapped = mcnemar(b, a)
    assert (swapped["b01"], swapped["b10"]) == (12, 3) and swapped["p_value"] == pytest.approx(hand_p)
    same = mcnemar(a, a)
    assert same["p_value"] == 1.0 and same["statistic"] == 0.0 and same["b01"] == same["b10"] == 0
    with pytest.raises(ValueError):
        mcnemar(a, b[:-1])


# --------------------------------------------------------------------------- baselines and flags


def test_majority_baseline_comes_from_the_train_split():
    dev = np.array([0] * 60 + [1] * 40)
    train = np.array([1] * 70 + [0] * 30)
    b = baseline_metric(SST2, dev, train)
    assert b["kind"] == "majority class" and b["value"] == 1 and b["source"] == "train"
    assert b["share"] == pytest.approx(0.7) and b["metric"] == pytest.approx(0.4)
    d = baseline_metric(SST2, dev)
    assert d["value"] == 0 and d["source"] == "dev" and d["metric"] == pytest.approx(0.6)
    m = baseline_metric(MRPC, dev, train)  # every metric of the task; F1 of "always positive" = 2p / (1 + p)
    assert m["metrics"]["f1"] == pytest.approx(2 * 0.4 / 1.4) and m["metrics"]["accuracy"] == pytest.approx(0.4)


def test_a_student_at_chance_is_flagged():
    rng = np.random.default_rng(7)
    labels = rng.permutation(np.array([0] * 436 + [1] * 436))  # balanced, as SST-2 dev
    teacher = noisy_copy(labels, 0.90, rng)
    student = rng.integers(0, 2, labels.shape[0])  # coin flips
    a = assess(SST2, teacher, student, labels)
    lo, hi = a["student"]["ci"]
    assert lo <= a["baseline"]["ci"][1]  # its interval overlaps the baseline's
    student_flags = [f for f in a["flags"] if f.startswith("the student")]
    assert len(student_flags) == 1 and "chance level" in student_flags[0] and "retention is not meaningful" in student_flags[0]
    assert not any(f.startswith("the teacher is") for f in a["flags"])
    assert a["paired_test"]["name"] == "McNemar" and a["paired_test"]["p_value"] < 1e-6
    assert not any("not significant" in f for f in a["flags"])
    t_lo, t_hi = a["teacher"]["ci"]
    d_lo, d_hi = a["difference"]["ci"]
    assert t_lo <= a["teacher"]["metric"] <= t_hi and d_lo > 0.3


def test_the_issue_case_teacher_053_student_050_is_not_reported_as_a_result():
    """A teacher at 0.53 and a student at 0.50 on a balanced set: both at chance, difference not significant."""
    rng = np.random.default_rng(11)
    labels = rng.permutation(np.array([0] * 400 + [1] * 400))
    a = assess(SST2, noisy_copy(labels, 0.53, rng), noisy_copy(labels, 0.50, rng), labels)
    flags = " | ".join(a["flags"])
    assert "the teacher is at chance level" in flags and "the student is at chance level" in flags
    assert "not significant" in flags


def test_regression_gets_the_mean_baseline_and_a_paired_bootstrap():
    rng = np.random.default_rng(5)
    gold = rng.uniform(0, 5, 600)
    train = rng.uniform(0, 5, 2000)
    teacher = gold + rng.normal(0, 0.5, 600)
    student = gold + rng.normal(0, 3.0, 600)
    a = assess(STSB, teacher, student[:, None], gold, train_labels=train)  # [N, 1] is accepted
    b = a["baseline"]
    assert b["kind"] == "mean prediction" and b["value"] == pytest.approx(train.mean()) and b["source"] == "train"
    assert b["metrics"] == {"pearson": 0.0, "spearmanr": 0.0} and b["ci"] == [0.0, 0.0]
    assert set(a["teacher"]["metrics"]) == {"pearson", "spearmanr"}
    test = a["paired_test"]
    assert test["name"] == "paired bootstrap"
    assert test["p_value"] == pytest.approx(1 / (test["n_resamples"] + 1))  # no resample comes near "no difference"
    assert test["difference"] == pytest.approx(a["teacher"]["metric"] - a["student"]["metric"])
    assert test["ci"][0] > 0
    same = paired_bootstrap_diff(STSB, teacher, teacher, gold)
    assert same["p_value"] == 1.0 and same["ci"] == [0.0, 0.0]
    close = paired_bootstrap_diff(STSB, teacher, teacher + rng.normal(0, 0.05, 600), gold)
    assert close["p_value"] > 0.05 and close["ci"][0] < 0 < close["ci"][1]


# --------------------------------------------------------------------------- rendering


def _entry(name, metric, ms, threads=1):
    return ModelEntry(name=name, path=f"/runs/{name}", metric=metric,
                      size=SizeStats(params_total=1000, params_non_embedding=500, disk_mb=1.0),
                      latency=LatencyStats(seq_len=20, batch1_median_ms=ms, batch1_p90_ms=ms, n_runs=10,
                                           throughput_bs32=100.0, threads=threads))


def test_markdown_and_plot_show_baseline_intervals_and_test(tmp_path):
    from kdistill.reporting.render import _plot

    rng = np.random.default_rng(2)
    labels = rng.permutation(np.array([0] * 436 + [1] * 436))
    a = assess(SST2, noisy_copy(labels, 0.89, rng), noisy_copy(labels, 0.88, rng), labels)
    fields = {"baseline_metric": a["baseline"]["metric"], "baseline_ci": a["baseline"]["ci"],
              "baseline": {k: v for k, v in a["baseline"].items() if k not in ("ci", "metric", "metrics")},
              "teacher_ci": a["teacher"]["ci"], "student_ci": a["student"]["ci"],
              "difference": a["difference"]["teacher_minus_student"], "difference_ci": a["difference"]["ci"],
              "paired_test": a["paired_test"], "flags": a["flags"], "ci_level": 0.95, "bootstrap_resamples": 1000,
              "bootstrap_seed": 0, "dev_examples": 872, "dev_truncated": False}
    rep = build_report(task="sst2", metric_name="accuracy", teacher=_entry("teacher", a["teacher"]["metric"], 10.0),
                       student=_entry("student-L3", a["student"]["metric"], 5.0), extra=fields)
    md = render_markdown(rep)
    assert "| | teacher | student (student-L3) |" in md and "teacher (teacher)" not in md
    assert f"{a['teacher']['metric']:.4f} [{a['teacher']['ci'][0]:.4f}, {a['teacher']['ci'][1]:.4f}]" in md
    assert "Baseline, a constant prediction (always" in md and "majority class" in md and "one example is 0.11 point" in md
    assert "Paired test: McNemar" in md and "not significant" in md and "**Caution:**" in md
    assert "1 thread." in md and "1 threads" not in md
    lo, hi = _plot(rep, [], tmp_path / "r.png")
    assert lo < a["baseline"]["ci"][0] and hi > max(a["teacher"]["ci"][1], a["student"]["ci"][1])
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------- make_report


def test_make_report_writes_the_new_fields(tiny_teacher_dir, glue_dir, tmp_path, tiny_tokenizer):
    from conftest import make_tiny_bert

    from kdistill.config import DataConfig
    from kdistill.reporting.compare import make_report

    student = tmp_path / "student"
    make_tiny_bert(layers=1, seed=3).save_pretrained(student)
    tiny_tokenizer.save_pretrained(student)
    make_report(teacher=str(tiny_teacher_dir), student=str(student),
                data=DataConfig(task="sst2", data_dir=str(glue_dir), max_eval_samples=64),
                output_dir=tmp_path / "rep", student_metric=0.0123, latency_runs=3, n_resamples=200)
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    for key in ("task", "teacher", "student", "metric_name", "teacher_metric", "student_metric", "retention",
                "teacher_latency_ms", "student_latency_ms", "speedup", "teacher_params", "student_params"):
        assert key in data, key
    assert data["dev_examples"] == 64 and data["dev_truncated"] is True and data["max_eval_samples"] == 64
    assert data["baseline"]["kind"] == "majority class" and data["baseline"]["source"] == "train"
    assert 0.0 <= data["baseline_ci"][0] <= data["baseline_metric"] <= data["baseline_ci"][1] <= 1.0
    for role in ("teacher", "student"):
        lo, hi = data[f"{role}_ci"]
        assert lo <= data[f"{role}_metrics"]["accuracy"] <= hi
        assert set(data[f"{role}_metrics"]) == {"accuracy"}
    assert data["student_architecture"]["num_hidden_layers"] == 1
    assert data["teacher_architecture"]["num_hidden_layers"] == 4
    assert data["paired_test"]["name"] == "McNemar" and 0 < data["paired_test"]["p_value"] <= 1
    d_lo, d_hi = data["difference_ci"]
    assert d_lo <= data["teacher_metrics"]["accuracy"] - data["student_metrics"]["accuracy"] <= d_hi
    # a metric passed in is kept, the statistics come from the recomputed predictions, and the mismatch is said
    assert data["student_metric"] == 0.0123 and data["student_metric_recomputed"] == data["student_metrics"]["accuracy"]
    assert any("passed in (0.0123) differs" in f for f in data["flags"])
    assert any("--max-eval-samples" in f for f in data["flags"])
    for lib in ("python", "torch", "transformers", "accelerate", "datasets", "kdistill"):
        assert data["versions"][lib], lib
    assert "git_commit" in data and (data["git_commit"] is None or len(data["git_commit"]) == 40)
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "cut to its first 64 rows" in md and "Baseline, a constant prediction" in md and "Versions: python" in md
