"""The engine's AdamW: torch's fused kernel on CPU, the same update as the per-tensor loop, no weight decay on biases
and LayerNorm weights, and a resumed run keeps the implementation its checkpoint recorded."""

import copy

import torch

from kdistill.config import TrainConfig
from kdistill.engine.setup import make_optimizer


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(50, 8)
        self.LayerNorm = torch.nn.LayerNorm(8)
        self.out = torch.nn.Linear(8, 2)

    def forward(self, ids):
        return self.out(self.LayerNorm(self.emb(ids))).sum()


def _steps(model, opt, n=3):
    torch.manual_seed(1)
    for _ in range(n):
        opt.zero_grad()
        model(torch.randint(0, 50, (4, 5))).backward()
        opt.step()


def test_fused_on_cpu_with_the_loop_s_update_and_decay_groups():
    torch.manual_seed(0)
    a = Tiny()
    b = copy.deepcopy(a)
    cfg = TrainConfig(learning_rate=1e-2, weight_decay=0.1)
    opt = make_optimizer(a, cfg)
    assert all(g["fused"] for g in opt.param_groups)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert len(opt.param_groups[0]["params"]) == 2  # emb.weight, out.weight; biases and LayerNorm are not decayed
    loop = torch.optim.AdamW([{"params": [b.emb.weight, b.out.weight], "weight_decay": 0.1},
                              {"params": [b.LayerNorm.weight, b.LayerNorm.bias, b.out.bias], "weight_decay": 0.0}],
                             lr=1e-2, foreach=False)
    _steps(a, opt)
    _steps(b, loop)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name
    assert not torch.equal(a.emb.weight, Tiny().emb.weight)  # it trained


def test_a_checkpoint_of_the_loop_resumes_with_the_loop(monkeypatch):
    import kdistill.engine.setup as setup

    model, cfg = Tiny(), TrainConfig(learning_rate=1e-2)
    monkeypatch.setattr(setup, "FUSED_DEVICES", frozenset())  # what a run made before the fused kernel saved
    old = make_optimizer(model, cfg)
    assert not any(g["fused"] for g in old.param_groups)
    _steps(model, old, 1)
    monkeypatch.undo()
    opt = make_optimizer(model, cfg)
    assert all(g["fused"] for g in opt.param_groups)
    opt.load_state_dict(old.state_dict())
    assert not any(g["fused"] for g in opt.param_groups)
    _steps(model, opt, 1)  # and it steps
