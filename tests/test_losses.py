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
    zs = torch.tensor([[0.5, -0.5]], requires_grad=True)
    zt = torch.tensor([[2.0, -2.0]])
    grads = []
    for t in (1.0, 10.0):
        zs.grad = None
        soft_target_kl(zs, zt, t).backward()
        grads.append(zs.grad.abs().sum().item())
    # without T² the T=10 gradient would be ~100x smaller; with it, within a factor of 10
    assert grads[1] > grads[0] / 10


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
    from kdistill.methods import TeacherSignal, VanillaKD

    task = get_task("sst2")
    zs, zt, y = torch.tensor([[0.2, 0.1]]), torch.tensor([[3.0, -1.0]]), torch.tensor([1])

    class Out:
        logits = zs

    for alpha in (0.0, 0.3, 1.0):
        terms = VanillaKD(task, DistillConfig(alpha=alpha, temperature=2.0))(Out, {"labels": y}, TeacherSignal(zt))
        expected = alpha * hard_label_ce(zs, y) + (1 - alpha) * soft_target_kl(zs, zt, 2.0)
        assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    terms = VanillaKD(task, DistillConfig(alpha=0.0, kd_loss="mse"))(Out, {"labels": y}, TeacherSignal(zt))
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
