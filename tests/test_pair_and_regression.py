"""Pair tasks and regression through the whole pipeline (GLUE-layout fixtures written here).

The checks look at what the run itself did: every training step is recorded (the batch, the inputs the
student's forward received and its logits, the loss terms) by wrapping :func:`kdistill.engine.loop._step`.
"""

from __future__ import annotations

import json
import random

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, ElectraConfig, ElectraForSequenceClassification

import kdistill
from conftest import make_tiny_bert
from kdistill.students import layers_from_teacher

WORDS = "a man woman dog plays runs eats the guitar flute ball park happy sad film good bad".split()


def _sent(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + " ."


def _write_stsb(root, n_train=48, n_dev=16):
    rng = random.Random(0)
    d = root / "STS-B"
    d.mkdir(parents=True)
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    for name, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
        rows = [f"{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t{_sent(rng)}\t{_sent(rng)}\t{rng.uniform(0, 5):.3f}"
                for i in range(n)]
        (d / name).write_text("\n".join([header, *rows]) + "\n")


def _write_mrpc(root, n_train=48, n_dev=16):
    rng = random.Random(1)
    d = root / "MRPC"
    d.mkdir(parents=True)
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
    for name, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
        rows = [f"{i % 2}\t{100 + i}\t{200 + i}\t{_sent(rng)}\t{_sent(rng)}" for i in range(n)]
        (d / name).write_text("\n".join([header, *rows]) + "\n")


@pytest.fixture()
def recorded_steps(monkeypatch):
    """Every optimizer micro-step of the runs in the test: the batch, the student's forward inputs and logits, the terms."""
    import kdistill.engine.loop as loop

    steps, real_step = [], loop._step

    def recording_step(trainee, batch, *args, **kwargs):
        student = getattr(trainee, "module", trainee).student
        seen = {}

        def pre(module, args_, kwargs_):
            seen["inputs"] = {k: v.detach().clone() for k, v in kwargs_.items() if torch.is_tensor(v)}

        def post(module, args_, kwargs_, out):
            seen["logits"] = out.logits.detach().clone()

        handles = [student.register_forward_pre_hook(pre, with_kwargs=True),
                   student.register_forward_hook(post, with_kwargs=True)]
        try:
            terms = real_step(trainee, batch, *args, **kwargs)
        finally:
            for h in handles:
                h.remove()
        steps.append({"batch": {k: v.detach().clone() for k, v in batch.items()}, **seen,
                      "terms": {k: v.detach().clone() for k, v in terms.items()}})
        return terms

    monkeypatch.setattr(loop, "_step", recording_step)
    return steps


@pytest.fixture()
def teacher_for(tmp_path, tiny_tokenizer):
    def make(num_labels):
        path = tmp_path / f"teacher{num_labels}"
        m = make_tiny_bert(num_labels=num_labels)
        if num_labels == 1:
            m.config.problem_type = "regression"
            m.config.id2label, m.config.label2id = {0: "LABEL_0"}, {"LABEL_0": 0}
        m.save_pretrained(path)
        tiny_tokenizer.save_pretrained(path)
        return path

    return make


def test_stsb_regression_distillation(tmp_path, teacher_for, recorded_steps):
    """STS-B end to end; on every batch of the run the soft term is the MSE to the teacher's prediction."""
    _write_stsb(tmp_path / "glue")
    teacher_dir = teacher_for(1)
    res = kdistill.distill(str(teacher_dir), "stsb", output_dir=tmp_path / "run", data_dir=str(tmp_path / "glue"),
                           epochs=1, batch_size=16, show_progress=False, latency_runs=3, alpha=0.5, temperature=3.0)
    assert set(res.metrics) == {"pearson", "spearmanr"}
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    assert rep["metric_name"] == "pearson" and rep["student_metric"] == pytest.approx(res.metrics["pearson"])
    assert -1.0 <= res.metrics["pearson"] <= 1.0
    assert "eval/pearson" in (tmp_path / "run" / "logs" / "train_log.csv").read_text()

    assert len(recorded_steps) == 3  # 48 rows, batches of 16
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir).eval()
    from kdistill.data.batching import model_inputs

    for step in recorded_steps:
        labels, student = step["batch"]["labels"], step["logits"]
        assert labels.dtype.is_floating_point and student.shape == (len(labels), 1)  # one score per row
        with torch.no_grad():
            t_pred = teacher(**model_inputs(step["batch"])).logits
        terms = step["terms"]
        soft = F.mse_loss(student.squeeze(-1), t_pred.squeeze(-1))
        hard = F.mse_loss(student.squeeze(-1), labels)
        torch.testing.assert_close(terms["soft"], soft, atol=1e-5, rtol=1e-4)  # not KL, not T-scaled
        torch.testing.assert_close(terms["hard"], hard, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(terms["loss"], 0.5 * hard + 0.5 * soft, atol=1e-5, rtol=1e-4)
        assert not torch.allclose(soft, hard)  # the teacher's prediction, not the gold score


def test_mrpc_pair_distillation_uses_both_sentences(tmp_path, teacher_for, tiny_tokenizer, recorded_steps):
    """MRPC end to end; every batch the student trained on holds both sentences of its rows, as segments A and B."""
    _write_mrpc(tmp_path / "glue")
    res = kdistill.distill(str(teacher_for(2)), "mrpc", output_dir=tmp_path / "run", data_dir=str(tmp_path / "glue"),
                           epochs=1, batch_size=16, show_progress=False, latency_runs=3, select_on="dev")  # all 48 pairs
    assert set(res.metrics) == {"f1", "accuracy"}
    from kdistill.data import load_splits

    train = load_splits("mrpc", data_dir=tmp_path / "glue")[0]["train"]
    assert len(recorded_steps) == 3
    seen_rows = []
    for step in recorded_steps:
        fed = step["inputs"]  # what the student's forward received in the run
        assert {"input_ids", "attention_mask", "token_type_ids"} <= set(fed)
        ids, types, mask = fed["input_ids"], fed["token_type_ids"], fed["attention_mask"]
        for row, idx in enumerate(step["batch"]["idx"].tolist()):
            real = mask[row].bool()
            a = ids[row][real & (types[row] == 0)].tolist()
            b = ids[row][real & (types[row] == 1)].tolist()
            expect = tiny_tokenizer(train[idx]["text_a"], train[idx]["text_b"])["input_ids"]
            n_a = len(tiny_tokenizer(train[idx]["text_a"])["input_ids"])  # [CLS] a [SEP]
            assert a == expect[:n_a] and b == expect[n_a:], idx  # segment A = sentence 1, segment B = sentence 2
            assert tiny_tokenizer.convert_ids_to_tokens(b) == [*tiny_tokenizer.tokenize(train[idx]["text_b"]), "[SEP]"]
            seen_rows.append(idx)
    assert sorted(seen_rows) == list(range(48))  # one epoch: every training pair once


def test_electra_layers_from_teacher():
    e = ElectraForSequenceClassification(ElectraConfig(vocab_size=100, embedding_size=16, hidden_size=32,
                                                       num_hidden_layers=4, num_attention_heads=2, intermediate_size=64))
    s = layers_from_teacher(e, [0, 3])
    assert s.config.num_hidden_layers == 2
    assert torch.equal(s.electra.encoder.layer[1].intermediate.dense.weight, e.electra.encoder.layer[3].intermediate.dense.weight)
    assert torch.equal(s.classifier.out_proj.weight, e.classifier.out_proj.weight)
