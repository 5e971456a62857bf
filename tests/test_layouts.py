"""MPNet (all-mpnet-base-v2's layout), DeBERTa-v2 and ModernBERT: layer copy, spec students, KD on logits and hidden
states end to end, and a one-line refusal of what needs attention capture (issue 15, part 2)."""

from __future__ import annotations

import pytest
import torch

LABELS = dict(num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})


def tiny(kind: str, vocab: int = 30522, layers: int = 3):
    from transformers import (DebertaV2Config, DebertaV2ForSequenceClassification, ModernBertConfig,
                              ModernBertForSequenceClassification, MPNetConfig, MPNetForSequenceClassification)

    torch.manual_seed(0)
    common = dict(vocab_size=vocab, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4, intermediate_size=48,
                  max_position_embeddings=160, initializer_range=0.2, **LABELS)
    if kind == "mpnet":
        return MPNetForSequenceClassification(MPNetConfig(**common)).eval()
    if kind == "deberta-v2":
        return DebertaV2ForSequenceClassification(DebertaV2Config(**common, relative_attention=True, position_buckets=32,
                                                                  pos_att_type=["p2c", "c2p"])).eval()
    return ModernBertForSequenceClassification(ModernBertConfig(**common, pad_token_id=0, cls_token_id=101, sep_token_id=102,
                                                                bos_token_id=None, eos_token_id=None,
                                                                global_attn_every_n_layers=2, local_attention=16)).eval()


KINDS = ["mpnet", "deberta-v2", "modernbert"]
SHARED = {"mpnet": "mpnet.encoder.relative_attention_bias.weight", "deberta-v2": "deberta.encoder.rel_embeddings.weight",
          "modernbert": "model.embeddings.tok_embeddings.weight"}


def _batch():
    ids = torch.randint(5, 1000, (3, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    return {"input_ids": ids, "attention_mask": mask}


@pytest.mark.parametrize("kind", KINDS)
def test_layer_copy(kind):
    from kdistill.students import from_spec, layers_from_teacher

    teacher = tiny(kind)
    whole = layers_from_teacher(teacher, [0, 1, 2]).eval()
    with torch.no_grad():
        torch.testing.assert_close(whole(**_batch()).logits, teacher(**_batch()).logits)
    student = layers_from_teacher(teacher, [0, 2]).eval()
    t_state, s_state = teacher.state_dict(), student.state_dict()
    layers = {"mpnet": "mpnet.encoder.layer", "deberta-v2": "deberta.encoder.layer", "modernbert": "model.layers"}[kind]
    for key, value in s_state.items():
        if key.startswith(layers + ".1."):  # student layer 1 is teacher layer 2
            torch.testing.assert_close(value, t_state[key.replace(layers + ".1.", layers + ".2.")])
    torch.testing.assert_close(s_state[SHARED[kind]], t_state[SHARED[kind]])
    if kind == "modernbert":  # each copied layer keeps its global / sliding attention
        assert student.config.layer_types == [teacher.config.layer_types[0], teacher.config.layer_types[2]]
    spec = from_spec(teacher.config, num_layers=2, hidden_size=16, num_heads=2, intermediate_size=24, seed=0).eval()
    with torch.no_grad():
        assert spec(**_batch()).logits.shape == (3, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_kd_with_hidden_states_end_to_end(kind, tiny_tokenizer, glue_dir, tmp_path):
    """A 3-layer teacher of each layout distilled into its 2-layer copy: soft targets + DistilBERT's cosine on the last
    hidden states; the student saves, reloads with AutoModelForSequenceClassification and matches the report."""
    import kdistill
    from transformers import AutoModelForSequenceClassification

    teacher_dir = tmp_path / "teacher"
    tiny(kind, vocab=len(tiny_tokenizer)).save_pretrained(teacher_dir)
    tiny_tokenizer.save_pretrained(teacher_dir)
    res = kdistill.distill(str(teacher_dir), "sst2", output_dir=tmp_path / "run", data_dir=str(glue_dir),
                           max_train_samples=64, max_eval_samples=32, selection_size=6, epochs=1, batch_size=16,
                           layers=[0, 2], cos_weight=1.0, latency_runs=3)
    assert res.report["student_params"] < res.report["teacher_params"]
    assert {"soft_kl", "hidden_cos"} <= {t["term"] for t in res.report["loss_terms"].values()}
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run")
    assert type(reloaded).__name__ == type(tiny(kind)).__name__ and reloaded.config.num_hidden_layers == 2


def test_layerwise_distillation_refused_in_one_line(tiny_tokenizer, glue_dir, tmp_path):
    import kdistill
    from kdistill.errors import ModelError

    teacher_dir = tmp_path / "teacher"
    tiny("deberta-v2", vocab=len(tiny_tokenizer)).save_pretrained(teacher_dir)
    tiny_tokenizer.save_pretrained(teacher_dir)
    with pytest.raises(ModelError, match=r"deberta-v2 models \(student\) do not route .* use --method kd"):
        kdistill.distill(str(teacher_dir), "sst2", output_dir=tmp_path / "run", method="tinybert", data_dir=str(glue_dir),
                         max_train_samples=32, max_eval_samples=16, layers=[0, 2])
    assert not (tmp_path / "run").exists()


def test_mpnet_importance_pruning_and_export(tmp_path):
    """MPNet through the compression path: head importance (gates on the attention output), pruning to unequal head
    counts (each layer then reads its own rows of the shared position bias), ONNX export with fp32 parity."""
    import numpy as np

    import kdistill.compress as kc
    from kdistill.deploy.graph import export_graph
    from kdistill.deploy.runtime import OrtModel
    from transformers import AutoTokenizer

    model = tiny("mpnet")
    batch = {**_batch(), "labels": torch.tensor([0, 1, 1])}
    imp = kc.compute_importance(model, [batch])
    assert tuple(imp.head_importance.shape) == (3, 4) and torch.isfinite(imp.head_importance).all() and float(imp.head_importance.abs().sum()) > 0
    pruned = kc.prune_heads(model, kc.lowest_heads(imp.head_importance, 5)).eval()
    assert sorted(kc.heads_per_layer(pruned)) != [4, 4, 4] and sum(kc.heads_per_layer(pruned)) == 7
    tok = AutoTokenizer.from_pretrained(str(__import__("conftest").SHARED / "teachers" / "minilm-l6-sst2"))
    path = tmp_path / "pruned.onnx"
    export_graph(pruned, tok, path)
    with torch.no_grad():
        ref = pruned(**_batch()).logits.numpy()
    got = OrtModel(path, pruned.config)(**_batch()).logits.numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


def test_mpnet_attention_capture_matches_its_own_attention_probs():
    """Hook capture of MPNet (its attention is not an AttentionInterface call): the recorded probabilities are the ones
    MPNet returns with output_attentions, the scores their pre-mask logits (Q·Kᵀ/√d + the shared position bias), also
    after head pruning (each layer's own bias rows)."""
    import kdistill.compress as kc
    from kdistill.students.capture import capture_attention

    for model in (tiny("mpnet"), kc.prune_heads(tiny("mpnet"), {0: [1, 2], 2: [0]}).eval()):
        b = _batch()
        with torch.no_grad():
            want = model(**b, output_attentions=True).attentions
            with capture_attention(model) as rec:
                model(**b)
        assert len(rec.probs) == 3
        for i, (got, ref) in enumerate(zip(rec.probs, want)):
            torch.testing.assert_close(got, ref)
            assert rec.scores[i].shape == ref.shape
            masked = rec.scores[i] + (1.0 - b["attention_mask"][:, None, None, :].float()) * torch.finfo(torch.float32).min
            torch.testing.assert_close(torch.softmax(masked, -1), ref)
        assert [p.shape[1] for p in rec.probs] == kc.heads_per_layer(model)


def test_tinybert_on_mpnet_end_to_end(tiny_tokenizer, glue_dir, tmp_path):
    import kdistill

    teacher_dir = tmp_path / "teacher"
    tiny("mpnet", vocab=len(tiny_tokenizer)).save_pretrained(teacher_dir)
    tiny_tokenizer.save_pretrained(teacher_dir)
    res = kdistill.distill(str(teacher_dir), "sst2", "spec", output_dir=tmp_path / "tb", method="tinybert",
                           data_dir=str(glue_dir), max_train_samples=48, max_eval_samples=16, selection_size=4,
                           num_layers=2, hidden_size=16, num_heads=4, intermediate_size=24, intermediate_epochs=1,
                           prediction_epochs=1, batch_size=16, report=False)
    assert not res.interrupted and 0.0 <= res.metrics["accuracy"] <= 1.0
    import csv

    with (tmp_path / "tb" / "intermediate" / "logs" / "train_log.csv").open() as f:
        keys = {r["key"] for r in csv.DictReader(f)}
    assert {"train/attn", "train/hidden"} <= keys
