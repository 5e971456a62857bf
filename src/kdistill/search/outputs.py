"""What a search writes as it goes: the trials table (``trials.json``, ``trials.csv``, ``trials.md``) and a plot of the
search (``search.png``: the selection metric per trial with each trial's intermediate evaluations, or, with a latency
objective, metric against measured latency with the Pareto front)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Sequence

#: Trial states as the table writes them.
STATES = ("complete", "pruned", "diverged", "invalid", "interrupted", "failed", "running", "waiting")


def trial_rows(study, *, metric: str, params: Sequence[str], multi: bool, chosen: int | None = None,
               root: Path | None = None) -> list[dict[str, Any]]:
    """One row per Optuna trial: number, state, selection metric (``metric``), measured latency (ms, with a latency
    objective), the drawn settings, the steps it ran, when it was pruned, seconds, which trial it retries, its run
    folder (relative to ``root``), whether it is the best / on the Pareto front."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pareto: set[int] = set()
    best: int | None = chosen
    if complete:
        if multi:
            pareto = {t.number for t in study.best_trials}
        elif best is None:
            best = max(complete, key=lambda t: (t.value, -t.number)).number
    rows = []
    for t in trials:
        status = str(t.user_attrs.get("status") or "")
        if t.state == TrialState.COMPLETE:
            state = "complete"
        elif t.state == TrialState.PRUNED:
            state = "pruned"
        elif t.state == TrialState.RUNNING:
            state = "running"
        elif t.state == TrialState.WAITING:
            state = "waiting"
        else:
            state = status if status in ("diverged", "invalid", "interrupted") else "failed"
        value = None
        if t.state == TrialState.COMPLETE:
            value = t.values[0]
        elif t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        run_dir = t.user_attrs.get("run_dir")
        if run_dir and root is not None:
            try:
                run_dir = str(Path(run_dir).resolve().relative_to(root.resolve()))
            except ValueError:
                pass
        row = {"trial": t.number, "state": state, metric: value}
        if multi:
            row["latency_ms"] = t.values[1] if t.state == TrialState.COMPLETE else None
        row.update({p: t.params.get(p) for p in params})
        row.update({"seed": t.user_attrs.get("seed"), "steps": t.user_attrs.get("steps"),
                    "pruned_at_step": max(t.intermediate_values) if t.state == TrialState.PRUNED and t.intermediate_values
                    else None,
                    "seconds": _round(t.user_attrs.get("seconds"), 1), "retry_of": t.user_attrs.get("retry_of"),
                    "run_dir": run_dir, "best": t.number == best, "pareto": t.number in pareto,
                    "error": t.user_attrs.get("error")})
        rows.append(row)
    return rows


def _round(x, n):
    return None if x is None else round(float(x), n)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.2e}"
        return f"{value:.4g}"
    return str(value)


def write_tables(rows: list[dict], out: Path, *, meta: dict[str, Any]) -> dict[str, Path]:
    """``trials.json`` (``meta`` + rows), ``trials.csv`` and ``trials.md`` in ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"trials_json": out / "trials.json", "trials_csv": out / "trials.csv", "trials_md": out / "trials.md"}
    from kdistill.results import to_json  # strict JSON: no NaN

    files["trials_json"].write_text(to_json({**meta, "trials": rows}, indent=1, default=str) + "\n")
    columns = list(rows[0]) if rows else ["trial", "state"]
    with files["trials_csv"].open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
    shown = [c for c in columns if c not in ("run_dir", "error")]
    md = [f"# kdistill search: {meta.get('output_dir', out)}", "",
          f"Trials scored on: {meta.get('scored_on', '')}. Objective: {meta.get('objective', '')}.", "",
          "| " + " | ".join(shown) + " |", "|" + "|".join("---:" for _ in shown) + "|"]
    md += ["| " + " | ".join(_fmt(r.get(c)) for c in shown) + " |" for r in rows]
    errors = [(r["trial"], r["error"]) for r in rows if r.get("error")]
    if errors:
        md += ["", "Errors:", ""] + [f"- trial {n}: {e}" for n, e in errors]
    files["trials_md"].write_text("\n".join(md) + "\n")
    return files


def plot_search(study, rows: list[dict], path: Path, *, metric: str, multi: bool, budget_ms: float | None = None,
                chosen: int | None = None) -> Path | None:
    """``search.png``: single objective — left, the selection ``metric`` of each trial (complete ●, pruned ×, the
    best so far as a step line, the best ★); right, every trial's intermediate evaluations by step (pruned ones grey).
    Latency objective — metric against measured latency (ms) of the complete trials, the Pareto front, the
    ``budget_ms`` line and the chosen trial ★. Returns the path, or None without matplotlib or trials."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return None
    from optuna.trial import TrialState

    done = [r for r in rows if r.get(metric) is not None]
    if not done:
        return None
    if multi:
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        pts = [r for r in done if r["state"] == "complete" and r.get("latency_ms") is not None]
        ax.scatter([r["latency_ms"] for r in pts], [r[metric] for r in pts], c="tab:blue", label="trial")
        front = sorted((r for r in pts if r["pareto"]), key=lambda r: r["latency_ms"])
        if front:
            ax.plot([r["latency_ms"] for r in front], [r[metric] for r in front], "-o", c="tab:red", label="Pareto front")
        for r in pts:
            ax.annotate(str(r["trial"]), (r["latency_ms"], r[metric]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        if budget_ms is not None:
            ax.axvline(budget_ms, ls="--", c="grey", label=f"budget {budget_ms:g} ms")
        pick = next((r for r in pts if r["trial"] == chosen), None)
        if pick is not None:
            ax.scatter([pick["latency_ms"]], [pick[metric]], marker="*", s=250, c="gold", edgecolors="k", zorder=5,
                       label=f"chosen (trial {chosen})")
        ax.set_xlabel("measured latency (ms)")
        ax.set_ylabel(f"{metric} (held-out selection slice)")
        ax.legend(fontsize=8)
    else:
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
        comp = [r for r in done if r["state"] == "complete"]
        pruned = [r for r in done if r["state"] == "pruned"]
        ax.scatter([r["trial"] for r in comp], [r[metric] for r in comp], c="tab:blue", label="complete")
        if pruned:
            ax.scatter([r["trial"] for r in pruned], [r[metric] for r in pruned], marker="x", c="grey",
                       label="pruned (last evaluation)")
        running, xs, ys = -math.inf, [], []
        for r in sorted(comp, key=lambda r: r["trial"]):
            running = max(running, r[metric])
            xs.append(r["trial"])
            ys.append(running)
        if xs:
            ax.step(xs, ys, where="post", c="tab:green", label="best so far")
        best = next((r for r in comp if r["best"]), None)
        if best is not None:
            ax.scatter([best["trial"]], [best[metric]], marker="*", s=250, c="gold", edgecolors="k", zorder=5,
                       label=f"best (trial {best['trial']})")
        ax.set_xlabel("trial")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_ylabel(f"{metric} (held-out selection slice)")
        ax.legend(fontsize=8)
        for t in study.get_trials(deepcopy=False):
            if not t.intermediate_values:
                continue
            steps = sorted(t.intermediate_values)
            style = dict(c="grey", alpha=0.6, ls=":") if t.state == TrialState.PRUNED else dict(alpha=0.9)
            ax2.plot(steps, [t.intermediate_values[s] for s in steps], marker=".", label=f"trial {t.number}", **style)
        ax2.set_xlabel("optimizer step")
        ax2.set_ylabel(f"{metric} at each evaluation")
        ax2.set_title("intermediate evaluations (pruning)", fontsize=9)
        if len(study.trials) <= 12:
            ax2.legend(fontsize=7)
    fig.suptitle(f"kdistill search ({len(done)} trials; TPE, scored on the held-out slice)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
