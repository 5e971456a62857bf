"""Accelerator, optimizer, scheduler and the step plan of a run."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from transformers import get_linear_schedule_with_warmup

from kdistill.config import TrainConfig
from kdistill.errors import KDistillError


def check_train_config(cfg: TrainConfig) -> None:
    """Raise :class:`KDistillError` for settings this machine cannot run (checked before any work)."""
    if cfg.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise KDistillError("--mixed-precision fp16 needs a CUDA GPU; on CPU use --mixed-precision bf16 or no")


def new_accelerator(cfg: TrainConfig, find_unused_parameters: bool = False) -> Accelerator:
    """A fresh :class:`Accelerator` for this run (accelerate keeps process-wide singletons: reset the
    per-run ones so that several runs in one Python process may use different precision/accumulation)."""
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import DistributedDataParallelKwargs

    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    check_train_config(cfg)
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if find_unused_parameters else []
    return Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.gradient_accumulation_steps,
                       kwargs_handlers=handlers)


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (Loshchilov & Hutter 2019); no weight decay on biases and LayerNorm weights.

    torch's fused kernel where it has one for every parameter's device and dtype (CPU and CUDA, floating point): the
    same update as the default per-tensor loop (equal to float rounding), several times faster on CPU, where the loop
    over a small student's embedding matrix is a large share of its step. A resumed run keeps the implementation its
    checkpoint recorded (the optimizer's saved parameter groups carry it).
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    fused = all(p.device.type in FUSED_DEVICES and p.is_floating_point() for p in decay + no_decay) or None
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.learning_rate, fused=fused,
    )


#: Devices whose parameters get torch's fused AdamW kernel (:func:`make_optimizer`).
FUSED_DEVICES = frozenset({"cpu", "cuda"})


@dataclass
class Plan:
    """How long the run is: optimizer steps in all and per epoch, micro-batches per epoch, eval interval."""

    total_steps: int
    steps_per_epoch: int
    n_batches: int | None  # micro-batches per epoch (None: a stream)
    eval_every: int
    log_every: int = 50

    @classmethod
    def for_loader(cls, loader, cfg: TrainConfig) -> "Plan":
        """Raises :class:`KDistillError` for a stream without ``max_steps``."""
        try:
            n_batches = len(loader)
        except TypeError:  # a stream: no length
            n_batches = None
        if cfg.max_steps:
            total = cfg.max_steps
        elif n_batches is None:
            raise KDistillError("streamed training data has no length: pass --max-steps")
        else:
            total = max(1, math.ceil(cfg.epochs * math.ceil(n_batches / cfg.gradient_accumulation_steps)))
        per_epoch = math.ceil(n_batches / cfg.gradient_accumulation_steps) if n_batches else total
        return cls(total, per_epoch, n_batches, cfg.eval_steps or per_epoch, cfg.logging_steps or max(1, total // 100))


def make_scheduler(optimizer, cfg: TrainConfig, total_steps: int):
    """Linear warm-up over ``warmup_ratio`` of the steps, then linear decay to 0."""
    return get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
