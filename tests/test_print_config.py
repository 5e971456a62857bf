"""``--print-config`` (issue 25): the effective config — a config file and the options over it, every default filled
in — printed as JSON; nothing is run or written."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from kdistill.cli import app

runner = CliRunner()


def _json(output: str) -> dict:
    return json.loads(output[output.index("{"):])


def test_distill_print_config_shows_the_effective_config_and_runs_nothing(tmp_path):
    out = tmp_path / "run"
    base = ["distill", "--teacher", str(tmp_path / "t"), "--data-dir", str(tmp_path / "glue"), "-o", str(out)]
    r = runner.invoke(app, [*base, "-T", "3", "--epochs", "2", "--lr", "5e-5", "--print-config"])
    assert r.exit_code == 0, r.output
    cfg = _json(r.stdout)
    assert cfg["method"]["name"] == "kd" and cfg["method"]["temperature"] == 3.0 and "tinybert" not in cfg
    assert cfg["train"]["epochs"] == 2.0 and cfg["train"]["learning_rate"] == 5e-5
    assert cfg["data"]["task"] == "sst2" and cfg["method"]["alpha"] == 0.5  # defaults filled in
    assert not out.exists()
    r = runner.invoke(app, [*base, "--method", "tinybert", "-T", "3", "--print-config"])  # routed by --method
    tb = _json(r.stdout)["method"]
    assert r.exit_code == 0 and tb["name"] == "tinybert" and tb["temperature"] == 3.0 and tb["alpha"] == 0.0
    # a config file, with the command line over it
    path = tmp_path / "run.json"
    path.write_text(json.dumps(cfg))
    r = runner.invoke(app, ["distill", "--config", str(path), "--alpha", "0.9", "--print-config"])
    assert r.exit_code == 0, r.output
    again = _json(r.stdout)
    assert again["method"]["temperature"] == 3.0 and again["method"]["alpha"] == 0.9
    r = runner.invoke(app, [*base, "--alpha", "1.5", "--print-config"])  # checked like a run: one line, exit 2
    assert r.exit_code == 2 and "--alpha" in r.output


def test_finetune_print_config(tmp_path):
    r = runner.invoke(app, ["finetune", "--model", str(tmp_path / "m"), "--data-dir", str(tmp_path), "-o",
                            str(tmp_path / "o"), "--epochs", "4", "--print-config"])
    assert r.exit_code == 0, r.output
    cfg = _json(r.stdout)
    assert cfg["method"] == {"name": "finetune"} and cfg["train"]["epochs"] == 4.0 and cfg["student"]["path"] == str(tmp_path / "m")
    assert not (tmp_path / "o").exists()


def test_run_print_config_holds_the_teacher_stage(tmp_path):
    r = runner.invoke(app, ["run", "--teacher", str(tmp_path / "t"), "--data-dir", str(tmp_path), "-o",
                            str(tmp_path / "o"), "--teacher-lr", "3e-5", "--lr", "2e-4", "--print-config"])
    assert r.exit_code == 0, r.output
    cfg = _json(r.stdout)
    assert cfg["method"] == "chain" and cfg["teacher_stage"]["learning_rate"] == 3e-5
    assert cfg["run"]["train"]["learning_rate"] == 2e-4 and cfg["teacher_stage"]["epochs"] == 10.0
    assert not (tmp_path / "o").exists()


def test_a_value_refused_by_its_parser_is_one_line(tmp_path):
    """Generated options parse their text before the command runs (e.g. --layer-map); a bad value is one line, exit 2,
    like a bad --layers in the command itself."""
    base = ["distill", "--teacher", str(tmp_path / "t"), "--data-dir", str(tmp_path), "-o", str(tmp_path / "o")]
    for extra in (["--method", "tinybert", "--layer-map", "x,y"], ["--layers", "a,b"]):
        r = runner.invoke(app, [*base, *extra, "--print-config"])
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        assert len([line for line in r.output.splitlines() if line.strip()]) == 1, r.output


def test_compress_print_config(tmp_path):
    r = runner.invoke(app, ["compress", "--teacher", str(tmp_path / "t"), "--data-dir", str(tmp_path), "-o",
                            str(tmp_path / "o"), "--head-fraction", "0.3", "-T", "4", "--print-config"])
    assert r.exit_code == 0, r.output
    cfg = _json(r.stdout)
    assert cfg["head_fraction"] == 0.3 and cfg["run"]["method"]["temperature"] == 4.0
    assert cfg["run"]["student"]["path"] == str(tmp_path / "t") and not (tmp_path / "o").exists()
