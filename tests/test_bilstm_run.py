"""The BiLSTM student (Tang et al. 2019) through the API and CLI: distil with the augmented transfer set,
save, evaluate, report, export to ONNX, resume; the gold loss ignores augmented rows."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import kdistill
from kdistill.transfer.runcache import read_cache
from kdistill.cli import app
from kdistill.config import AugmentConfig, DistillConfig
from kdistill.data.augment import tang as augment_tang
from kdistill.data.augment.tang import DictPosTagger
from kdistill.data.tasks import get_task
from kdistill.errors import KDistillError, ModelError
from kdistill.objectives import make_objective

runner = CliRunner()
FAST = ["--epochs", "1", "--batch-size", "16", "--lr", "1e-3", "--latency-runs", "5", "--max-eval-samples", "64", "--select-on", "dev"]
TAGS = {"the": "DT", "a": "DT", "an": "DT", "film": "NN", "movie": "NN", "story": "NN", "good": "JJ", "bad": "JJ",
        "funny": "JJ", "is": "VBZ", "was": "VBD"}


@pytest.fixture
def dict_tagger(monkeypatch):
    """A lookup-table tagger in place of spaCy, so the POS-guided path runs in CI without it."""
    monkeypatch.setattr(augment_tang, "default_pos_tagger", lambda: DictPosTagger(TAGS, default="X"))


def _train_rows(out):
    return json.loads((out / "train_results.json").read_text())


def test_cli_distill_bilstm_augmented_then_evaluate_report_export(tiny_teacher_dir, glue_dir, tmp_path, dict_tagger):
    out = tmp_path / "bilstm"
    r = runner.invoke(app, ["distill", "--teacher", str(tiny_teacher_dir), "--task", "sst2", "--data-dir", str(glue_dir),
                            "--student", "bilstm", "--bilstm-hidden", "16", "--bilstm-fc", "24", "--kd-loss", "mse",
                            "--alpha", "0", "--augment", "tang", "--n-iter", "3", "--max-augmented", "250",
                            "--max-train-samples", "150", "--output", str(out), *FAST])
    assert r.exit_code == 0, r.output
    for name in ("config.json", "model.safetensors", "tokenizer.json", "report.json", "report.md", "report.png",
                 "training_curves.png", "checkpoint/trainer_state.json", "teacher_logits/manifest.json"):
        assert (out / name).exists(), name
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "kdistill-bilstm" and config["hidden_size"] == 16 and config["fc_size"] == 24
    assert config["embedding_mode"] == "multichannel" and config["embedding_dim"] == 32  # the tiny teacher's width
    info = _train_rows(out)["augment"]
    assert info["original_rows"] == 150 and 0 < info["augmented_used"] <= 250
    assert info["pos_tagger"].startswith("DictPosTagger")
    # the teacher labelled every row, originals and augmented ones (its logit cache is indexed by idx)
    logits = read_cache(out / "teacher_logits")
    assert logits.shape == (150 + info["augmented_used"], 2)
    rep = json.loads((out / "report.json").read_text())
    assert rep["student_kind"] == "bilstm" and rep["augment"]["augmented_used"] == info["augmented_used"]
    assert rep["student_params_non_embedding"] < rep["student_params"]  # both embedding tables are excluded
    assert rep["student_disk_mb"] > 0 and rep["student_latency_ms"] > 0

    # evaluate through the CLI reproduces the run's best dev metric
    ev = runner.invoke(app, ["evaluate", "--model", str(out), "--task", "sst2", "--data-dir", str(glue_dir),
                             "--max-eval-samples", "64"])
    assert ev.exit_code == 0, ev.output
    metrics = json.loads(ev.stdout[ev.stdout.index("{"):])
    assert metrics["accuracy"] == pytest.approx(_train_rows(out)["eval"]["accuracy"])

    # a standalone report on the saved BiLSTM
    rep_dir = tmp_path / "rep"
    rr = runner.invoke(app, ["report", "--teacher", str(tiny_teacher_dir), "--student", str(out), "--task", "sst2",
                             "--data-dir", str(glue_dir), "--max-eval-samples", "64", "--latency-runs", "5",
                             "--output", str(rep_dir)])
    assert rr.exit_code == 0, rr.output
    rep2 = json.loads((rep_dir / "report.json").read_text())
    assert rep2["student_metric"] == pytest.approx(metrics["accuracy"])
    assert rep2["student_params"] == rep["student_params"]

    # ONNX export: onnx and onnxruntime are in the dev extra, so the check against PyTorch is required
    import onnxruntime as ort

    with pytest.warns(DeprecationWarning, match="kdistill.export"):  # the hidden export-onnx command is gone
        res = kdistill.api.export_onnx(str(out), tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").exists() and res["inputs"] == ["input_ids", "attention_mask"]
    assert isinstance(res["max_abs_diff"], float) and res["max_abs_diff"] < 1e-4  # the export's own check ran
    # and an independent one: real dev sentences (another batch size and length) through ONNX Runtime vs PyTorch
    from kdistill.students.bilstm import BiLSTMForSequenceClassification
    from transformers import AutoTokenizer

    from kdistill.data import load_splits

    dev = list(load_splits("sst2", data_dir=str(glue_dir), max_eval_samples=5)[0]["validation"]["text_a"])
    enc = AutoTokenizer.from_pretrained(out)(dev, padding=True, return_tensors="pt")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {k: enc[k].numpy() for k in res["inputs"]})[0]
    with torch.inference_mode():
        ref = BiLSTMForSequenceClassification.from_pretrained(out).eval()(
            input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    assert got.shape == (5, 2)
    torch.testing.assert_close(torch.from_numpy(got), ref, atol=1e-4, rtol=1e-4)


def test_export_onnx_refuses_a_transformer(tiny_teacher_dir, tmp_path):
    from kdistill.errors import KDistillError

    with pytest.warns(DeprecationWarning), pytest.raises(KDistillError, match="not a saved BiLSTM student"):
        kdistill.api.export_onnx(str(tiny_teacher_dir), tmp_path / "t.onnx")
    r = runner.invoke(app, ["export-onnx", "--model", str(tiny_teacher_dir), "--output", str(tmp_path / "t.onnx")])
    assert r.exit_code == 2 and "No such command" in r.output  # removed (CHANGELOG.md): `kdistill export` does it


def test_gold_loss_ignores_augmented_rows():
    torch.manual_seed(0)
    logits, teacher = torch.randn(6, 2), torch.randn(6, 2)
    labels = torch.tensor([1, 0, -1, -1, 1, -1])
    obj = make_objective("kd", get_task("sst2"), DistillConfig(alpha=0.5, kd_loss="mse"))
    from kdistill.objectives import ModelSignal

    terms = obj(ModelSignal(logits=logits), {"labels": labels}, ModelSignal(logits=teacher))
    gold = labels >= 0
    expected = torch.nn.functional.cross_entropy(logits[gold], labels[gold])
    assert terms["hard"] == pytest.approx(float(expected))
    assert terms["soft"] == pytest.approx(float(((logits - teacher) ** 2).mean()))  # the teacher signal covers all rows
    # a batch of augmented rows only: no gold term, but a graph-keeping zero
    only_aug = obj.gold_loss(logits.requires_grad_(), torch.full((6,), -1))
    assert float(only_aug.detach()) == 0.0 and only_aug.requires_grad
    # regression: NaN marks the augmented rows
    reg = make_objective("kd", get_task("stsb"), DistillConfig(alpha=1.0))
    scores, target = torch.randn(4, 1), torch.tensor([1.0, math.nan, 3.0, math.nan])
    got = reg.gold_loss(scores, target)
    assert float(got) == pytest.approx(float(((scores.squeeze(-1)[[0, 2]] - target[[0, 2]]) ** 2).mean()))


def test_augment_train_split_indices_labels_cap_and_cache(glue_dir, tmp_path):
    from kdistill.data.augment.tang import augment_train_split
    from kdistill.data import load_splits

    splits, _ = load_splits("sst2", data_dir=str(glue_dir), max_train_samples=60, max_eval_samples=8)
    acfg = AugmentConfig(augment="tang", n_iter=4, p_pos=0.0, max_augmented=100)
    ds, info = augment_train_split(splits["train"], acfg, mask_token="[MASK]", seed=1, cache_dir=tmp_path)
    assert info["original_rows"] == 60 and info["augmented_used"] == min(100, info["augmented_generated"])
    assert ds["idx"] == list(range(len(ds)))
    assert ds["label"][:60] == splits["train"]["label"] and set(ds["label"][60:]) == {-1}
    assert ds["text_a"][:60] == splits["train"]["text_a"]
    again, info2 = augment_train_split(splits["train"], acfg, mask_token="[MASK]", seed=1, cache_dir=tmp_path)
    assert info2 == info and again["text_a"] == ds["text_a"]  # read back from the cache
    assert len(list(tmp_path.glob("aug-tang-*"))) == 1


def test_augment_errors_before_training(tiny_teacher_dir, glue_dir, tmp_path, monkeypatch):
    opts = dict(data_dir=str(glue_dir), max_train_samples=32, max_eval_samples=16, epochs=1, show_progress=False)
    with pytest.raises(KDistillError, match="alpha < 1"):
        kdistill.distill(str(tiny_teacher_dir), "sst2", "bilstm", output_dir=tmp_path / "a", alpha=1.0, augment="tang",
                         **opts)

    def missing():
        raise KDistillError("no spaCy")

    monkeypatch.setattr(augment_tang, "default_pos_tagger", missing)
    with pytest.raises(KDistillError, match=r"pip install .*--p-pos 0"):
        kdistill.distill(str(tiny_teacher_dir), "sst2", "bilstm", output_dir=tmp_path / "b", alpha=0.0, augment="tang",
                         **opts)
    with pytest.raises(ModelError, match="cos-weight"):
        kdistill.distill(str(tiny_teacher_dir), "sst2", "bilstm", output_dir=tmp_path / "c", cos_weight=1.0, **opts)
    with pytest.raises(KDistillError, match="bilstm student only"):
        kdistill.distill(str(tiny_teacher_dir), "sst2", "spec", output_dir=tmp_path / "d", num_layers=1, hidden_size=16,
                         num_heads=2, bilstm_hidden=8, **opts)
    assert not any((tmp_path / n).exists() for n in "abcd")


def test_bilstm_resume_equals_uninterrupted_and_wrong_task(tiny_teacher_dir, glue_dir, tmp_path):
    opts = dict(data_dir=str(glue_dir), max_train_samples=48, max_eval_samples=16, epochs=2, batch_size=16,
                learning_rate=1e-3, eval_steps=3, show_progress=False, report=False, kd_loss="mse", alpha=0.5,
                augment="tang", p_pos=0.0, n_iter=2, bilstm_hidden=8, bilstm_fc=8, embedding_mode="trainable",
                keep_checkpoint=True)  # finished runs keep only the small state otherwise; compared below
    full = kdistill.distill(str(tiny_teacher_dir), "sst2", "bilstm", output_dir=tmp_path / "full", **opts)
    steps = json.loads((tmp_path / "full" / "checkpoint" / "trainer_state.json").read_text())["global_step"]
    assert steps >= 6

    def stop_midway(state):
        if state.global_step == steps // 2 + 1:
            state.stop_requested = True

    part = kdistill.distill(str(tiny_teacher_dir), "sst2", "bilstm", output_dir=tmp_path / "part",
                            callbacks=[stop_midway], **opts)
    assert part.interrupted
    resumed = kdistill.distill(str(tiny_teacher_dir), "sst2", "bilstm", output_dir=tmp_path / "part", resume=True, **opts)
    assert not resumed.interrupted
    a = load_file(str(tmp_path / "full" / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "checkpoint" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.metrics == full.metrics
    # a saved BiLSTM loads for its own task only
    from kdistill.models import load_classifier

    assert load_classifier(str(tmp_path / "full"), get_task("sst2"), require_trained_head=True).config.hidden_size == 8
    with pytest.raises(ModelError, match="3"):
        load_classifier(str(tmp_path / "full"), get_task("mnli"), require_trained_head=True)


def test_build_bilstm_from_word_vectors_and_teacher_embeddings(tiny_teacher_dir, tmp_path, tiny_tokenizer):
    from kdistill.students.bilstm import build_bilstm_student
    from kdistill.config import BiLSTMStudent
    from kdistill.models import load_classifier

    task = get_task("sst2")
    teacher = load_classifier(str(tiny_teacher_dir), task, require_trained_head=True)
    vec = tmp_path / "vectors.txt"
    vec.write_text("3 4\nmovie 1 2 3 4\nfilm 0.5 0.5 0.5 0.5\ngood -1 0 1 0\n")
    sc = BiLSTMStudent(word_vectors=str(vec), embedding_mode="frozen", bilstm_hidden=6, bilstm_fc=5)
    model = build_bilstm_student(sc, teacher, task, tiny_tokenizer, seed=0)
    assert model.config.embedding_dim == 4 and model.config.vocab_size == len(tiny_tokenizer)
    movie = tiny_tokenizer.convert_tokens_to_ids("movie")
    assert torch.equal(model.embedding.weight[movie], torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert not model.embedding.weight.requires_grad and model.config.num_labels == 2
    assert model.config.id2label[1] == "positive"
    from_teacher = build_bilstm_student(BiLSTMStudent(), teacher, task, tiny_tokenizer, seed=0)
    assert from_teacher.config.hidden_size == 150 and from_teacher.config.fc_size == 200  # the paper's sizes
    assert torch.equal(from_teacher.embedding.weight, teacher.get_input_embeddings().weight)
    assert from_teacher.embedding_static is not None  # multichannel by default
