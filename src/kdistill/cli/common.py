"""What every ``kdistill`` command shares: the typer :data:`app`, the error/exit conventions, option definitions and
small option parsers (the commands live in :mod:`kdistill.cli.commands`, :mod:`kdistill.cli.search`,
:mod:`kdistill.cli.self_distill`)."""

from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path
from typing import Callable, Optional

import typer
from typer.core import TyperGroup
from rich.console import Console

from pydantic import ValidationError

from kdistill.errors import KDistillError

#: What the CLI prints as one line (exit 2): the project's own errors and invalid options. Anything else is a bug
#: and keeps its traceback.
USER_ERRORS = (KDistillError, ValidationError)
EXIT_BAD_INPUT = 2  # one-line error, nothing trained
EXIT_STOPPED = 3  # stopped early (Ctrl-C, SIGTERM, a callback): resumable with --resume
EXIT_INTERRUPTED = 130  # Ctrl-C before training started (nothing to resume)

console = Console(stderr=True, soft_wrap=True)  # errors stay on one line


def _is_float_option(param) -> bool:
    """Whether a command's option takes floats (typer's own parameters, or click's FLOAT type on older typer)."""
    import click

    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if annotation is not None:
        from typing import get_args

        return annotation is float or float in get_args(annotation)
    return isinstance(getattr(param, "type", None), click.types.FloatParamType)


def _finite(callback):
    """A parameter callback that refuses NaN / ±inf in one line naming the option (exit 2), then runs ``callback``."""

    def check(ctx, param, value):
        for v in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(v, float) and not math.isfinite(v):
                name = next((o for o in param.opts if o.startswith("--")), param.opts[0] if param.opts else param.name)
                console.print(f"[bold red]error:[/] {name}: must be a finite number (got {v}); see --help", markup=True,
                              highlight=False)
                raise typer.Exit(EXIT_BAD_INPUT)
        return callback(ctx, param, value) if callback is not None else value

    return check


class _FiniteGroup(TyperGroup):
    """The app's command group: every float option of every command refuses ``nan`` / ``inf`` (one line, exit 2)
    before the command runs, whether or not the value later passes through a pydantic config."""

    def __init__(self, *args, commands=None, **kwargs):
        for command in (commands or {}).values():
            for param in getattr(command, "params", ()):
                if _is_float_option(param):
                    param.callback = _finite(param.callback)
        super().__init__(*args, commands=commands, **kwargs)


app = typer.Typer(help="Knowledge distillation for BERT-family models: teacher -> small student, measured.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False, cls=_FiniteGroup)


def _ints(text: Optional[str]):
    if not text:
        return None
    if text.strip() == "importance":  # --layers importance: chosen by head importance
        return "importance"
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise KDistillError(f"--layers takes comma-separated integers such as 0,2,5; got '{text}'") from None


def _strs(text: Optional[str]) -> Optional[list[str]]:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def _given(**opts):
    """The options the user set (``None`` = keep the config's default)."""
    return {k: v for k, v in opts.items() if v is not None}


def _layer_map(text: Optional[str]):
    if text is None:
        return None
    from kdistill.objectives.layer_map import parse_layer_map

    return parse_layer_map(text)


def _task(task: Optional[str], train_file: Optional[str], validation_file: Optional[str]) -> Optional[str]:
    """``--task`` as given; without it: your own files have no task (labels inferred), GLUE data means sst2 (commands
    that read no config file: the others leave it to :func:`kdistill.config.merge`)."""
    if task is not None:
        return task
    return None if (train_file or validation_file) else "sst2"


def _threads(n: Optional[int]) -> None:
    if n is None:
        return
    import torch

    torch.set_num_threads(n)


def _setup_logging() -> None:
    """kdistill's own INFO messages (e.g. inferred labels) on stderr, one line each."""
    import logging

    class _Stderr(logging.StreamHandler):
        """Writes to whatever ``sys.stderr`` is at the time of the message (it is swapped under test runners)."""

        _kdistill = True

        @property
        def stream(self):
            return sys.stderr

        @stream.setter
        def stream(self, value):
            pass

    log = logging.getLogger("kdistill")
    if not any(getattr(h, "_kdistill", False) for h in log.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("kdistill: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def _interrupted() -> None:
    console.print("[bold yellow]interrupted[/] before a checkpoint was written; nothing to resume", markup=True)
    raise typer.Exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def user_errors(*, resume_hint: str | None = None, cleanup: Callable[[], None] | None = None):
    """The CLI's one error wrapper around a command's work.

    A user error (:class:`~kdistill.errors.KDistillError`, an invalid option) is printed as one line, exit 2; Ctrl-C
    exits 130 (nothing to resume), or 3 with ``resume_hint`` (what continues the stopped work). ``cleanup`` runs
    first in both cases (e.g. a live display to stop). Anything else is a bug and keeps its traceback.
    """
    try:
        yield
    except USER_ERRORS as err:
        if cleanup is not None:
            cleanup()
        _fail(err)
    except KeyboardInterrupt:
        if cleanup is not None:
            cleanup()
        if resume_hint is None:
            _interrupted()
        console.print(f"[bold yellow]interrupted[/]; {resume_hint}", markup=True)
        raise typer.Exit(EXIT_STOPPED)


def _numbers(text: Optional[str], what: str, cast=float) -> Optional[list]:
    """``"0.5,0.25"`` → ``[0.5, 0.25]`` (``cast`` each; None when not given); a one-line error naming the option
    ``what`` otherwise."""
    if not text:
        return None
    try:
        return [cast(x) for x in text.replace(" ", "").split(",") if x != ""]
    except ValueError:
        kind, example = ("integers", "2,4") if cast is int else ("numbers", "0.5,0.25")
        raise KDistillError(f"{what} takes comma-separated {kind} such as {example}; got '{text}'") from None




def _start(num_threads: Optional[int]) -> None:
    """Every command's first step: logging, then torch's CPU threads (``--num-threads``)."""
    _setup_logging()
    _threads(num_threads)


def _run_or_print(print_config: bool, make_config, run, *args, run_only: Optional[dict] = None, **kwargs):
    """``run(*args, **kwargs, **run_only)`` inside the one error wrapper; with ``--print-config``, the effective config
    ``make_config(*args, **kwargs)`` printed instead, nothing run (returns None)."""
    with user_errors():
        if print_config:
            return _print_config(make_config(*args, **kwargs))
        return run(*args, **kwargs, **(run_only or {}))


def _print_config(cfg) -> None:
    """``--print-config``: the effective config as JSON on stdout (the schema of ``kdistill config-schema``)."""
    sys.stdout.write(cfg.model_dump_json(indent=1) + "\n")


def _fail(err: Exception) -> None:
    from kdistill.errors import OptionError

    if isinstance(err, OptionError):  # a value given on the command line: named by its flag
        err = f"--{err.option.replace('_', '-')}: {err.reason} (got {err.value!r}); see --help"
    elif isinstance(err, ValidationError):  # one line: the option and what it accepts
        first = err.errors()[0]
        option = "--" + str(first["loc"][-1]).replace("_", "-") if first.get("loc") else "an option"
        err = f"{option}: {first['msg']} (got {first.get('input')!r}); see --help"
    console.print(f"[bold red]error:[/] {err}", markup=True, highlight=False)
    raise typer.Exit(EXIT_BAD_INPUT)


def _print_result(res, title: str = "kdistill", exit_on_stop: bool = True) -> None:
    """The run's table (:func:`kdistill.reporting.console.print_run`); a stopped run exits with 3 (resumable)."""
    from kdistill.reporting.console import print_run

    print_run(res, title)
    if res.interrupted and exit_on_stop:
        raise typer.Exit(EXIT_STOPPED)


# Shared option declarations --------------------------------------------------------------
ThreadsOpt = typer.Option(None, "--num-threads", min=1, help="torch CPU threads (default: torch's choice, i.e. OMP_NUM_THREADS or the cores); recorded in the report.")
ScheduleOpt = typer.Option(None, "--schedule", help="KEY=KIND:START[:END], repeatable: temperature, alpha or a loss term's weight (cos, attn, hidden ...) as a function of progress, e.g. temperature=linear:4:1, alpha=cosine:0.9:0.1 (kinds: constant, linear, cosine).")


def _schedules(items: Optional[list[str]]) -> Optional[dict[str, str]]:
    """``["temperature=linear:4:1", ...]`` → ``{"temperature": "linear:4:1"}`` (None when none given)."""
    if not items:
        return None
    out = {}
    for item in items:
        key, sep, spec = item.partition("=")
        if not sep or not key.strip() or not spec.strip():
            raise typer.BadParameter(f"'{item}': write KEY=KIND:START[:END], e.g. temperature=linear:4:1",
                                     param_hint="--schedule")
        out[key.strip()] = spec.strip()
    return out


# Command arguments that are no config field ---------------------------------------------------------------------
#: name → (annotation, flags, help, default, parser): what a command takes besides its config fields (the API's own
#: arguments), declared once; a command names the ones it takes (:func:`command_args`), with its own help if needed.
ARGS: dict[str, tuple] = {
    "config": (Optional[Path], ("--config",), "A YAML/JSON run config (e.g. a run's kdistill_run.json, or the best "
               "config of `kdistill search`); options given here replace its values; unknown keys are an error.", None,
               None),
    "teacher": (Optional[str], ("--teacher",), "Teacher fine-tuned on the task (directory or hub id); required unless "
                "--config names it.", None, None),
    "model": (Optional[str], ("--model",), "Saved model directory or hub id.", None, None),
    "task": (Optional[str], ("--task",), "GLUE task (cola sst2 mrpc stsb qqp mnli qnli rte wnli); default sst2, or "
             "none with --train-file/--validation-file (labels inferred from train, or --labels).", None, None),
    "student": (Optional[str], ("--student",), "layers-from-teacher (default) | spec | bilstm (Tang et al. 2019) | PATH "
                "of a pretrained student.", None, None),
    "layers": (Optional[str], ("--layers",), "Teacher layers to copy, e.g. 0,2,5 (default: every other, first and last "
               "kept).", None, "_ints"),
    "method": (Optional[str], ("--method",), "kd (default; soft targets, Hinton 2015) | tinybert (layer-wise, two "
               "steps, Jiao 2020).", None, None),
    "text_files": (Optional[list[str]], ("--text-file",), "Unlabeled text, one passage per line (repeat for several "
                   "files; .gz ok).", None, None),
    "output_dir": (Optional[Path], ("--output", "-o"), "Run directory (required unless --config names one).", None, None),
    "overwrite": (bool, ("--overwrite",), "Replace a non-empty output directory (only one a kdistill run made).", False,
                  None),
    "resume": (bool, ("--resume",), "Continue from OUTPUT/checkpoint (a run stopped or killed).", False, None),
    "latency_runs": (int, ("--latency-runs",), "Timed batch-1 runs per model in the report.", 100, None),
    "base": (Optional[str], ("--base",), "The pretrained model the teacher was fine-tuned from (same architecture): "
             "every generation starts from it.", None, None),
    "print_config": (bool, ("--print-config",), "Print the effective config (a --config file and the options over it, "
                     "every default filled in) as JSON and exit; nothing is run or written.", False, None),
}


def command_args(*names: str, helps: dict[str, str] | None = None, required: tuple[str, ...] = ()):
    """Add ``--num-threads`` and the :data:`ARGS` ``names`` to a typer command, which receives them as one dict
    ``given`` (parsed, e.g. ``--layers`` to a list), after the threads are set and logging is on (:func:`_start`).

    ``helps``: this command's help of an argument; ``required``: arguments that must be given (no default).
    """
    import functools
    import inspect

    def decorate(fn):
        sig = inspect.signature(fn)
        made = [inspect.Parameter("num_threads", inspect.Parameter.KEYWORD_ONLY, default=ThreadsOpt,
                                  annotation=Optional[int])]
        for n in names:
            annotation, flags, text, default, _ = ARGS[n]
            option = typer.Option(... if n in required else default, *flags, help=(helps or {}).get(n, text))
            made.append(inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation))

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            _start(kwargs.pop("num_threads", None))
            base = {n: kwargs.pop(n) for n in names}
            with user_errors():  # a value its parser refuses (e.g. --layers a,b) is one line
                for n in names:
                    parse = ARGS[n][4]
                    if parse and base[n] is not None:
                        base[n] = globals()[parse](base[n])
            return fn(*args, given=base, **kwargs)

        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in sig.parameters.values() if p.name != "given"]
        wrapper.__signature__ = sig.replace(parameters=[*made, *own])
        return wrapper

    return decorate
