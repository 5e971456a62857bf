"""Candidate students for a deployment budget: what :func:`kdistill.provision.provision` measures and chooses from.

Kinds (all built from the teacher, so every candidate runs on the teacher's tokenizer):

* ``layers`` — ``k`` evenly spaced teacher layers (DistilBERT's initialisation, Sanh et al. 2019), k < teacher layers;
* ``pruned`` — ``k`` teacher layers with each layer's least important heads and/or FFN neurons removed
  (Michel et al. 2019 importance, :mod:`kdistill.compress`; structured pruning to a latency target is CoFi's setting,
  Xia et al. 2022), k up to all the teacher's layers;
* ``spec`` — a fresh, randomly initialised encoder of the teacher's family, ``layers × hidden`` with the teacher's
  head size and a 4 × hidden FFN (the shapes of Turc et al. 2019's miniatures);
* ``bilstm`` — Tang et al. (2019)'s BiLSTM over the teacher's input embeddings (for budgets below every transformer).

Latency depends on the shape, not the weights: :func:`build` makes a model of the candidate's shape (copied or random
weights; pruned ones keep the first heads/neurons). Only the candidates that are trained get their real student:
:func:`student_config` (importance-chosen heads; an FFN-pruned one is pruned by importance and saved first).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from kdistill.errors import KDistillError, ModelError

KINDS = ("layers", "pruned", "spec", "bilstm")
#: Default (head share, FFN share) kept by the ``pruned`` kind, per layer.
PRUNE_SHARES = ((0.5, 1.0), (1.0, 0.5), (0.5, 0.5))
SPEC_WIDTHS = (0.75, 0.5, 0.25)
SPEC_LAYERS = (1, 2, 3, 4, 6, 8, 12)
BILSTM_HIDDEN = (64, 150, 300)


@dataclass
class Candidate:
    """One candidate student and what was measured about it.

    ``shape``: kind-specific sizes (``layers`` copied, ``heads``/``ffn`` kept per layer, ``hidden``, ...).
    ``params`` / ``params_non_embedding``: scalars; ``latency_ms`` / ``p90_ms``: measured (ms) in the chosen runtime;
    ``size_mb``: 1e6 bytes in that runtime; ``short_metric``: the selection-slice metric of its short distillation.
    """

    name: str
    kind: str
    shape: dict[str, Any]
    from_teacher: bool
    params: int | None = None
    params_non_embedding: int | None = None
    latency_ms: float | None = None
    p90_ms: float | None = None
    size_mb: float | None = None
    cached: bool = False
    fits_latency: bool | None = None
    fits_size: bool | None = None
    short_metric: float | None = None
    short_run: str | None = None
    chosen: bool = False
    note: str | None = None

    @property
    def fits(self) -> bool:
        return bool(self.fits_latency) and self.fits_size is not False

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        out["fits"] = self.fits
        return out


@dataclass
class TeacherShape:
    """What enumeration needs of the teacher: layers, hidden size, heads, head size, FFN width."""

    layers: int
    hidden: int
    heads: int
    ffn: int
    model_type: str
    notes: list[str] = field(default_factory=list)

    @property
    def head_dim(self) -> int:
        return max(1, self.hidden // self.heads)


def teacher_shape(teacher) -> TeacherShape:
    """The teacher's sizes (BERT-style config names, DistilBERT's ``dim`` / ``n_heads`` / ``hidden_dim`` too)."""
    from kdistill.students.transformer import num_layers

    cfg = teacher.config
    n = num_layers(cfg)
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "dim")
    heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_heads")
    ffn = getattr(cfg, "intermediate_size", None) or getattr(cfg, "hidden_dim", None) or 4 * hidden
    return TeacherShape(int(n), int(hidden), int(heads), int(ffn), str(cfg.model_type))


def enumerate_candidates(t: TeacherShape, *, kinds: Sequence[str] = KINDS, layer_counts: Sequence[int] | None = None,
                         prune_shares: Sequence[tuple[float, float]] = PRUNE_SHARES,
                         spec_widths: Sequence[float] = SPEC_WIDTHS, spec_layers: Sequence[int] | None = None,
                         bilstm_hidden: Sequence[int] = BILSTM_HIDDEN) -> list[Candidate]:
    """Every candidate of ``kinds`` for a teacher of shape ``t`` (see the module docstring), without duplicates.

    Args:
        layer_counts: depths of ``layers`` / ``pruned`` candidates (default 1 .. teacher layers).
        prune_shares: (share of heads, share of FFN neurons) kept per layer by ``pruned`` candidates.
        spec_widths: hidden size of ``spec`` candidates as shares of the teacher's (rounded to whole heads of the
            teacher's head size; the teacher's own width is left out: copied layers dominate a random model of it).
        spec_layers: depths of ``spec`` candidates (default 1, 2, 3, 4, 6, 8, 12 up to the teacher's).
        bilstm_hidden: LSTM sizes per direction of ``bilstm`` candidates (150: the paper's, single sentence).

    Raises:
        KDistillError: an unknown kind.
    """
    from kdistill.students.transformer import default_layers

    bad = sorted(set(kinds) - set(KINDS))
    if bad:
        raise KDistillError(f"unknown candidate kind(s) {', '.join(bad)}; choose from {', '.join(KINDS)}")
    depths = sorted({int(k) for k in (layer_counts or range(1, t.layers + 1)) if 1 <= int(k) <= t.layers})
    out: list[Candidate] = []
    if "layers" in kinds:
        for k in depths:
            if k < t.layers:
                layers = default_layers(t.layers, k)
                out.append(Candidate(f"layers {k} {tuple(layers)}", "layers",
                                     {"layers": layers, "hidden": t.hidden, "heads": [t.heads] * k, "ffn": [t.ffn] * k},
                                     from_teacher=True))
    if "pruned" in kinds:
        for k in depths:
            layers = default_layers(t.layers, k)
            for hs, fs in prune_shares:
                h = max(1, int(round(t.heads * hs)))
                f = max(1, int(round(t.ffn * fs)))
                if h == t.heads and f == t.ffn:
                    continue
                out.append(Candidate(f"pruned {k}L h{h} ffn{f}", "pruned",
                                     {"layers": layers, "hidden": t.hidden, "heads": [h] * k, "ffn": [f] * k,
                                      "keep_heads": h, "keep_ffn": f}, from_teacher=True))
    if "spec" in kinds:
        d = t.head_dim
        widths = sorted({max(d, int(round(t.hidden * w / d)) * d) for w in spec_widths} - {t.hidden}, reverse=True)
        for k in sorted({int(x) for x in (spec_layers or SPEC_LAYERS) if 1 <= int(x) <= t.layers}):
            for hidden in widths:
                heads = max(1, hidden // d)
                out.append(Candidate(f"spec {k}x{hidden} h{heads}", "spec",
                                     {"num_layers": k, "hidden": hidden, "num_heads": heads, "ffn": 4 * hidden},
                                     from_teacher=False))
    if "bilstm" in kinds:
        for h in sorted(set(int(x) for x in bilstm_hidden)):
            out.append(Candidate(f"bilstm {h}", "bilstm", {"bilstm_hidden": h}, from_teacher=False))
    seen, unique = set(), []
    for c in out:
        if c.name not in seen:
            seen.add(c.name)
            unique.append(c)
    return unique


def build(c: Candidate, teacher, task, tokenizer, *, seed: int = 0):
    """A model of ``c``'s shape for timing (copied teacher weights, or random; pruned: the first heads/neurons kept).

    Raises:
        ModelError: the teacher's architecture does not support this kind (e.g. no layer copying / pruning).
    """
    from kdistill.students.transformer import from_spec, layers_from_teacher

    if c.kind == "layers":
        return layers_from_teacher(teacher, c.shape["layers"])
    if c.kind == "pruned":
        from kdistill.compress.prune import prune_ffn, prune_heads

        net = layers_from_teacher(teacher, c.shape["layers"])
        n_heads, n_ffn = teacher_shape(teacher).heads, teacher_shape(teacher).ffn
        k = len(c.shape["layers"])
        if c.shape["keep_heads"] < n_heads:
            net = prune_heads(net, {i: list(range(c.shape["keep_heads"], n_heads)) for i in range(k)})
        if c.shape["keep_ffn"] < n_ffn:
            net = prune_ffn(net, {i: list(range(c.shape["keep_ffn"], n_ffn)) for i in range(k)})
        return net
    if c.kind == "spec":
        return from_spec(teacher.config, num_layers=c.shape["num_layers"], hidden_size=c.shape["hidden"],
                         num_heads=c.shape["num_heads"], intermediate_size=c.shape["ffn"], seed=seed)
    if c.kind == "bilstm":
        from kdistill.config import BiLSTMStudent
        from kdistill.students.bilstm.build import build_bilstm_student

        return build_bilstm_student(BiLSTMStudent(bilstm_hidden=c.shape["bilstm_hidden"]), teacher, task, tokenizer,
                                    seed=seed)
    raise ModelError(f"unknown candidate kind '{c.kind}'")


def student_config(c: Candidate, *, teacher=None, tokenizer=None, train_ds=None, workdir: str | Path | None = None,
                   seed: int = 42):
    """The :data:`~kdistill.config.StudentConfig` that trains candidate ``c``.

    ``layers``: :class:`~kdistill.config.LayersFromTeacherStudent` of its layers; ``pruned`` with all FFN neurons:
    the same with ``keep_heads`` (heads chosen by the teacher's head importance when the run starts);
    ``pruned`` with fewer FFN neurons: the copied layers are pruned by importance here (:func:`materialize_pruned`,
    needs ``teacher``, ``tokenizer``, the tokenised ``train_ds`` and ``workdir``) and become a
    :class:`~kdistill.config.PretrainedStudent`; ``spec`` / ``bilstm``: their configs.
    """
    from kdistill.config import BiLSTMStudent, LayersFromTeacherStudent, PretrainedStudent, SpecStudent

    s = c.shape
    if c.kind == "layers":
        return LayersFromTeacherStudent(layers=list(s["layers"]))
    if c.kind == "pruned":
        full_ffn = teacher is None or s["keep_ffn"] >= teacher_shape(teacher).ffn
        if full_ffn:
            return LayersFromTeacherStudent(layers=list(s["layers"]), keep_heads=int(s["keep_heads"]))
        if teacher is None or train_ds is None or workdir is None:
            raise KDistillError("an FFN-pruned candidate needs the teacher, the tokenised train split and a folder")
        path = materialize_pruned(teacher, tokenizer, train_ds, s["layers"], int(s["keep_heads"]), int(s["keep_ffn"]),
                                  Path(workdir), seed=seed)
        return PretrainedStudent(path=str(path))
    if c.kind == "spec":
        return SpecStudent(num_layers=s["num_layers"], hidden_size=s["hidden"], num_heads=s["num_heads"],
                           intermediate_size=s["ffn"])
    return BiLSTMStudent(bilstm_hidden=s["bilstm_hidden"])


def materialize_pruned(teacher, tokenizer, train_ds, layers: Sequence[int], keep_heads: int, keep_ffn: int, out: Path,
                       *, seed: int = 42, n_batches: int = 16, batch_size: int = 32) -> Path:
    """Copy teacher ``layers`` and keep, in each, its ``keep_heads`` heads and ``keep_ffn`` FFN neurons of largest
    importance (``E|∂L/∂ξ|`` on gold-label cross-entropy over ``n_batches`` seeded train batches; Michel et al. 2019),
    saved with the tokenizer in ``out`` (a ``kdistill-compressed-*`` model). Reused when ``out`` already holds one."""
    import json

    import torch

    from kdistill.compress.importance import compute_importance, importance_batches
    from kdistill.compress.prune import prune_ffn, prune_heads
    from kdistill.students.transformer import layers_from_teacher

    marker = out / "provision_pruned.json"
    record = {"layers": list(layers), "keep_heads": keep_heads, "keep_ffn": keep_ffn, "seed": seed}
    if marker.exists() and json.loads(marker.read_text()) == record:
        return out
    net = layers_from_teacher(teacher, list(layers))
    batches = importance_batches(train_ds, tokenizer, n_batches=n_batches, batch_size=batch_size, seed=seed)
    imp = compute_importance(net, batches, loss="ce", exponent=None)

    def lowest(scores: torch.Tensor, total: int, keep: int) -> dict[int, list[int]]:
        return {i: sorted(int(j) for j in torch.argsort(scores[i, :total].float(), stable=True)[: total - keep])
                for i in range(scores.shape[0])}

    t = teacher_shape(teacher)
    if keep_heads < t.heads:
        net = prune_heads(net, lowest(imp.head_importance, t.heads, keep_heads))
    if keep_ffn < t.ffn:
        net = prune_ffn(net, lowest(imp.ffn_importance, t.ffn, keep_ffn))
    out.mkdir(parents=True, exist_ok=True)
    net.save_pretrained(out)
    tokenizer.save_pretrained(out)
    marker.write_text(json.dumps(record) + "\n")
    return out
