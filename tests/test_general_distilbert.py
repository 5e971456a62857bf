"""DistilBERT general distillation end to end (issue 16, parts 1-2): a masked-LM head fitted onto a frozen encoder
(decoder tied, encoder unchanged, accuracy measured on held-out text), then the triple loss from it, every term
logged, the result usable as a task student; a resumed run ends with the same weights as an uninterrupted one."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import make_tiny_bert


@pytest.fixture()
def corpus(glue_dir, tmp_path):
    lines = (glue_dir / "SST-2" / "train.tsv").read_text().splitlines()[1:401]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(line.split("\t")[0] for line in lines) + "\n")
    return path


@pytest.fixture()
def encoder_dir(tiny_tokenizer, tmp_path):
    """A bare tiny BERT encoder with no masked-LM head (like all-MiniLM-L6-v2)."""
    path = tmp_path / "encoder"
    make_tiny_bert(layers=4).bert.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


def _keys(run):
    with (run / "logs" / "train_log.csv").open() as f:
        return {r["key"] for r in csv.DictReader(f)}


def test_fit_mlm_head_then_distilbert_general(encoder_dir, corpus, tmp_path):
    import kdistill.api as api
    from kdistill.errors import ModelError
    from kdistill.models import load_mlm

    with pytest.raises(ModelError, match="no trained masked-LM head .* `kdistill fit-mlm-head"):
        load_mlm(str(encoder_dir))
    head = tmp_path / "teacher_mlm"
    res = api.fit_mlm_head(str(encoder_dir), text_files=[str(corpus)], output_dir=head, eval_passages=50, max_steps=12,
                           batch_size=16)
    facts = json.loads((head / "mlm_head.json").read_text())
    assert facts["decoder_tied_to_embeddings"] is True and 0.0 <= facts["masked_token_accuracy"] <= 1.0
    assert facts["eval_passages"] == 50 and "weaker teacher signal" in facts["note"]
    before, after = load_file(str(encoder_dir / "model.safetensors")), load_file(str(head / "model.safetensors"))
    shared = [k for k in before if "bert." + k in after or k in after]  # the MLM model has no pooler
    assert len(shared) > 20
    for k in shared:  # the encoder stayed frozen
        torch.testing.assert_close(after.get(k, after.get("bert." + k)), before[k])
    assert any(k.startswith("cls.predictions.transform") for k in after)
    model = load_mlm(str(head))  # now it has a head
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert res.files["mlm_head"].endswith("mlm_head.json")

    out = tmp_path / "general"
    gen = api.general_distill(str(head), method="distilbert", output_dir=out, text_files=[str(corpus)],
                              student="layers-from-teacher", layers=[0, 3], max_steps=6, batch_size=16,
                              logging_steps=1)
    assert not gen.interrupted
    assert {"train/ce", "train/mlm", "train/cos"} <= _keys(out)
    results = json.loads((out / "train_results.json").read_text())
    assert results["method"] == "distilbert-general" and results["loss"]["ce_weight"] == 5.0
    student = load_mlm(str(out))
    assert student.config.num_hidden_layers == 2
    from transformers import AutoModelForSequenceClassification

    assert AutoModelForSequenceClassification.from_pretrained(out, num_labels=2).config.num_hidden_layers == 2


def test_distilbert_general_resumes_to_the_same_weights(encoder_dir, corpus, tmp_path):
    import kdistill.api as api

    head = tmp_path / "teacher_mlm"
    api.fit_mlm_head(str(encoder_dir), text_files=[str(corpus)], output_dir=head, eval_passages=20, max_steps=4,
                     batch_size=16)
    opts = dict(method="distilbert", text_files=[str(corpus)], student="layers-from-teacher", layers=[0, 3], max_steps=8,
                batch_size=16, logging_steps=1, eval_steps=4)
    api.general_distill(str(head), output_dir=tmp_path / "full", **opts)

    def stop_at_5(state):
        if state.global_step == 5:
            state.stop_requested = True

    part = api.general_distill(str(head), output_dir=tmp_path / "part", callbacks=[stop_at_5], **opts)
    assert part.interrupted
    api.general_distill(str(head), output_dir=tmp_path / "part", resume=True, **opts)
    full, resumed = load_file(str(tmp_path / "full" / "model.safetensors")), load_file(str(tmp_path / "part" / "model.safetensors"))
    assert full.keys() == resumed.keys()
    for k in full:
        torch.testing.assert_close(resumed[k], full[k], rtol=0, atol=0)


def test_cli_fit_head_then_general_distill(encoder_dir, corpus, tmp_path):
    import subprocess
    import sys

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "kdistill.cli", *args], capture_output=True, text=True, timeout=300)

    r = cli("fit-mlm-head", "--model", str(encoder_dir), "--text-file", str(corpus), "--eval-passages", "20",
            "--max-steps", "3", "--batch-size", "16", "--output", str(tmp_path / "head"))
    assert r.returncode == 0, r.stderr
    assert 0.0 <= json.loads(r.stdout)["masked_token_accuracy"] <= 1.0
    r = cli("general-distill", "--method", "distilbert", "--teacher", str(tmp_path / "head"), "--text-file", str(corpus),
            "--student", "layers-from-teacher", "--layers", "0,3", "--max-steps", "3", "--batch-size", "16",
            "--mlm-weight", "0", "--output", str(tmp_path / "gen"))
    assert r.returncode == 0, r.stderr
    assert {"train/ce", "train/cos"} <= _keys(tmp_path / "gen") and "train/mlm" not in _keys(tmp_path / "gen")
    r = cli("general-distill", "--method", "distilbert", "--teacher", str(encoder_dir), "--text-file", str(corpus),
            "--max-steps", "3", "--output", str(tmp_path / "bad"))
    assert r.returncode == 2 and "no trained masked-LM head" in r.stderr and "Traceback" not in r.stderr
