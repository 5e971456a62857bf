"""Schedules of temperature / alpha / term weights, and dynamic (token-budget) batches with learning-rate scaling."""

import csv
import math

import pytest
from typer.testing import CliRunner

import kdistill
from kdistill.cli import app
from kdistill.data.batching import TokenBudgetBatchSampler
from kdistill.errors import KDistillError
from kdistill.objectives import kd_objective
from kdistill.objectives.schedules import ObjectiveSchedules, Schedule, check_schedules, parse_schedule
from kdistill.config import DistillConfig
from kdistill.data.tasks import get_task


def test_schedule_values_at_given_progress():
    lin, cos, const = parse_schedule("linear:4:1"), parse_schedule("cosine:0.9:0.1"), parse_schedule("2.5")
    assert [lin.value(p) for p in (0, 0.5, 1)] == [4.0, 2.5, 1.0]
    assert cos.value(0) == pytest.approx(0.9) and cos.value(1) == pytest.approx(0.1)
    assert cos.value(0.5) == pytest.approx(0.5) and cos.value(0.25) == pytest.approx(0.1 + 0.8 * (1 + math.cos(math.pi / 4)) / 2)
    assert const == Schedule("constant", 2.5, 2.5) and const.value(0.7) == 2.5
    assert lin.value(2.0) == 1.0 and lin.value(-1) == 4.0  # clipped


@pytest.mark.parametrize("specs, match", [({"temprature": "linear:4:1"}, "not temperature, alpha"),
                                          ({"alpha": "linear:0.5:1.5"}, r"\[0, 1\]"),
                                          ({"temperature": "linear:2:0"}, "> 0"),
                                          ({"cos": "step:1:2"}, "write constant"),
                                          ({"cos": "linear:a:2"}, "numbers")])
def test_bad_schedules_are_one_line(specs, match):
    with pytest.raises(KDistillError, match=match):
        check_schedules(specs)


def test_schedules_set_the_objective():
    obj = kd_objective(get_task("sst2"), DistillConfig(alpha=0.5, temperature=2.0, cos_weight=1.0))
    knobs = ObjectiveSchedules(obj, {"temperature": "linear:4:1", "alpha": "linear:0.9:0.1", "cos": "linear:0:2"})
    assert knobs.apply(0.5) == pytest.approx({"temperature": 2.5, "alpha": 0.5, "cos": 1.0})
    assert obj.terms["soft"].temperature == 2.5
    knobs.apply(1.0)
    assert obj.weights == pytest.approx({"hard": 0.1, "soft": 0.9, "cos": 2.0}) and obj.terms["soft"].temperature == 1.0
    with pytest.raises(KDistillError, match="strictly between 0 and 1"):
        ObjectiveSchedules(kd_objective(get_task("sst2"), DistillConfig(alpha=0.0)), {"alpha": "linear:0.9:0.1"})


def _log(path):
    rows = list(csv.reader(path.read_text().splitlines()))[1:]
    out = {}
    for step, key, value in rows:
        out.setdefault(key, {})[int(step)] = float(value)
    return out


def test_scheduled_run_logs_the_values_it_used(tiny_teacher_dir, glue_dir, tmp_path):
    out = tmp_path / "sched"
    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, layers=[0, 2], report=False,
                           data_dir=str(glue_dir), max_train_samples=96, max_eval_samples=32, select_on="dev", epochs=1,
                           batch_size=16, logging_steps=1, show_progress=False,
                           schedules={"temperature": "linear:4:1", "alpha": "cosine:0.9:0.1"})
    assert not res.interrupted
    log = _log(out / "logs" / "train_log.csv")
    steps = sorted(log["train/sched_temperature"])
    total = len(steps)
    assert total == 6  # 96 rows / 16
    for step in steps:  # logged after optimizer step `step`, which ran at progress (step - 1) / (total - 1)
        p = (step - 1) / (total - 1)
        assert log["train/sched_temperature"][step] == pytest.approx(4 - 3 * p)
        assert log["train/sched_alpha"][step] == pytest.approx(Schedule("cosine", 0.9, 0.1).value(p))


def test_token_budget_batches_cover_each_row_once_in_a_fixed_plan():
    lengths = [3, 50, 7, 7, 12, 30, 5, 5, 5, 60, 100, 8] * 5
    s = TokenBudgetBatchSampler(lengths, max_tokens=64, seed=1, max_batch_size=8)
    epoch0 = list(s)
    s.set_epoch(1)
    epoch1 = list(s)
    for batches in (epoch0, epoch1):
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        for b in batches:
            assert len(b) <= 8 and (len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 64)
    assert len(epoch0) == len(epoch1) == len(s)
    assert sorted(map(tuple, epoch0)) == sorted(map(tuple, epoch1)) and epoch0 != epoch1  # same batches, new order
    s.set_epoch(0)
    assert list(s) == epoch0  # an epoch's order depends only on (seed, epoch)


def test_dynamic_batches_scale_the_learning_rate(tiny_teacher_dir, glue_dir, tmp_path):
    out = tmp_path / "dyn"
    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, layers=[0, 2], report=False,
                           data_dir=str(glue_dir), max_train_samples=96, max_eval_samples=32, select_on="dev", epochs=1,
                           batch_size=16, logging_steps=1, show_progress=False, max_tokens=256, lr_scaling="linear")
    assert not res.interrupted
    log = _log(out / "logs" / "train_log.csv")
    rows = log["train/batch_rows"]
    assert sum(rows.values()) == 96 and len(set(rows.values())) > 1  # every row once, in batches of several sizes
    for step, n in rows.items():
        assert log["train/lr_scale"][step] == pytest.approx(n / 16)


def test_cli_schedule_option_errors_in_one_line(tiny_teacher_dir, glue_dir, tmp_path):
    r = CliRunner().invoke(app, ["distill", "--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir),
                                 "-o", str(tmp_path / "x"), "--schedule", "temprature=linear:4:1"])
    assert r.exit_code == 2
    assert len([line for line in r.output.splitlines() if line.strip()]) == 1 and "temprature" in r.output
    assert not (tmp_path / "x").exists()
