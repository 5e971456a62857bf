"""Transfer sets (issue 26, part 1): `kdistill label` writes the teacher's logits as Parquet shards with a manifest;
loadable with `datasets`; killed and resumed it gives the same bytes; a changed teacher or input is refused; a second
writer is refused; the stored logits are the teacher's."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import kdistill
from kdistill.cli import app
from kdistill.errors import KDistillError

OPTS = dict(max_train_samples=50, max_eval_samples=16, shard_rows=16, batch_size=8, show_progress=False)


@pytest.fixture(scope="module")
def made(tiny_teacher_dir, glue_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ts") / "set"
    return out, kdistill.label(str(tiny_teacher_dir), "sst2", output_dir=out, data_dir=str(glue_dir), **OPTS)


def test_a_set_holds_every_row_with_the_teachers_logits_and_loads_with_datasets(made, tiny_teacher_dir, glue_dir):
    import datasets

    from kdistill.data import load_data
    from kdistill.config import DataConfig
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.transfer import shard_logits

    out, manifest = made
    assert manifest["complete"] and manifest["rows"] == 50 and len(manifest["shards"]) == 4  # 16+16+16+2
    assert manifest["task"] == "sst2" and manifest["labels"] and manifest["teacher_dev_metrics"]["rows"] == 16
    assert json.loads((out / "manifest.json").read_text())["teacher_fingerprint"] == manifest["teacher_fingerprint"]
    ds = datasets.load_dataset("parquet", data_files=str(out / "shards" / "*.parquet"), split="train")
    assert len(ds) == 50 and ds["idx"] == list(range(50)) and ds["source_idx"] == list(range(50))
    splits, spec = load_data(DataConfig(task="sst2", data_dir=str(glue_dir), max_train_samples=50))
    assert ds["text_a"] == splits["train"]["text_a"] and ds["label"] == splits["train"]["label"]
    teacher = load_classifier(str(tiny_teacher_dir), spec, require_trained_head=True).eval()
    direct = shard_logits(teacher, load_tokenizer(str(tiny_teacher_dir)), ds["text_a"][:5], None, max_length=128,
                          batch_size=1)  # one row per batch: no padding at all
    assert np.allclose(np.asarray(ds["logits"][:5], dtype=np.float32), direct, atol=1e-5)


def test_killed_then_resumed_gives_the_same_bytes(made, tiny_teacher_dir, glue_dir, tmp_path, monkeypatch):
    import kdistill.transfer.label as lab

    out, manifest = made
    real, calls = lab._write_shard, []

    def die_after_two(*a, **k):
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill between shards
        calls.append(1)
        return real(*a, **k)

    killed = tmp_path / "killed"
    monkeypatch.setattr(lab, "_write_shard", die_after_two)
    with pytest.raises(KeyboardInterrupt):
        kdistill.label(str(tiny_teacher_dir), "sst2", output_dir=killed, data_dir=str(glue_dir), **OPTS)
    monkeypatch.setattr(lab, "_write_shard", real)
    half = json.loads((killed / "manifest.json").read_text())
    assert not half["complete"] and len(half["shards"]) == 2
    with pytest.raises(KDistillError, match="unfinished transfer set.*--resume"):
        kdistill.label(str(tiny_teacher_dir), "sst2", output_dir=killed, data_dir=str(glue_dir), **OPTS)
    resumed = kdistill.label(str(tiny_teacher_dir), "sst2", output_dir=killed, data_dir=str(glue_dir), resume=True,
                             **OPTS)
    assert resumed["rows_computed_here"] == 50 - 32  # the finished shards were not recomputed
    assert [s["sha256"] for s in resumed["shards"]] == [s["sha256"] for s in manifest["shards"]]


def test_another_teacher_or_input_is_refused_and_a_complete_set_is_kept(made, tiny_teacher_dir, glue_dir, tmp_path):
    out, manifest = made
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    again = kdistill.label(str(tiny_teacher_dir), "sst2", output_dir=copy, data_dir=str(glue_dir), **OPTS)
    assert again["shards"] == manifest["shards"]  # already complete: nothing recomputed
    with pytest.raises(KDistillError, match="differs in the inputs"):
        kdistill.label(str(tiny_teacher_dir), "sst2", output_dir=copy, data_dir=str(glue_dir),
                       **{**OPTS, "max_train_samples": 40})
    other = tmp_path / "teacher2"
    shutil.copytree(tiny_teacher_dir, other)
    import torch
    from safetensors.torch import load_file, save_file

    weights = load_file(str(other / "model.safetensors"))
    name = next(iter(weights))
    weights[name] = weights[name] + 1e-3 * torch.ones_like(weights[name])
    save_file(weights, str(other / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(KDistillError, match="teacher's weights"):
        kdistill.label(str(other), "sst2", output_dir=copy, data_dir=str(glue_dir), **OPTS)


def test_unlabeled_text_files_and_the_cli(tiny_teacher_dir, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("a fine film\n\nan awful film\nnothing\n")
    r = CliRunner().invoke(app, ["label", "--teacher", str(tiny_teacher_dir), "--text-file", str(text), "-o",
                                 str(tmp_path / "t")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert m["rows"] == 3 and m["task"] is None and m["teacher_dev_metrics"] is None
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "t" / "shards" / "part-00000.parquet")
    assert table.column("label").null_count == 3 and table.column("text_a").to_pylist()[1] == "an awful film"
    text.write_text("a fine film\nan awful film\n")  # the input changed: the set is not served stale
    r = CliRunner().invoke(app, ["label", "--teacher", str(tiny_teacher_dir), "--text-file", str(text), "-o",
                                 str(tmp_path / "t")])
    assert r.exit_code == 2 and "differs in the inputs" in r.output and len(r.output.strip().splitlines()) == 1


def test_inspect_summarises_a_set(made, tmp_path):
    out, manifest = made
    r = CliRunner().invoke(app, ["label", "--inspect", str(out)])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout[r.stdout.index("{"):])
    assert info["rows"] == 50 and info["gold_rows"] == 50 and sum(info["teacher_label_counts"].values()) == 50
    assert sum(info["max_probability_histogram"].values()) == 50 and 0 <= info["teacher_accuracy_on_gold"] <= 1
    assert (out / "inspect.png").stat().st_size > 0 and info["bytes_on_disk"] > 0
    r = CliRunner().invoke(app, ["label", "--inspect", str(tmp_path)])
    assert r.exit_code == 2 and "holds no transfer set" in r.output
