"""TinyBERT building blocks: losses against hand-computed values, layer maps, attention capture on tiny BERTs."""

import math

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, DistilBertConfig, DistilBertForSequenceClassification

from kdistill.errors import KDistillError, ModelError
from kdistill.losses import soft_target_kl
from kdistill.losses.tinybert import (
    align_heads,
    attention_kl_loss,
    attention_score_loss,
    embedding_loss,
    hidden_state_loss,
    prediction_loss,
)
from kdistill.objectives.layer_map import layer_map, parse_layer_map
from kdistill.students.capture import CAPTURE_IMPLEMENTATION, capture_attention, capture_attention_forward

VOCAB = 100


def tiny_bert(layers: int, hidden: int, heads: int, seed: int = 0, attn: str | None = None) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=2 * hidden, max_position_embeddings=32, num_labels=2)
    if attn is not None:
        cfg._attn_implementation = attn
    return BertForSequenceClassification(cfg).eval()


def padded_batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (3, 7), generator=g)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 5:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0
    return {"input_ids": ids, "attention_mask": mask}


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg
    return msg


# ----------------------------------------------------------------------------- embedding / hidden


def test_hidden_mse_by_hand_with_and_without_mask():
    s = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # [1, 2, 2]
    t = torch.zeros(1, 2, 2)
    assert hidden_state_loss(s, t, None).item() == pytest.approx((1 + 4 + 9 + 16) / 4)
    assert hidden_state_loss(s, t, None, torch.tensor([[1, 0]])).item() == pytest.approx((1 + 4) / 2)
    assert embedding_loss(s, t).item() == pytest.approx(7.5)
    assert embedding_loss(s, t, attention_mask=torch.tensor([[0, 1]])).item() == pytest.approx((9 + 16) / 2)


def test_projection_from_width_4_to_6():
    s = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4) / 10
    t = torch.ones(2, 3, 6)
    proj = nn.Linear(4, 6, bias=False)
    with torch.no_grad():
        proj.weight.zero_()
        proj.weight[:4].copy_(torch.eye(4))  # W·s = [s, 0, 0]
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    padded = torch.cat([s, torch.zeros(2, 3, 2)], dim=-1)
    per_token = ((padded - t) ** 2).sum(-1)  # [2, 3]
    expected = (per_token * mask).sum() / (mask.sum() * 6)
    loss = hidden_state_loss(s, t, proj, mask)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert embedding_loss(s, t, proj).item() == pytest.approx((per_token.sum() / (6 * 6)).item(), rel=1e-6)
    loss.backward()
    assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0


def test_hidden_shape_errors_say_what_differs():
    with pytest.raises(KDistillError) as err:
        hidden_state_loss(torch.zeros(2, 3, 4), torch.zeros(2, 3, 6), None)
    assert "nn.Linear(4, 6)" in one_line(err)
    with pytest.raises(KDistillError) as err:
        hidden_state_loss(torch.zeros(2, 3, 4), torch.zeros(2, 3, 6), nn.Linear(4, 5))
    assert "width 5" in one_line(err)
    with pytest.raises(KDistillError) as err:
        embedding_loss(torch.zeros(2, 4, 6), torch.zeros(2, 3, 6))
    assert "(2, 4)" in one_line(err)
    with pytest.raises(KDistillError) as err:
        hidden_state_loss(torch.zeros(2, 3, 6), torch.zeros(2, 3, 6), None, torch.ones(2, 4))
    assert "attention_mask" in one_line(err)


# ----------------------------------------------------------------------------- attention scores


def test_attention_score_loss_by_hand_and_masking():
    s = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # [1, 1, 2, 2]
    t = torch.zeros(1, 1, 2, 2)
    assert attention_score_loss(s, t).item() == pytest.approx(7.5)
    mask = torch.tensor([[1, 0]])
    assert attention_score_loss(s, t, mask).item() == pytest.approx(1.0)  # only (query 0, key 0)
    # masked scores (as after adding the mask) give the same, finite loss and gradient
    s_masked = s.clone()
    s_masked[..., 1] = float("-inf")
    s_masked.requires_grad_(True)
    t_masked = t.clone()
    t_masked[..., 1] = -1e4
    loss = attention_score_loss(s_masked, t_masked, mask)
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    assert torch.isfinite(s_masked.grad).all()
    assert s_masked.grad[0, 0, 0, 0].item() == pytest.approx(2.0)  # d/ds (s - 0)^2 / 1 pair
    assert s_masked.grad[0, 0, 1].abs().sum() == 0 and s_masked.grad[0, 0, 0, 1] == 0


def test_attention_score_loss_equal_heads_is_per_head_mse():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    expected = torch.stack([((s[:, h] - t[:, h]) ** 2).mean() for h in range(3)]).mean()
    for rule in ("group", "mean"):
        assert attention_score_loss(s, t, head_rule=rule).item() == pytest.approx(expected.item(), rel=1e-6)


def _constant_heads(values, length=3):
    return torch.tensor(values, dtype=torch.float32)[None, :, None, None].expand(1, len(values), length, length)


def test_head_rules_12_vs_4_group_and_mean():
    teacher = _constant_heads(range(12))  # groups of 3 average to 1, 4, 7, 10
    assert attention_score_loss(_constant_heads([1, 4, 7, 10]), teacher, head_rule="group").item() == pytest.approx(0.0)
    reversed_student = _constant_heads([10, 7, 4, 1])
    assert attention_score_loss(reversed_student, teacher, head_rule="group").item() == pytest.approx((81 + 9 + 9 + 81) / 4)
    assert attention_score_loss(reversed_student, teacher, head_rule="mean").item() == pytest.approx(0.0)  # 5.5 vs 5.5
    s, t = align_heads(reversed_student, teacher, "group")
    assert s.shape == t.shape == (1, 4, 3, 3)


def test_head_rules_6_vs_4_fall_back_to_mean_and_student_grouping():
    teacher = _constant_heads(range(6))  # mean 2.5
    student = _constant_heads([1, 1, 1, 1])
    for rule in ("group", "mean"):
        assert attention_score_loss(student, teacher, head_rule=rule).item() == pytest.approx(1.5**2)
        assert align_heads(student, teacher, rule)[0].shape[1] == 1
    # student with more heads than the teacher: student heads are grouped
    assert attention_score_loss(_constant_heads([0, 2, 4, 6]), _constant_heads([1, 5]), head_rule="group").item() == pytest.approx(0.0)
    with pytest.raises(KDistillError) as err:
        attention_score_loss(student, teacher, head_rule="max")
    assert "head_rule" in one_line(err)


def test_attention_shape_errors():
    with pytest.raises(KDistillError) as err:
        attention_score_loss(torch.zeros(2, 4, 5, 5), torch.zeros(2, 4, 6, 6))
    assert "(2, 5, 5)" in one_line(err)
    with pytest.raises(KDistillError) as err:
        attention_kl_loss(torch.zeros(2, 5, 5), torch.zeros(2, 4, 5, 5))
    assert "[B, heads, L, L]" in one_line(err)
    with pytest.raises(KDistillError):
        attention_score_loss(torch.zeros(2, 4, 5, 5), torch.zeros(2, 4, 5, 5), torch.ones(2, 6))


# ----------------------------------------------------------------------------- attention KL


def test_attention_kl_by_hand():
    p_t = torch.tensor([[[[0.5, 0.5], [1.0, 0.0]]]])
    p_s = torch.tensor([[[[0.25, 0.75], [0.5, 0.5]]]])
    row0 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    row1 = math.log(1.0 / 0.5)  # 0·log 0 counts as 0
    assert attention_kl_loss(p_s, p_t).item() == pytest.approx((row0 + row1) / 2, rel=1e-6)
    # padded key 1 left out of the sum, padded query 1 out of the mean
    assert attention_kl_loss(p_s, p_t, torch.tensor([[1, 0]])).item() == pytest.approx(0.5 * math.log(2), rel=1e-6)
    assert attention_kl_loss(p_t, p_t).item() == pytest.approx(0.0, abs=1e-7)


def test_attention_kl_heads_and_masked_softmax():
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    add = (1 - mask)[:, None, None, :].float() * torch.finfo(torch.float32).min
    s_logits = torch.randn(2, 4, 4, 4, requires_grad=True)
    p_s = torch.softmax(s_logits + add, dim=-1)
    p_t = torch.softmax(torch.randn(2, 12, 4, 4) + add, dim=-1)
    loss = attention_kl_loss(p_s, p_t, mask)  # 12 vs 4 -> groups of 3
    g_t = p_t.reshape(2, 4, 3, 4, 4).mean(2)
    kl = (g_t * (g_t.clamp_min(1e-12).log() - p_s.clamp_min(1e-12).log())).sum(-1)  # [2, 4, 4]
    expected = (kl * mask[:, None, :]).sum() / (mask.sum() * 4)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.item() > 0
    loss.backward()
    assert torch.isfinite(s_logits.grad).all() and s_logits.grad.abs().sum() > 0
    six = torch.softmax(torch.randn(2, 6, 4, 4), -1)
    assert attention_kl_loss(p_s, six, mask, head_rule="group").item() == pytest.approx(
        attention_kl_loss(p_s, six, mask, head_rule="mean").item()
    )


# ----------------------------------------------------------------------------- prediction


def test_prediction_loss_by_hand():
    s = torch.tensor([[0.0, math.log(3.0)]])
    t = torch.zeros(1, 2)
    assert prediction_loss(s, t).item() == pytest.approx(-(0.5 * math.log(0.25) + 0.5 * math.log(0.75)), rel=1e-6)
    # = KL / T^2 + teacher entropy
    torch.manual_seed(0)
    zs, zt = torch.randn(4, 3), torch.randn(4, 3)
    p_t = torch.softmax(zt / 2.0, -1)
    entropy = -(p_t * p_t.log()).sum(-1).mean()
    assert prediction_loss(zs, zt, 2.0).item() == pytest.approx((soft_target_kl(zs, zt, 2.0) / 4 + entropy).item(), rel=1e-5)
    with pytest.raises(KDistillError) as err:
        prediction_loss(torch.zeros(2, 3), torch.zeros(2, 2))
    assert "(2, 3)" in one_line(err)
    with pytest.raises(KDistillError):
        prediction_loss(zs, zt, 0.0)


# ----------------------------------------------------------------------------- layer map


def test_layer_map_rules():
    assert layer_map(4, 12) == [3, 6, 9, 12]
    assert layer_map(6, 12, "uniform") == [2, 4, 6, 8, 10, 12]
    assert layer_map(4, 6) == [1, 3, 4, 6]
    assert layer_map(3, 3) == [1, 2, 3]
    assert layer_map(4, 12, "last") == [9, 10, 11, 12]
    assert layer_map(4, 12, "first") == [1, 2, 3, 4]
    assert layer_map(4, 12, [2, 5, 8, 12]) == [2, 5, 8, 12]
    assert layer_map(2, 4, "LAST") == [3, 4]


@pytest.mark.parametrize(
    "args, needle",
    [
        ((5, 4, "uniform"), "1 <= student layers <= teacher layers"),
        ((0, 4, "uniform"), "1 <= student layers"),
        ((2, 4, "middle"), "uniform, last, first"),
        ((2, 4, [1, 2, 3]), "1..4"),
        ((2, 4, [3, 2]), "strictly increasing"),
        ((2, 4, [0, 2]), "1..4"),
        ((2, 4, [2, 5]), "1..4"),
    ],
)
def test_layer_map_errors(args, needle):
    with pytest.raises(ModelError) as err:
        layer_map(*args)
    assert needle in one_line(err)


def test_parse_layer_map():
    assert parse_layer_map(" Uniform ") == "uniform"
    assert parse_layer_map("last") == "last"
    assert parse_layer_map("3, 6,9,12") == [3, 6, 9, 12]
    for bad in ("middle", "3,x", ""):
        with pytest.raises(ModelError) as err:
            parse_layer_map(bad)
        assert "3,6,9,12" in one_line(err)


# ----------------------------------------------------------------------------- attention capture


@pytest.mark.parametrize("default", ["sdpa", "eager"])
def test_capture_matches_default_implementation_and_restores_it(default):
    model = tiny_bert(3, 32, 4, attn=default)
    batch = padded_batch()
    assert model.config._attn_implementation == default
    with torch.no_grad():
        ref = model(**batch).logits
        with capture_attention(model) as rec:
            assert model.config._attn_implementation == CAPTURE_IMPLEMENTATION
            out = model(**batch, output_hidden_states=True)
    assert model.config._attn_implementation == default
    assert torch.allclose(out.logits, ref, atol=1e-5)
    assert len(rec.scores) == len(rec.probs) == 3 and len(out.hidden_states) == 4
    assert all(s.shape == (3, 4, 7, 7) for s in rec.scores)


def test_scores_softmax_equals_eager_weights_with_padding():
    model = tiny_bert(2, 32, 4, attn="eager")
    batch = padded_batch()
    with torch.no_grad():
        eager = model(**batch, output_attentions=True).attentions
        with capture_attention(model) as rec:
            model(**batch)
    additive = (1 - batch["attention_mask"])[:, None, None, :].float() * torch.finfo(torch.float32).min
    for layer in range(2):
        scores = rec.scores[layer]
        assert torch.isfinite(scores).all()  # recorded before the mask is added
        assert torch.allclose(torch.softmax(scores + additive, -1), eager[layer], atol=1e-6)
        assert torch.allclose(rec.probs[layer], eager[layer], atol=1e-6)
        assert rec.probs[layer][2, :, :, 3:].abs().max() < 1e-6  # padded keys get no attention


def test_bool_and_float_masks_agree():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4)
    keep = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    keep[1, ..., 3:] = False
    additive = torch.zeros(2, 1, 5, 5).masked_fill(~keep, torch.finfo(torch.float32).min)
    module = nn.Module().eval()
    out_b, w_b = capture_attention_forward(module, q, k, v, keep)
    out_f, w_f = capture_attention_forward(module, q, k, v, additive)
    out_n, _ = capture_attention_forward(module, q, k, v, None)
    assert out_b.shape == (2, 5, 3, 4)  # [B, L, heads, d] like transformers' eager function
    assert torch.allclose(out_b, out_f, atol=1e-6) and torch.allclose(w_b, w_f, atol=1e-6)
    assert torch.allclose(out_n[0], out_f[0], atol=1e-6)


def test_tinybert_losses_on_captured_teacher_and_student_with_gradients():
    teacher = tiny_bert(4, 32, 4, seed=0)
    student = tiny_bert(2, 16, 2, seed=1)
    batch = padded_batch()
    mask = batch["attention_mask"]
    g = layer_map(2, 4)
    assert g == [2, 4]
    with torch.no_grad(), capture_attention(teacher, layers=[i - 1 for i in g]) as t_rec:
        t_out = teacher(**batch, output_hidden_states=True)
    assert t_rec.scores[0] is None and t_rec.scores[1] is not None and not t_rec.scores[1].requires_grad
    with capture_attention(student) as s_rec:
        s_out = student(**batch, output_hidden_states=True)
    proj_e, proj_h = nn.Linear(16, 32), nn.Linear(16, 32)
    terms = [embedding_loss(s_out.hidden_states[0], t_out.hidden_states[0], proj_e, mask)]
    for m, gm in enumerate(g, start=1):
        terms.append(hidden_state_loss(s_out.hidden_states[m], t_out.hidden_states[gm], proj_h, mask))
        terms.append(attention_score_loss(s_rec.scores[m - 1], t_rec.scores[gm - 1], mask))  # 2 vs 4 heads: group
        terms.append(attention_kl_loss(s_rec.probs[m - 1], t_rec.probs[gm - 1], mask))
    terms.append(prediction_loss(s_out.logits, t_out.logits))
    total = sum(terms)
    assert torch.isfinite(total)
    student.zero_grad()
    total.backward()
    for layer in student.bert.encoder.layer:
        assert layer.attention.self.query.weight.grad.abs().sum() > 0
    assert proj_h.weight.grad.abs().sum() > 0 and proj_e.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())

    # the score term alone reaches the query weights of the layer it was taken from
    student.zero_grad()
    with capture_attention(student) as s_rec:
        student(**batch)
    attention_score_loss(s_rec.scores[0], t_rec.scores[1], mask).backward()
    assert student.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    assert student.bert.encoder.layer[1].attention.self.query.weight.grad is None


def test_capture_restores_on_error_rejects_nesting_and_bad_models():
    model = tiny_bert(2, 32, 4)
    with pytest.raises(RuntimeError):
        with capture_attention(model):
            raise RuntimeError("boom")
    assert model.config._attn_implementation == "sdpa"
    with capture_attention(model):
        with pytest.raises(ModelError) as err:
            with capture_attention(model):
                pass
        assert "already" in one_line(err)
    with pytest.raises(ModelError) as err:
        with capture_attention(model, layers=[2]):
            pass
    assert "0..1" in one_line(err)
    with pytest.raises(ModelError):
        with capture_attention(nn.Linear(2, 2)):
            pass
    # outside the block nothing is recorded any more
    with capture_attention(model) as rec:
        pass
    with torch.no_grad():
        model(**padded_batch())
    assert rec.scores == [None, None]


def test_capture_base_model_and_distilbert():
    model = tiny_bert(2, 32, 4)
    batch = padded_batch()
    with torch.no_grad():
        ref = model.bert(**batch).last_hidden_state
        with capture_attention(model.bert) as rec:
            out = model.bert(**batch).last_hidden_state
    assert torch.allclose(out, ref, atol=1e-5) and rec.scores[1].shape == (3, 4, 7, 7)

    torch.manual_seed(0)
    cfg = DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=32)
    distil = DistilBertForSequenceClassification(cfg).eval()
    with torch.no_grad():
        ref = distil(**batch).logits
        with capture_attention(distil) as rec:
            out = distil(**batch).logits
    assert torch.allclose(out, ref, atol=1e-5) and rec.probs[0].shape == (3, 4, 7, 7)
