"""``kdistill search`` and ``kdistill provision`` (registered on :data:`kdistill.cli.app`).

Both build their base run as ``kdistill distill`` does (flat options, or ``--config FILE`` with the options over it);
the logic is in :mod:`kdistill.search` and :mod:`kdistill.provision`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from kdistill.cli.options import DATA_SOURCE, config_options
from kdistill.config import DataConfig, KDMethod, SpecStudent, TrainConfig
from kdistill.search.study import SearchConfig as SEARCH
from kdistill.cli.common import (app, console, EXIT_STOPPED, OverwriteOpt, TaskOpt, ThreadsOpt, user_errors, _floats,
                                 _given, _ints, _print_result, _start, _strs)

ConfigFileOpt = typer.Option(None, "--config", help="A YAML/JSON run config (e.g. a run's kdistill_run.json) as the base run; options given here replace its values; unknown keys are an error.")


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else ""
    if isinstance(v, float):
        return f"{v:.3e}" if v != 0 and abs(v) < 1e-3 else f"{v:.4g}"
    return str(v)


def _trials_table(rows: list[dict], metric: str, params: list[str], multi: bool) -> Table:
    table = Table(title=f"kdistill search: {metric} on the held-out selection slice (never dev)")
    cols = ["trial", "state", metric] + (["latency_ms"] if multi else []) + params + ["steps", "seconds"]
    for c in cols:
        table.add_column(c.replace("_", " "), justify="right")
    for r in rows:
        style = "bold green" if r.get("best") or r.get("pareto") else ("dim" if r["state"] != "complete" else None)
        table.add_row(*[_fmt(r.get(c)) for c in cols], style=style)
    return table


#: The data of the base run (the selection slice scores every trial).
DATA = (DataConfig, (*DATA_SOURCE, "max_train_samples", "max_eval_samples", "max_length", "selection_size"))


@app.command()
@config_options("data", DATA, (DataConfig, ("selection_file",)),
                (SpecStudent, ("num_layers", "hidden_size", "num_heads", "intermediate_size")),
                (KDMethod, ("temperature", "alpha", "kd_loss", "cos_weight")),
                (TrainConfig, ("epochs", "max_steps", "batch_size", "learning_rate", "warmup_ratio", "eval_steps", "seed")),
                helps={"temperature": "T of the base run (used when T is not searched).",
                       "epochs": "Length of the base run = the final run (trials: --trial-epochs / --trial-steps)."})
@config_options("study", (SEARCH, ("n_trials", "objective", "sampler_seed", "startup_trials", "pruner",
                                   "prune_startup_trials", "trial_epochs", "trial_max_steps", "trial_seed", "runtime",
                                   "latency_runs", "latency_budget_ms", "final")),
                flags={"n_trials": ("--trials", "-n"), "prune_startup_trials": ("--prune-startup",),
                       "trial_max_steps": ("--trial-steps",), "latency_budget_ms": ("--latency-budget",),
                       "final": ("--final/--no-final",)})
def search(
    num_threads: Optional[int] = ThreadsOpt,
    config: Optional[Path] = ConfigFileOpt,
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Teacher fine-tuned on the task (required unless --config names it)."),
    task: Optional[str] = TaskOpt,
    method: Optional[str] = typer.Option(None, "--method", help="kd (default) | tinybert | finetune: the recipe every trial runs."),
    student: Optional[str] = typer.Option(None, "--student", help="layers-from-teacher (default) | spec | bilstm | PATH."),
    layers: Optional[str] = typer.Option(None, "--layers", help="Teacher layers to copy, e.g. 0,2,5 (searched instead with --param num_layers=LOW:HIGH)."),
    param: Optional[list[str]] = typer.Option(None, "--param", help="A searched setting and its range, repeatable: NAME=LOW:HIGH, NAME=LOW:HIGH:log, NAME=A|B|C or NAME=off. Names: temperature (T), alpha, learning_rate (lr), warmup_ratio, weight_decay, cos_weight, attn_weight, hidden_weight, emb_weight, num_layers, keep_heads, hidden_size, num_heads, intermediate_size, bilstm_hidden, bilstm_fc, schedule.<knob> (e.g. schedule.temperature=none|linear:4:1)."),
    params: Optional[str] = typer.Option(None, "--params", help="Comma-separated settings to search with their default ranges (default: kd: T, alpha, lr, warm-up, and the L_cos weight for layers-from-teacher; tinybert: + attention/hidden weights)."),
    space: Optional[Path] = typer.Option(None, "--space", help="A YAML/JSON search space {params: {name: {low, high, log} | {choices: [...]}}} (--param entries override it)."),
    report_latency_runs: int = typer.Option(100, "--report-latency-runs", help="Timed batch-1 runs per model in the final report."),
    output: Path = typer.Option(..., "--output", "-o", help="Search folder (study.db, trials/, trials.csv, search.png, best_config.json, final/)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier search in OUTPUT."),
    resume: bool = typer.Option(False, "--resume", help="Continue the search in OUTPUT: finished trials are kept, an interrupted one continues from its checkpoint."),
    data: Optional[dict] = None,
    study: Optional[dict] = None,
) -> None:
    """Search T, alpha, learning rate, warm-up, loss weights, schedules (and the student's shape) with Optuna's TPE;
    trials are scored on the held-out selection slice of the train split, never on dev."""
    _start(num_threads)
    from kdistill.search import search as run

    live: dict = {}
    on_trial = _live_trials(live, study.get("objective") == "metric-latency")
    with user_errors(resume_hint=f"continue with --resume -o {output}", cleanup=lambda: _stop_live(live)):
        sp, ranges = _space(space, param)
        res = run(teacher, task, student, output_dir=output, config=config, method=method, params=_strs(params),
                  ranges=ranges, space=sp, overwrite=overwrite, resume=resume, on_trial=on_trial,
                  report_latency_runs=report_latency_runs, **study, **_given(layers=_ints(layers)), **data)
    _stop_live(live)
    if res.interrupted and res.final is None:
        console.print(f"[bold yellow]stopped[/] during a trial; continue with --resume -o {output}", markup=True)
        raise typer.Exit(EXIT_STOPPED)
    _print_best(res)


def _space(space: Optional[Path], param: Optional[list[str]]):
    """``--space FILE`` as a search space (None without it) and the ``--param`` ranges over it."""
    from kdistill.search.space import SearchSpace, parse_param

    sp = None
    if space is not None:
        from kdistill.config import read_config_file

        sp = SearchSpace.model_validate(read_config_file(space))
    return sp, dict(parse_param(p) for p in param or ())


def _live_trials(live: dict, multi: bool):
    """The ``on_trial`` callback of a search: the trials table, redrawn live as trials finish."""
    from rich.live import Live

    def on_trial(rows: list[dict]) -> None:
        if not rows:
            return
        metric = [k for k in rows[0] if k not in ("trial", "state")][0]
        names = [k for k in rows[0] if k not in ("trial", "state", metric, "latency_ms", "seed", "steps",
                                                  "pruned_at_step", "seconds", "retry_of", "run_dir", "best", "pareto",
                                                  "error")]
        table = _trials_table(rows, metric, names, multi)
        if "live" not in live:
            live["live"] = Live(table, console=Console(), refresh_per_second=2, transient=False)
            live["live"].start()
        else:
            live["live"].update(table, refresh=True)

    return on_trial


def _print_best(res) -> None:
    best = Table(title=f"kdistill search: best of {len(res.rows)} trials")
    best.add_column("what")
    best.add_column("value", justify="right")
    best.add_row("best trial", str(res.best_trial))
    best.add_row("selection-slice metric", f"{res.best_value:.4f}")
    if res.best_latency_ms is not None:
        best.add_row("latency ms", f"{res.best_latency_ms:.3f}")
    for k, v in res.best_params.items():
        best.add_row(k, _fmt(v))
    best.add_row("best config (kdistill distill --config)", res.files.get("best_config", ""))
    best.add_row("trials table / plot", f"{res.files.get('trials_csv', '')} / {res.files.get('plot', '')}")
    Console().print(best)
    if res.final is not None:
        _print_result(res.final, title="kdistill search: final run (dev, reported once)")


def _stop_live(live: dict) -> None:
    if "live" in live:
        live.pop("live").stop()


@app.command()
@config_options("data", DATA, (KDMethod, ("temperature", "alpha", "kd_loss")),
                (TrainConfig, ("epochs", "batch_size", "learning_rate", "eval_steps", "seed")),
                flags={"batch_size": ("--train-batch-size",)},
                helps={"epochs": "Length of the final distillation.",
                       "batch_size": "Training batch size (default 32)."})
def provision(
    num_threads: Optional[int] = ThreadsOpt,
    config: Optional[Path] = ConfigFileOpt,
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Teacher fine-tuned on the task (required unless --config names it)."),
    task: Optional[str] = TaskOpt,
    latency_budget: float = typer.Option(..., "--latency-budget", help="Budget in ms: each candidate's median latency at --batch-size in --runtime, measured on this machine."),
    runtime: str = typer.Option("ort-int8", "--runtime", help="eager (PyTorch fp32) | ort (ONNX Runtime fp32) | ort-int8 (ONNX Runtime dynamic int8)."),
    size_budget: Optional[float] = typer.Option(None, "--size-budget", help="Size budget in MB (1e6 bytes) in that runtime."),
    latency_batch_size: int = typer.Option(1, "--batch-size", help="Inputs per timed call (the deployment's batch size; the training batch is --train-batch-size)."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Tokens of the timed input (default: median length of the full-length train rows)."),
    rank: str = typer.Option("short-run", "--rank", help="short-run (distil the --top-k best by capacity for --short-steps, keep the best on the selection slice) | capacity (teacher weights first, then most parameters)."),
    top_k: int = typer.Option(3, "--top-k", help="short-run: candidates distilled briefly (the best of each kind first)."),
    short_steps: int = typer.Option(200, "--short-steps", help="short-run: optimizer steps per short distillation."),
    kinds: Optional[str] = typer.Option(None, "--kinds", help="Candidate kinds, comma-separated: layers,pruned,spec,bilstm (default all)."),
    layer_counts: Optional[str] = typer.Option(None, "--layer-counts", help="Depths of layers/pruned candidates, e.g. 1,2,3 (default 1..teacher layers)."),
    spec_widths: Optional[str] = typer.Option(None, "--spec-widths", help="spec candidates: hidden sizes as shares of the teacher's (default 0.75,0.5,0.25)."),
    bilstm_hidden: Optional[str] = typer.Option(None, "--bilstm-hidden", help="bilstm candidates: LSTM sizes (default 64,150,300)."),
    latency_runs: int = typer.Option(50, "--latency-runs", help="Timed forward passes per candidate (median)."),
    cache_file: Optional[Path] = typer.Option(None, "--latency-cache", help="Measurement cache (default $KDISTILL_CACHE/latency_cache.json; keyed by machine, runtime, batch, length, threads and shape)."),
    distill: bool = typer.Option(True, "--distill/--no-distill", help="Distil the chosen student fully (OUTPUT/student, with the usual report)."),
    report_latency_runs: int = typer.Option(100, "--report-latency-runs", help="Timed batch-1 runs per model in the final report."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder: candidates.{json,csv,md}, provision.png, short/, student/."),
    overwrite: bool = OverwriteOpt,
    resume: bool = typer.Option(False, "--resume", help="Reuse finished short runs and continue the final run."),
    data: Optional[dict] = None,
) -> None:
    """Choose the student for a latency (and size) budget measured on this machine, then distil it: candidates over
    teacher-layer subsets, pruned teacher layers, spec shapes and BiLSTMs."""
    _start(num_threads)
    from kdistill.provision import provision as run

    with user_errors(resume_hint=f"continue with --resume -o {output}"):
        res = run(teacher, task, output_dir=output, config=config, latency_budget_ms=latency_budget, runtime=runtime,
                  size_budget_mb=size_budget, latency_batch_size=latency_batch_size, seq_len=seq_len, rank=rank, top_k=top_k,
                  short_steps=short_steps, kinds=_strs(kinds), layer_counts=_ints(layer_counts),
                  spec_widths=_floats(spec_widths, "--spec-widths"),
                  bilstm_hidden=_ints(bilstm_hidden), latency_runs=latency_runs, cache_file=cache_file,
                  distill=distill, overwrite=overwrite, resume=resume, on_candidate=_print_candidate,
                  report_latency_runs=report_latency_runs, **data)
    _print_candidates(res, latency_budget, runtime, latency_batch_size)


def _print_candidate(c) -> None:
    """One candidate as it is measured (``on_candidate``)."""
    out = Console()
    if c.latency_ms is None:
        out.print(f"  {c.name}: {c.note}", highlight=False)
        return
    short = "" if c.short_metric is None else f", short run {c.short_metric:.4f}"
    mark = "[green]in[/]" if c.fits else "[red]out[/]"
    out.print(f"  {c.name}: {c.latency_ms:.3f} ms{' (cached)' if c.cached else ''}, "
              f"{(c.size_mb or 0):.2f} MB, {c.params or 0:,} params — {mark}{short}", highlight=False)


def _print_candidates(res, latency_budget: float, runtime: str, latency_batch_size: int) -> None:
    table = Table(title=f"kdistill provision: budget {latency_budget:g} ms ({runtime}, batch {latency_batch_size}); "
                        f"teacher {res.teacher_latency_ms:.3f} ms")
    for col in ("candidate", "params", "latency ms", "size MB", "in budget", "short run", "chosen"):
        table.add_column(col, justify="right")
    for c in sorted(res.candidates, key=lambda c: (c["latency_ms"] is None, c["latency_ms"] or 0)):
        table.add_row(c["name"], f"{(c['params'] or 0):,}", _fmt(c["latency_ms"]), _fmt(c["size_mb"]),
                      "yes" if c["fits"] else "no", _fmt(c["short_metric"]), "★" if c["chosen"] else "",
                      style="bold green" if c["chosen"] else None)
    Console().print(table)
    if res.final is not None:
        _print_result(res.final, title=f"kdistill provision: {res.chosen['name']}")
        if res.trained_latency_ms is not None:
            Console().print(f"trained student re-measured: {res.trained_latency_ms:.3f} ms ({runtime}, budget "
                            f"{latency_budget:g} ms)", highlight=False)
    elif res.interrupted:
        raise typer.Exit(EXIT_STOPPED)
