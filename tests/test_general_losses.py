"""General-distillation pieces (issue 16): dynamic masking statistics, DistilBERT's masked-LM losses and MiniLM(v2)
relations, each against a hand computation on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch


def test_masking_statistics_on_a_fixed_seed():
    from kdistill.data.masking import mask_tokens

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 1000, (64, 128), generator=torch.Generator().manual_seed(1))
    attn = torch.ones_like(ids)
    attn[:, 100:] = 0  # padding is never chosen
    special = torch.zeros_like(ids)
    special[:, 0] = 1  # nor are special tokens
    masked, labels = mask_tokens(ids, attn, special, mask_token_id=4, vocab_size=1000, generator=g)
    chosen = labels != -100
    candidates = int((attn.bool() & ~special.bool()).sum())
    assert abs(int(chosen.sum()) / candidates - 0.15) < 0.01
    assert not chosen[:, 100:].any() and not chosen[:, 0].any()
    assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(masked[~chosen], ids[~chosen])
    as_mask = (masked[chosen] == 4).float().mean()
    kept = (masked[chosen] == ids[chosen]).float().mean()
    assert abs(float(as_mask) - 0.8) < 0.02 and abs(float(kept) - 0.1 - 1 / 1000 * 0.1) < 0.02
    again = mask_tokens(ids, attn, special, mask_token_id=4, vocab_size=1000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again[0], masked) and torch.equal(again[1], labels)  # same seed, same mask (resumable)


def test_whole_word_masking_takes_every_piece():
    from kdistill.data.masking import mask_tokens

    ids = torch.arange(10, 30).view(1, 20).repeat(50, 1)
    words = torch.tensor([-1] + [w for w in range(6) for _ in range(3)] + [-1]).repeat(50, 1)
    attn, special = torch.ones_like(ids), (words < 0).long()
    _, labels = mask_tokens(ids, attn, special, mask_token_id=4, vocab_size=100,
                            generator=torch.Generator().manual_seed(3), word_ids=words)
    chosen = labels != -100
    for row in range(50):
        for w in range(6):
            pieces = chosen[row][words[row] == w]
            assert bool(pieces.all()) or not bool(pieces.any())
    assert 0.05 < float(chosen.float().mean()) < 0.3


def test_mlm_soft_kl_and_ce_by_hand():
    from kdistill.losses.general import mlm_ce, mlm_soft_kl

    s = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]], requires_grad=True)  # [1, 2, 3]
    t = torch.tensor([[[0.0, 1.0, 0.0], [5.0, 5.0, 5.0]]])
    labels = torch.tensor([[1, -100]])  # only position 0 was masked
    T = 2.0
    ps, pt = torch.softmax(s[0, 0].detach() / T, -1), torch.softmax(t[0, 0] / T, -1)
    want = T * T * float((pt * (pt.log() - ps.log())).sum())
    got = mlm_soft_kl(s, t, labels, temperature=T)
    assert float(got.detach()) == pytest.approx(want, rel=1e-5)
    got.backward()
    assert s.grad[0, 1].abs().sum() == 0  # the unmasked position gets no gradient
    ce = mlm_ce(s.detach(), labels)
    assert float(ce) == pytest.approx(-math.log(float(torch.softmax(s[0, 0].detach(), -1)[1])), rel=1e-6)
    with pytest.raises(Exception, match="share a vocabulary"):
        mlm_soft_kl(s, t[..., :2], labels)


def test_relations_by_hand_and_independent_of_heads_and_width():
    from kdistill.losses.general import relation_kl, relations

    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # [1, 3, 2], one relation head
    rel = relations(x, 1).exp()
    scores = x[0] @ x[0].T / math.sqrt(2)
    torch.testing.assert_close(rel[0, 0], torch.softmax(scores, -1))
    mask = torch.tensor([[1, 1, 0]])
    masked = relations(x, 1, mask).exp()
    assert float(masked[0, 0, :, 2].abs().max()) == 0.0  # the padded key has probability 0
    # a teacher 48 wide and a student 24 wide, different head counts: 4 relation heads fit both
    torch.manual_seed(0)
    teacher_v, student_v = torch.randn(2, 5, 48), torch.randn(2, 5, 24, requires_grad=True)
    attn = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    loss = relation_kl(relations(student_v, 4, attn), relations(teacher_v, 4, attn), attn)
    loss.backward()
    assert torch.isfinite(loss) and float(loss.detach()) > 0 and torch.isfinite(student_v.grad).all()
    assert float(relation_kl(relations(teacher_v, 4, attn), relations(teacher_v, 4, attn), attn)) == pytest.approx(0, abs=1e-6)
    with pytest.raises(Exception, match="relation heads"):
        relations(student_v, 5)
