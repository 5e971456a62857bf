"""Tang et al. (2019) BiLSTM students: shapes, padding/special-token invariance, the siamese pair split,
embedding initialisation, saving/loading, embedding modes and a tiny optimisation run."""

import json

import pytest
import torch

from conftest import make_tiny_bert
from kdistill.errors import DataError, ModelError
from kdistill.students.bilstm import (
    BiLSTMConfig,
    BiLSTMForSequenceClassification,
    export_onnx,
    from_teacher_embeddings,
    is_bilstm_dir,
    load_student,
    load_word_vectors,
)

PAD, CLS, SEP, MASK = 0, 1, 2, 3
H = 8


def make(pair=False, mode="trainable", seed=0, **kw):
    torch.manual_seed(seed)
    cfg = BiLSTMConfig(vocab_size=50, embedding_dim=16, hidden_size=H, fc_size=12, num_labels=3, pair=pair,
                       embedding_mode=mode, dropout=0.0, pad_token_id=PAD, sep_token_id=SEP,
                       drop_token_ids=[PAD, CLS, SEP], **kw)
    return BiLSTMForSequenceClassification(cfg).eval()


def single(*sentences, pad_to=None):
    """BERT-style single-sentence batch: [CLS] s [SEP] [PAD]..."""
    rows = [[CLS, *s, SEP] for s in sentences]
    L = pad_to or max(map(len, rows))
    ids = torch.tensor([r + [PAD] * (L - len(r)) for r in rows])
    return {"input_ids": ids, "attention_mask": (ids != PAD).long()}


def pair(*pairs, pad_to=None):
    """[CLS] a [SEP] b [SEP] with token_type_ids 0 for [CLS] a [SEP] and 1 for b [SEP]."""
    rows = [([CLS, *a, SEP, *b, SEP], [0] * (len(a) + 2) + [1] * (len(b) + 1)) for a, b in pairs]
    L = pad_to or max(len(r) for r, _ in rows)
    ids = torch.tensor([r + [PAD] * (L - len(r)) for r, _ in rows])
    tt = torch.tensor([t + [0] * (L - len(t)) for _, t in rows])
    return {"input_ids": ids, "attention_mask": (ids != PAD).long(), "token_type_ids": tt}


def test_single_sentence_shapes_and_hidden_states():
    m = make()
    out = m(**single([5, 6, 7], [8]), output_hidden_states=True)
    assert out.logits.shape == (2, 3)
    features, relu = out.hidden_states
    assert features.shape == (2, 2 * H) and relu.shape == (2, 12)
    assert m.config.num_labels == 3 and m.config.id2label[2] == "LABEL_2"
    loss = m(**single([5, 6, 7], [8]), labels=torch.tensor([0, 2])).loss
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_pair_shapes_siamese_and_swap():
    m = make(pair=True)
    a, b, c = [5, 6, 7], [8, 9], [10]
    batch = pair((a, b), (c, a))
    out = m(**batch, output_hidden_states=True)
    assert out.logits.shape == (2, 3)
    f = out.hidden_states[0]
    assert f.shape == (2, 8 * H)
    u, v, prod, diff = f.split(2 * H, dim=-1)
    torch.testing.assert_close(prod, u * v)
    torch.testing.assert_close(diff, (u - v).abs())
    # siamese: u is the shared encoder applied to sentence a alone
    alone = single(a)
    torch.testing.assert_close(u[:1], m.encode(alone["input_ids"], m._keep_mask(alone["input_ids"], alone["attention_mask"])))
    # swapping the sides swaps u and v; the symmetric features stay
    fs = m(**pair((b, a), (a, c)), output_hidden_states=True).hidden_states[0]
    us, vs, prods, diffs = fs.split(2 * H, dim=-1)
    torch.testing.assert_close(us, v)
    torch.testing.assert_close(vs, u)
    torch.testing.assert_close(prods, prod)
    torch.testing.assert_close(diffs, diff)
    # without token_type_ids the pair is split after the first [SEP]: same result
    no_tt = {k: v for k, v in batch.items() if k != "token_type_ids"}
    torch.testing.assert_close(m(**no_tt).logits, out.logits)


def test_padding_and_special_tokens_do_not_change_logits():
    m = make()
    s = [5, 6, 7, 8]
    ref = m(**single(s)).logits
    torch.testing.assert_close(m(**single(s, pad_to=12)).logits, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(m(**single(s, [9] * 15)).logits[:1], ref, rtol=1e-5, atol=1e-6)  # batched with a longer row
    bare = torch.tensor([s])
    torch.testing.assert_close(m(input_ids=bare).logits, ref, rtol=1e-5, atol=1e-6)  # [CLS]/[SEP] are dropped
    # [MASK] is a word: it is read
    assert not torch.allclose(m(**single([5, 6, MASK, 8])).logits, ref)
    mp = make(pair=True)
    ref_p = mp(**pair((s, [9, 10]))).logits
    torch.testing.assert_close(mp(**pair((s, [9, 10]), ([11] * 20, [12]))).logits[:1], ref_p, rtol=1e-5, atol=1e-6)


def test_unpacked_export_path_matches_packed():
    for p in (False, True):
        m = make(pair=p)
        batch = pair(([5, 6, 7], [8, 9]), ([10], [11, 12, 13, 14])) if p else single([5, 6, 7], [8], [9, 10, 11, 12])
        packed = m(**batch).logits
        m.pack_sequences = False
        torch.testing.assert_close(m(**batch).logits, packed, rtol=1e-5, atol=1e-6)


def test_onnx_export(tmp_path):
    pytest.importorskip("onnx")
    m = make(pair=True)
    path = export_onnx(m, tmp_path / "bilstm.onnx", pair(([5, 6], [7]), ([8], [9, 10])))
    assert path.exists() and m.pack_sequences
    ort = pytest.importorskip("onnxruntime")
    batch = pair(([5, 6, 7, 8], [9]), ([10], [11, 12]), ([13, 14], [15, 16, 17]))  # other batch size and length
    sess = ort.InferenceSession(str(path))
    got = sess.run(None, {i.name: batch[i.name].numpy() for i in sess.get_inputs()})[0]
    torch.testing.assert_close(torch.from_numpy(got), m(**batch).logits, rtol=1e-4, atol=1e-5)


def test_from_teacher_embeddings_copies_vectors_exactly():
    teacher = make_tiny_bert(vocab_size=100, layers=1, hidden=32, num_labels=2)
    student = from_teacher_embeddings(teacher, pair=False, embedding_mode="multichannel", hidden_size=H, fc_size=12, seed=0)
    w = teacher.get_input_embeddings().weight
    assert student.config.embedding_dim == 32 and student.config.vocab_size == 100
    assert torch.equal(student.get_input_embeddings().weight, w)
    assert torch.equal(student.embedding_static.weight, w)
    assert student.get_input_embeddings().weight.data_ptr() != w.data_ptr()
    assert student.config.id2label == {0: "negative", 1: "positive"} and student.config.num_labels == 2
    assert student.config.label2id == {"negative": 0, "positive": 1}
    assert student(input_ids=torch.tensor([[5, 6]])).logits.shape == (1, 2)


def test_from_teacher_embeddings_with_tokenizer_drops_its_special_tokens(tiny_tokenizer):
    teacher = make_tiny_bert(vocab_size=len(tiny_tokenizer), layers=1, hidden=32)
    student = from_teacher_embeddings(teacher, tiny_tokenizer, pair=True, hidden_size=H, fc_size=12).eval()
    drop = set(student.config.drop_token_ids)
    t = tiny_tokenizer
    assert {t.cls_token_id, t.sep_token_id, t.pad_token_id} <= drop and t.mask_token_id not in drop
    assert student.config.sep_token_id == t.sep_token_id
    enc = t(["a charming film", "dull"], ["it works", "a long and tedious story"], padding=True, return_tensors="pt")
    assert student(**enc).logits.shape == (2, 2)


class FakeTokenizer:
    def __init__(self, tokens):
        self.vocab = {t: i for i, t in enumerate(tokens)}

    def get_vocab(self):
        return dict(self.vocab)

    def __len__(self):
        return len(self.vocab)


def test_load_word_vectors_glove_and_word2vec_text(tmp_path):
    tok = FakeTokenizer(["[PAD]", "movie", "good", "bad", "##ing", "zzz"])
    lines = ["movie 1 2 3 4", "Bad 5 6 7 8", "bad 9 10 11 12", "ing 0.5 0.5 0.5 0.5", "unused 1 1 1 1", "Good 2 2 2 2"]
    glove = tmp_path / "vec.txt"
    glove.write_text("\n".join(lines) + "\n")
    w2v = tmp_path / "vec.w2v.txt"
    w2v.write_text("6 4\n" + "\n".join(lines) + "\n")
    for path in (glove, w2v):
        wv = load_word_vectors(path, tok, seed=0)
        assert wv.weight.shape == (6, 4) and wv.found == 4 and wv.total == 6
        assert wv.coverage == pytest.approx(4 / 6)
        assert wv.weight[1].tolist() == [1, 2, 3, 4]
        assert wv.weight[3].tolist() == [9, 10, 11, 12]  # exact match beats the case-folded "Bad"
        assert wv.weight[4].tolist() == [0.5] * 4  # "##ing" takes "ing"
        assert wv.weight[2].tolist() == [2] * 4  # an uncased token takes a cased file word
        assert set(wv.missing_examples) == {"zzz", "[PAD]"}
    assert load_word_vectors(w2v, tok, max_words=1).found == 1  # only "movie" read
    import gzip

    gz = tmp_path / "vec.txt.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    assert torch.equal(load_word_vectors(gz, tok, seed=0).weight, wv.weight)
    again = load_word_vectors(glove, tok, seed=0)
    assert torch.equal(again.weight, wv.weight)  # seeded random rows
    m = BiLSTMForSequenceClassification(BiLSTMConfig(vocab_size=6, embedding_dim=4, num_labels=2, hidden_size=H, fc_size=12))
    m.init_embeddings(wv)
    assert torch.equal(m.get_input_embeddings().weight, wv.weight) and torch.equal(m.embedding_static.weight, wv.weight)
    bad = tmp_path / "bad.txt"
    bad.write_text("movie 1 2 3 4\ngood 1 2\n")
    with pytest.raises(DataError, match="bad.txt:2"):
        load_word_vectors(bad, tok)
    none = tmp_path / "none.txt"
    none.write_text("other 1 2\n")
    with pytest.raises(DataError, match="no token"):
        load_word_vectors(none, tok)
    with pytest.raises(DataError, match="does not exist"):
        load_word_vectors(tmp_path / "missing.txt", tok)
    with pytest.raises(ModelError, match="shape"):
        make().init_embeddings(wv)


def test_save_and_load_give_identical_logits(tmp_path):
    for p in (False, True):
        m = make(pair=p, mode="multichannel", id2label={0: "a", 1: "b", 2: "c"})
        batch = pair(([5, 6], [7, 8, 9])) if p else single([5, 6, 7])
        out_dir = tmp_path / f"pair{p}"
        m.save_pretrained(out_dir)
        cfg = json.loads((out_dir / "config.json").read_text())
        assert cfg["model_type"] == "kdistill-bilstm" and cfg["architectures"] == ["BiLSTMForSequenceClassification"]
        assert (out_dir / "model.safetensors").exists() and is_bilstm_dir(out_dir)
        loaded = load_student(out_dir)
        assert isinstance(loaded, BiLSTMForSequenceClassification)
        assert loaded.config.id2label == {0: "a", 1: "b", 2: "c"} and loaded.config.pair == p
        assert torch.equal(loaded(**batch).logits, m(**batch).logits)
        assert not loaded.embedding_static.weight.requires_grad and loaded.embedding.weight.requires_grad


def test_load_student_dispatches_and_rejects(tmp_path):
    bert = make_tiny_bert(vocab_size=100, layers=1)
    bert.save_pretrained(tmp_path / "bert")
    assert not is_bilstm_dir(tmp_path / "bert")
    assert type(load_student(tmp_path / "bert")).__name__ == "BertForSequenceClassification"
    with pytest.raises(ModelError, match="load_student"):
        BiLSTMForSequenceClassification.from_pretrained(tmp_path / "bert")
    with pytest.raises(ModelError, match="config.json"):
        load_student(tmp_path / "nothing")


def test_embedding_modes_requires_grad_and_errors():
    t = make(mode="trainable")
    assert t.embedding.weight.requires_grad and t.embedding_static is None
    f = make(mode="frozen")
    assert not f.embedding.weight.requires_grad and f.embedding_static is None
    mc = make(mode="multichannel")
    assert mc.embedding.weight.requires_grad and not mc.embedding_static.weight.requires_grad
    assert torch.equal(mc.embedding.weight, mc.embedding_static.weight)
    assert mc.lstm.input_size == 16
    cat = make(mode="multichannel", multichannel_merge="concat")
    assert cat.lstm.input_size == 32 and cat(**single([5])).logits.shape == (1, 3)
    trainable = {n for n, p in f.named_parameters() if p.requires_grad}
    assert "embedding.weight" not in trainable and "lstm.weight_ih_l0" in trainable
    with pytest.raises(ModelError, match="embedding_mode"):
        make(mode="static")
    with pytest.raises(ModelError, match="multichannel"):
        t.set_embedding_mode("multichannel")
    cfg = BiLSTMConfig(vocab_size=50, embedding_dim=8, pair=True)  # paper sizes filled in for pairs
    m = BiLSTMForSequenceClassification(cfg)
    assert (m.config.hidden_size, m.config.fc_size) == (300, 400)
    with pytest.raises(ModelError, match="token_type_ids"):
        m(input_ids=torch.tensor([[5, 6]]))


def test_a_few_steps_reduce_the_loss_on_a_toy_task():
    m = make(mode="multichannel").train()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 50, (32, 6), generator=g)
    labels = (ids == 10).any(1).long() + (ids == 11).any(1).long()  # 0, 1 or 2 marker tokens present
    ids = torch.cat([torch.full((32, 1), CLS), ids, torch.full((32, 1), SEP)], dim=1)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=0.02)
    static = m.embedding_static.weight.clone()
    losses = []
    for _ in range(25):
        loss = m(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    assert torch.equal(m.embedding_static.weight, static)  # the static channel never moves
