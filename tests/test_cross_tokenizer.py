"""Teacher and student with different tokenizers (issue 15, part 3): word ids from character offsets, word-level
pooling and L_cos hand-checked, logit KD through the teacher's own tokenisation (cached and live), end to end."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import make_tiny_bert


def _own_tokenizer(tmp_path, texts, vocab_size=400):
    """A WordPiece tokenizer trained on ``texts`` with the `tokenizers` library: another vocabulary, other splits."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")
    fast.save_pretrained(tmp_path / "own_tok")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tmp_path / "own_tok"))


def test_word_ids_from_offsets(tiny_tokenizer):
    from kdistill.data.batching import word_index

    text = "an unbelievably good film"
    enc = tiny_tokenizer(text, return_offsets_mapping=True)
    pieces = tiny_tokenizer.convert_ids_to_tokens(enc["input_ids"])
    ids = word_index(text, None, enc["offset_mapping"], enc.sequence_ids())
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]" and len(pieces) > 6  # "unbelievably" is several pieces
    assert ids[0] == ids[-1] == -1 and ids[1] == 0 and ids[-2] == 3
    assert [i for i, p in zip(ids, pieces) if p.startswith("##")] and set(ids[1:-1]) == {0, 1, 2, 3}
    # a pair: the second text's words continue the numbering
    enc2 = tiny_tokenizer("good film", "bad", return_offsets_mapping=True)
    assert word_index("good film", "bad", enc2["offset_mapping"], enc2.sequence_ids()) == [-1, 0, 1, -1, 2, -1]


def test_pool_words_and_word_aligned_cosine_by_hand():
    from kdistill.losses.align import pool_words, word_aligned_cosine

    h = torch.tensor([[[9.0, 9.0], [1.0, 0.0], [3.0, 2.0], [0.0, 1.0], [7.0, 7.0]]])  # [1, 5, 2]
    words = torch.tensor([[-1, 0, 0, 1, -1]])
    pooled, present = pool_words(h, words, 3)
    torch.testing.assert_close(pooled, torch.tensor([[[2.0, 1.0], [0.0, 1.0], [0.0, 0.0]]]))
    assert present.tolist() == [[True, True, False]]
    # the teacher splits word 0 differently and also saw word 2 (the student's copy was truncated away)
    t = torch.tensor([[[5.0, 5.0], [2.0, 1.0], [1.0, 1.0], [4.0, 0.0], [5.0, 5.0]]])
    t_words = torch.tensor([[-1, 0, 1, 2, -1]])
    expected = ((1 - 1.0) + (1 - 1 / 2 ** 0.5)) / 2  # word 0: same direction; word 1: (0,1) vs (1,1); word 2: one side only
    assert float(word_aligned_cosine(h, words, t, t_words)) == pytest.approx(expected, abs=1e-6)


def test_cross_tokenizer_distillation_end_to_end(tiny_teacher_dir, tiny_tokenizer, glue_dir, tmp_path):
    """A WordPiece teacher distils a student that has its own tokenizer: cached soft targets (teacher tokens, by
    idx), then L_cos aligned by words (live teacher); the saved student keeps its own tokenizer."""
    import kdistill
    from kdistill.data.loading import load_splits

    splits, _ = load_splits("sst2", data_dir=str(glue_dir), max_train_samples=300)
    own = _own_tokenizer(tmp_path, list(splits["train"]["text_a"]))
    assert own.get_vocab() != tiny_tokenizer.get_vocab()
    sentence = "an unbelievably tedious film"
    assert own.tokenize(sentence) != tiny_tokenizer.tokenize(sentence)
    student_dir = tmp_path / "student"
    make_tiny_bert(vocab_size=len(own), layers=1, seed=5).save_pretrained(student_dir)  # width 32, as the teacher
    own.save_pretrained(student_dir)
    data = dict(data_dir=str(glue_dir), max_train_samples=120, max_eval_samples=32, selection_size=8, epochs=1,
                batch_size=16)
    res = kdistill.distill(str(tiny_teacher_dir), "sst2", str(student_dir), output_dir=tmp_path / "kd", latency_runs=2,
                           **data)
    rep = res.report
    assert rep["cross_tokenizer"]["student_vocab"] == len(own) and rep["cross_tokenizer"]["hidden_align"] is None
    cache = (tmp_path / "kd" / "teacher_logits")
    assert (cache / "manifest.json").exists()
    from kdistill.transfer.runcache import read_cache

    from kdistill.data.tasks import get_task
    from kdistill.models import load_classifier

    cached = read_cache(cache)
    # the cache holds the teacher's logits of the *teacher's* tokenisation of each training row (by idx)
    from kdistill.config import DataConfig
    from kdistill.data.batching import eval_loader, tokenize
    from kdistill.data.selection import selection_split
    from kdistill.engine.evaluation import predict
    from kdistill.models import load_tokenizer

    cfg = DataConfig(task="sst2", data_dir=str(glue_dir), max_train_samples=120, selection_size=8)
    rest, _, _ = selection_split(cfg, load_splits("sst2", data_dir=str(glue_dir), max_train_samples=120)[0]["train"],
                                 get_task("sst2"), seed=42)
    teacher = load_classifier(str(tiny_teacher_dir), get_task("sst2"), require_trained_head=True).eval()
    direct, _ = predict(teacher, eval_loader(tokenize(rest, tiny_tokenizer), tiny_tokenizer, batch_size=16),
                        show_progress=False)
    torch.testing.assert_close(cached, torch.from_numpy(direct), atol=1e-5, rtol=1e-5)
    assert load_tokenizer(str(tmp_path / "kd")).get_vocab() == own.get_vocab()  # the student keeps its own tokenizer
    # L_cos by words: the teacher runs live on its own tokens of each batch's examples
    res2 = kdistill.distill(str(tiny_teacher_dir), "sst2", str(student_dir), output_dir=tmp_path / "cos", cos_weight=1.0,
                            report=False, logging_steps=1, **data)
    import csv

    with (tmp_path / "cos" / "logs" / "train_log.csv").open() as f:
        values = [float(r["value"]) for r in csv.DictReader(f) if r["key"] == "train/cos"]
    assert values and all(0.0 < v <= 2.0 for v in values)  # word-aligned 1 - cos, logged every step
    assert json.loads((tmp_path / "cos" / "kdistill_run.json").read_text())["method"]["hidden_align"] == "auto"
    assert not res2.interrupted


def test_layerwise_across_tokenizers_refused(tiny_teacher_dir, tiny_tokenizer, glue_dir, tmp_path):
    import kdistill
    from kdistill.data.loading import load_splits
    from kdistill.errors import ModelError

    splits, _ = load_splits("sst2", data_dir=str(glue_dir), max_train_samples=200)
    own = _own_tokenizer(tmp_path, list(splits["train"]["text_a"]))
    student_dir = tmp_path / "student"
    make_tiny_bert(vocab_size=len(own), layers=1).save_pretrained(student_dir)
    own.save_pretrained(student_dir)
    with pytest.raises(ModelError, match="TinyBERT's attention and hidden-state losses pair tokens one to one"):
        kdistill.distill(str(tiny_teacher_dir), "sst2", str(student_dir), output_dir=tmp_path / "tb", method="tinybert",
                         data_dir=str(glue_dir), max_train_samples=32, max_eval_samples=16)
    assert not (tmp_path / "tb").exists()


def test_teacher_view_gives_the_teachers_tokens_of_the_batch_rows(tiny_tokenizer, glue_dir, tmp_path):
    """The live teacher reads, for each student batch, its own tokenisation of the same rows, in batch order."""
    from kdistill.data.batching import tokenize
    from kdistill.data.loading import load_splits
    from kdistill.engine.teacher import TeacherView

    train = load_splits("sst2", data_dir=str(glue_dir), max_train_samples=40)[0]["train"]
    view = TeacherView(tokenize(train, tiny_tokenizer, word_ids=True), tiny_tokenizer)
    idx = torch.tensor([7, 2, 31])
    batch = view.batch(idx, "cpu")
    for row, i in enumerate(idx.tolist()):
        want = tiny_tokenizer(train[i]["text_a"], truncation=True, max_length=128)["input_ids"]
        got = batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()
        assert got == want
        assert int((batch["word_ids"][row] >= 0).sum()) == len(want) - 2  # every piece but [CLS]/[SEP] has a word
    assert batch["idx"].tolist() == idx.tolist()
