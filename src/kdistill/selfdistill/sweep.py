"""The speed–accuracy sweep of an early-exit model: every exit rule × setting, chosen on the selection slice.

1. One full pass over the held-out **selection slice** (the train rows the run held out, re-drawn with the run's seed:
   :func:`kdistill.data.selection.selection_split`) and over **dev** gives the logits of every exit and of the final
   layer (``[E + 1, N, C]``). Each rule × setting is applied to them (:func:`kdistill.selfdistill.rules.simulate`,
   the decisions the batched adaptive path makes): metric, average exit layer (units: encoder layers; the layer
   count = full depth), how many examples leave at each exit.
2. **Choice**: the setting with the fewest average layers *on the selection slice* whose selection metric is at most
   ``max_drop`` points below the full model's (ties: the better metric). Dev is reported for it once; the chosen
   setting is also run for real (batched adaptive inference over dev) and its dev metric recorded with the simulated
   one (they agree unless a decision sits within float noise of the threshold).
3. **Latency** (ms, wall clock, CPU, eval, ``torch.inference_mode``) is *measured* on ``latency_examples`` dev rows,
   at batch 1 (each row alone, unpadded; mean over rows of the median over rounds) and at batch ``batch_size``
   (consecutive rows padded together; ms per batch, and examples/s), for the full-depth model and for the chosen
   setting and a spread of others (``timed_points`` per rule), interleaved in rounds so all see the same machine load.
   Speedup = full-depth ms / adaptive ms.

Writes ``sweep.json``, ``sweep.md`` and ``sweep.png`` (dev metric against average exit layer, and against measured
batch-1 / batch-32 speedup, one line per rule; the chosen point marked).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdistill.config import DataConfig
from kdistill.errors import KDistillError, ModelError
from kdistill.selfdistill.config import ENTROPY_GRID, MAX_PROB_GRID, SweepConfig
from kdistill.selfdistill.rules import ExitRule, simulate

SWEEP_FILE = "sweep.json"


def exit_logits_of(model, ds, tokenizer, *, batch_size: int = 64) -> tuple[torch.Tensor, np.ndarray]:
    """``([E + 1, N, C] float32, labels [N])``: every exit's and the final classifier's logits on a tokenised split,
    in the split's ``idx`` order (one full pass with ``output_hidden_states``)."""
    from kdistill.data.batching import eval_loader, model_inputs

    model.eval()
    outs, idx, labels = [], [], []
    with torch.inference_mode():
        for batch in eval_loader(ds, tokenizer, batch_size=batch_size):
            outs.append(model.all_exit_logits(**model_inputs(batch)).float())
            idx.append(batch["idx"]), labels.append(batch["labels"])
    z, idx, labels = torch.cat(outs, dim=1), torch.cat(idx), torch.cat(labels)
    order = torch.argsort(idx)
    return z[:, order], labels[order].numpy()


def settings_for(rule: str, cfg: SweepConfig, n_exits: int) -> list[ExitRule]:
    """The rule's settings to try (the config's, else the defaults: :data:`ENTROPY_GRID`, :data:`MAX_PROB_GRID`,
    patience ``0..E − 1``)."""
    if rule == "entropy":
        return [ExitRule("entropy", float(t)) for t in (cfg.entropy_thresholds or ENTROPY_GRID)]
    if rule == "max_prob":
        return [ExitRule("max_prob", float(t)) for t in (cfg.max_prob_thresholds or MAX_PROB_GRID)]
    if rule == "patience":
        return [ExitRule("patience", patience=int(p)) for p in (cfg.patiences or range(n_exits))]
    raise KDistillError(f"unknown exit rule '{rule}' in the sweep")


def score(task, z: torch.Tensor, labels: np.ndarray, rule: ExitRule, layers: list[int]) -> dict[str, Any]:
    """Metric, average exit layer and exit counts of ``rule`` on precomputed logits ``z`` ``[E + 1, N, C]``."""
    from kdistill.metrics import compute_metrics

    where, logits = simulate(z, rule)
    depth = np.asarray(layers)[where.numpy()]
    counts = np.bincount(where.numpy(), minlength=len(layers))
    return {"metric": float(compute_metrics(task, logits.numpy(), labels)[task.main_metric]),
            "avg_layer": float(depth.mean()), "exit_counts": [int(c) for c in counts]}


def choose(points: list[dict], full_selection: float, max_drop: float) -> dict | None:
    """The fastest point (fewest average layers on the selection slice) within ``max_drop`` points (metric × 100) of
    ``full_selection``; ties go to the better selection metric. None when no point qualifies."""
    floor = full_selection - max_drop / 100.0
    ok = [p for p in points if p["selection"]["metric"] >= floor - 1e-12]
    if not ok:
        return None
    return min(ok, key=lambda p: (p["selection"]["avg_layer"], -p["selection"]["metric"]))


def latency_inputs(ds, tokenizer, n: int, batch_size: int):
    """``(singles, batches, rows)``: the first ``n`` rows of a tokenised split, each alone (unpadded) and in padded
    batches of ``batch_size`` consecutive rows (the serving order, not length-sorted)."""
    from kdistill.data.batching import Collator, model_inputs

    rows = ds.with_format(None).select(range(min(n, len(ds))))
    feats = [dict(zip(rows.column_names, values)) for values in zip(*(rows[c] for c in rows.column_names))]
    collate = Collator(tokenizer)
    singles = [model_inputs(collate([f])) for f in feats]
    batches = [model_inputs(collate(feats[i:i + batch_size])) for i in range(0, len(feats), batch_size)]
    return singles, batches, len(feats)


def measure_latency(configs: list[tuple[str, Any, ExitRule]], singles, batches, *, rounds: int = 3,
                    warmup: int = 3) -> dict[str, dict[str, float]]:
    """Wall-clock latency of each ``(name, model, rule)`` (an early-exit model under ``rule``, or any classifier with
    rule ``none``), interleaved in ``rounds`` (the order rotates each round), so every configuration sees the same
    machine load.

    Args:
        configs: what to time; singles: batch-1 inputs (each row alone, unpadded); batches: padded batches.

    Returns:
        ``{name: {"bs1_ms": mean over rows of the per-row median (ms), "bs1_median_ms": median over rows (ms),
        "batch_ms": mean over batches of the per-batch median (ms), "throughput": examples / s at that batch size}}``.
        Each model's own rule is restored.
    """
    from kdistill.selfdistill.layout import is_early_exit

    before = {id(m): m.exit_rule() for _, m, _ in configs if is_early_exit(m)}
    times1 = {name: [[] for _ in singles] for name, _, _ in configs}
    timesb = {name: [[] for _ in batches] for name, _, _ in configs}
    try:
        with torch.inference_mode():
            for r in range(rounds):
                order = configs[r % len(configs):] + configs[:r % len(configs)]
                for name, model, rule in order:
                    model.eval()
                    if is_early_exit(model):
                        model.set_exit_rule(rule.rule, rule.threshold, rule.patience)
                    for x in singles[:warmup]:
                        model(**x)
                    for i, x in enumerate(singles):
                        t0 = time.perf_counter()
                        model(**x)
                        times1[name][i].append(time.perf_counter() - t0)
                    for i, x in enumerate(batches):
                        t0 = time.perf_counter()
                        model(**x)
                        timesb[name][i].append(time.perf_counter() - t0)
    finally:
        for _, model, _ in configs:
            if id(model) in before:
                r = before[id(model)]
                model.set_exit_rule(r.rule, r.threshold, r.patience)
    out = {}
    n_ex = sum(int(b["input_ids"].shape[0]) for b in batches)
    for name, _, _ in configs:
        per_row = [statistics.median(t) for t in times1[name]]
        per_batch = [statistics.median(t) for t in timesb[name]]
        out[name] = {"bs1_ms": 1000 * float(np.mean(per_row)), "bs1_median_ms": 1000 * float(np.median(per_row)),
                     "batch_ms": 1000 * float(np.mean(per_batch)), "throughput": n_ex / max(sum(per_batch), 1e-12)}
    return out


def _spread(points: list[dict], k: int) -> list[dict]:
    """Up to ``k`` points evenly spread over a rule's curve (by average exit layer on dev)."""
    if k <= 0 or not points:
        return []
    pts = sorted(points, key=lambda p: p["dev"]["avg_layer"])
    if len(pts) <= k:
        return pts
    idx = sorted({int(round(i * (len(pts) - 1) / (k - 1))) for i in range(k)}) if k > 1 else [len(pts) // 2]
    return [pts[i] for i in idx]


def adaptive_dev_metric(model, ds, tokenizer, task, rule: ExitRule, batch_size: int) -> dict[str, Any]:
    """The dev metric and average exit layer of *real* batched adaptive inference under ``rule``."""
    from kdistill.data.batching import eval_loader, model_inputs
    from kdistill.metrics import compute_metrics

    before = model.exit_rule()
    model.set_exit_rule(rule.rule, rule.threshold, rule.patience)
    logits, layers, idx, labels = [], [], [], []
    try:
        with torch.inference_mode():
            for batch in eval_loader(ds, tokenizer, batch_size=batch_size):
                out = model(**model_inputs(batch))
                logits.append(out.logits.float()), layers.append(out.exit_layer), idx.append(batch["idx"])
                labels.append(batch["labels"])
    finally:
        model.set_exit_rule(before.rule, before.threshold, before.patience)
    order = torch.argsort(torch.cat(idx))
    z, depth, y = torch.cat(logits)[order].numpy(), torch.cat(layers)[order].numpy(), torch.cat(labels)[order].numpy()
    return {"metric": float(compute_metrics(task, z, y)[task.main_metric]), "avg_layer": float(depth.mean()),
            "exit_layer": depth}


def exit_sweep(model_dir: str, *, data: DataConfig, seed: int = 42, sweep: SweepConfig | None = None,
               output_dir: str | Path | None = None) -> dict[str, Any]:
    """Sweep the exit rules of the early-exit model saved in ``model_dir`` (see the module docstring).

    Args:
        model_dir: a saved early-exit model (``kdistill early-exit``'s run folder).
        data: where the splits come from; ``select_on="holdout"`` (default) re-draws the selection slice the run held
            out (same ``data`` and ``seed`` as the run); ``"dev"`` chooses on dev (optimistic, recorded).
        seed: the run's seed (it drew the slice).
        sweep: rules, settings, drop allowed, latency sample (:class:`~kdistill.selfdistill.config.SweepConfig`).
        output_dir: where ``sweep.{json,md,png}`` go (default ``model_dir``).

    Returns:
        The record of ``sweep.json``: ``full`` (full depth: selection / dev metric, layers, measured latency),
        ``points`` (every rule × setting: selection and dev scores, measured latency where timed), ``chosen`` (or None
        when no setting keeps the metric within ``max_drop``), ``exits`` (each exit alone on dev).

    Raises:
        ModelError: the model has no exits, or is not a classifier for the task. DataError: bad data options.
    """
    from kdistill.data.batching import tokenize
    from kdistill.data.loading import load_data
    from kdistill.data.selection import selection_split
    from kdistill.metrics import compute_metrics
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.selfdistill.layout import is_early_exit, num_layers
    from kdistill.selfdistill.modeling import register_early_exit_classes
    from kdistill.selfdistill.objective import check_task

    from transformers import AutoConfig

    sweep = sweep or SweepConfig()
    register_early_exit_classes()
    try:
        has_exits = is_early_exit(AutoConfig.from_pretrained(str(model_dir)))
    except Exception:  # noqa: BLE001 - load_classifier below says what is wrong, in one line
        has_exits = True
    if not has_exits:
        raise ModelError(f"'{model_dir}' has no early exits; add and train them with `kdistill early-exit --model {model_dir}`")
    splits, task = load_data(data)
    check_task(task)
    model = load_classifier(str(model_dir), task, require_trained_head=True, what="model").eval()
    tok = load_tokenizer(str(model_dir))
    if data.select_on == "holdout":
        _, sel, sel_info = selection_split(data, splits["train"], task, seed=seed)
        chosen_on = "held-out selection slice of the train split (the one the run held out)"
    else:
        sel, sel_info = splits["validation"], {"selection_rows": len(splits["validation"])}
        chosen_on = "dev split — the reported split: optimistic"
    kw = dict(max_length=data.max_length, cache_dir=data.cache_dir)
    sel_ds, dev_ds = tokenize(sel, tok, desc="tokenize selection", **kw), tokenize(splits["validation"], tok, desc="tokenize dev", **kw)
    z_sel, y_sel = exit_logits_of(model, sel_ds, tok)
    z_dev, y_dev = exit_logits_of(model, dev_ds, tok)
    layers = [*model.exit_layers, num_layers(model.config)]  # the layer each of the E + 1 classifiers reads
    main = task.main_metric
    full = {"selection": {"metric": float(compute_metrics(task, z_sel[-1].numpy(), y_sel)[main]), "avg_layer": float(layers[-1])},
            "dev": {"metric": float(compute_metrics(task, z_dev[-1].numpy(), y_dev)[main]), "avg_layer": float(layers[-1])}}
    exits = [{"layer": k, "dev_metric": float(compute_metrics(task, z_dev[j].numpy(), y_dev)[main]),
              "selection_metric": float(compute_metrics(task, z_sel[j].numpy(), y_sel)[main])}
             for j, k in enumerate(layers)]
    points = []
    for rule in sweep.rules:
        for r in settings_for(rule, sweep, len(layers) - 1):
            points.append({"rule": r.rule, "setting": r.setting, "describe": r.describe(), "threshold": r.threshold,
                           "patience": r.patience, "selection": score(task, z_sel, y_sel, r, layers),
                           "dev": score(task, z_dev, y_dev, r, layers)})
    chosen = choose(points, full["selection"]["metric"], sweep.max_drop)
    timed = [] if chosen is None else [chosen]
    for rule in sweep.rules:
        for p in _spread([q for q in points if q["rule"] == rule], sweep.timed_points):
            if all(p is not t for t in timed):
                timed.append(p)
    singles, batches, n_timed = latency_inputs(dev_ds, tok, sweep.latency_examples, sweep.batch_size)
    configs = [("full", model, ExitRule("none"))] + [(p["describe"], model, _rule_of(p)) for p in timed]
    lat = measure_latency(configs, singles, batches, rounds=sweep.latency_rounds)
    full["latency"] = lat["full"]
    for p in timed:
        p["latency"] = lat[p["describe"]]
        p["speedup_bs1"] = lat["full"]["bs1_ms"] / p["latency"]["bs1_ms"]
        p["speedup_batch"] = lat["full"]["batch_ms"] / p["latency"]["batch_ms"]
    if chosen is not None:
        real = adaptive_dev_metric(model, dev_ds, tok, task, _rule_of(chosen), sweep.batch_size)
        sim_where, _ = simulate(z_dev, _rule_of(chosen))
        chosen["dev_batched_adaptive"] = {"metric": real["metric"], "avg_layer": real["avg_layer"],
                                          "exit_layer_mismatches": int((np.asarray(layers)[sim_where.numpy()]
                                                                        != real["exit_layer"]).sum())}
        chosen["dev_retention"] = chosen["dev"]["metric"] / full["dev"]["metric"] if full["dev"]["metric"] else None
    rec = {"model": str(model_dir), "task": task.name, "metric_name": main, "layers": layers[-1],
           "exit_layers": layers[:-1], "chosen_on": chosen_on, "selection": sel_info, "max_drop_points": sweep.max_drop,
           "dev_examples": int(len(dev_ds)), "latency_examples": n_timed, "latency_batch_size": sweep.batch_size,
           "latency_rounds": sweep.latency_rounds, "threads": torch.get_num_threads(), "full": full, "exits": exits,
           "points": points, "chosen": chosen,
           "units": {"latency": "ms wall clock per forward (batch 1: per example; batch: per batch)",
                     "avg_layer": "encoder layers run per example (the layer count = full depth)",
                     "metric": f"{main} in [0, 1]; max_drop in points (x100)"}}
    out = Path(output_dir or model_dir)
    out.mkdir(parents=True, exist_ok=True)
    from kdistill.results import to_json  # strict JSON: no NaN

    (out / SWEEP_FILE).write_text(to_json(rec, indent=1, default=_json_default))
    (out / "sweep.md").write_text(render_sweep(rec))
    plot_sweep(rec, out / "sweep.png")
    return json.loads((out / SWEEP_FILE).read_text())


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _rule_of(p: dict) -> ExitRule:
    return ExitRule(p["rule"], p.get("threshold"), p.get("patience"))


def render_sweep(rec: dict) -> str:
    """``sweep.md``: the full model, the chosen setting, the timed points and every point's scores."""
    m, f = rec["metric_name"], rec["full"]
    lines = [f"# Early-exit sweep: {rec['model']}", "",
             f"{rec['layers']} layers, exits after layers {rec['exit_layers']}; chosen on: {rec['chosen_on']}; allowed "
             f"drop {rec['max_drop_points']} points. Latency: {rec['latency_examples']} dev rows, batch 1 and batch "
             f"{rec['latency_batch_size']}, {rec['latency_rounds']} interleaved rounds, {rec['threads']} thread(s).", ""]
    c = rec["chosen"]
    if c is None:
        lines += ["**No setting stays within the allowed drop on the selection slice**: keep the full-depth model.", ""]
    else:
        real = c.get("dev_batched_adaptive", {})
        lines += [f"**Chosen: {c['describe']}** — dev {m} {c['dev']['metric']:.4f} (full {f['dev']['metric']:.4f}; "
                  f"{100 * c['dev_retention']:.1f} %), average exit layer {c['dev']['avg_layer']:.2f} of {rec['layers']}, "
                  f"measured speedup {c['speedup_bs1']:.2f}x at batch 1 and {c['speedup_batch']:.2f}x at batch "
                  f"{rec['latency_batch_size']}. Real batched adaptive dev {m}: {real.get('metric', float('nan')):.4f} "
                  f"({real.get('exit_layer_mismatches', 0)} exit decisions differ from the simulated ones).", ""]
    lines += [f"| setting | sel {m} | dev {m} | avg layer (dev) | bs1 ms | speedup bs1 | batch ms | speedup batch |",
              "|---|---:|---:|---:|---:|---:|---:|---:|",
              f"| full depth | {f['selection']['metric']:.4f} | {f['dev']['metric']:.4f} | {f['dev']['avg_layer']:.2f} | "
              f"{f['latency']['bs1_ms']:.2f} | 1.00x | {f['latency']['batch_ms']:.2f} | 1.00x |"]
    for p in rec["points"]:
        lat = p.get("latency")
        timing = (f"{lat['bs1_ms']:.2f} | {p['speedup_bs1']:.2f}x | {lat['batch_ms']:.2f} | {p['speedup_batch']:.2f}x"
                  if lat else "— | — | — | —")
        mark = " **(chosen)**" if c is not None and p["describe"] == c["describe"] else ""
        lines.append(f"| {p['describe']}{mark} | {p['selection']['metric']:.4f} | {p['dev']['metric']:.4f} | "
                     f"{p['dev']['avg_layer']:.2f} | {timing} |")
    lines += ["", "Each exit alone (dev): " + ", ".join(f"layer {e['layer']}: {e['dev_metric']:.4f}" for e in rec["exits"]), ""]
    return "\n".join(lines) + "\n"


def plot_sweep(rec: dict, path: Path) -> None:
    """``sweep.png``: dev metric against average exit layer (every point) and against measured speedup (timed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    f, m = rec["full"], rec["metric_name"]
    for rule in dict.fromkeys(p["rule"] for p in rec["points"]):
        pts = sorted((p for p in rec["points"] if p["rule"] == rule), key=lambda p: p["dev"]["avg_layer"])
        axes[0].plot([p["dev"]["avg_layer"] for p in pts], [p["dev"]["metric"] for p in pts], "o-", label=rule, ms=4)
        timed = sorted((p for p in pts if "latency" in p), key=lambda p: p["speedup_bs1"])
        axes[1].plot([p["speedup_bs1"] for p in timed], [p["dev"]["metric"] for p in timed], "o-", label=rule, ms=4)
        timed = sorted(timed, key=lambda p: p["speedup_batch"])
        axes[2].plot([p["speedup_batch"] for p in timed], [p["dev"]["metric"] for p in timed], "o-", label=rule, ms=4)
    c = rec["chosen"]
    for ax, x_full in zip(axes, (f["dev"]["avg_layer"], 1.0, 1.0)):
        ax.axhline(f["dev"]["metric"], color="grey", ls="--", lw=1, label="full depth")
        ax.axhline(0.99 * f["dev"]["metric"], color="grey", ls=":", lw=1, label="99 % of full")
        ax.plot([x_full], [f["dev"]["metric"]], "k*", ms=10)
        ax.set_ylabel(f"dev {m}")
        ax.grid(alpha=0.3)
    if c is not None:
        axes[0].plot([c["dev"]["avg_layer"]], [c["dev"]["metric"]], "rs", ms=10, mfc="none", label="chosen")
        axes[1].plot([c["speedup_bs1"]], [c["dev"]["metric"]], "rs", ms=10, mfc="none", label="chosen")
        axes[2].plot([c["speedup_batch"]], [c["dev"]["metric"]], "rs", ms=10, mfc="none", label="chosen")
    axes[0].set_xlabel("average exit layer (dev)")
    axes[1].set_xlabel("measured speedup, batch 1")
    axes[2].set_xlabel(f"measured speedup, batch {rec['latency_batch_size']}")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Early exits: {Path(rec['model']).name} ({rec['layers']} layers; chosen on the selection slice)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["SWEEP_FILE", "adaptive_dev_metric", "choose", "exit_logits_of", "exit_sweep", "latency_inputs", "measure_latency", "plot_sweep",
           "render_sweep", "score", "settings_for"]
