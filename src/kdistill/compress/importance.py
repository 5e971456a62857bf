"""Head and FFN-neuron importance scores (Michel, Levy & Neubig 2019, "Are Sixteen Heads Really Better than One?").

Each attention head's output is multiplied by a gate ξ_h (Eq. 1: ``MHAtt(x) = Σ_h ξ_h Att_h(x)``)
and each FFN neuron's activation by a gate ξ_j, all equal to 1. The importance of a unit is the
expected absolute sensitivity of the loss to its gate (Eq. 2)::

    I_h = E_x | ∂L(x) / ∂ξ_h |

estimated, as in the authors' code, by the mean over batches of ``|∂L_batch/∂ξ_h|`` where
``L_batch`` is the batch-mean loss. Scores are then normalised per layer by their L2 norm
(Sec. 4.2; the exponent is configurable).

The gates are forward pre-hooks on existing modules — no modeling code is forked: the input of
the attention output projection (``attention.output.dense``; DistilBERT ``attention.out_lin``),
``[B, L, heads·d]``, is viewed as ``[B, L, heads, d]`` and scaled per head; the input of the FFN
output projection (``output.dense``; ``ffn.lin2``), ``[B, L, I]``, is scaled per neuron.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedModel

from kdistill.data.batching import model_logits
from kdistill.deploy.graph import is_qa_model
from kdistill.compress.modeling import encoder_layers, ffn_per_layer, head_dim, heads_per_layer, parts_for
from kdistill.errors import KDistillError, ModelError
from kdistill.losses import hard_label_ce, regression_mse, soft_target_kl

LOSSES = ("ce", "kl")


# --------------------------------------------------------------------------- gates


def _head_gate_hook(gate: torch.Tensor, head_size: int):
    def hook(module: nn.Module, args: tuple):
        x = args[0]  # [B, L, heads*d]
        scaled = (x.unflatten(-1, (-1, head_size)) * gate.to(x.dtype)[:, None]).flatten(-2)
        return (scaled, *args[1:])

    return hook


def _neuron_gate_hook(gate: torch.Tensor):
    def hook(module: nn.Module, args: tuple):
        return (args[0] * gate.to(args[0].dtype), *args[1:])  # [B, L, I] * [I]

    return hook


@contextmanager
def gated(model: PreTrainedModel, head_gates: Sequence[torch.Tensor | None] | None = None,
          ffn_gates: Sequence[torch.Tensor | None] | None = None) -> Iterator[PreTrainedModel]:
    """Within the ``with`` block, multiply each head's output / each FFN neuron's activation by a gate.

    Args:
        model: a task model of a supported family.
        head_gates: one ``[heads_l]`` tensor (or None) per layer: ξ_h of Michel et al. (2019, Eq. 1).
            ``0`` masks a head; a tensor with ``requires_grad`` gives ``∂L/∂ξ_h``.
        ffn_gates: one ``[intermediate_l]`` tensor (or None) per layer, on the FFN activations.

    Yields:
        ``model`` (hooks are removed on exit, also on error).

    Raises:
        ModelError: a gate list whose length or gate sizes do not match the model.
    """
    parts, d = parts_for(model.config), head_dim(model)
    layers = encoder_layers(model)
    _check_gates(head_gates, heads_per_layer(model), "head")
    _check_gates(ffn_gates, ffn_per_layer(model), "FFN")
    handles = []
    try:
        for i, layer in enumerate(layers):
            if head_gates is not None and head_gates[i] is not None:
                hook = _head_gate_hook(head_gates[i], d)
                handles.append(layer.get_submodule(parts.attn_out).register_forward_pre_hook(hook))
            if ffn_gates is not None and ffn_gates[i] is not None:
                hook = _neuron_gate_hook(ffn_gates[i])
                handles.append(layer.get_submodule(parts.ffn_out).register_forward_pre_hook(hook))
        yield model
    finally:
        for h in handles:
            h.remove()


def _check_gates(gates, sizes: list[int], what: str) -> None:
    if gates is None:
        return
    if len(gates) != len(sizes):
        raise ModelError(f"got {len(gates)} {what} gate tensors for a model with {len(sizes)} layers; pass one per layer")
    for i, (g, n) in enumerate(zip(gates, sizes)):
        if g is not None and tuple(g.shape) != (n,):
            raise ModelError(f"{what} gate of layer {i} has shape {tuple(g.shape)}, the layer has {n} units")


def ones_gates(sizes: Sequence[int], *, device=None, requires_grad: bool = False) -> list[torch.Tensor]:
    """One float32 gate tensor of ones per layer, ``[sizes[l]]`` each (leaf tensors if ``requires_grad``)."""
    return [torch.ones(n, device=device, requires_grad=requires_grad) for n in sizes]


# --------------------------------------------------------------------------- loss


def forward_inputs(model: nn.Module, batch: dict) -> dict:
    """The entries of a tokenised ``batch`` that ``model.forward`` accepts (``labels`` and ``idx`` dropped), on its device."""
    from kdistill.data.batching import forward_keys, model_inputs

    device = next(model.parameters()).device
    return {k: v.to(device) for k, v in model_inputs(batch, forward_keys(model)).items()}


def batch_loss(logits: torch.Tensor, batch: dict, *, loss: str = "ce", teacher_logits: torch.Tensor | None = None,
               temperature: float = 1.0, qa: bool = False) -> torch.Tensor:
    """The loss L of Michel et al. (2019) for one batch: scalar, mean over the batch.

    Args:
        logits: ``[B, C]`` model logits (``[B, 1]`` for regression); token classification ``[B, T, C]``, scored at
            the labelled positions (``labels`` != -100; without labels, the real tokens).
        batch: holds ``labels`` ``[B]`` for ``loss="ce"``.
        loss: ``"ce"``: cross-entropy with the gold labels (MSE for a 1-output regression head);
            ``"kl"``: label-free ``T²·KL(softmax(z_t/T) ‖ softmax(z/T))`` to the teacher (Hinton et al.
            2015), or MSE to its prediction for regression. Computed by :mod:`kdistill.losses` (float64
            logits stay float64, e.g. for finite-difference checks; lower precisions run in float32).
        teacher_logits: ``[B, C]`` for ``loss="kl"``.
        qa: question answering: ``logits`` ``[B, T, 2]`` (start, end), ``labels`` ``[B, 2]`` the gold span;
            :func:`kdistill.losses.qa.span_ce` / :func:`~kdistill.losses.qa.span_soft_kl`.

    Raises:
        KDistillError: an unknown loss, missing labels or missing teacher logits, or shapes that do not
            fit (labels not ``[B]``, teacher logits not the model's shape).
    """
    if loss not in LOSSES:
        raise KDistillError(f"importance loss must be one of {', '.join(LOSSES)}, got '{loss}'")
    z = logits if logits.dtype == torch.float64 else logits.float()  # float64 kept (finite-difference checks)
    if qa:  # start/end logits [B, T, 2]: the span CE / T²·KL over each window's real tokens (kdistill.losses.qa)
        from kdistill.losses.qa import span_ce, span_soft_kl

        mask = batch["attention_mask"].to(z.device)
        if loss == "ce":
            return span_ce(z, batch["labels"].to(z.device), mask)
        if teacher_logits is None:
            raise KDistillError("importance with loss='kl' needs a teacher; pass teacher=<model>")
        return span_soft_kl(z, teacher_logits.detach().to(device=z.device, dtype=z.dtype), temperature, mask)
    if z.dim() == 3:  # token classification: the labelled positions (each word's first sub-token), [M, C]
        keep = (batch["labels"] != -100) if "labels" in batch else batch["attention_mask"].bool()
        keep = keep.to(z.device)
        z = z[keep]
        if teacher_logits is not None:
            teacher_logits = teacher_logits.to(z.device)[keep]
        if "labels" in batch:
            batch = {**batch, "labels": batch["labels"].to(z.device)[keep]}
    regression = z.shape[-1] == 1
    if loss == "ce":
        if "labels" not in batch:
            raise KDistillError("importance with loss='ce' needs batches with 'labels'; use loss='kl' with a teacher for unlabelled data")
        labels = batch["labels"].to(z.device)
        return regression_mse(z, labels.to(z.dtype)) if regression else hard_label_ce(z, labels)
    if teacher_logits is None:
        raise KDistillError("importance with loss='kl' needs a teacher; pass teacher=<model>")
    if temperature <= 0:
        raise KDistillError(f"temperature must be > 0, got {temperature}")
    t_logits = teacher_logits.detach().to(device=z.device, dtype=z.dtype)
    if t_logits.shape != z.shape:
        raise KDistillError(f"teacher logits {tuple(t_logits.shape)} and model logits {tuple(z.shape)} differ; use a teacher of the same task")
    if regression:
        return regression_mse(z, t_logits)
    return soft_target_kl(z, t_logits, temperature)  # float64 logits stay float64


def gated_loss(model: PreTrainedModel, batch: dict, head_gates=None, ffn_gates=None, *, loss: str = "ce",
               teacher_logits: torch.Tensor | None = None, temperature: float = 1.0) -> torch.Tensor:
    """Scalar loss of ``model`` on ``batch`` with the given gates (see :func:`gated`, :func:`batch_loss`)."""
    with gated(model, head_gates, ffn_gates):
        logits = model_logits(model(**forward_inputs(model, batch)))
    return batch_loss(logits, batch, loss=loss, teacher_logits=teacher_logits, temperature=temperature,
                      qa=is_qa_model(model))


# --------------------------------------------------------------------------- scores


def normalize_per_layer(scores: torch.Tensor, exponent: float | None = 2.0) -> torch.Tensor:
    """Divide each row (layer) of ``scores`` ``[n_layers, n]`` by its ``exponent``-norm (Michel et al. 2019, Sec. 4.2: L2).

    NaN entries (pruned units) are ignored and stay NaN; ``exponent=None`` returns a copy unchanged.
    """
    if exponent is None:
        return scores.clone()
    if exponent <= 0:
        raise KDistillError(f"normalisation exponent must be > 0 (2 = L2, as Michel et al. 2019), got {exponent}")
    valid = torch.nan_to_num(scores.abs(), nan=0.0)
    norm = valid.pow(exponent).sum(dim=1, keepdim=True).pow(1.0 / exponent)
    return scores / norm.clamp_min(1e-20)


def _pad(rows: list[torch.Tensor]) -> torch.Tensor:
    """Stack 1-D rows of different lengths into ``[len(rows), max_len]``, NaN-padded."""
    out = torch.full((len(rows), max(len(r) for r in rows)), math.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


@dataclass
class Importance:
    """Per-head and per-FFN-neuron importance (Michel et al. 2019, Eq. 2), normalised per layer.

    Attributes:
        head_importance: ``[n_layers, max_heads]``; NaN where a layer has fewer heads (after pruning).
        ffn_importance: ``[n_layers, max_intermediate]``; NaN-padded likewise.
        loss: ``"ce"`` (gold labels) or ``"kl"`` (to a teacher).
        num_batches: batches averaged over.
        exponent: per-layer normalisation exponent (None: raw mean ``|∂L/∂ξ|``).
        meta: free-form JSON-able notes saved with the scores (e.g. model path, task).
    """

    head_importance: torch.Tensor
    ffn_importance: torch.Tensor
    loss: str = "ce"
    num_batches: int = 0
    exponent: float | None = 2.0
    meta: dict = field(default_factory=dict)

    def save(self, directory: str | Path) -> Path:
        """Write ``importance.safetensors`` (both tensors) and ``importance.json`` (metadata + head scores, NaN → null) to ``directory``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({"head_importance": self.head_importance.contiguous(), "ffn_importance": self.ffn_importance.contiguous()},
                  str(directory / "importance.safetensors"))
        heads = [[None if math.isnan(v) else v for v in row] for row in self.head_importance.tolist()]
        info = {"loss": self.loss, "num_batches": self.num_batches, "exponent": self.exponent, "meta": self.meta,
                "head_importance": heads, "source": "Michel et al. 2019, Eq. 2: I_h = E|dL/dxi_h|, normalised per layer"}
        from kdistill.results import to_json  # strict JSON: no NaN

        (directory / "importance.json").write_text(to_json(info, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Importance:
        """Read what :meth:`save` wrote.

        Raises:
            KDistillError: if the files are missing.
        """
        from safetensors.torch import load_file

        directory = Path(directory)
        if not (directory / "importance.safetensors").is_file():
            raise KDistillError(f"'{directory}' holds no importance.safetensors; compute scores with compute_importance first")
        t = load_file(str(directory / "importance.safetensors"))
        info = json.loads((directory / "importance.json").read_text())
        return cls(t["head_importance"], t["ffn_importance"], info["loss"], info["num_batches"], info["exponent"], info.get("meta", {}))

    def plot(self, path: str | Path, title: str | None = None) -> Path:
        """Save a layer × head heat map of :attr:`head_importance` to the PNG ``path`` (pruned heads blank)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        scores = self.head_importance.numpy()
        n_layers, n_heads = scores.shape
        fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n_heads, 1.0 + 0.45 * n_layers))
        image = ax.imshow(scores, cmap="viridis", aspect="auto")
        if n_layers * n_heads <= 400:
            for i in range(n_layers):
                for j in range(n_heads):
                    if not math.isnan(scores[i, j]):
                        ax.text(j, i, f"{scores[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w")
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_xticks(range(n_heads))
        ax.set_yticks(range(n_layers))
        ax.set_title(title or f"head importance (loss={self.loss}, {self.num_batches} batches)")
        fig.colorbar(image, ax=ax)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def compute_importance(model: PreTrainedModel, batches: Iterable[dict], *, loss: str = "ce",
                       teacher: PreTrainedModel | None = None, num_batches: int | None = None,
                       temperature: float = 1.0, exponent: float | None = 2.0) -> Importance:
    """Head and FFN-neuron importance ``I = E|∂L/∂ξ|`` (Michel et al. 2019, Eq. 2), normalised per layer.

    The model runs in eval mode (no dropout) and its weights get no gradient; train/eval mode is
    restored afterwards.

    Args:
        model: a task model of a supported family.
        batches: e.g. a ``DataLoader`` of tokenised dicts (``input_ids`` ``[B, L]``,
            ``attention_mask`` ``[B, L]``, optional ``token_type_ids``, ``labels`` ``[B]`` for ``loss="ce"``).
        loss: ``"ce"`` (gold labels) or ``"kl"`` (label-free, to ``teacher``'s logits at ``temperature``).
            ``"kl"`` with a ``teacher`` identical to ``model`` has zero gradient, so it falls back to
            ``"ce"`` (gold labels, else the model's own predictions) and says so in ``meta["note"]``.
        teacher: the teacher for ``loss="kl"`` (same tokenizer as ``model``).
        num_batches: use at most this many batches (default: all).
        exponent: per-layer normalisation exponent (2 = L2, as the paper; None = raw scores).

    Returns:
        :class:`Importance` with ``head_importance`` ``[n_layers, max_heads]`` and ``ffn_importance``
        ``[n_layers, max_intermediate]`` (float32, CPU).

    Raises:
        KDistillError: unknown loss, no batches, missing labels / teacher.
    """
    if loss not in LOSSES:
        raise KDistillError(f"importance loss must be one of {', '.join(LOSSES)}, got '{loss}'")
    if loss == "kl" and teacher is None:
        raise KDistillError("importance with loss='kl' needs a teacher; pass teacher=<model>")
    note = None
    if loss == "kl" and _same_weights(model, teacher):
        # KL(teacher ‖ model) sits at its minimum when model == teacher: every gradient is 0 and the
        # scores would be rounding noise. Score with cross-entropy instead (gold labels, or the
        # teacher's own predictions where a batch has none): Michel et al.'s loss.
        loss, note = "ce", "loss='kl' against an identical teacher has zero gradient; scored with cross-entropy"
    device = next(model.parameters()).device
    heads = ones_gates(heads_per_layer(model), device=device, requires_grad=True)
    ffn = ones_gates(ffn_per_layer(model), device=device, requires_grad=True)
    head_sum = [torch.zeros_like(g) for g in heads]
    ffn_sum = [torch.zeros_like(g) for g in ffn]
    was_training, n = model.training, 0
    model.eval()
    try:
        for batch in batches:
            if num_batches is not None and n >= num_batches:
                break
            teacher_logits = None
            if loss == "kl":
                with torch.no_grad():
                    teacher.eval()
                    teacher_logits = model_logits(teacher(**forward_inputs(teacher, batch)))
            elif note and "labels" not in batch and not is_qa_model(model):  # label-free data: the teacher's (= model's) own predictions
                with torch.no_grad():
                    batch = dict(batch, labels=model(**forward_inputs(model, batch)).logits.argmax(-1))
            value = gated_loss(model, batch, heads, ffn, loss=loss, teacher_logits=teacher_logits, temperature=temperature)
            grads = torch.autograd.grad(value, [*heads, *ffn])
            for acc, g in zip([*head_sum, *ffn_sum], grads):
                acc += g.detach().abs()
            n += 1
    finally:
        model.train(was_training)
    if n == 0:
        raise KDistillError("importance needs at least one batch; pass a non-empty DataLoader and num_batches >= 1")
    head_scores = _pad([s.float().cpu() / n for s in head_sum])
    ffn_scores = _pad([s.float().cpu() / n for s in ffn_sum])
    return Importance(normalize_per_layer(head_scores, exponent), normalize_per_layer(ffn_scores, exponent),
                      loss=loss, num_batches=n, exponent=exponent, meta={"note": note} if note else {})


def _same_weights(model: nn.Module, teacher: nn.Module | None) -> bool:
    """True when ``model`` is ``teacher`` or holds exactly the same parameters (e.g. round 1 of a schedule)."""
    if teacher is None or model is teacher:
        return model is teacher
    a, b = model.state_dict(), teacher.state_dict()
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------- choosing by importance


def layers_by_importance(head_importance_raw: torch.Tensor, keep: int) -> list[int]:
    """The ``keep`` most important layers (0-based, ascending), by summed raw head importance.

    Used both to drop layers in a pruning round and to choose the layers a
    ``layers-from-teacher`` student copies (``--layers importance``).

    Args:
        head_importance_raw: ``[n_layers, max_heads]`` *un-normalised* scores (NaN = pruned head).
        keep: number of layers to keep, ``1 <= keep <= n_layers``.

    Raises:
        KDistillError: ``keep`` out of range.
    """
    n = head_importance_raw.shape[0]
    if not 1 <= keep <= n:
        raise KDistillError(f"cannot keep {keep} of {n} layers")
    per_layer = torch.nan_to_num(head_importance_raw.float(), nan=0.0).sum(dim=1)
    order = torch.argsort(per_layer, descending=True, stable=True)[:keep]
    return sorted(int(i) for i in order)


def importance_batches(train_ds, tokenizer, *, n_batches: int, batch_size: int, seed: int) -> list[dict]:
    """``n_batches`` seeded batches of ``batch_size`` from a tokenised split, for :func:`compute_importance`."""
    from kdistill.data.batching import eval_loader

    n = min(len(train_ds), n_batches * batch_size)
    sample = train_ds.shuffle(seed=seed).select(range(n))
    return list(eval_loader(sample, tokenizer, batch_size=batch_size))
