"""Self-distillation commands (born-again, early exits; registered on :data:`kdistill.cli.app`).

* ``kdistill early-exit`` — exits on a fine-tuned model, trained by self-distillation, then the threshold sweep;
* ``kdistill exit-sweep`` — the speed–accuracy sweep of a saved early-exit model (chosen on the selection slice);
* ``kdistill born-again`` — born-again students for N generations (Furlanello et al. 2018);
* ``kdistill export-early-exit`` — per-segment ONNX graphs + ONNX Runtime driver, parity-checked.

The logic is in :mod:`kdistill.recipes.self_distill_api`; these functions only parse options and print.
"""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich.console import Console

from kdistill.cli.options import DATA_SOURCE, config_options
from kdistill.config import BornAgainConfig, DataConfig, EarlyExitRunConfig, ExitConfig, SweepConfig
from kdistill.cli.common import app, EXIT_STOPPED, command_args, user_errors

#: The selection split and the data of a self-distillation run.
DATA = (DataConfig, (*DATA_SOURCE, "max_train_samples", "max_eval_samples", "max_length", "select_on",
                     "selection_size", "selection_file"))
#: The sweep's settings (``--sweep-batch-size``: the sweep's batch beside the engine's).
SWEEP = (SweepConfig, ("rules", "entropy_thresholds", "max_prob_thresholds", "patiences", "max_drop", "latency_examples",
                       "latency_rounds", "batch_size", "timed_points"))
#: Engine settings: the defaults of each command's own ``train`` section.
EXIT_TRAIN = EarlyExitRunConfig.model_fields["train"].get_default(call_default_factory=True)
TRAIN_FIELDS = ("epochs", "batch_size", "learning_rate", "eval_steps", "seed")


@app.command("early-exit")
@config_options("options", DATA, (ExitConfig, ("every", "layers", "pooling", "schedule", "temperature", "gold_weight",
                                               "weighting", "final_weight", "dropout")),
                (EXIT_TRAIN, TRAIN_FIELDS), SWEEP,
                (EarlyExitRunConfig, ("run_sweep",)), flags={"run_sweep": ("--sweep/--no-sweep",)},
                helps={"learning_rate": "Default 5e-4 frozen (heads only), 5e-5 joint."})
@command_args("config", "model", "task", "output_dir", "overwrite", "resume", helps={
    "model": "A classifier fine-tuned on the task (the teacher itself or any student, pruned ones too) that gets the "
             "exits; required unless --config names it.",
    "output_dir": "Run directory (the early-exit model, sweep.{json,md,png}); required unless --config names one."})
def early_exit(given: dict, options: Optional[dict] = None) -> None:
    """Early exits trained by self-distillation (each exit learns the final layer's soft targets), then the sweep."""
    from kdistill import api
    from kdistill.reporting.console import print_sweep

    with user_errors():
        res = api.early_exit(**given, **options)
    if res.interrupted:
        Console().print(f"[yellow]stopped[/]; continue with --resume ({res.output_dir})")
        raise typer.Exit(EXIT_STOPPED)
    Console().print(f"early-exit model in {res.output_dir}: full-depth dev "
                    + ", ".join(f"{k} {'n/a' if v is None else f'{v:.4f}'}" for k, v in res.metrics.items()))
    if res.report:
        print_sweep(res.report, f"kdistill early-exit sweep: {res.output_dir}")


@app.command("exit-sweep")
@config_options("options", (DataConfig, (*DATA_SOURCE, "max_eval_samples", "select_on")), SWEEP)
@command_args("model", "task", "output_dir", required=("model",), helps={
    "model": "A saved early-exit model (a `kdistill early-exit` run folder: its data settings and seed are reused).",
    "task": "Default: the run's (else sst2).", "output_dir": "Where sweep.{json,md,png} go (default: the model's folder)."})
def exit_sweep(given: dict, options: Optional[dict] = None, seed: Optional[int] = typer.Option(
        None, "--seed", help="The seed that drew the selection slice (default: the run's).")) -> None:
    """Speed–accuracy sweep of exit rules: dev metric, average exit layer, measured batch-1 / batch-32 latency; the
    fastest setting within --max-exit-drop chosen on the held-out selection slice."""
    from kdistill import api
    from kdistill.reporting.console import print_sweep

    with user_errors():
        rep = api.exit_sweep(**given, seed=seed, **options)
    print_sweep(rep, f"kdistill exit-sweep: {given['model']}")


@app.command("born-again")
@config_options("options", DATA, (BornAgainConfig, ("generations", "ensemble_teacher")),
                (BornAgainConfig.model_fields["distill"].get_default(), ("temperature", "alpha", "kd_loss", "cos_weight")),
                (BornAgainConfig.model_fields["train"].get_default(), TRAIN_FIELDS))
@command_args("config", "teacher", "base", "task", "output_dir", "overwrite", "resume", helps={
    "output_dir": "Folder of gen1/, gen2/ ... and born_again.{json,md}; required unless --config names one.",
    "resume": "Reuse finished generations, resume an interrupted one (more --generations may be added)."})
def born_again(given: dict, options: Optional[dict] = None, report: bool = typer.Option(
        False, "--report/--no-report", help="Each generation's full teacher-vs-student report too (slow).")) -> None:
    """Born-again networks: same-size students from the teacher's pretrained base, generation after generation."""
    from kdistill import api
    from kdistill.reporting.console import print_generations

    options.setdefault("generations", None)  # not given: the file's, else 2
    with user_errors():
        rec = api.born_again(**given, report=report, **options)
    print_generations(rec)
    if rec["interrupted"]:
        raise typer.Exit(EXIT_STOPPED)


@app.command("export-early-exit")
@command_args("model", "output_dir", "overwrite", required=("model", "output_dir"), helps={
    "model": "A saved early-exit model (default rule: its sweep's chosen setting, else its config's).",
    "output_dir": "Folder for segment_*.onnx, early_exit.json, tokenizer and config.",
    "overwrite": "Replace an earlier early-exit export."})
def export_early_exit(given: dict,
                      rule: Optional[str] = typer.Option(None, "--rule", help="none | entropy | max_prob | patience (the "
                                                                              "driver's default)."),
                      threshold: Optional[float] = typer.Option(None, "--threshold", help="entropy / max_prob threshold."),
                      patience: Optional[int] = typer.Option(None, "--patience", help="patience rule's patience.")) -> None:
    """Export an early-exit model to ONNX Runtime as per-segment graphs (embeddings + layers up to each exit, the exit
    head), run by a driver that keeps exiting; parity-checked against PyTorch."""
    from kdistill import api

    with user_errors():
        man = api.export_early_exit(given["model"], given["output_dir"], rule=rule, threshold=threshold,
                                    patience=patience, overwrite=given["overwrite"])
    sys.stdout.write(json.dumps({"output": str(given["output_dir"]), "segments": [s["file"] for s in man["segments"]],
                                 "rule": man["rule"], "parity": man["parity"]}, indent=1) + "\n")
