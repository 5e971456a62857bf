"""Students copied from a teacher keep the teacher's weights; spec students have the asked shape."""

import pytest
import torch
from transformers import DistilBertConfig, DistilBertForSequenceClassification, RobertaConfig, RobertaForSequenceClassification

from conftest import make_tiny_bert
from kdistill.errors import ModelError
from kdistill.students import default_layers, from_spec, layers_from_teacher


def test_default_layers_is_every_other_keeping_first_and_last():
    assert default_layers(6) == [0, 2, 5]
    assert default_layers(12) == [0, 2, 4, 7, 9, 11]  # DistilBERT's choice
    assert default_layers(4, 2) == [0, 3]
    with pytest.raises(ModelError):
        default_layers(4, 5)


def test_layers_from_teacher_copies_weights_exactly():
    teacher = make_tiny_bert(vocab_size=100, layers=6)
    student = layers_from_teacher(teacher, [0, 2, 5])
    assert student.config.num_hidden_layers == 3
    t, s = teacher.state_dict(), student.state_dict()
    for j, i in enumerate([0, 2, 5]):
        for key, value in s.items():
            if key.startswith(f"bert.encoder.layer.{j}."):
                assert torch.equal(value, t[key.replace(f"layer.{j}.", f"layer.{i}.", 1)]), key
    for key in ("bert.embeddings.word_embeddings.weight", "bert.pooler.dense.weight", "classifier.weight", "classifier.bias"):
        assert torch.equal(s[key], t[key])
    # copies, not shared storage
    s["classifier.weight"].add_(1.0)
    assert not torch.equal(s["classifier.weight"], t["classifier.weight"])


def test_layers_from_teacher_equals_teacher_when_all_layers_kept():
    teacher = make_tiny_bert(vocab_size=100, layers=3).eval()
    student = layers_from_teacher(teacher, [0, 1, 2]).eval()
    ids = torch.randint(0, 100, (2, 7))
    assert torch.allclose(teacher(input_ids=ids).logits, student(input_ids=ids).logits, atol=1e-6)


def test_other_bert_layouts():
    r = RobertaForSequenceClassification(RobertaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=4,
                                                       num_attention_heads=2, intermediate_size=64))
    s = layers_from_teacher(r)
    assert s.config.num_hidden_layers == 2
    assert torch.equal(s.roberta.encoder.layer[1].output.dense.weight, r.roberta.encoder.layer[3].output.dense.weight)
    d = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=100, dim=32, n_layers=4, n_heads=2, hidden_dim=64))
    s = layers_from_teacher(d, [1, 3])
    assert s.config.n_layers == 2
    assert torch.equal(s.distilbert.transformer.layer[0].ffn.lin1.weight, d.distilbert.transformer.layer[1].ffn.lin1.weight)


def test_bad_layers_and_unsupported_models():
    teacher = make_tiny_bert(vocab_size=100, layers=4)
    for bad in ([0, 4], [2, 1], [1, 1], []):
        with pytest.raises(ModelError, match="--layers"):
            layers_from_teacher(teacher, bad)
    from transformers import GPT2Config, GPT2ForSequenceClassification

    with pytest.raises(ModelError, match="not supported"):
        layers_from_teacher(GPT2ForSequenceClassification(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100)))


def test_from_spec_shape():
    teacher = make_tiny_bert(vocab_size=100, layers=4, hidden=32)
    s = from_spec(teacher.config, num_layers=2, hidden_size=16, num_heads=4, intermediate_size=40, seed=1)
    assert (s.config.num_hidden_layers, s.config.hidden_size, s.config.num_attention_heads, s.config.intermediate_size) == (2, 16, 4, 40)
    assert s.config.vocab_size == 100 and s.config.num_labels == 2
    with pytest.raises(ModelError, match="divisible"):
        from_spec(teacher.config, num_layers=2, hidden_size=15, num_heads=4)
