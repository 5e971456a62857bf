"""The method is one section of a task run (a union discriminated by ``name``), run files of the older layout load
through a migration, and the one merge (:func:`kdistill.config.merge`) routes every flat option to exactly one field."""

import json
from pathlib import Path

import pytest

from kdistill.config import (FILE_KINDS, ChainConfig, CompressConfig, KDMethod, RunConfig, TinyBertMethod, flat_names,
                             load_config, merge)
from kdistill.errors import KDistillError

#: ``kdistill_run.json`` as written by main at dbff8eb (the 3-layer KD run of benchmarks/sst2_equivalence.py).
OLD_KD = Path(__file__).parent / "data" / "run_files" / "kd_dbff8eb.json"


def test_a_kd_run_file_written_by_the_older_main_loads_as_its_method():
    cfg = load_config(OLD_KD)
    old = json.loads(OLD_KD.read_text())
    assert isinstance(cfg.method, KDMethod) and cfg.method.model_dump(exclude={"name"}) == old["distill"]
    dumped = cfg.model_dump()
    assert "distill" not in dumped and "tinybert" not in dumped  # the unused TinyBERT section is gone
    assert RunConfig.model_validate(dumped) == cfg  # today's layout round-trips
    assert dumped["student"] == {**old["student"]} and dumped["train"]["epochs"] == old["train"]["epochs"]


def test_older_tinybert_compress_and_chain_files_migrate(tmp_path):
    old = json.loads(OLD_KD.read_text())
    tb = {**old, "method": "tinybert", "tinybert": {**old["tinybert"], "temperature": 1.5, "layer_map": [1, 3, 5]}}
    cfg = RunConfig.model_validate(tb)
    assert isinstance(cfg.method, TinyBertMethod) and cfg.method.temperature == 1.5 and cfg.method.layer_map == [1, 3, 5]
    for name, data in (("compress", {"run": old, "head_fraction": 0.5}),
                       ("chain", {"method": "chain", "run": {**old, "distill": {**old["distill"], "alpha": 0.2}}})):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(data))
        loaded = load_config(path)
        assert isinstance(loaded, CompressConfig if name == "compress" else ChainConfig)
        assert isinstance(loaded.run.method, KDMethod)
    assert loaded.run.method.alpha == 0.2


def test_error_locations_leave_out_every_union_tag():
    from kdistill.config import GENERAL_OBJECTIVES, METHODS, STUDENT_KINDS
    from kdistill.config.base import UNION_TAGS

    assert UNION_TAGS == set(STUDENT_KINDS) | set(METHODS) | set(GENERAL_OBJECTIVES)


def test_a_general_distillation_file_of_the_older_layout_keeps_only_its_objective(tmp_path):
    from kdistill.config import (DistilBertGeneralConfig, DistilBertGeneralObjective, GeneralDistillConfig,
                                 MiniLMConfig, TinyBertConfig)

    old = {"method": "general", "text_files": ["a.txt"], "objective": "distilbert", "output_dir": "g",
           "tinybert": TinyBertConfig().model_dump(), "minilm": MiniLMConfig().model_dump(),
           "distilbert": {**DistilBertGeneralConfig().model_dump(), "mlm_weight": 3.0}}
    path = tmp_path / "general.json"
    path.write_text(json.dumps(old))
    cfg = load_config(path)
    assert isinstance(cfg, GeneralDistillConfig) and isinstance(cfg.objective, DistilBertGeneralObjective)
    assert cfg.objective.mlm_weight == 3.0 and not {"tinybert", "minilm", "distilbert"} & set(cfg.model_dump())
    g = merge(GeneralDistillConfig, cfg, objective="minilm", relation_heads=6)
    assert g.objective.name == "minilm" and g.objective.relation_heads == 6
    with pytest.raises(KDistillError, match="mlm_weight do not apply to objective 'minilm'.*distilbert"):
        merge(GeneralDistillConfig, g, mlm_weight=1.0)


def test_a_kd_run_holds_no_tinybert_settings_and_each_setting_has_one_default():
    kd, tb = RunConfig(output_dir="o"), RunConfig(method="tinybert", output_dir="o")
    assert set(kd.model_dump()["method"]) == {"name", "temperature", "alpha", "kd_loss", "cos_weight", "hidden_align"}
    assert (kd.method.temperature, kd.method.alpha) == (2.0, 0.5) and (tb.method.temperature, tb.method.alpha) == (1.0, 0.0)
    schema = RunConfig.model_json_schema()
    assert "distill" not in schema["properties"] and "oneOf" in json.dumps(schema["properties"]["method"])


def test_merge_switching_method_drops_the_other_methods_settings_and_refuses_its_options():
    kd = merge(RunConfig, teacher="t", output_dir="o", temperature=4.0, cos_weight=0.5)
    tb = merge(RunConfig, kd, method="tinybert")
    assert tb.method.name == "tinybert" and tb.method.temperature == 1.0  # not KD's 4: another method's setting
    assert merge(RunConfig, kd, alpha=0.1).method.temperature == 4.0  # same method: the file's settings stay
    with pytest.raises(KDistillError, match="attn_weight do not apply to method 'kd'.*tinybert"):
        merge(RunConfig, kd, attn_weight=2.0)
    with pytest.raises(KDistillError, match="cos_weight do not apply to method 'finetune'"):
        merge(RunConfig, output_dir="o", method="finetune", cos_weight=1.0)


def test_merge_own_files_mean_no_task_and_section_defaults_hold():
    from kdistill.config import BornAgainConfig, EarlyExitRunConfig, GeneralDistillConfig

    assert merge(RunConfig, output_dir="o", train_file="a.csv").data.task is None
    assert merge(RunConfig, output_dir="o", train_file="a.csv", task="sst2").data.task == "sst2"
    assert merge(RunConfig, output_dir="o").data.task == "sst2"
    g = merge(GeneralDistillConfig, output_dir="o", text_files=["a.txt"], batch_size=8, num_layers=2)
    assert g.train.epochs == 1.0 and g.train.batch_size == 8  # the section's own default (1 epoch) holds
    assert g.student.kind == "spec" and g.student.num_layers == 2 and g.student.hidden_size == 192
    b = merge(BornAgainConfig, teacher="t", student="base", output_dir="o", epochs=1)
    assert (b.distill.alpha, b.distill.temperature, b.student.path) == (0.0, 1.0, "base")
    e = merge(EarlyExitRunConfig, student="m", output_dir="o", exit_every=2, sweep_batch_size=8, batch_size=16)
    assert (e.exits.every, e.sweep.batch_size, e.train.batch_size, e.train.epochs) == (2, 8, 16, 2.0)


@pytest.mark.parametrize("cls", sorted({*FILE_KINDS.values(), CompressConfig}, key=lambda c: c.__name__))
def test_every_flat_option_reaches_exactly_one_field(cls):
    """flat_names raises when two fields answer to one name; each name's path leads to a real field."""
    for method in (("kd", "tinybert", "finetune") if cls in (RunConfig, ChainConfig, CompressConfig) else (None,)):
        data = {"method": {"name": method}} if cls is RunConfig and method else {}
        names = flat_names(cls, data)
        assert names and len(set(names.values())) == len(names)


def test_renamed_flags_keep_their_old_spelling_hidden_and_deprecated(tmp_path, caplog):
    """--max-drop (two different gates) and early-exit's --schedule (distill's is KEY=KIND:START:END) were renamed;
    the old spellings still work for one release, saying they are deprecated; the API's old keywords too."""
    import logging

    from typer.testing import CliRunner

    from kdistill.cli import app
    from kdistill.config import EarlyExitRunConfig

    base = ["distill", "--teacher", str(tmp_path / "t"), "-o", str(tmp_path / "o"), "--print-config"]
    new = CliRunner().invoke(app, [*base, "--max-int8-drop", "2.5"])
    old = CliRunner().invoke(app, [*base, "--max-drop", "2.5"])
    assert new.exit_code == 0 and old.exit_code == 0, old.output
    assert json.loads(old.stdout[old.stdout.index("{"):])["export"]["max_drop"] == 2.5
    logger = logging.getLogger("kdistill")
    logger.addHandler(caplog.handler)  # (the CLI's logging setup may stop propagation)
    try:
        with caplog.at_level(logging.WARNING, logger="kdistill"):
            e = merge(EarlyExitRunConfig, student="m", output_dir="o", schedule="joint", max_drop=0.5)
    finally:
        logger.removeHandler(caplog.handler)
    assert (e.exits.schedule, e.sweep.max_drop) == ("joint", 0.5)
    assert "option schedule is deprecated: use exit_schedule" in caplog.text and "max_exit_drop" in caplog.text
    with pytest.raises(KDistillError, match="give only exit_schedule"):
        merge(EarlyExitRunConfig, student="m", output_dir="o", schedule="joint", exit_schedule="frozen")
