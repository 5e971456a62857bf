"""``kdistill search`` and ``kdistill provision`` (registered on :data:`kdistill.cli.app`).

Both build their base run as ``kdistill distill`` does (flat options, or ``--config FILE`` with the options over it);
the logic is in :mod:`kdistill.search` and :mod:`kdistill.provision`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from kdistill.cli.options import DATA_SOURCE, QA_WINDOWS, config_options
from kdistill.config import DataConfig, KDMethod, SpecStudent, TrainConfig
from kdistill.provision.run import ProvisionConfig as PROVISION
from kdistill.search.study import SearchConfig as SEARCH
from kdistill.cli.common import app, command_args, console, EXIT_STOPPED, user_errors, _strs



#: The data of the base run (the selection slice scores every trial).
DATA = (DataConfig, (*DATA_SOURCE, "max_train_samples", "max_eval_samples", "max_length", *QA_WINDOWS, "selection_size"))


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
@command_args("config", "teacher", "task", "method", "student", "layers", "output_dir", "overwrite", "resume",
              required=("output_dir",), helps={
    "config": "A YAML/JSON run config (e.g. a run's kdistill_run.json) as the base run; options given here replace its "
              "values; unknown keys are an error.",
    "method": "kd (default) | tinybert | finetune: the recipe every trial runs.",
    "layers": "Teacher layers to copy, e.g. 0,2,5 (searched instead with --param num_layers=LOW:HIGH).",
    "output_dir": "Search folder (study.db, trials/, trials.csv, search.png, best_config.json, final/).",
    "overwrite": "Replace an earlier search in OUTPUT.",
    "resume": "Continue the search in OUTPUT: finished trials are kept, an interrupted one continues from its checkpoint."})
def search(
    given: dict,
    param: Optional[list[str]] = typer.Option(None, "--param", help="A searched setting and its range, repeatable: NAME=LOW:HIGH, NAME=LOW:HIGH:log, NAME=A|B|C or NAME=off. Names: temperature (T), alpha, learning_rate (lr), warmup_ratio, weight_decay, cos_weight, attn_weight, hidden_weight, emb_weight, num_layers, keep_heads, hidden_size, num_heads, intermediate_size, bilstm_hidden, bilstm_fc, schedule.<knob> (e.g. schedule.temperature=none|linear:4:1)."),
    params: Optional[str] = typer.Option(None, "--params", help="Comma-separated settings to search with their default ranges (default: kd: T, alpha, lr, warm-up, and the L_cos weight for layers-from-teacher; tinybert: + attention/hidden weights)."),
    space: Optional[Path] = typer.Option(None, "--space", help="A YAML/JSON search space {params: {name: {low, high, log} | {choices: [...]}}} (--param entries override it)."),
    report_latency_runs: int = typer.Option(100, "--report-latency-runs", help="Timed batch-1 runs per model in the final report."),
    data: Optional[dict] = None,
    study: Optional[dict] = None,
) -> None:
    """Search T, alpha, learning rate, warm-up, loss weights, schedules (and the student's shape) with Optuna's TPE;
    trials are scored on the held-out selection slice of the train split, never on dev."""
    from kdistill.reporting.console import print_search
    from kdistill.search import search as run

    live: dict = {}
    on_trial = _live_trials(live, study.get("objective") == "metric-latency")
    resume_hint = f"continue with --resume -o {given['output_dir']}"
    with user_errors(resume_hint=resume_hint, cleanup=lambda: _stop_live(live)):
        sp, ranges = _space(space, param)
        res = run(**given, params=_strs(params), ranges=ranges, space=sp, on_trial=on_trial,
                  report_latency_runs=report_latency_runs, **study, **data)
    _stop_live(live)
    if res.interrupted and res.final is None:
        console.print(f"[bold yellow]stopped[/] during a trial; {resume_hint}", markup=True)
        raise typer.Exit(EXIT_STOPPED)
    print_search(res)


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
        from kdistill.reporting.console import trials_table

        table = trials_table(rows, metric, names, multi)
        if "live" not in live:
            live["live"] = Live(table, console=Console(), refresh_per_second=2, transient=False)
            live["live"].start()
        else:
            live["live"].update(table, refresh=True)

    return on_trial


def _stop_live(live: dict) -> None:
    if "live" in live:
        live.pop("live").stop()


@app.command()
@config_options("data", DATA, (KDMethod, ("temperature", "alpha", "kd_loss")),
                (TrainConfig, ("epochs", "batch_size", "learning_rate", "eval_steps", "seed")),
                flags={"batch_size": ("--train-batch-size",)},
                helps={"epochs": "Length of the final distillation.",
                       "batch_size": "Training batch size (default 32)."})
@config_options("study", (PROVISION, ("runtime", "size_budget_mb", "latency_batch_size", "seq_len", "rank", "top_k",
                                      "short_steps", "kinds", "layer_counts", "spec_widths", "bilstm_hidden",
                                      "latency_runs", "distill")),
                flags={"size_budget_mb": ("--size-budget",), "latency_batch_size": ("--batch-size",),
                       "distill": ("--distill/--no-distill",)})
@command_args("config", "teacher", "task", "output_dir", "overwrite", "resume", required=("output_dir",), helps={
    "config": "A YAML/JSON run config (e.g. a run's kdistill_run.json) as the base run; options given here replace its "
              "values; unknown keys are an error.",
    "output_dir": "Folder: candidates.{json,csv,md}, provision.png, short/, student/.",
    "resume": "Reuse finished short runs and continue the final run."})
def provision(
    given: dict,
    latency_budget: float = typer.Option(..., "--latency-budget", help="Budget in ms: each candidate's median latency at --batch-size in --runtime, measured on this machine."),
    cache_file: Optional[Path] = typer.Option(None, "--latency-cache", help="Measurement cache (default $KDISTILL_CACHE/latency_cache.json; keyed by machine, runtime, batch, length, threads and shape)."),
    report_latency_runs: int = typer.Option(100, "--report-latency-runs", help="Timed batch-1 runs per model in the final report."),
    data: Optional[dict] = None,
    study: Optional[dict] = None,
) -> None:
    """Choose the student for a latency (and size) budget measured on this machine, then distil it (candidates: teacher
    layer subsets, pruned layers, spec shapes, BiLSTMs)."""
    from kdistill.provision import provision as run
    from kdistill.reporting.console import print_candidate, print_candidates

    with user_errors(resume_hint=f"continue with --resume -o {given['output_dir']}"):
        res = run(**given, latency_budget_ms=latency_budget, cache_file=cache_file, on_candidate=print_candidate,
                  report_latency_runs=report_latency_runs, **study, **data)
    print_candidates(res, latency_budget, study.get("runtime", PROVISION.model_fields["runtime"].default),
                     study.get("latency_batch_size", 1))
    if res.final is None and res.interrupted:
        raise typer.Exit(EXIT_STOPPED)
