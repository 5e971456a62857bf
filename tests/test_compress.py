"""Compression: importance = gradient of the gates, pruning = masking, and every compressed model round-trips."""

from __future__ import annotations

import json

import pytest
import torch
from torch.testing import assert_close
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertTokenizer,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    ElectraConfig,
    ElectraForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
)

import kdistill.compress as kc
from kdistill.compress.importance import ones_gates
from kdistill.errors import KDistillError, ModelError

VOCAB = 120


def tiny_bert(layers: int = 3, heads: int = 4, hidden: int = 32, ffn: int = 48, seed: int = 0, vocab: int = VOCAB, init: float = 0.02):
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=ffn, max_position_embeddings=64, num_labels=2, initializer_range=init)
    return BertForSequenceClassification(cfg).eval()


def batch(seed: int = 1, size: int = 3, length: int = 9) -> dict:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(size, length, dtype=torch.long)
    mask[0, -3:] = 0  # some padding
    return {"input_ids": torch.randint(1, VOCAB, (size, length), generator=g), "attention_mask": mask,
            "labels": torch.randint(0, 2, (size,), generator=g)}


def logits(model, b: dict) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits


def reload(model, tmp_path):
    model.save_pretrained(tmp_path)
    return AutoModelForSequenceClassification.from_pretrained(str(tmp_path)).eval()


# --------------------------------------------------------------------------- importance


def test_head_and_neuron_gradients_match_finite_differences():
    model = tiny_bert(init=0.2).double()  # larger weights: gradients well above rounding
    b = batch()
    heads = [torch.ones(4, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    ffn = [torch.ones(48, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    grads = torch.autograd.grad(kc.gated_loss(model, b, heads, ffn), [*heads, *ffn])
    eps = 1e-5

    def loss_with(layer: int, unit: int, delta: float, which: str) -> float:
        h = [g.detach().clone() for g in heads]
        f = [g.detach().clone() for g in ffn]
        (h if which == "head" else f)[layer][unit] += delta
        with torch.no_grad():
            return float(kc.gated_loss(model, b, h, f))

    for layer, unit in ((1, 2), (0, 0)):
        fd = (loss_with(layer, unit, eps, "head") - loss_with(layer, unit, -eps, "head")) / (2 * eps)
        assert fd == pytest.approx(float(grads[layer][unit]), rel=1e-5, abs=1e-9)
    fd = (loss_with(2, 7, eps, "ffn") - loss_with(2, 7, -eps, "ffn")) / (2 * eps)
    assert fd == pytest.approx(float(grads[3 + 2][7]), rel=1e-5, abs=1e-9)
    assert float(grads[1].abs().sum()) > 0


def test_compute_importance_is_mean_abs_gradient_then_normalised():
    model = tiny_bert()
    batches = [batch(1), batch(2), batch(3)]
    raw = kc.compute_importance(model, batches, num_batches=2, exponent=None)
    assert raw.num_batches == 2 and raw.head_importance.shape == (3, 4) and raw.ffn_importance.shape == (3, 48)
    expected = torch.zeros(3, 4)
    for b in batches[:2]:
        gates = ones_gates([4, 4, 4], requires_grad=True)
        expected += torch.stack([g.abs() for g in torch.autograd.grad(kc.gated_loss(model, b, gates), gates)])
    assert_close(raw.head_importance, expected / 2)
    norm = kc.compute_importance(model, batches, num_batches=2)  # L2 per layer (Michel et al. 2019)
    assert_close(norm.head_importance.norm(dim=1), torch.ones(3))
    assert_close(norm.head_importance, kc.normalize_per_layer(raw.head_importance, 2.0))
    assert model.training is False


def test_importance_label_free_kl_save_load_plot(tmp_path):
    model, teacher = tiny_bert(seed=0), tiny_bert(seed=1)
    unlabelled = [{k: v for k, v in batch(s).items() if k != "labels"} for s in (1, 2)]
    imp = kc.compute_importance(model, unlabelled, loss="kl", teacher=teacher, temperature=2.0)
    assert imp.loss == "kl" and torch.isfinite(imp.head_importance).all()
    with pytest.raises(KDistillError, match="labels"):
        kc.compute_importance(model, unlabelled, loss="ce")
    with pytest.raises(KDistillError, match="teacher"):
        kc.compute_importance(model, unlabelled, loss="kl")
    imp.save(tmp_path)
    back = kc.Importance.load(tmp_path)
    assert_close(back.head_importance, imp.head_importance)
    assert_close(back.ffn_importance, imp.ffn_importance)
    assert json.loads((tmp_path / "importance.json").read_text())["loss"] == "kl"
    png = imp.plot(tmp_path / "heads.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_label_free_importance_of_the_teacher_itself_is_not_noise():
    # KL(teacher || model) has zero gradient at model == teacher; scoring falls back to cross-entropy
    model, twin = tiny_bert(seed=0), tiny_bert(seed=0)
    labelled = [batch(1), batch(2)]
    kl = kc.compute_importance(model, labelled, loss="kl", teacher=twin, exponent=None)
    ce = kc.compute_importance(model, labelled, loss="ce", exponent=None)
    assert kl.loss == "ce" and "zero gradient" in kl.meta["note"]
    assert_close(kl.head_importance, ce.head_importance)
    assert float(kl.head_importance.min()) > 1e-6
    unlabelled = [{k: v for k, v in b.items() if k != "labels"} for b in labelled]  # the model's own predictions
    own = kc.compute_importance(model, unlabelled, loss="kl", teacher=model, exponent=None)
    assert own.loss == "ce" and float(own.head_importance.min()) > 1e-6


def test_importance_of_pruned_model_is_nan_padded():
    pruned = kc.prune_heads(tiny_bert(), {0: [0, 3]})
    imp = kc.compute_importance(pruned, [batch()])
    assert torch.isnan(imp.head_importance[0, 2:]).all() and not torch.isnan(imp.head_importance[0, :2]).any()
    chosen = kc.lowest_heads(imp.head_importance, 100)  # as many as allowed: one head left per layer
    assert {layer: len(v) for layer, v in chosen.items()} == {0: 1, 1: 3, 2: 3}
    assert all(h < 2 for h in chosen[0])  # never a NaN (already pruned) slot
    assert kc.heads_per_layer(kc.prune_heads(pruned, chosen)) == [1, 1, 1]


def test_lowest_heads_keeps_one_per_layer():
    scores = torch.tensor([[0.1, 0.2, 0.9], [0.05, 0.8, 0.7]])
    assert kc.lowest_heads(scores, 2) == {0: [0], 1: [0]}
    assert kc.lowest_heads(scores, 10) == {0: [0, 1], 1: [0, 2]}


# --------------------------------------------------------------------------- structured pruning


def test_pruned_heads_equal_gated_heads_and_round_trip(tmp_path):
    model, b = tiny_bert(), batch()
    remove = {0: [1, 2], 2: [0]}
    pruned = kc.prune_heads(model, remove)
    gates = [torch.tensor([1.0, 0, 0, 1]), None, torch.tensor([0.0, 1, 1, 1])]
    with kc.gated(model, gates):
        masked = logits(model, b)
    assert_close(logits(pruned, b), masked)
    assert kc.heads_per_layer(pruned) == [2, 4, 3] and pruned.config.kdistill_heads_per_layer == [2, 4, 3]
    assert pruned.bert.encoder.layer[0].attention.self.query.weight.shape == (16, 32)
    assert pruned.bert.encoder.layer[0].attention.output.dense.weight.shape == (32, 16)
    assert kc.parameter_count(pruned) < kc.parameter_count(model)
    assert pruned.config.kdistill_pruned == [{"heads_removed": {"0": [1, 2], "2": [0]}}]
    assert kc.heads_per_layer(model) == [4, 4, 4]  # input untouched
    loaded = reload(pruned, tmp_path)
    assert type(loaded).__name__ == "KDistillCompressedBertForSequenceClassification"
    assert_close(logits(loaded, b), masked)
    assert_close(logits(kc.load_pruned(tmp_path).eval(), b), masked)


def test_pruned_neurons_equal_gated_neurons_and_round_trip(tmp_path):
    model, b = tiny_bert(), batch()
    pruned = kc.prune_ffn(model, {1: list(range(0, 48, 3)), 2: [5]})
    gates = [None, torch.ones(48), torch.ones(48)]
    gates[1][0::3] = 0
    gates[2][5] = 0
    with kc.gated(model, ffn_gates=gates):
        masked = logits(model, b)
    assert_close(logits(pruned, b), masked)
    assert kc.ffn_per_layer(pruned) == [48, 32, 47]
    assert pruned.bert.encoder.layer[1].output.dense.weight.shape == (32, 32)
    assert_close(logits(reload(pruned, tmp_path), b), masked)


def test_pruning_every_head_of_a_layer_is_refused():
    model = tiny_bert()
    with pytest.raises(ModelError, match=r"layer 1 with no attention head.*prune_layers\(model, \[1\]\)"):
        kc.prune_heads(model, {1: [0, 1, 2, 3]})
    pruned = kc.prune_heads(model, {1: [0, 1]})
    with pytest.raises(ModelError, match="no attention head"):  # counts are per current model
        kc.prune_heads(pruned, {1: [0, 1]})
    with pytest.raises(ModelError, match="heads 0..3"):
        kc.prune_heads(model, {0: [4]})
    with pytest.raises(ModelError, match="layers 0..2"):
        kc.prune_heads(model, {3: [0]})
    with pytest.raises(ModelError, match="no FFN neuron"):
        kc.prune_ffn(model, {0: range(48)})


def test_layer_removal(tmp_path):
    model, b = tiny_bert(layers=4), batch()
    stock = kc.prune_layers(model, [1, 2])
    assert type(stock) is BertForSequenceClassification and stock.config.num_hidden_layers == 2
    ref = tiny_bert(layers=4)
    assert torch.equal(stock.bert.encoder.layer[1].output.dense.weight, ref.bert.encoder.layer[3].output.dense.weight)
    # on a compressed model the per-layer shapes follow their layers
    pruned = kc.prune_layers(kc.prune_ffn(kc.prune_heads(model, {3: [0]}), {2: [0, 1]}), [0, 2])
    assert pruned.config.kdistill_heads_per_layer == [4, 3] and pruned.config.kdistill_intermediate_per_layer == [48, 48]
    assert_close(logits(reload(pruned, tmp_path), b), logits(pruned, b))
    with pytest.raises(ModelError, match="no encoder layer"):
        kc.prune_layers(model, range(4))


def test_distilbert_heads_and_neurons():
    torch.manual_seed(0)
    model = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4,
                                                                 hidden_dim=40, max_position_embeddings=64)).eval()
    b = batch()
    pruned = kc.prune_ffn(kc.prune_heads(model, {1: [3]}), {0: [2, 9]})
    hg, fg = [None, torch.tensor([1.0, 1, 1, 0])], [torch.ones(40), None]
    fg[0][[2, 9]] = 0
    with kc.gated(model, hg, fg):
        assert_close(logits(pruned, b), logits(model, b))
    assert pruned.distilbert.transformer.layer[1].attention.n_heads == 3


def _family(name: str):
    torch.manual_seed(0)
    common = dict(vocab_size=VOCAB, max_position_embeddings=72, num_labels=2, initializer_range=0.2)  # visible effects
    if name == "distilbert":
        return DistilBertForSequenceClassification(DistilBertConfig(dim=32, n_layers=3, n_heads=4, hidden_dim=48,
                                                                    **common)).eval()
    if name == "mpnet":  # one relative-position bias table shared by all layers, sliced per layer after pruning
        from transformers import MPNetConfig, MPNetForSequenceClassification

        return MPNetForSequenceClassification(MPNetConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                                          intermediate_size=48, **common)).eval()
    if name == "roberta":
        return RobertaForSequenceClassification(RobertaConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                                              intermediate_size=48, pad_token_id=1, **common)).eval()
    return ElectraForSequenceClassification(ElectraConfig(embedding_size=16, hidden_size=32, num_hidden_layers=3,
                                                          num_attention_heads=4, intermediate_size=48, **common)).eval()


@pytest.mark.parametrize("family", ["distilbert", "roberta", "electra", "mpnet"])
def test_pruned_families_save_and_load_with_the_same_logits(family, tmp_path):
    """Heads, FFN neurons and a whole layer pruned from DistilBERT / RoBERTa / ELECTRA: the pruned model equals the
    gated original, and save_pretrained -> AutoModelForSequenceClassification.from_pretrained gives the same logits."""
    model, b = _family(family), batch()
    heads = kc.prune_heads(model, {0: [1, 2], 2: [0]})
    both = kc.prune_ffn(heads, {1: list(range(0, 48, 3)), 2: [5]})
    hg = [torch.tensor([1.0, 0, 0, 1]), None, torch.tensor([0.0, 1, 1, 1])]
    fg = [None, torch.ones(48), torch.ones(48)]
    fg[1][0::3] = 0
    fg[2][5] = 0
    with kc.gated(model, hg, fg):
        masked = logits(model, b)
    assert not torch.allclose(masked, logits(model, b), atol=1e-4)  # pruning changes the logits visibly
    assert_close(logits(both, b), masked)
    assert kc.heads_per_layer(both) == [2, 4, 3] and kc.ffn_per_layer(both) == [48, 32, 47]
    assert kc.heads_per_layer(model) == [4, 4, 4]  # input untouched
    loaded = reload(both, tmp_path / "pruned")
    assert loaded.config.model_type == f"kdistill-compressed-{family}"
    assert type(loaded).__name__ == f"KDistillCompressed{type(model).__name__}"
    assert kc.heads_per_layer(loaded) == [2, 4, 3] and kc.ffn_per_layer(loaded) == [48, 32, 47]
    assert_close(logits(loaded, b), masked)
    # then a whole layer dropped: the per-layer shapes follow their layers through save -> load
    fewer = kc.prune_layers(both, [1])
    assert kc.heads_per_layer(fewer) == [2, 3] and kc.ffn_per_layer(fewer) == [48, 47]
    again = reload(fewer, tmp_path / "fewer")
    assert kc.heads_per_layer(again) == [2, 3] and kc.ffn_per_layer(again) == [48, 47]
    assert_close(logits(again, b), logits(fewer, b))
    assert kc.parameter_count(again) < kc.parameter_count(loaded) < kc.parameter_count(model)


# --------------------------------------------------------------------------- low rank


def test_low_rank_full_rank_reproduces_and_low_rank_shrinks(tmp_path):
    model, b = tiny_bert(), batch()
    full = kc.factorize(model, rank=32, only_if_smaller=False)
    assert isinstance(full.bert.encoder.layer[0].intermediate.dense, torch.nn.Sequential)
    assert_close(logits(full, b), logits(model, b), atol=1e-5, rtol=1e-4)
    assert kc.factorize(model, rank=32).config.kdistill_lowrank == {}  # no saving at full rank: left alone
    small = kc.factorize(model, rank=4)
    assert len(small.config.kdistill_lowrank) == 18 and kc.parameter_count(small) < kc.parameter_count(model)
    assert_close(logits(reload(small, tmp_path), b), logits(small, b))
    # pruning after factorising slices the outer factors
    both = kc.prune_heads(small, {0: [1]})
    assert_close(logits(reload(both, tmp_path / "both"), b), logits(both, b))


def test_rank_for_energy_and_factorize_linear():
    s = torch.tensor([3.0, 2.0, 1.0, 0.0])
    assert kc.rank_for_energy(s, 0.5) == 1 and kc.rank_for_energy(s, 0.9) == 2 and kc.rank_for_energy(s, 1.0) == 3
    torch.manual_seed(0)
    lin = torch.nn.Linear(20, 30)
    low = torch.randn(30, 3) @ torch.randn(3, 20)  # exactly rank 3
    with torch.no_grad():
        lin.weight.copy_(low)
    fact = kc.factorize_linear(lin, energy=0.999999)
    assert fact[0].out_features == 3
    x = torch.randn(5, 20)
    assert_close(fact(x), lin(x), atol=1e-4, rtol=1e-4)
    with pytest.raises(KDistillError, match="exactly one"):
        kc.factorize_linear(lin)


# --------------------------------------------------------------------------- vocabulary


WORDS = ["the", "movie", "was", "great", "bad", "film", "not", "good", "play", "##ing", "##ed", "fun", "boring", "a", "plot",
         "actor", "music", "dark", "light", "story", "!", ".", ",", "d", "##a", "##r", "##k"]


@pytest.fixture()
def wordpiece(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + [f"w{i}" for i in range(VOCAB - 5 - len(WORDS))]
    tok = BertTokenizer(vocab={t: i for i, t in enumerate(vocab)})
    tok.save_pretrained(tmp_path / "tok")
    return AutoTokenizer.from_pretrained(str(tmp_path / "tok"))


CORPUS = ["The movie was great!", "a boring plot, bad actor.", "playing was fun", "not good"]


def test_vocabulary_pruning_same_logits_and_round_trip(wordpiece, tmp_path):
    model = tiny_bert()
    res = kc.prune_vocabulary(model, wordpiece, CORPUS)
    assert res.model.config.vocab_size == len(res.kept_ids) == len(res.tokenizer) < VOCAB
    assert res.model.get_input_embeddings().weight.shape[0] == len(res.kept_ids)
    table = res.old_to_new(VOCAB)
    old_enc = wordpiece(CORPUS, padding=True, return_tensors="pt")
    new_enc = res.tokenizer(CORPUS, padding=True, return_tensors="pt")
    assert torch.equal(new_enc["input_ids"], table[old_enc["input_ids"]])
    with torch.no_grad():
        expected = model(**old_enc).logits
        assert_close(res.model(**new_enc).logits, expected)
    res.save(tmp_path / "small")
    model2 = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "small")).eval()
    tok2 = AutoTokenizer.from_pretrained(str(tmp_path / "small"))
    with torch.no_grad():
        assert_close(model2(**tok2(CORPUS, padding=True, return_tensors="pt")).logits, expected)
    # a word outside the corpus is spelled out with the kept single-character pieces ...
    assert tok2.convert_ids_to_tokens(tok2("dark").input_ids[1:-1]) == ["d", "##a", "##r", "##k"]
    assert {"d", "##a", "##r", "##k"} <= set(tok2.get_vocab()) and "light" not in tok2.get_vocab()
    # ... and without them (or with letters missing: "story") it becomes [UNK] (documented limitation)
    bare = kc.prune_vocabulary(model, wordpiece, CORPUS, keep_alphabet=False)
    assert len(bare.kept_ids) == len(res.kept_ids) - 4  # d, ##a, ##r, ##k: single characters the corpus never used
    assert bare.tokenizer("dark story").input_ids[1:-1] == [bare.tokenizer.unk_token_id] * 2
    assert tok2("story").input_ids[1:-1] == [tok2.unk_token_id]


def test_vocabulary_pruning_slices_a_tied_mlm_decoder(wordpiece):
    torch.manual_seed(0)
    mlm = BertForMaskedLM(BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                     intermediate_size=40, max_position_embeddings=64)).eval()
    res = kc.prune_vocabulary(mlm, wordpiece, CORPUS)
    enc_old = wordpiece(CORPUS[:1], return_tensors="pt")
    enc_new = res.tokenizer(CORPUS[:1], return_tensors="pt")
    with torch.no_grad():
        assert_close(res.model(**enc_new).logits, mlm(**enc_old).logits[..., res.kept_ids])
    assert res.model.get_output_embeddings().weight.data_ptr() == res.model.get_input_embeddings().weight.data_ptr()


def test_vocabulary_pruning_refuses_other_tokenizers():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    bpe = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE(vocab={"a": 0, "b": 1, "<unk>": 2}, merges=[], unk_token="<unk>")))
    with pytest.raises(ModelError, match="WordPiece"):
        kc.remap_tokenizer(bpe, torch.tensor([0, 1]))
