"""Loss values and gradients against hand-computed cases."""

import math

import pytest
import torch

from kdistill.errors import KDistillError
from kdistill.losses import hard_label_ce, hidden_cosine, logit_mse, regression_mse, soft_target_kl


def _softmax(xs, t):
    e = [math.exp(x / t) for x in xs]
    return [v / sum(e) for v in e]


@pytest.mark.parametrize("t", [1.0, 2.0, 4.0])
def test_soft_target_kl_matches_hand_computation(t):
    zs, zt = [1.0, 0.0, -1.0], [2.0, 0.5, 0.0]
    ps, pt = _softmax(zs, t), _softmax(zt, t)
    expected = t * t * sum(p * math.log(p / q) for p, q in zip(pt, ps))
    got = soft_target_kl(torch.tensor([zs]), torch.tensor([zt]), t)  # float32 inside
    assert got.item() == pytest.approx(expected, rel=1e-4, abs=1e-7)


def test_soft_target_kl_is_batch_mean_and_zero_when_equal():
    z = torch.randn(4, 3)
    assert soft_target_kl(z, z.clone(), 3.0).item() == pytest.approx(0.0, abs=1e-6)
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    both = soft_target_kl(a, b, 2.0)
    each = (soft_target_kl(a[:1], b[:1], 2.0) + soft_target_kl(a[1:], b[1:], 2.0)) / 2
    assert both.item() == pytest.approx(each.item(), rel=1e-5)


def test_soft_target_gradient_is_T_times_prob_difference():
    # d/dz_s [T² KL(p_t || p_s)] = T (p_s - p_t) for one example (Hinton et al. 2015, Eq. 2 times T²)
    t = 3.0
    zs = torch.tensor([[0.3, -1.2, 2.0]], requires_grad=True)
    zt = torch.tensor([[1.0, 0.0, -0.5]])
    soft_target_kl(zs, zt, t).backward()
    expected = t * (torch.softmax(zs.detach() / t, -1) - torch.softmax(zt / t, -1))
    assert torch.allclose(zs.grad, expected, atol=1e-6)
    # teacher gets no gradient even if it requires grad
    zt2 = zt.clone().requires_grad_(True)
    soft_target_kl(zs, zt2, t).backward()
    assert zt2.grad is None


def test_T_squared_keeps_gradient_scale_comparable():
    # d/dz_s [T² KL] = T (softmax(z_s/T) - softmax(z_t/T)). For two classes softmax(z/T)_0 = σ((z_0 - z_1)/T), so with
    # z_s = (0.5, -0.5), z_t = (2, -2) the gradient is ±T (σ(1/T) - σ(4/T)) and the T=10 / T=1 ratio of its L1 norm
    # is exactly 10 (σ(0.4) - σ(0.1)) / (σ(4) - σ(1)) ≈ 2.937 (T¹ scaling would give ≈ 0.294, no T factor ≈ 0.029).
    def sig(x):
        return 1.0 / (1.0 + math.exp(-x))

    zs = torch.tensor([[0.5, -0.5]], requires_grad=True, dtype=torch.float64)
    zt = torch.tensor([[2.0, -2.0]], dtype=torch.float64)
    grads = {}
    for t in (1.0, 10.0):
        zs.grad = None
        soft_target_kl(zs, zt, t).backward()
        grads[t] = zs.grad.clone()
        g = t * (sig(1.0 / t) - sig(4.0 / t))
        assert torch.allclose(grads[t], torch.tensor([[g, -g]], dtype=torch.float64), rtol=1e-10, atol=0)
    ratio = grads[10.0].abs().sum().item() / grads[1.0].abs().sum().item()
    assert ratio == pytest.approx(10 * (sig(0.4) - sig(0.1)) / (sig(4.0) - sig(1.0)), rel=1e-10)
    assert ratio == pytest.approx(2.93712, abs=1e-5)
    # the high-temperature limit (Hinton et al. 2015, Sec. 2.1): with T² the gradient tends to (z_s - z_t) / C for
    # zero-mean logits, independent of T (the rest is O(1/T); without T² it would vanish as 1/T)
    z3s = torch.tensor([[0.3, -0.1, -0.2]], requires_grad=True, dtype=torch.float64)
    z3t = torch.tensor([[1.0, 0.5, -1.5]], dtype=torch.float64)
    limit = (z3s.detach() - z3t) / 3
    for t in (100.0, 1000.0):
        z3s.grad = None
        soft_target_kl(z3s, z3t, t).backward()
        torch.testing.assert_close(z3s.grad, limit, rtol=0, atol=1 / t)


def test_logit_mse_and_gradient():
    zs = torch.tensor([[1.0, 2.0]], requires_grad=True)
    zt = torch.tensor([[0.0, 4.0]])
    loss = logit_mse(zs, zt)
    assert loss.item() == pytest.approx((1 + 4) / 2)
    loss.backward()
    assert torch.allclose(zs.grad, torch.tensor([[1.0, -2.0]]))  # 2 (zs - zt) / n


def test_hard_ce_and_regression_mse():
    z = torch.tensor([[2.0, 0.0]])
    assert hard_label_ce(z, torch.tensor([0])).item() == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + 1)), rel=1e-6)
    assert regression_mse(torch.tensor([[1.0], [3.0]]), torch.tensor([2.0, 2.0])).item() == pytest.approx(1.0)


def test_alpha_mixing_in_objective():
    from kdistill.config import DistillConfig
    from kdistill.data.tasks import get_task
    from kdistill.objectives import TeacherSignal, kd_objective

    task = get_task("sst2")
    zs, zt, y = torch.tensor([[0.2, 0.1]]), torch.tensor([[3.0, -1.0]]), torch.tensor([1])

    class Out:
        logits = zs

    for alpha in (0.0, 0.3, 1.0):
        terms = kd_objective(task, DistillConfig(alpha=alpha, temperature=2.0))(Out, {"labels": y}, TeacherSignal(zt))
        expected = alpha * hard_label_ce(zs, y) + (1 - alpha) * soft_target_kl(zs, zt, 2.0)
        assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    terms = kd_objective(task, DistillConfig(alpha=0.0, kd_loss="mse"))(Out, {"labels": y}, TeacherSignal(zt))
    assert terms["loss"].item() == pytest.approx(logit_mse(zs, zt).item())


def test_hidden_cosine_masks_padding():
    s = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    t = torch.tensor([[[1.0, 0.0], [-1.0, 0.0]]])
    assert hidden_cosine(s, t).item() == pytest.approx(1.0)  # (0 + 2) / 2
    assert hidden_cosine(s, t, torch.tensor([[1, 0]])).item() == pytest.approx(0.0)
    with pytest.raises(KDistillError, match="cos-weight"):
        hidden_cosine(torch.zeros(1, 2, 3), torch.zeros(1, 2, 4))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(KDistillError, match="temperature"):
        soft_target_kl(torch.zeros(1, 2), torch.zeros(1, 2), 0.0)
    with pytest.raises(KDistillError, match="same label set"):
        soft_target_kl(torch.zeros(1, 2), torch.zeros(1, 3), 1.0)


# ----------------------------------------------------------------------------- non-finite logits, shapes, dtypes


def test_soft_target_kl_with_minus_inf_teacher_logit_is_kl_over_remaining_classes():
    t = 2.0
    zs, zt = [1.0, 0.3, -1.0], [2.0, -math.inf, 0.5]
    ps = _softmax(zs, t)
    pt_rest = _softmax([zt[0], zt[2]], t)  # the teacher puts probability 0 on class 1
    expected = t * t * sum(p * math.log(p / q) for p, q in zip(pt_rest, [ps[0], ps[2]]))
    student = torch.tensor([zs], requires_grad=True)
    got = soft_target_kl(student, torch.tensor([zt]), t)
    assert math.isfinite(got.item())
    assert got.item() == pytest.approx(expected, rel=1e-5)
    got.backward()
    assert torch.isfinite(student.grad).all()
    p_t = torch.tensor([[pt_rest[0], 0.0, pt_rest[1]]])
    assert torch.allclose(student.grad, t * (torch.softmax(student.detach() / t, -1) - p_t), atol=1e-6)


def test_soft_target_kl_minus_inf_student_logit_where_teacher_has_mass_is_plus_inf():
    got = soft_target_kl(torch.tensor([[0.0, -math.inf]]), torch.tensor([[0.0, 0.0]]), 1.0)
    assert got.item() == math.inf
    # both -inf on the same class: that class contributes nothing
    both = soft_target_kl(torch.tensor([[0.0, 1.0, -math.inf]]), torch.tensor([[0.5, 0.0, -math.inf]]), 1.0)
    assert both.item() == pytest.approx(soft_target_kl(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.0]]), 1.0).item(), rel=1e-6)


def test_soft_target_kl_float32_value_and_gradient_unchanged_bit_for_bit():
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, 5, generator=g) * 3, torch.randn(16, 5, generator=g) * 3
    for t in (1.0, 2.0, 3.5):
        s1, s2 = a.clone().requires_grad_(True), a.clone().requires_grad_(True)
        ref = F.kl_div(F.log_softmax(s1 / t, -1), F.log_softmax(b / t, -1), reduction="batchmean", log_target=True) * (t * t)
        got = soft_target_kl(s2, b, t)
        assert torch.equal(got, ref)
        ref.backward()
        got.backward()
        assert torch.equal(s2.grad, s1.grad)


def test_losses_keep_float64_and_compute_lower_precision_in_float32():
    a, b = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    assert soft_target_kl(a, b, 2.0).dtype == torch.float64
    assert hard_label_ce(a, torch.tensor([0, 1, 3])).dtype == torch.float64
    assert regression_mse(a[:, :1], b[:, 0]).dtype == torch.float64
    assert soft_target_kl(a.half(), b.half(), 2.0).dtype == torch.float32
    assert soft_target_kl(a.float(), b.float(), 2.0).dtype == torch.float32


def test_soft_target_kl_rejects_non_2d_logits():
    with pytest.raises(KDistillError, match=r"\(2, 3, 4\).*\(2, 3, 4\)"):
        soft_target_kl(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), 1.0)
    with pytest.raises(KDistillError, match=r"\(3,\)"):
        soft_target_kl(torch.zeros(3), torch.zeros(3), 1.0)


@pytest.mark.parametrize("mask_shape", [(7,), (4, 8), (4, 7, 1)])
def test_hidden_cosine_rejects_wrong_mask_shape(mask_shape):
    h = torch.randn(4, 7, 16)
    with pytest.raises(KDistillError) as err:
        hidden_cosine(h, h.clone(), torch.ones(mask_shape))
    assert str(tuple(mask_shape)) in str(err.value) and "(4, 7, 16)" in str(err.value)
    assert "\n" not in str(err.value)


def test_hidden_cosine_rejects_non_3d_hidden_states():
    with pytest.raises(KDistillError, match=r"\(4, 16\)"):
        hidden_cosine(torch.randn(4, 16), torch.randn(4, 16))


def test_hard_label_ce_rejects_bad_shapes():
    with pytest.raises(KDistillError, match=r"\(4,\).*\(4,\)"):
        hard_label_ce(torch.zeros(4), torch.zeros(4, dtype=torch.long))  # [B] logits
    with pytest.raises(KDistillError, match=r"\(4, 2\).*\(3,\)"):
        hard_label_ce(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))  # batch sizes differ
    with pytest.raises(KDistillError, match=r"\(4, 2\).*\(4, 1\)"):
        hard_label_ce(torch.zeros(4, 2), torch.zeros(4, 1, dtype=torch.long))  # [B, 1] labels


def test_regression_mse_rejects_bad_shapes():
    with pytest.raises(KDistillError, match=r"\(4,\).*\(3,\)"):
        regression_mse(torch.zeros(4), torch.zeros(3))
    with pytest.raises(KDistillError, match=r"\(2, 2\).*\(4,\)"):
        regression_mse(torch.zeros(2, 2), torch.zeros(4))  # same element count, but not [B] / [B, 1]
    assert regression_mse(torch.zeros(4, 1), torch.ones(4)).item() == pytest.approx(1.0)


def test_tinybert_losses_name_both_shapes_and_handle_minus_inf():
    from torch import nn

    from kdistill.losses.tinybert import attention_score_loss, hidden_state_loss, prediction_loss

    h = torch.zeros(2, 3, 6)
    with pytest.raises(KDistillError) as err:
        hidden_state_loss(h, h.clone(), None, torch.ones(3))
    assert "(3,)" in str(err.value) and "(2, 3, 6)" in str(err.value)
    with pytest.raises(KDistillError) as err:  # the projection's input width does not fit: no raw matmul error
        hidden_state_loss(torch.zeros(2, 3, 4), torch.zeros(2, 3, 6), nn.Linear(5, 6))
    assert "(2, 3, 4)" in str(err.value) and "(2, 3, 6)" in str(err.value)
    with pytest.raises(KDistillError) as err:
        attention_score_loss(torch.zeros(2, 4, 5, 5), torch.zeros(2, 4, 5, 5), torch.ones(2, 6))
    assert "(2, 6)" in str(err.value) and "(2, 4, 5, 5)" in str(err.value)
    # 0 · log 0 = 0 also where the student's logit is -inf
    zs = torch.tensor([[0.0, 1.0, -math.inf]], requires_grad=True)
    got = prediction_loss(zs, torch.tensor([[0.5, 0.0, -math.inf]]))
    assert math.isfinite(got.item())
    assert got.item() == pytest.approx(prediction_loss(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.0]])).item(), rel=1e-6)
    got.backward()
    assert torch.isfinite(zs.grad).all()
