"""``kdistill provision``: the student chosen to fit a latency (and size) budget *measured on this machine*.

Users state budgets ("under 2 ms on this CPU", "under 25 MB"), not layer counts, and published speedups do not
transfer across hardware (CoFi's 12× became 5× on another GPU; Xia et al. 2022). So:

1. enumerate candidate students (:mod:`kdistill.provision.candidates`: teacher-layer subsets, head/FFN-pruned teacher
   layers, spec shapes over layers × hidden × heads × FFN, BiLSTMs);
2. measure each one's latency in the chosen runtime (``eager`` / ``ort`` / ``ort-int8``) at the chosen batch size on
   this machine (random weights suffice; measurements cached per machine, runtime and shape,
   :mod:`kdistill.provision.latency`), and the teacher's for reference;
3. keep those within ``latency_budget_ms`` (median latency) and ``size_budget_mb``; none → a one-line error naming the
   fastest candidate's latency;
4. rank them: ``capacity`` (weights copied from the teacher first, then more non-embedding parameters, then lower
   latency) or ``short-run`` (the ``top_k`` by capacity — the best of each kind first — each distilled for
   ``short_steps`` steps and scored on the held-out selection slice; never on dev);
5. distil the winner fully (the ``kd`` recipe, the usual report in ``OUT/student``), re-measure the trained student;
6. write ``candidates.{json,csv,md}`` (every candidate: shape, params, latency, in/out of budget, short-run metric),
   ``provision.png`` (all candidates, the budget, the chosen) and ``provision_results.json``.
"""

from __future__ import annotations

import csv
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from kdistill.config import RunConfig
from kdistill.errors import KDistillError
from kdistill.provision.candidates import KINDS, PRUNE_SHARES, Candidate, enumerate_candidates

MARKER = "provision.json"
LOG = logging.getLogger("kdistill")


class ProvisionConfig(BaseModel):
    """A provisioning request (written to ``provision.json``). ``base``: the distillation run every trained candidate
    starts from (its student is replaced); budgets in ms (median latency at ``latency_batch_size``) and MB (1e6 bytes)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    base: RunConfig = Field(description=(
        "The distillation run every trained candidate starts from (the options of kdistill distill, or --config FILE "
        "with the options over it); its student is replaced by the candidate, its output_dir is OUTPUT/student."))
    latency_budget_ms: float = Field(gt=0, description=(
        "Budget in ms: each candidate's median latency at --batch-size in --runtime, measured on this machine."))
    size_budget_mb: float | None = Field(default=None, gt=0, description=(
        "Size budget in MB (1e6 bytes) in that runtime."))
    runtime: Literal["eager", "ort", "ort-int8"] = Field(default="ort-int8", description=(
        "eager (PyTorch fp32) | ort (ONNX Runtime fp32) | ort-int8 (ONNX Runtime dynamic int8)."))
    latency_batch_size: int = Field(default=1, ge=1, description=(
        "Inputs per timed call (the deployment's batch size; the training batch is --train-batch-size)."))
    seq_len: int | None = Field(default=None, ge=2, description=(
        "Tokens of the timed input (default: median length of the full-length train rows)."))
    rank: Literal["capacity", "short-run"] = Field(default="short-run", description=(
        "short-run (distil the --top-k best by capacity for --short-steps, keep the best on the selection slice) | "
        "capacity (teacher weights first, then most parameters)."))
    top_k: int = Field(default=3, ge=1, description=(
        "short-run: candidates distilled briefly (the best of each kind first)."))
    short_steps: int = Field(default=200, ge=1, description="short-run: optimizer steps per short distillation.")
    kinds: list[Literal["layers", "pruned", "spec", "bilstm"]] = Field(default=list(KINDS), description=(
        "Candidate kinds, comma-separated: layers,pruned,spec,bilstm."))
    layer_counts: list[int] | None = Field(default=None, description=(
        "Depths of layers/pruned candidates, e.g. 1,2,3 (default 1..teacher layers)."))
    prune_shares: list[tuple[float, float]] = Field(default=[tuple(p) for p in PRUNE_SHARES], description=(
        "pruned candidates: (share of heads, share of FFN neurons) kept per layer, one candidate per pair and depth."))
    spec_widths: list[float] = Field(default=[0.75, 0.5, 0.25], description=(
        "spec candidates: hidden sizes as shares of the teacher's."))
    spec_layers: list[int] | None = Field(default=None, description=(
        "spec candidates: depths (default 1, 2, 3, 4, 6, 8, 12 up to the teacher's layers)."))
    bilstm_hidden: list[int] = Field(default=[64, 150, 300], description="bilstm candidates: LSTM sizes.")
    latency_runs: int = Field(default=50, ge=1, description="Timed forward passes per candidate (median).")
    warmup: int = Field(default=10, ge=0, description=(
        "Untimed forward passes per candidate before the timed ones (--latency-runs)."))
    cache_file: str | None = Field(default=None, description=(
        "Measurement cache (default $KDISTILL_CACHE/latency_cache.json; keyed by machine, runtime, batch, length, "
        "threads and shape)."))
    distill: bool = Field(default=True, description=(
        "Distil the chosen student fully (OUTPUT/student, with the usual report)."))
    output_dir: str = Field(description="Folder: candidates.{json,csv,md}, provision.png, short/, student/.")


@dataclass
class ProvisionResult:
    """What :func:`provision` returns: the chosen candidate, every candidate (rows), the teacher's latency (ms) in the
    runtime, the final run (``RunResult``; its metrics are dev, its report the usual one) and the files written."""

    output_dir: Path
    chosen: dict[str, Any]
    candidates: list[dict[str, Any]]
    teacher_latency_ms: float
    final: Any = None
    trained_latency_ms: float | None = None
    files: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def capacity_key(c: Candidate):
    """Ranking by capacity: weights copied from the teacher first (a copied initialisation beats a random one of
    similar size; Sanh et al. 2019, Turc et al. 2019), then more non-embedding parameters, then lower latency."""
    return (1 if c.from_teacher else 0, c.params_non_embedding or 0, -(c.latency_ms or 0.0))


def shortlist(fitting: Sequence[Candidate], k: int) -> list[Candidate]:
    """The ``k`` candidates to distil briefly: the best (by :func:`capacity_key`) of each kind, best kinds first,
    then the next best overall."""
    ranked = sorted(fitting, key=capacity_key, reverse=True)
    picks: list[Candidate] = []
    for c in ranked:
        if len(picks) < k and c.kind not in {p.kind for p in picks}:
            picks.append(c)
    for c in ranked:
        if len(picks) < k and c not in picks:
            picks.append(c)
    return sorted(picks, key=capacity_key, reverse=True)


def _prepare(out: Path, pcfg: ProvisionConfig, *, overwrite: bool, resume: bool, dry: bool = False) -> None:
    """Check the folder (``dry``: only check), then clear it (``overwrite``) and write ``provision.json``."""
    from kdistill.recipes.base import run_inputs
    from kdistill.locks import LOCK_FILE, refuse_if_in_use

    marker = out / MARKER
    if out.exists() and not out.is_dir():
        raise KDistillError(f"output path '{out}' is a file; pass a directory")
    busy = out.exists() and any(p.name != LOCK_FILE for p in out.iterdir())
    if busy:
        refuse_if_in_use(out)
    if busy and not resume:
        if not overwrite:
            raise KDistillError(f"output directory '{out}' is not empty; pass --overwrite to replace it or --resume to "
                                "continue")
        if not marker.exists():
            raise KDistillError(f"--overwrite: '{out}' was not made by kdistill provision (no {MARKER}); choose another "
                                "--output")
        root = out.resolve()
        for item in run_inputs(pcfg.base):
            p = Path(item).expanduser()
            if p.exists() and (p.resolve() == root or root in p.resolve().parents):
                raise KDistillError(f"--overwrite: '{out}' holds '{item}', an input; choose another --output")
        if dry:
            return
        for p in out.iterdir():
            if p.name != LOCK_FILE:
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    if resume and busy and not marker.exists():
        raise KDistillError(f"--resume: '{out}' holds no provisioning ({MARKER}); run without --resume")
    if dry:
        return
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(pcfg.model_dump_json(indent=1) + "\n")


def _measure_candidates(cands, teacher, task, tokenizer, texts, pcfg: ProvisionConfig, kw: dict, on_candidate) -> None:
    """Build each candidate (random weights suffice for latency), count its parameters, measure it with ``kw`` and
    mark whether it fits the budget(s); a kind this teacher cannot build or measure is noted and left out."""
    from kdistill.provision.candidates import build
    from kdistill.provision.latency import measure
    from kdistill.reporting.measure import count_parameters

    base = pcfg.base
    for c in cands:
        try:
            net = build(c, teacher, task, tokenizer, seed=base.train.seed)
        except KDistillError as err:  # this teacher's architecture does not support the kind
            c.note = f"not built: {err}"
            c.fits_latency = False
            continue
        c.params, c.params_non_embedding = count_parameters(net)
        try:
            m = measure(net, tokenizer, texts, **kw)
        except KDistillError as err:
            c.note = f"not measured: {err}"
            c.fits_latency = False
            continue
        finally:
            del net
        c.latency_ms, c.p90_ms, c.size_mb, c.cached = m.latency_ms, m.p90_ms, m.size_mb, m.cached
        c.fits_latency = m.latency_ms <= pcfg.latency_budget_ms
        if pcfg.size_budget_mb is not None:
            c.fits_size = m.size_mb is not None and m.size_mb <= pcfg.size_budget_mb
        if on_candidate is not None:
            on_candidate(c)


def _no_fit(cands, pcfg: ProvisionConfig, seq_len: int, teacher_ms: float) -> KDistillError:
    """The one-line error when no candidate fits: it names the fastest (and, with a size budget, the smallest)."""
    measured = [c for c in cands if c.latency_ms is not None]
    if not measured:
        return KDistillError("no candidate student could be built for this teacher; see candidates.md")
    fastest = min(measured, key=lambda c: c.latency_ms)
    size = "" if pcfg.size_budget_mb is None else f" and --size-budget {pcfg.size_budget_mb:g} MB"
    smallest = "" if pcfg.size_budget_mb is None else (
        f"; the smallest, {min(measured, key=lambda c: c.size_mb or 1e18).name}, is "
        f"{min(c.size_mb or 1e18 for c in measured):.2f} MB")
    return KDistillError(f"no candidate student fits --latency-budget {pcfg.latency_budget_ms:g} ms{size} "
                         f"({pcfg.runtime}, batch {pcfg.latency_batch_size}, {seq_len} tokens, on this machine): the "
                         f"fastest, {fastest.name}, measures {fastest.latency_ms:.3f} ms{smallest} (the teacher "
                         f"{teacher_ms:.3f} ms); raise the budget")


def run_provision(pcfg: ProvisionConfig, *, overwrite: bool = False, resume: bool = False,
                  on_candidate: Callable[[Candidate], None] | None = None, callbacks: Sequence[Callable] = (),
                  report_latency_runs: int = 100) -> ProvisionResult:
    """Provision a student for ``pcfg`` (see the module docstring).

    Args:
        on_candidate: called with each candidate once it is measured (and again after its short run).
        callbacks: engine callbacks for the short runs and the final run.
        report_latency_runs: timed batch-1 runs per model in the final report.

    Raises:
        KDistillError: no candidate within the budget(s) (one line naming the fastest candidate's latency), a runtime
            that is not installed, bad data / teacher (one line).
    """
    from kdistill.data.loading import load_data
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.provision.candidates import teacher_shape
    from kdistill.provision.latency import (LatencyCache, check_runtime, default_cache_file, length_texts, measure,
                                            seq_len_for)
    from kdistill.reporting.measure import count_parameters
    from kdistill.rundir import RunDir
    from kdistill.search.trial import check_scorable

    base = pcfg.base
    check_runtime(pcfg.runtime)
    if base.method.name != "kd":
        raise KDistillError(f"provision distils with --method kd; got '{base.method.name}'")
    if not base.teacher:
        raise KDistillError("provision needs --teacher (a model fine-tuned on the task)")
    if pcfg.rank == "short-run":
        check_scorable(base)
    out = Path(pcfg.output_dir)
    _prepare(out, pcfg, overwrite=overwrite, resume=resume, dry=True)  # bad input: nothing is touched
    with RunDir(out).lock():
        _prepare(out, pcfg, overwrite=overwrite, resume=resume)
        splits, task = load_data(base.data)
        teacher = load_classifier(base.teacher, task, require_trained_head=True, what="teacher")
        tokenizer = load_tokenizer(base.teacher)
        texts = length_texts(splits)
        seq_len = pcfg.seq_len or seq_len_for(tokenizer, texts)
        cache = LatencyCache(pcfg.cache_file or default_cache_file())
        kw = dict(runtime=pcfg.runtime, batch_size=pcfg.latency_batch_size, seq_len=seq_len, n_runs=pcfg.latency_runs,
                  warmup=pcfg.warmup, cache=cache)
        t_meas = measure(teacher, tokenizer, texts, **kw)
        tshape = teacher_shape(teacher)
        cands = enumerate_candidates(tshape, kinds=pcfg.kinds, layer_counts=pcfg.layer_counts,
                                     prune_shares=[tuple(p) for p in pcfg.prune_shares], spec_widths=pcfg.spec_widths,
                                     spec_layers=pcfg.spec_layers, bilstm_hidden=pcfg.bilstm_hidden)
        _measure_candidates(cands, teacher, task, tokenizer, texts, pcfg, kw, on_candidate)
        meta = {"output_dir": str(out), "runtime": pcfg.runtime, "batch_size": pcfg.latency_batch_size, "seq_len": seq_len,
                "threads": t_meas.threads, "latency_budget_ms": pcfg.latency_budget_ms,
                "size_budget_mb": pcfg.size_budget_mb, "machine": cache.machine["description"],
                "teacher": {"path": base.teacher, "latency_ms": t_meas.latency_ms, "p90_ms": t_meas.p90_ms,
                            "size_mb": t_meas.size_mb, "params": count_parameters(teacher)[0]},
                "rank": pcfg.rank, "latency_rule": "median of the timed runs <= budget"}
        files = write_candidates(cands, out, meta=meta)
        fitting = [c for c in cands if c.fits]
        if not fitting:
            plot_candidates(cands, out / "provision.png", meta=meta)
            raise _no_fit(cands, pcfg, seq_len, t_meas.latency_ms)
        ranked = sorted(fitting, key=capacity_key, reverse=True)
        prepared = _Materializer(teacher, tokenizer, base, splits, out)
        winner = ranked[0]
        if pcfg.rank == "short-run" and len(ranked) > 1:
            winner = _short_run_winner(ranked, pcfg, prepared, task, callbacks, on_candidate)
            if winner is None:  # interrupted: the measured candidates are kept, the run resumes
                files = write_candidates(cands, out, meta=meta)
                return ProvisionResult(out, {}, [x.row() for x in cands], t_meas.latency_ms, files=files,
                                       interrupted=True)
        winner.chosen = True
        meta["chosen"] = winner.name
        files = write_candidates(cands, out, meta=meta)
        png = plot_candidates(cands, out / "provision.png", meta=meta)
        if png is not None:
            files["plot"] = str(png)
        result = ProvisionResult(out, winner.row(), [c.row() for c in cands], t_meas.latency_ms, files=files)
        if pcfg.distill:
            from kdistill.recipes.base import run_recipe
            from kdistill.search.trial import prepare_run_dir, with_updates

            fdir = out / "student"
            final_cfg = with_updates(base, student=prepared(winner), output_dir=str(fdir),
                                     train={"teacher_cache_file": _cache_file(base, out)})
            (out / "student_config.json").write_text(
                with_updates(final_cfg, overwrite=False, resume=False).model_dump_json(indent=1) + "\n")
            files["student_config"] = str(out / "student_config.json")
            final = run_recipe(prepare_run_dir(final_cfg, fdir), callbacks=callbacks, report=True,
                               latency_runs=report_latency_runs)
            result.final, result.interrupted = final, final.interrupted
            if not final.interrupted:
                from kdistill.provision.latency import measure_dir

                again = measure_dir(fdir, task, texts, **{**kw, "cache": None})
                result.trained_latency_ms = again.latency_ms
                files.update({f"student_{k}": v for k, v in final.files.items()})
        summary = {**meta, "chosen": winner.row(), "trained_latency_ms": result.trained_latency_ms,
                   "trained_within_budget": None if result.trained_latency_ms is None
                   else result.trained_latency_ms <= pcfg.latency_budget_ms,
                   "final": None if result.final is None else {
                       "output_dir": str(result.final.output_dir), "dev_metrics": result.final.metrics,
                       "retention": (result.final.report or {}).get("retention"),
                       "interrupted": result.final.interrupted},
                   "candidates": len(cands), "fitting": len(fitting), "files": files}
        from kdistill.results import to_json  # strict JSON: no NaN

        (out / "provision_results.json").write_text(to_json(summary, indent=1, default=str) + "\n")
        files["provision_results"] = str(out / "provision_results.json")
        return result


def _short_run_winner(ranked: list[Candidate], pcfg: ProvisionConfig, prepared, task, callbacks,
                      on_candidate) -> Candidate | None:
    """``--rank short-run``: distil each of the ``pcfg.top_k`` shortlisted candidates for ``pcfg.short_steps``
    steps (one shared teacher-logit cache) and return the one with the best held-out metric (ties: the larger
    capacity); None when a short run was interrupted."""
    from kdistill.search.trial import prepare_run_dir, run_scored, with_updates

    base, out = pcfg.base, Path(pcfg.output_dir)
    picks = shortlist(ranked, pcfg.top_k)
    for c in picks:
        sdir = out / "short" / _slug(c.name)
        cfg = with_updates(base, student=prepared(c), output_dir=str(sdir),
                           train={"max_steps": pcfg.short_steps, "show_progress": False,
                                  "teacher_cache_file": _cache_file(base, out)})
        res, metrics = run_scored(prepare_run_dir(cfg, sdir), callbacks=callbacks)
        if res.interrupted:
            return None
        c.short_metric, c.short_run = metrics.get(task.main_metric), str(sdir)
        if on_candidate is not None:
            on_candidate(c)
    return max(picks, key=lambda c: ((c.short_metric if c.short_metric is not None else -1e18), capacity_key(c)))


def _cache_file(base: RunConfig, out: Path) -> str:
    return base.train.teacher_cache_file or str(out.resolve() / "teacher_logits")


class _Materializer:
    """Student configs of candidates, built once (an FFN-pruned candidate is pruned by importance and saved under
    ``OUT/pruned/``)."""

    def __init__(self, teacher, tokenizer, base: RunConfig, splits, out: Path):
        self.teacher, self.tokenizer, self.base, self.splits, self.out = teacher, tokenizer, base, splits, out
        self.done: dict[str, Any] = {}
        self._train = None

    def train_ds(self):
        if self._train is None:
            from kdistill.data.batching import tokenize

            self._train = tokenize(self.splits["train"], self.tokenizer, max_length=self.base.data.max_length,
                                   cache_dir=self.base.data.cache_dir, desc="tokenize train (importance)")
        return self._train

    def __call__(self, c: Candidate):
        from kdistill.provision.candidates import student_config, teacher_shape

        if c.name not in self.done:
            needs = c.kind == "pruned" and c.shape["keep_ffn"] < teacher_shape(self.teacher).ffn
            self.done[c.name] = student_config(c, teacher=self.teacher, tokenizer=self.tokenizer,
                                               train_ds=self.train_ds() if needs else None,
                                               workdir=self.out / "pruned" / _slug(c.name), seed=self.base.train.seed)
        return self.done[c.name]


# --------------------------------------------------------------------------- outputs
COLUMNS = ("name", "kind", "shape", "params", "params_non_embedding", "latency_ms", "p90_ms", "size_mb", "cached",
           "fits_latency", "fits_size", "fits", "short_metric", "chosen", "note")


def _shape_text(c: dict) -> str:
    s = c["shape"]
    if c["kind"] in ("layers", "pruned"):
        return f"{len(s['layers'])}L {tuple(s['layers'])} x{s['hidden']}, heads {s['heads'][0]}, ffn {s['ffn'][0]}"
    if c["kind"] == "spec":
        return f"{s['num_layers']}L x{s['hidden']}, heads {s['num_heads']}, ffn {s['ffn']}"
    return f"bilstm hidden {s['bilstm_hidden']}"


def write_candidates(cands: Sequence[Candidate], out: Path, *, meta: dict) -> dict[str, str]:
    """``candidates.json`` (``meta`` + every candidate), ``candidates.csv`` and ``candidates.md`` (sorted by latency)."""
    rows = [c.row() for c in cands]
    files = {"candidates_json": out / "candidates.json", "candidates_csv": out / "candidates.csv",
             "candidates_md": out / "candidates.md"}
    from kdistill.results import to_json  # strict JSON: no NaN

    files["candidates_json"].write_text(to_json({**meta, "candidates": rows}, indent=1, default=str) + "\n")
    with files["candidates_csv"].open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        w.writeheader()
        for r in rows:
            w.writerow({k: (_shape_text(r) if k == "shape" else ("" if r.get(k) is None else r.get(k))) for k in COLUMNS})
    t = meta["teacher"]
    size = "" if meta.get("size_budget_mb") is None else f", size budget {meta['size_budget_mb']:g} MB"
    md = [f"# kdistill provision: {meta['output_dir']}", "",
          f"Budget {meta['latency_budget_ms']:g} ms{size} — {meta['runtime']}, batch {meta['batch_size']}, "
          f"{meta['seq_len']} tokens, {meta['threads']} threads on {meta['machine']}.", "",
          f"Teacher: {t['latency_ms']:.3f} ms (p90 {t['p90_ms']:.3f}), {t['params']:,} params, "
          f"{(t['size_mb'] or 0):.2f} MB. Latency: {meta['latency_rule']}. Ranking: {meta['rank']}.", "",
          "| candidate | kind | shape | params | non-emb params | latency ms | p90 ms | size MB | in budget | "
          "short-run metric | chosen |", "|---|---|---|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in sorted(rows, key=lambda r: (r["latency_ms"] is None, r["latency_ms"] or 0)):
        def f(v, fmt):
            return "" if v is None else format(v, fmt)

        fits = "yes" if r["fits"] else ("no" if r["latency_ms"] is not None else (r.get("note") or "—"))
        md.append(f"| {r['name']} | {r['kind']} | {_shape_text(r)} | {f(r['params'], ',')} | "
                  f"{f(r['params_non_embedding'], ',')} | {f(r['latency_ms'], '.3f')} | {f(r['p90_ms'], '.3f')} | "
                  f"{f(r['size_mb'], '.2f')} | {fits} | {f(r['short_metric'], '.4f')} | {'★' if r['chosen'] else ''} |")
    files["candidates_md"].write_text("\n".join(md) + "\n")
    return {k: str(v) for k, v in files.items()}


def plot_candidates(cands: Sequence[Candidate], path: Path, *, meta: dict) -> Path | None:
    """``provision.png``: every measured candidate, latency (ms, log) against parameters (log), by kind; in budget
    filled, out hollow; the budget line, the teacher ✕ and the chosen ★ (with short-run metrics annotated)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    pts = [c for c in cands if c.latency_ms is not None and c.params]
    if not pts:
        return None
    colors = {"layers": "tab:blue", "pruned": "tab:orange", "spec": "tab:green", "bilstm": "tab:purple"}
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for kind, color in colors.items():
        group = [c for c in pts if c.kind == kind]
        if not group:
            continue
        ins = [c for c in group if c.fits]
        outs = [c for c in group if not c.fits]
        if ins:
            ax.scatter([c.latency_ms for c in ins], [c.params for c in ins], c=color, label=f"{kind} (in budget)")
        if outs:
            ax.scatter([c.latency_ms for c in outs], [c.params for c in outs], facecolors="none", edgecolors=color,
                       label=f"{kind} (out)")
    for c in pts:
        if c.short_metric is not None:
            ax.annotate(f"{c.short_metric:.3f}", (c.latency_ms, c.params), fontsize=7, xytext=(4, -9),
                        textcoords="offset points")
    t = meta["teacher"]
    ax.scatter([t["latency_ms"]], [t["params"]], marker="x", s=80, c="k", label="teacher")
    ax.axvline(meta["latency_budget_ms"], ls="--", c="red", label=f"budget {meta['latency_budget_ms']:g} ms")
    chosen = next((c for c in pts if c.chosen), None)
    if chosen is not None:
        ax.scatter([chosen.latency_ms], [chosen.params], marker="*", s=320, c="gold", edgecolors="k", zorder=5,
                   label=f"chosen: {chosen.name}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"measured latency, ms ({meta['runtime']}, batch {meta['batch_size']}, {meta['seq_len']} tokens)")
    ax.set_ylabel("parameters")
    ax.set_title(f"kdistill provision: {len(pts)} candidates on this machine", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- the API
def provision(teacher: str | None = None, task: str | None = None, *, output_dir: str | Path, latency_budget_ms: float,
              runtime: str = "ort-int8", size_budget_mb: float | None = None, latency_batch_size: int = 1,
              seq_len: int | None = None, rank: str = "short-run", top_k: int = 3, short_steps: int = 200,
              kinds: Sequence[str] | None = None, layer_counts: Sequence[int] | None = None,
              prune_shares: Sequence[tuple[float, float]] | None = None, spec_widths: Sequence[float] | None = None,
              spec_layers: Sequence[int] | None = None, bilstm_hidden: Sequence[int] | None = None,
              latency_runs: int = 50, warmup: int = 10, cache_file: str | Path | None = None, distill: bool = True,
              config: str | Path | None = None, overwrite: bool = False, resume: bool = False,
              on_candidate: Callable[[Candidate], None] | None = None, callbacks: Sequence[Callable] = (),
              report_latency_runs: int = 100, **options: Any) -> ProvisionResult:
    """Choose and distil the student that fits a latency budget on this machine (``kdistill provision``; see the
    module docstring).

    Args:
        teacher, task, options: the distillation run (as :func:`kdistill.distill` takes it: ``data_dir``, ``epochs``,
            ``temperature`` ...), or ``config``: a YAML/JSON run config (the options replace its values); its student
            is replaced by the chosen candidate.
        latency_budget_ms: the budget, ms, compared with each candidate's median latency in ``runtime`` at
            ``latency_batch_size`` inputs per call (``--batch-size`` of the CLI; ``batch_size`` among ``options`` is
            the training batch) on this machine. size_budget_mb: optional, MB (1e6 bytes) in that runtime.
        rank: ``capacity`` or ``short-run`` (``top_k`` candidates distilled ``short_steps`` steps each).
        kinds, layer_counts, prune_shares, spec_widths, spec_layers, bilstm_hidden: the candidate grid
            (:func:`kdistill.provision.candidates.enumerate_candidates`).
        latency_runs, warmup: timed / untimed forward passes per candidate; cache_file: the measurement cache.
        distill: train the winner fully (the usual report in ``output_dir/student``).

    Raises:
        KDistillError: no candidate within the budget (one line naming the fastest candidate's latency); bad
            options, data or teacher (one line).
    """
    from pydantic import ValidationError

    from kdistill.provision.latency import check_runtime
    from kdistill.search.study import base_run_config

    check_runtime(runtime)  # before anything is read (one line listing the runtimes)
    out = Path(output_dir)
    base = base_run_config(teacher, task, None, output_dir=out / "student", config=config, **options)
    extra = {k: v for k, v in dict(kinds=None if kinds is None else list(kinds),
                                   layer_counts=None if layer_counts is None else list(layer_counts),
                                   prune_shares=None if prune_shares is None else [tuple(p) for p in prune_shares],
                                   spec_widths=None if spec_widths is None else list(spec_widths),
                                   spec_layers=None if spec_layers is None else list(spec_layers),
                                   bilstm_hidden=None if bilstm_hidden is None else list(bilstm_hidden),
                                   cache_file=None if cache_file is None else str(cache_file)).items() if v is not None}
    try:
        pcfg = ProvisionConfig(base=base, latency_budget_ms=latency_budget_ms, size_budget_mb=size_budget_mb,
                               runtime=runtime, latency_batch_size=latency_batch_size, seq_len=seq_len, rank=rank, top_k=top_k,
                               short_steps=short_steps, latency_runs=latency_runs, warmup=warmup, distill=distill,
                               output_dir=str(out), **extra)
    except ValidationError as err:
        first = err.errors()[0]
        raise KDistillError(f"provision: {'.'.join(map(str, first['loc']))}: {first['msg']} "
                            f"(got {first.get('input')!r})") from None
    return run_provision(pcfg, overwrite=overwrite, resume=resume, on_candidate=on_candidate, callbacks=callbacks,
                         report_latency_runs=report_latency_runs)
