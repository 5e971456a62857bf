"""--config FILE: a run's kdistill_run.json re-runs exactly; command-line options override; unknown keys are refused."""

import json

import pytest
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

import kdistill
from kdistill.cli import app
from kdistill.config import RunConfig, load_config, merge
from kdistill.errors import KDistillError

runner = CliRunner()


def _tiny(glue_dir):
    return dict(data_dir=str(glue_dir), max_train_samples=96, max_eval_samples=32, selection_size=16, epochs=1,
                batch_size=16, show_progress=False)


@pytest.fixture(scope="module")
def first_run(tiny_teacher_dir, glue_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cfg") / "first"
    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, layers=[0, 2], temperature=3.0, alpha=0.3,
                           report=False, **_tiny(glue_dir))
    return out, res


def test_kdistill_run_json_reruns_to_the_same_student(first_run, tmp_path):
    out, res = first_run
    r = runner.invoke(app, ["distill", "--config", str(out / "kdistill_run.json"), "-o", str(tmp_path / "again"),
                            "--no-report"])
    assert r.exit_code == 0, r.output
    again = json.loads((tmp_path / "again" / "kdistill_run.json").read_text())
    first = json.loads((out / "kdistill_run.json").read_text())
    assert {k: v for k, v in again.items() if k not in ("output_dir", "overwrite")} == \
        {k: v for k, v in first.items() if k not in ("output_dir", "overwrite")}
    a, b = load_file(str(out / "model.safetensors")), load_file(str(tmp_path / "again" / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)  # same seed, same settings: same weights
    metrics = json.loads((tmp_path / "again" / "train_results.json").read_text())["eval"]
    assert metrics == res.metrics


def test_command_line_overrides_the_file_and_yaml_is_read(first_run, tmp_path):
    out, _ = first_run
    data = json.loads((out / "kdistill_run.json").read_text())
    data["train"]["max_steps"] = 2
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    r = runner.invoke(app, ["distill", "--config", str(path), "-o", str(tmp_path / "over"), "-T", "5", "--layers", "1",
                            "--no-report"])
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "over" / "kdistill_run.json").read_text())
    assert cfg["method"]["temperature"] == 5.0 and cfg["method"]["alpha"] == 0.3  # given / kept from the file
    assert cfg["student"]["layers"] == [1] and cfg["train"]["max_steps"] == 2
    assert json.loads((tmp_path / "over" / "train_results.json").read_text())["global_step"] == 2


def test_unknown_key_is_one_line_naming_it(first_run, tmp_path):
    out, _ = first_run
    data = json.loads((out / "kdistill_run.json").read_text())
    data["method"]["temprature"] = 3.0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    r = runner.invoke(app, ["distill", "--config", str(path), "-o", str(tmp_path / "bad")])
    assert r.exit_code == 2
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "unknown key 'method.temprature'" in lines[0]
    assert not (tmp_path / "bad").exists()  # nothing was started


def test_a_recorded_overwrite_is_not_replayed(first_run, tmp_path):
    out, _ = first_run
    data = json.loads((out / "kdistill_run.json").read_text())
    data["overwrite"] = True
    path = tmp_path / "ow.json"
    path.write_text(json.dumps(data))
    assert load_config(path).overwrite is False
    r = runner.invoke(app, ["distill", "--config", str(path), "--no-report"])  # its output folder: the first run's
    assert r.exit_code == 2, r.output
    assert (out / "model.safetensors").exists()


def test_merge_student_rules():
    cfg = RunConfig(teacher="t", output_dir="o", student={"kind": "spec", "num_layers": 2, "hidden_size": 32,
                                                          "num_heads": 2})
    assert merge(type(cfg), cfg, num_layers=3).student.hidden_size == 32  # student fields update the file's student
    other = merge(type(cfg), cfg, student="layers-from-teacher", layers=[0])
    assert other.student.kind == "layers-from-teacher" and other.student.layers == [0]
    assert merge(type(cfg), cfg, task="mrpc").data.task == "mrpc"
    with pytest.raises(KDistillError, match="unknown option"):
        merge(type(cfg), cfg, temprature=2.0)
    with pytest.raises(KDistillError, match="alpha"):
        merge(type(cfg), cfg, alpha=2.0)


def test_config_of_another_kind_is_refused(tmp_path):
    path = tmp_path / "general.json"
    path.write_text(json.dumps({"method": "general", "text_files": ["x.txt"], "output_dir": "g"}))
    with pytest.raises(KDistillError, match="cannot configure"):
        load_config(path, RunConfig)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(KDistillError, match="expected a mapping"):
        load_config(tmp_path / "list.yaml")


def test_general_and_compress_files(tmp_path):
    from kdistill.config import CompressConfig, GeneralDistillConfig

    g = tmp_path / "g.json"
    g.write_text(GeneralDistillConfig(text_files=["a.txt"], output_dir="g", overwrite=True).model_dump_json())
    cfg = load_config(g)
    assert isinstance(cfg, GeneralDistillConfig) and cfg.overwrite is False
    cfg = merge(type(cfg), cfg, objective="distilbert", temperature=3.0, max_steps=7)
    assert cfg.objective.name == "distilbert" and cfg.objective.temperature == 3.0 and cfg.train.max_steps == 7
    assert "tinybert" not in cfg.model_dump() and "minilm" not in cfg.model_dump()  # only the chosen objective's
    c = tmp_path / "c.yaml"
    run = RunConfig(teacher="t", output_dir="r", resume=True).model_dump()
    c.write_text(yaml.safe_dump({"run": run, "head_fraction": 0.5}))
    cc = load_config(c)
    assert isinstance(cc, CompressConfig) and cc.head_fraction == 0.5 and cc.run.resume is False
    with pytest.raises(KDistillError, match="cannot configure"):
        kdistill.distill(config=c, output_dir=tmp_path / "x")


def _old_layout(run: dict) -> dict:
    """A run file as kdistill wrote it before the method became one section (``method: "kd"`` beside a ``distill`` and
    a ``tinybert`` section, both always present, the unused one at its defaults)."""
    from kdistill.config import DistillConfig, TinyBertConfig

    run = json.loads(json.dumps(run))
    method = run.pop("method")
    name = method.pop("name")
    run["distill"] = method if name == "kd" else DistillConfig().model_dump()
    run["tinybert"] = method if name == "tinybert" else TinyBertConfig().model_dump()
    run["method"] = name
    return run


def test_a_run_file_of_the_older_layout_reruns_to_the_same_student(first_run, tmp_path):
    out, _ = first_run
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_old_layout(json.loads((out / "kdistill_run.json").read_text()))))
    r = runner.invoke(app, ["distill", "--config", str(path), "-o", str(tmp_path / "old"), "--no-report"])
    assert r.exit_code == 0, r.output
    a, b = load_file(str(out / "model.safetensors")), load_file(str(tmp_path / "old" / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    rewritten = json.loads((tmp_path / "old" / "kdistill_run.json").read_text())
    assert rewritten["method"]["temperature"] == 3.0 and "distill" not in rewritten and "tinybert" not in rewritten
