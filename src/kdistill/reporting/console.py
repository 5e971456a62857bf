"""Terminal tables of results (rich): what the CLI prints after each command, usable from Python too.

Each function prints one kind of result; undefined values (None) show as n/a (:func:`kdistill.results.fmt_num`).
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

__all__ = ["fmt", "print_run", "print_export", "print_rounds", "print_sweep", "print_generations", "trials_table",
           "print_search", "print_candidate", "print_candidates"]


def fmt(v) -> str:
    """A table cell: "" for None, yes/"" for bools, 4 significant digits (scientific below 1e-3)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else ""
    if isinstance(v, float):
        return f"{v:.3e}" if v != 0 and abs(v) < 1e-3 else f"{v:.4g}"
    return str(v)


def print_run(res, title: str = "kdistill") -> None:
    """A run's table (:class:`~kdistill.recipes.RunResult`): dev metrics, seconds, the report's retention, size,
    latency and speedup, the deployment; an undefined value (None: a correlation of constant predictions, a ratio to a
    metric of 0 ...) is shown as n/a, with the reason the report records."""
    from kdistill.results import fmt_num as f

    table = Table(title=f"{title}: {res.output_dir}")
    table.add_column("what")
    table.add_column("value", justify="right")
    for k, v in res.metrics.items():
        table.add_row(f"dev {k}", f(v))
    table.add_row("train seconds", f(res.train_seconds, ".0f"))
    if res.report:
        r = res.report
        table.add_row("teacher metric", f(r.get("teacher_metric")))
        table.add_row("retention", f(r.get("retention"), ".1f", "%", scale=100))
        table.add_row("params (teacher → student)",
                      f"{f(r.get('teacher_params'), '.1f', 'M', scale=1e-6)} → {f(r.get('student_params'), '.1f', 'M', scale=1e-6)}")
        table.add_row("latency bs1 ms (teacher → student)",
                      f"{f(r.get('teacher_latency_ms'), '.2f')} → {f(r.get('student_latency_ms'), '.2f')}")
        table.add_row("speedup", f(r.get("speedup"), ".2f", "×"))
        if r.get("deployment_speedup"):
            table.add_row("ORT speedup fp32 / deployment (student int8 vs teacher fp32)",
                          f"{f(r.get('ort_speedup'), '.2f', '×')} / {f(r.get('deployment_speedup'), '.2f', '×')}")
        undefined = r.get("undefined") if isinstance(r.get("undefined"), dict) else {}
        for key in ("teacher_metric", "student_metric", "retention", "speedup"):
            if r.get(key) is None and key in undefined:
                table.add_row(f"n/a: {key}", str(undefined[key]))
    d = getattr(res, "deployment", None)
    if d:
        q = (f", int8 {(d.get('quantization') or {}).get('mode')} {f(d.get('int8_metric'))} "
             f"({f(None if d.get('int8_drop_points') is None else -d['int8_drop_points'], '+.2f')} pt)"
             if "int8" in d.get("files", {}) else "")
        table.add_row("deployed (ONNX Runtime)", f"{d.get('output')}: fp32 {f(d.get('fp32_metric'))}{q}")
    if res.interrupted:
        table.add_row("status", "[yellow]stopped; continue with --resume[/]")
    Console().print(table)


def print_export(info: dict) -> None:
    """An export (``kdistill_export.json``): each graph's dev metric and size, the parity and the int8 drop."""
    table = Table(title=f"kdistill export: {info['output']}")
    table.add_column("graph")
    table.add_column(f"dev {info['metric_name']}", justify="right")
    table.add_column("MB", justify="right")
    from kdistill.results import fmt_num as f  # undefined (None) values as n/a

    table.add_row("PyTorch (source)", f(info.get("pytorch_metric")), "")
    table.add_row(f"ORT fp32 (|Δlogit| ≤ {f(info['parity']['max_abs_diff'], '.1e')})", f(info.get("fp32_metric")),
                  f(info['sizes_mb']['fp32'], '.1f'))
    if "int8" in info["files"]:
        drop = info.get("int8_drop_points")
        table.add_row(f"ORT int8 {info['quantization']['mode']} ({f(None if drop is None else -drop, '+.2f')} pt)",
                      f(info.get("int8_metric")), f(info['sizes_mb']['int8'], '.1f'))
    Console().print(table)


def print_rounds(rep: dict, output) -> None:
    """Iterative prune → distil: each round's layers, heads, parameters, metric and speedup."""
    table = Table(title=f"kdistill compress: {output}")
    for col in ("round", "layers", "heads", "params", "metric", "speedup"):
        table.add_column(col, justify="right")
    for r in rep.get("rounds", []):
        from kdistill.results import fmt_num

        table.add_row(str(r["round"]), str(r["layers"]), str(r["heads"]), fmt_num(r["params"], ".1f", "M", scale=1e-6),
                      fmt_num(r.get("metric")), fmt_num(r.get("speedup"), ".2f", "×"))
    Console().print(table)


def print_sweep(rep: dict, title: str) -> None:
    """An exit sweep (``sweep.json``): each timed setting's metrics, average exit layer, latency and speedups."""
    m, f, c = rep["metric_name"], rep["full"], rep.get("chosen")
    table = Table(title=title)
    for col in ("setting", f"sel {m}", f"dev {m}", "avg layer", "bs1 ms", "speedup bs1", f"bs{rep['latency_batch_size']} ms",
                "speedup batch"):
        table.add_column(col, justify="right" if col != "setting" else "left")
    table.add_row("full depth", f"{f['selection']['metric']:.4f}", f"{f['dev']['metric']:.4f}", f"{f['dev']['avg_layer']:.2f}",
                  f"{f['latency']['bs1_ms']:.2f}", "1.00×", f"{f['latency']['batch_ms']:.2f}", "1.00×")
    for p in rep["points"]:
        if "latency" not in p:
            continue
        name = p["describe"] + (" [bold](chosen)[/]" if c is not None and p["describe"] == c["describe"] else "")
        table.add_row(name, f"{p['selection']['metric']:.4f}", f"{p['dev']['metric']:.4f}", f"{p['dev']['avg_layer']:.2f}",
                      f"{p['latency']['bs1_ms']:.2f}", f"{p['speedup_bs1']:.2f}×", f"{p['latency']['batch_ms']:.2f}",
                      f"{p['speedup_batch']:.2f}×")
    Console().print(table)
    if c is None:
        Console().print(f"no setting keeps the selection {m} within {rep['max_drop_points']} points: keep full depth")
    else:
        Console().print(f"chosen on the selection slice: [bold]{c['describe']}[/] — dev {m} {c['dev']['metric']:.4f} "
                        f"({100 * c['dev_retention']:.1f} % of full depth), {c['speedup_bs1']:.2f}× at batch 1, "
                        f"{c['speedup_batch']:.2f}× at batch {rep['latency_batch_size']}")


def print_generations(rec: dict) -> None:
    """Born-again generations (``born_again.json``): each one's dev metric minus the teacher's, with its interval."""
    m = rec["metric_name"]
    table = Table(title=f"kdistill born-again: {rec['output_dir']}")
    for col in ("model", f"dev {m}", "− teacher (points, 95% CI)", "p"):
        table.add_column(col, justify="right" if col != "model" else "left")
    table.add_row("teacher", f"{rec['teacher_metric']:.4f}", "", "")
    rows = [(f"generation {g['generation']}", g) for g in rec["generations"]]
    if rec.get("ensemble"):
        rows.append(("ensemble of generations", rec["ensemble"]))
    for name, g in rows:
        d = g["minus_teacher"]
        table.add_row(name, f"{g['dev_metric']:.4f}", f"{100 * d['difference']:+.2f} [{100 * d['ci'][0]:+.2f}, "
                      f"{100 * d['ci'][1]:+.2f}]", f"{d['p_value']:.3f}")
    Console().print(table)
    if rec["interrupted"]:
        Console().print("[yellow]stopped[/]; continue with --resume")


def trials_table(rows: list[dict], metric: str, params: list[str], multi: bool) -> Table:
    """A search's trials (``multi``: with the measured latency), the best (or Pareto) ones in bold."""
    table = Table(title=f"kdistill search: {metric} on the held-out selection slice (never dev)")
    cols = ["trial", "state", metric] + (["latency_ms"] if multi else []) + params + ["steps", "seconds"]
    for c in cols:
        table.add_column(c.replace("_", " "), justify="right")
    for r in rows:
        style = "bold green" if r.get("best") or r.get("pareto") else ("dim" if r["state"] != "complete" else None)
        table.add_row(*[fmt(r.get(c)) for c in cols], style=style)
    return table


def print_search(res) -> None:
    """The best trial of a search (:class:`~kdistill.search.SearchResult`), then its final run."""
    best = Table(title=f"kdistill search: best of {len(res.rows)} trials")
    best.add_column("what")
    best.add_column("value", justify="right")
    best.add_row("best trial", str(res.best_trial))
    best.add_row("selection-slice metric", f"{res.best_value:.4f}")
    if res.best_latency_ms is not None:
        best.add_row("latency ms", f"{res.best_latency_ms:.3f}")
    for k, v in res.best_params.items():
        best.add_row(k, fmt(v))
    best.add_row("best config (kdistill distill --config)", res.files.get("best_config", ""))
    best.add_row("trials table / plot", f"{res.files.get('trials_csv', '')} / {res.files.get('plot', '')}")
    Console().print(best)
    if res.final is not None:
        print_run(res.final, title="kdistill search: final run (dev, reported once)")


def print_candidate(c) -> None:
    """One candidate as it is measured (``on_candidate``)."""
    out = Console()
    if c.latency_ms is None:
        out.print(f"  {c.name}: {c.note}", highlight=False)
        return
    short = "" if c.short_metric is None else f", short run {c.short_metric:.4f}"
    mark = "[green]in[/]" if c.fits else "[red]out[/]"
    out.print(f"  {c.name}: {c.latency_ms:.3f} ms{' (cached)' if c.cached else ''}, "
              f"{(c.size_mb or 0):.2f} MB, {c.params or 0:,} params — {mark}{short}", highlight=False)


def print_candidates(res, latency_budget: float, runtime: str, latency_batch_size: int) -> None:
    """Provisioning's candidates (:class:`~kdistill.provision.ProvisionResult`) and the chosen student's run."""
    table = Table(title=f"kdistill provision: budget {latency_budget:g} ms ({runtime}, batch {latency_batch_size}); "
                        f"teacher {res.teacher_latency_ms:.3f} ms")
    for col in ("candidate", "params", "latency ms", "size MB", "in budget", "short run", "chosen"):
        table.add_column(col, justify="right")
    for c in sorted(res.candidates, key=lambda c: (c["latency_ms"] is None, c["latency_ms"] or 0)):
        table.add_row(c["name"], f"{(c['params'] or 0):,}", fmt(c["latency_ms"]), fmt(c["size_mb"]),
                      "yes" if c["fits"] else "no", fmt(c["short_metric"]), "★" if c["chosen"] else "",
                      style="bold green" if c["chosen"] else None)
    Console().print(table)
    if res.final is not None:
        print_run(res.final, title=f"kdistill provision: {res.chosen['name']}")
        if res.trained_latency_ms is not None:
            Console().print(f"trained student re-measured: {res.trained_latency_ms:.3f} ms ({runtime}, budget "
                            f"{latency_budget:g} ms)", highlight=False)
