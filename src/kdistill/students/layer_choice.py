"""Importance-based choice of the teacher layers and heads a ``layers-from-teacher`` student copies."""

from __future__ import annotations

from kdistill.errors import KDistillError


def select_by_importance(teacher, tokenizer, train_ds, cfg, *, seed: int, n_batches: int = 16,
                         batch_size: int = 32) -> tuple[list[int], list[list[int]] | None]:
    """Teacher layers and heads for a ``layers-from-teacher`` student, chosen by head importance.

    Head importance I_h = E|∂L/∂ξ_h| (Michel et al. 2019, Eq. 2) of the teacher, L the gold-label
    cross-entropy over ``n_batches`` seeded batches of ``batch_size`` from the tokenised ``train_ds``,
    raw (not normalised per layer).

    Layers: with ``cfg.layer_selection == "importance"`` the ``k`` layers with the largest summed head
    importance, in order (``k`` = ``len(cfg.layers)``, else ``cfg.num_layers``, else the every-other
    count); otherwise ``cfg.layers`` (default: every other layer).
    Heads: with ``cfg.keep_heads = m`` each kept layer keeps its ``m`` most important heads (ascending
    head indices, one list per kept layer); ``None`` when ``keep_heads`` is not set.

    Args:
        cfg: a :class:`~kdistill.config.LayersFromTeacherStudent`.

    Raises:
        KDistillError: ``keep_heads`` larger than the teacher's heads per layer.
    """
    import torch

    from kdistill.compress.importance import compute_importance, importance_batches, layers_by_importance
    from kdistill.students.transformer import default_layers, num_layers

    n_teacher, n_heads = num_layers(teacher.config), teacher.config.num_attention_heads
    if cfg.keep_heads and cfg.keep_heads > n_heads:
        raise KDistillError(f"--keep-heads {cfg.keep_heads}: the teacher has only {n_heads} heads per layer")
    batches = importance_batches(train_ds, tokenizer, n_batches=n_batches, batch_size=batch_size, seed=seed)
    raw = compute_importance(teacher, batches, loss="ce", exponent=None).head_importance
    if cfg.layer_selection == "importance":
        k = len(cfg.layers) if cfg.layers else cfg.num_layers or len(default_layers(n_teacher))
        layers = layers_by_importance(raw, k)
    else:
        layers = list(cfg.layers) if cfg.layers else default_layers(n_teacher)
    if not cfg.keep_heads:
        return layers, None
    heads = [sorted(int(h) for h in torch.argsort(raw[i].float(), descending=True, stable=True)[:cfg.keep_heads])
             for i in layers]
    return layers, heads
