"""Transfer sets (issue 26, part 1): `kdistill label` writes the teacher's logits as Parquet shards with a manifest;
loadable with `datasets`; killed and resumed it gives the same bytes; a changed teacher or input is refused; a second
writer is refused; the stored logits are the teacher's."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import kdistill
from kdistill.transfer.runcache import read_cache
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
    other = _nudged_copy(tiny_teacher_dir, tmp_path / "teacher2")
    with pytest.raises(KDistillError, match="teacher's weights"):
        kdistill.label(str(other), "sst2", output_dir=copy, data_dir=str(glue_dir), **OPTS)


def _nudged_copy(teacher, to):
    """A copy of ``teacher`` with one weight changed by 1e-3: another teacher."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(teacher, to)
    weights = load_file(str(to / "model.safetensors"))
    name = next(iter(weights))
    weights[name] = weights[name] + 1e-3 * torch.ones_like(weights[name])
    save_file(weights, str(to / "model.safetensors"), metadata={"format": "pt"})
    return to


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


def test_a_student_distilled_from_a_set_matches_the_teacher_pass(made, tiny_teacher_dir, glue_dir, tmp_path):
    """`distill --transfer-set`: the stored logits replace the teacher pass (rows looked up by text, the held-out slice
    renumbered or not). Same seed, same data: the student matches the one trained on its own teacher-logit cache up
    to the last bits of the logits (the set batches rows within shards, the cache across the whole split)."""
    from safetensors.torch import load_file

    out, _ = made
    base = dict(data_dir=str(glue_dir), max_train_samples=50, max_eval_samples=16, selection_size=8, epochs=1,
                batch_size=16, layers=[0, 2], report=False, show_progress=False, seed=3)
    ref = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "ref", **base)
    via = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "set", transfer_set=str(out), **base)
    cache = read_cache(tmp_path / "ref" / "teacher_logits")
    assert not (tmp_path / "set" / "teacher_logits").exists()  # no teacher pass
    assert 40 <= cache.shape[0] < 50  # the held-out slice (at most 10 % of train) is not trained on, in either run
    from kdistill.config import DataConfig
    from kdistill.data import load_data
    from kdistill.data.selection import holdout_slice
    from kdistill.transfer.read import stored_logits

    splits, spec = load_data(DataConfig(task="sst2", data_dir=str(glue_dir), max_train_samples=50))
    rest, _, _ = holdout_slice(splits["train"], size=8, seed=3)
    stored = stored_logits(out, rest, teacher=str(tiny_teacher_dir), max_length=128)
    assert stored.shape == tuple(cache.shape) and np.abs(stored - cache.numpy()).max() < 1e-5  # the same soft targets
    # Adam turns last-bit differences of the targets into ~lr-sized weight differences: equal up to that
    a, b = load_file(str(tmp_path / "ref" / "model.safetensors")), load_file(str(tmp_path / "set" / "model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-3
    assert abs(ref.metrics["accuracy"] - via.metrics["accuracy"]) <= 1 / 16


def test_a_set_of_another_teacher_or_fine_tuning_is_refused(made, tiny_teacher_dir, glue_dir, tmp_path):
    out, _ = made
    other = _nudged_copy(tiny_teacher_dir, tmp_path / "teacher2")
    base = dict(data_dir=str(glue_dir), max_train_samples=50, epochs=1, report=False, show_progress=False)
    with pytest.raises(KDistillError, match="labelled by another teacher"):
        kdistill.distill(str(other), "sst2", output_dir=tmp_path / "a", transfer_set=str(out), **base)
    with pytest.raises(KDistillError, match="fine-tuning on gold labels does not use"):
        kdistill.finetune(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "b", transfer_set=str(out),
                          **{k: v for k, v in base.items() if k != "report"})
    with pytest.raises(KDistillError, match="do not hold 10 of"):
        kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "c", transfer_set=str(out),
                         **{**base, "max_train_samples": 60, "select_on": "dev"})


def test_the_onnx_runtime_teacher_pass_matches_eager(made, tiny_teacher_dir, glue_dir, tmp_path):
    """--runtime ort: the deploy path's fp32 graph labels the set when it matches eager on the first shard (<= 1e-4);
    the manifest says which ran and the measured difference; its logits agree with the eager set's."""
    out, manifest = made
    ort = kdistill.label(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "ort", data_dir=str(glue_dir),
                         runtime="ort", **OPTS)
    used = ort["runtime"]
    assert used["used"] == "ort" and used[f"max_abs_logit_diff[{used['graph']}]"] <= 1e-4
    assert manifest["runtime"]["used"] == "eager"
    import pyarrow as pa
    import pyarrow.parquet as pq

    def logits(folder, m):
        table = pa.concat_tables([pq.read_table(folder / s["file"]) for s in m["shards"]])
        return np.asarray(table.column("logits").to_pylist(), dtype=np.float32)

    assert np.abs(logits(out, manifest) - logits(tmp_path / "ort", ort)).max() <= 1e-4
    with pytest.raises(KDistillError, match="differs in --runtime"):
        kdistill.label(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "ort", data_dir=str(glue_dir), **OPTS)


def test_an_augmented_set_leaves_out_the_selection_slice_and_mixes_into_a_run(made, tiny_teacher_dir, glue_dir,
                                                                               tmp_path):
    """`label --augment tang`: Tang's perturbations of the train rows less the held-out selection slice (chosen with
    --seed as distill chooses it), no gold label, source_idx naming the train row. `distill --transfer-set GOLD
    --transfer-set AUG` adds them to the run (ratio: a seeded share); a run with another seed (another slice) leaves
    out the rows made from its own slice."""
    from kdistill.config import DataConfig
    from kdistill.data import load_data
    from kdistill.data.selection import holdout_slice

    gold, _ = made
    aug_opts = dict(augment="tang", p_pos=0.0, n_iter=2, seed=3, selection_size=8)
    aug = kdistill.label(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "aug", data_dir=str(glue_dir),
                         **OPTS, **aug_opts)
    splits, _ = load_data(DataConfig(task="sst2", data_dir=str(glue_dir), max_train_samples=50))
    _, selection, _ = holdout_slice(splits["train"], size=8, seed=3)
    assert aug["inputs"]["kind"] == "augment" and aug["inputs"]["augment"]["selection_rows_left_out"] == len(selection)
    table = kdistill.transfer.read_complete_set(tmp_path / "aug")[1].to_pydict()
    assert aug["rows"] == len(table["text_a"]) > 40 and set(table["label"]) == {None}
    held = {splits["train"]["text_a"].index(t) for t in selection["text_a"]}
    assert held and not held & set(table["source_idx"]) and set(table["source_idx"]) <= set(range(50))

    base = dict(data_dir=str(glue_dir), max_train_samples=50, max_eval_samples=16, selection_size=8, epochs=1,
                batch_size=16, layers=[0, 2], report=False, show_progress=False)
    run = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "mix", seed=3,
                           transfer_set=[str(gold), str(tmp_path / "aug")], transfer_set_ratio=[1.0, 0.5], **base)
    sets = json.loads((tmp_path / "mix" / "train_results.json").read_text())["transfer_sets"]["sets"]
    assert sets[0]["run_rows_found"] == 50 - len(selection) and sets[0]["extra_rows_used"] == 0
    assert sets[1]["extra_rows_used"] == round(0.5 * aug["rows"]) and sets[1]["left_out_from_selection_slice"] == 0
    other = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "other", seed=4,
                             transfer_set=[str(gold), str(tmp_path / "aug")], **base)
    left = json.loads((tmp_path / "other" / "train_results.json").read_text())["transfer_sets"]["sets"][1]
    assert left["left_out_from_selection_slice"] > 0
    assert left["extra_rows_used"] + left["left_out_from_selection_slice"] == aug["rows"]
    assert run.metrics and other.metrics
    with pytest.raises(KDistillError, match="give one per set"):
        kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "bad", transfer_set=[str(gold)],
                         transfer_set_ratio=[1.0, 2.0], **base)
    with pytest.raises(KDistillError, match="kdistill label --augment"):
        kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "bad2", transfer_set=[str(gold)],
                         augment="tang", p_pos=0.0, **base)


def test_a_method_that_needs_the_teachers_internals_runs_it_live_on_the_sets_rows(made, tiny_teacher_dir, glue_dir,
                                                                                   tmp_path):
    """L_cos needs hidden states, which a set does not store: the teacher runs live, on the set's rows (gold and added);
    the run says so in its results."""
    gold, _ = made
    aug = kdistill.label(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "aug", data_dir=str(glue_dir),
                         augment="tang", p_pos=0.0, n_iter=1, seed=3, selection_size=8, **OPTS)
    base = dict(data_dir=str(glue_dir), max_train_samples=50, max_eval_samples=16, selection_size=8, epochs=1,
                batch_size=16, layers=[0, 2], report=False, show_progress=False, seed=3)
    kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "cos", cos_weight=1.0,
                     transfer_set=[str(gold), str(tmp_path / "aug")], **base)
    info = json.loads((tmp_path / "cos" / "train_results.json").read_text())["transfer_sets"]
    assert "live where it needs" in info["teacher"] and info["sets"][1]["extra_rows_used"] == aug["rows"]
    state = json.loads((tmp_path / "cos" / "checkpoint" / "trainer_state.json").read_text())
    assert state["global_step"] == -(-(50 - 5 + aug["rows"]) // 16)  # every row, gold and added, was trained on


def test_a_run_without_the_teachers_weights_learns_from_the_set_and_reports_retention_from_its_manifest(
        made, tiny_teacher_dir, glue_dir, tmp_path):
    """A transfer set can be shared where the teacher cannot: `distill --transfer-set SET` with no --teacher and a
    pretrained student trains on the stored logits alone; the run's results take the teacher's dev metric from the
    manifest (retention) and say its latency was not measured; the student equals the one the same run with the
    teacher makes (same stored logits, same seed)."""
    from safetensors.torch import load_file

    gold, manifest = made
    student = _nudged_copy(tiny_teacher_dir, tmp_path / "pretrained")  # a "pretrained" student with the same vocab
    base = dict(data_dir=str(glue_dir), max_train_samples=50, max_eval_samples=16, selection_size=8, epochs=1,
                batch_size=16, report=False, show_progress=False, seed=3, transfer_set=[str(gold)])
    free = kdistill.distill(None, "sst2", str(student), output_dir=tmp_path / "free", **base)
    with_teacher = kdistill.distill(str(tiny_teacher_dir), "sst2", str(student), output_dir=tmp_path / "with", **base)
    results = json.loads((tmp_path / "free" / "train_results.json").read_text())
    stored = results["teacher_from_transfer_set"]
    teacher_acc = manifest["teacher_dev_metrics"]["accuracy"]
    assert stored["retention"] == pytest.approx(free.metrics["accuracy"] / teacher_acc)
    assert "not measured" in stored["latency"] and stored["teacher_fingerprint"] == manifest["teacher_fingerprint"]
    a, b = load_file(str(tmp_path / "free" / "model.safetensors")), load_file(str(tmp_path / "with" / "model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) == 0.0
    assert free.metrics == with_teacher.metrics
    with pytest.raises(KDistillError, match="stored logits are there"):
        kdistill.distill(None, "sst2", str(student), output_dir=tmp_path / "cos", cos_weight=1.0, **base)
    with pytest.raises(KDistillError, match="needs --teacher .* or --transfer-set with a pretrained --student"):
        kdistill.distill(None, "sst2", output_dir=tmp_path / "copy", **base)  # copying layers needs the teacher


def test_push_to_hub_without_the_hub_is_one_line_and_keeps_the_set(made, tiny_teacher_dir, glue_dir, tmp_path,
                                                                    monkeypatch):
    """`label --push-to-hub` uploads the complete set as a hub dataset repository; offline (as here) it fails in one
    line naming the repository, and the set stays complete on disk."""
    import kdistill.deploy.export as export

    calls = []
    monkeypatch.setattr(export, "push_folder", lambda folder, repo, **kw: calls.append((str(folder), repo, kw)) or
                        f"https://huggingface.co/datasets/{repo}")
    out, _ = made
    got = kdistill.label(str(tiny_teacher_dir), "sst2", output_dir=out, data_dir=str(glue_dir), push_to_hub="me/set",
                         **OPTS)
    assert got["pushed_to"].endswith("me/set") and calls == [(str(out), "me/set", {"repo_type": "dataset",
                                                                                   "what": "transfer set"})]
    monkeypatch.undo()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = CliRunner().invoke(app, ["label", "--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir), "--output",
                                 str(out), "--max-train-samples", "50", "--max-eval-samples", "16", "--shard-rows", "16",
                                 "--batch-size", "8", "--push-to-hub", "me/set"])
    assert r.exit_code != 0 and "--push-to-hub me/set: upload failed" in r.output and "is kept" in r.output
    assert json.loads((out / "manifest.json").read_text())["complete"]


def test_stored_hidden_states_serve_l_cos_without_the_teacher_pass(tiny_teacher_dir, glue_dir, tmp_path, monkeypatch):
    """`label --hidden-states` stores each row's last hidden states (float16, real tokens only; the size said first);
    `distill --cos-weight 1 --transfer-set SET` then reads them instead of running the teacher, and trains the
    student the live teacher trains, up to float16 rounding of the targets."""
    import torch
    from safetensors.torch import load_file

    from kdistill.config import DataConfig
    from kdistill.data import load_data
    from kdistill.engine import teacher as teacher_mod
    from kdistill.models import load_classifier, load_tokenizer

    out = tmp_path / "hidden"
    manifest = kdistill.label(str(tiny_teacher_dir), "sst2", output_dir=out, data_dir=str(glue_dir), hidden_states=True,
                              **OPTS)
    tok = load_tokenizer(str(tiny_teacher_dir))
    table = kdistill.transfer.read_complete_set(out)[1]
    first = table.column("text_a")[0].as_py()
    n_tokens = len(tok(first)["input_ids"])
    assert manifest["hidden_states_bytes_estimate"] > 0 and "hidden_states" in manifest["columns"]
    stored = np.asarray(table.column("hidden_states")[0].as_py(), dtype=np.float32)
    _, spec = load_data(DataConfig(task="sst2", data_dir=str(glue_dir), max_train_samples=50))
    teacher = load_classifier(str(tiny_teacher_dir), spec, require_trained_head=True).eval()
    with torch.inference_mode():
        live = teacher(**tok(first, return_tensors="pt"), output_hidden_states=True).hidden_states[-1][0].numpy()
    assert stored.shape == (n_tokens, teacher.config.hidden_size) and np.abs(stored - live).max() < 1e-2

    base = dict(data_dir=str(glue_dir), max_train_samples=50, max_eval_samples=16, selection_size=8, epochs=1,
                batch_size=16, layers=[0, 2], report=False, show_progress=False, seed=3, cos_weight=1.0)
    live_run = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "live", **base)
    monkeypatch.setattr(teacher_mod.LiveTeacher, "__call__", lambda *a, **k: pytest.fail("the teacher ran"))
    via = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "set", transfer_set=[str(out)], **base)
    info = json.loads((tmp_path / "set" / "train_results.json").read_text())["transfer_sets"]
    assert info["teacher"] == "stored logits and hidden states"
    a, b = load_file(str(tmp_path / "live" / "model.safetensors")), load_file(str(tmp_path / "set" / "model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-2
    assert abs(live_run.metrics["accuracy"] - via.metrics["accuracy"]) <= 1 / 16


def test_tinybert_reads_the_sets_logits_in_its_prediction_stage_and_runs_the_teacher_for_its_layers(
        made, tiny_teacher_dir, glue_dir, tmp_path, monkeypatch):
    """Each stage takes what the set gives: TinyBERT's intermediate stage needs the teacher's attention and hidden
    states (the teacher runs), its prediction stage only the logits (read from the set, no teacher pass)."""
    from kdistill.engine import teacher as teacher_mod

    gold, _ = made
    calls = {"live": 0, "stored": 0}
    live, stored = teacher_mod.LiveTeacher.__call__, teacher_mod.StoredLogits.__call__
    monkeypatch.setattr(teacher_mod.LiveTeacher, "__call__",
                        lambda self, b: calls.__setitem__("live", calls["live"] + 1) or live(self, b))
    monkeypatch.setattr(teacher_mod.StoredLogits, "__call__",
                        lambda self, b: calls.__setitem__("stored", calls["stored"] + 1) or stored(self, b))
    kdistill.distill(str(tiny_teacher_dir), "sst2", "spec", output_dir=tmp_path / "tb", method="tinybert",
                     num_layers=2, hidden_size=16, num_heads=2, intermediate_size=32, intermediate_epochs=1,
                     prediction_epochs=1, data_dir=str(glue_dir), max_train_samples=50, max_eval_samples=16,
                     selection_size=8, batch_size=16, report=False, show_progress=False, transfer_set=[str(gold)])
    assert calls == {"live": 3, "stored": 3}  # 45 rows / 16: 3 steps in each stage


def test_tinybert_augmentation_through_label(tiny_teacher_dir, glue_dir, tmp_path):
    """`label --augment tinybert`: TinyBERT's word replacements by neighbours in the teacher's input embeddings, made
    from the train rows less the selection slice, without gold labels; distill itself refuses it in one line."""
    from kdistill.config import DataConfig
    from kdistill.data import load_data
    from kdistill.data.selection import holdout_slice

    aug = kdistill.label(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "tb", data_dir=str(glue_dir),
                         augment="tinybert", n_iter=2, seed=3, selection_size=8, **OPTS)
    table = kdistill.transfer.read_complete_set(tmp_path / "tb")[1].to_pydict()
    splits, _ = load_data(DataConfig(task="sst2", data_dir=str(glue_dir), max_train_samples=50))
    _, selection, _ = holdout_slice(splits["train"], size=8, seed=3)
    held = {splits["train"]["text_a"].index(t) for t in selection["text_a"]}
    assert aug["inputs"]["augment"]["augment"] == "tinybert" and aug["rows"] > 0 and set(table["label"]) == {None}
    assert not held & set(table["source_idx"])
    originals = set(splits["train"]["text_a"])
    assert not originals & set(table["text_a"])  # every row is a changed sentence
    with pytest.raises(KDistillError, match="kdistill label --augment tinybert"):
        kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "d", augment="tinybert",
                         data_dir=str(glue_dir), max_train_samples=50, report=False, show_progress=False)


def test_stored_hidden_states_serve_word_aligned_l_cos_across_tokenizers(tiny_teacher_dir, tiny_tokenizer, glue_dir,
                                                                        tmp_path, monkeypatch):
    """A set made with --hidden-states also stores the teacher's word of each token; a student with its own tokenizer
    then gets L_cos aligned by words from the set, no teacher pass, close to the live teacher's run."""
    from safetensors.torch import load_file

    from conftest import make_tiny_bert
    from test_cross_tokenizer import _own_tokenizer

    from kdistill.data.loading import load_splits
    from kdistill.engine import teacher as teacher_mod

    out = tmp_path / "hidden"
    kdistill.label(str(tiny_teacher_dir), "sst2", output_dir=out, data_dir=str(glue_dir), hidden_states=True, **OPTS)
    table = kdistill.transfer.read_complete_set(out)[1]
    assert "word_ids" in table.column_names and len(table.column("word_ids")[0]) == len(table.column("hidden_states")[0])
    splits, _ = load_splits("sst2", data_dir=str(glue_dir), max_train_samples=200)
    own = _own_tokenizer(tmp_path, list(splits["train"]["text_a"]))
    student = tmp_path / "student"
    make_tiny_bert(vocab_size=len(own), layers=1, seed=5).save_pretrained(student)
    own.save_pretrained(student)
    base = dict(data_dir=str(glue_dir), max_train_samples=50, max_eval_samples=16, selection_size=8, epochs=1,
                batch_size=16, report=False, show_progress=False, seed=3, cos_weight=1.0)
    kdistill.distill(str(tiny_teacher_dir), "sst2", str(student), output_dir=tmp_path / "live", **base)
    monkeypatch.setattr(teacher_mod.LiveTeacher, "__call__", lambda *a, **k: pytest.fail("the teacher ran"))
    kdistill.distill(str(tiny_teacher_dir), "sst2", str(student), output_dir=tmp_path / "set", transfer_set=[str(out)],
                     **base)
    info = json.loads((tmp_path / "set" / "train_results.json").read_text())["transfer_sets"]
    assert "word ids" in info["teacher"]
    a, b = load_file(str(tmp_path / "live" / "model.safetensors")), load_file(str(tmp_path / "set" / "model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-2
