"""MiniLM / MiniLMv2 general distillation (issue 16, part 3): relation terms read one layer's Q/K/V of each model;
v2 works across widths and head counts; v1 refuses different head counts in one line."""

from __future__ import annotations

import csv

import pytest
import torch

from conftest import make_tiny_bert


@pytest.fixture()
def setup(tiny_tokenizer, glue_dir, tmp_path):
    lines = (glue_dir / "SST-2" / "train.tsv").read_text().splitlines()[1:201]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(line.split("\t")[0] for line in lines) + "\n")
    enc = tmp_path / "encoder"
    make_tiny_bert(layers=4, hidden=32, heads=4).bert.save_pretrained(enc)
    tiny_tokenizer.save_pretrained(enc)
    return corpus, enc


def _log(run):
    with (run / "logs" / "train_log.csv").open() as f:
        return list(csv.DictReader(f))


def test_minilm_v2_across_widths_and_heads(setup, tmp_path):
    import kdistill.api as api

    corpus, enc = setup
    out = tmp_path / "v2"
    res = api.general_distill(str(enc), method="minilm", output_dir=out, text_files=[str(corpus)], num_layers=2,
                              hidden_size=24, num_heads=3, intermediate_size=48, relation_heads=4, teacher_layer=3,
                              max_steps=4, batch_size=16, logging_steps=1)
    assert not res.interrupted
    rows = _log(out)
    for key in ("train/qq", "train/kk", "train/vv"):
        values = [float(r["value"]) for r in rows if r["key"] == key]
        assert values and all(v > 0 and v == v for v in values)
    first, last = [[float(r["value"]) for r in rows if r["key"] == "train/loss"][i] for i in (0, -1)]
    assert last < first  # the student moves toward the teacher's relations


def test_minilm_v1_needs_equal_heads_and_runs_with_them(setup, tmp_path):
    import kdistill.api as api
    from kdistill.errors import ModelError

    corpus, enc = setup
    with pytest.raises(ModelError, match="head by head.*--minilm-version 2"):
        api.general_distill(str(enc), method="minilm", version=1, output_dir=tmp_path / "bad", text_files=[str(corpus)],
                            num_layers=2, hidden_size=24, num_heads=3, intermediate_size=48, max_steps=2)
    res = api.general_distill(str(enc), method="minilm", version=1, output_dir=tmp_path / "v1", text_files=[str(corpus)],
                              num_layers=2, hidden_size=16, num_heads=4, intermediate_size=32, max_steps=3,
                              batch_size=16, logging_steps=1)
    assert not res.interrupted and {"train/qk", "train/vv"} <= {r["key"] for r in _log(tmp_path / "v1")}


def test_relation_term_reads_the_chosen_layers():
    """The qk relation of a model with itself is 0; against another layer of the same model it is not."""
    from kdistill.objectives.signals import ModelSignal
    from kdistill.objectives.terms import make_term
    from kdistill.students.relations import capture_qkv

    model = make_tiny_bert(layers=3, hidden=32, heads=4, initializer_range=0.5).eval()  # peaked attention
    batch = {"input_ids": torch.randint(5, 500, (2, 9)), "attention_mask": torch.ones(2, 9, dtype=torch.long)}
    sigs = {}
    for layer in (0, 2):
        with torch.no_grad(), capture_qkv(model, layer) as rec:
            model(**batch)
        sigs[layer] = ModelSignal(logits=None, qkv=dict(rec))
    term = make_term("relation", kind="qk", relation_heads=4)
    assert float(term(sigs[2], sigs[2], batch)) == pytest.approx(0.0, abs=1e-6)
    assert float(term(sigs[0], sigs[2], batch)) > 1e-3
