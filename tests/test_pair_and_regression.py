"""Pair tasks and regression through the whole pipeline (GLUE-layout fixtures written here)."""

from __future__ import annotations

import json
import random

import pytest
import torch
from transformers import ElectraConfig, ElectraForSequenceClassification

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


def test_stsb_regression_distillation(tmp_path, teacher_for):
    _write_stsb(tmp_path / "glue")
    res = kdistill.distill(str(teacher_for(1)), "stsb", output_dir=tmp_path / "run", data_dir=str(tmp_path / "glue"),
                           epochs=1, batch_size=16, show_progress=False, latency_runs=3)
    assert set(res.metrics) == {"pearson", "spearmanr"}
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    assert rep["metric_name"] == "pearson"
    assert -1.0 <= res.metrics["pearson"] <= 1.0
    assert "eval/pearson" in (tmp_path / "run" / "logs" / "train_log.csv").read_text()


def test_mrpc_pair_distillation_uses_both_sentences(tmp_path, teacher_for, tiny_tokenizer):
    _write_mrpc(tmp_path / "glue")
    res = kdistill.distill(str(teacher_for(2)), "mrpc", output_dir=tmp_path / "run", data_dir=str(tmp_path / "glue"),
                           epochs=1, batch_size=16, show_progress=False, latency_runs=3)
    assert set(res.metrics) == {"f1", "accuracy"}
    from kdistill.data import load_splits
    from kdistill.data.batching import tokenize

    splits, _ = load_splits("mrpc", data_dir=tmp_path / "glue")
    ds = tokenize(splits["train"], tiny_tokenizer, cache_dir=tmp_path / "cache")
    assert int(ds[0]["token_type_ids"].max()) == 1  # second sentence present as segment B


def test_electra_layers_from_teacher():
    e = ElectraForSequenceClassification(ElectraConfig(vocab_size=100, embedding_size=16, hidden_size=32,
                                                       num_hidden_layers=4, num_attention_heads=2, intermediate_size=64))
    s = layers_from_teacher(e, [0, 3])
    assert s.config.num_hidden_layers == 2
    assert torch.equal(s.electra.encoder.layer[1].intermediate.dense.weight, e.electra.encoder.layer[3].intermediate.dense.weight)
    assert torch.equal(s.classifier.out_proj.weight, e.classifier.out_proj.weight)
