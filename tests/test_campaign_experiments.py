"""Every campaign experiment file (benchmarks/experiments/*.yaml) is one the runner can start: its run config is valid
under the schema `--config` takes, its twin and steps point at experiments that exist and point back, what it needs
is something the runner can re-create. Needs no `../shared` and no models: a broken file fails here, not hours into
a campaign."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import campaign  # noqa: E402

from kdistill.config.files import FILE_KINDS  # noqa: E402
from kdistill.config.run import GeneralDistillConfig  # noqa: E402

NAMES = sorted(p.stem for p in campaign.EXPERIMENTS.glob("*.yaml"))


def test_there_are_experiments():
    assert len(NAMES) >= 10


@pytest.mark.parametrize("name", NAMES)
def test_an_experiment_file_is_one_the_runner_can_start(name, tmp_path):
    exp = campaign.load_experiment(name)
    cfg = campaign.fill(exp["config"], {k: str(tmp_path / k) for k in campaign.places()})  # every placeholder known
    cfg.setdefault("train", {})["seed"] = exp["seeds"][0]
    cfg["output_dir"] = str(tmp_path / "run")
    if exp.get("command") == "general-distill":
        GeneralDistillConfig.model_validate(cfg)
    else:
        FILE_KINDS[(cfg.get("method") or {}).get("name", "kd")].model_validate(cfg)
    assert exp["role"] in {"kd", "gold", "teacher", "general"}, exp["role"]
    for need in exp.get("needs", []):
        assert need in campaign.need_steps() or need[len("run:"):] in NAMES, need
    if exp.get("twin"):
        twin = campaign.load_experiment(exp["twin"])
        assert twin.get("twin") == name and twin["row"] == exp["row"] and {twin["role"], exp["role"]} == {"kd", "gold"}
        # the same student, data and optimizer: a twin differs only in its method, length and transfer sets
        a, b = exp["config"], twin["config"]
        assert {k: a.get(k) for k in ("teacher", "student", "data")} == {k: b.get(k) for k in ("teacher", "student", "data")}
        loose = {"epochs", "max_steps", "transfer_set"}
        assert {k: v for k, v in a["train"].items() if k not in loose} == \
            {k: v for k, v in b["train"].items() if k not in loose}
    if exp.get("steps_from"):
        assert exp["steps_from"] == exp["twin"] and exp["role"] == "gold"


def test_a_broken_experiment_file_fails_the_check(tmp_path, monkeypatch):
    bad = tmp_path / "minilm-kd.yaml"
    bad.write_text((campaign.EXPERIMENTS / "minilm-kd.yaml").read_text().replace("batch_size:", "batch_sise:", 1))
    monkeypatch.setattr(campaign, "EXPERIMENTS", tmp_path)
    with pytest.raises(Exception, match="batch_sise"):
        test_an_experiment_file_is_one_the_runner_can_start("minilm-kd", tmp_path)


def test_status_names_the_newest_checkpoint_of_each_stage(tmp_path):
    run = tmp_path / "tinybert4-kd-s42"
    assert campaign.progress(run) == "not started"
    run.mkdir()
    (run / "kdistill_run.json").write_text("{}")
    assert "no checkpoint yet" in campaign.progress(run)
    for folder, step, finished in ((run / "intermediate" / "checkpoint-1560-0", 1560, True),
                                   (run / "checkpoint-2000-0", 2000, False)):
        folder.mkdir(parents=True)
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "finished": finished}))
    said = campaign.progress(run)
    assert "intermediate stage checkpoint at step 1560, finished; last stage checkpoint at step 2000" in said, said


def test_redo_unchecked_retrains_only_results_without_an_initial_weights_hash(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(campaign, "RUNS", tmp_path / "runs")
    campaign.RESULTS.mkdir()
    assert campaign.to_train("minilm-kd", 42, redo_unchecked=True)  # no result: train
    old, cpu = tmp_path / "runs" / "minilm-kd-s42", tmp_path / "runs" / ".minilm-kd-s42.cpu.json"
    (old / "checkpoint-9-0").mkdir(parents=True)
    (old / "checkpoint-9-0" / "trainer_state.json").write_text(json.dumps({"global_step": 9, "finished": True}))
    (old / "checkpoint").symlink_to("checkpoint-9-0")
    for f in ("kdistill_run.json", "train_results.json"):
        (old / f).write_text("{}")
    cpu.write_text("{}")
    campaign.result_path("minilm-kd", 42).write_text(json.dumps({"student_init_sha256": None}))
    assert not campaign.to_train("minilm-kd", 42)  # a result: done unless asked
    assert campaign.to_train("minilm-kd", 42, redo_unchecked=True)
    assert not old.exists() and not cpu.exists()  # the old finished run goes, so the redo starts from nothing
    old.mkdir()
    (old / "kdistill_run.json").write_text("{}")
    (old / "student_init.json").write_text("{}")  # a redo under way (stopped): resumed, not deleted
    assert campaign.to_train("minilm-kd", 42, redo_unchecked=True) and (old / "student_init.json").exists()
    campaign.result_path("minilm-kd", 42).write_text(json.dumps({"student_init_sha256": "a" * 64}))
    assert not campaign.to_train("minilm-kd", 42, redo_unchecked=True)  # redone: done
