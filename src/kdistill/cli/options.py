"""Command-line options generated from the typed configs (:mod:`kdistill.config`), in the spirit of transformers'
``HfArgumentParser``: a field's type, help text and shown default come from its declaration; only the spelling of a
flag that is not ``--field-name`` is written here (:data:`FLAGS`).

A command takes a group of fields with :func:`config_options`, a decorator that adds one typer option per field to
the command's signature (default ``None`` = not given, so a ``--config`` file or the config's own default decides)
and hands the given values to the command, parsed, as one dict (``None`` values dropped)::

    @app.command()
    @config_options("data", DataConfig, DATA_FIELDS)
    def evaluate(model: str = ..., data: dict = None): ...

Types: ``Literal`` → text that the config checks (its choices in the help, a bad one a one-line error); ``bool`` → a flag (``--x``, or ``--x/--no-x`` spelled so in :data:`FLAGS`); ``list[str]`` → comma-separated text; ``int``/``float``/
``str`` as they are (non-finite floats are refused for every command by :mod:`kdistill.cli.common`).
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from typing import Any, Callable, Literal, Optional, Sequence

import typer

from kdistill.config.merge import deprecated_name, flat_name

__all__ = ["DATA_SOURCE", "FLAGS", "config_options", "field_help", "flat_name", "option_parameter"]

#: Flag spellings other than ``--field-name`` (the first is the main one; the rest are aliases).
FLAGS: dict[str, tuple[str, ...]] = {
    "learning_rate": ("--learning-rate", "--lr"),
    "temperature": ("--temperature", "-T"),
    "cache_teacher": ("--cache-teacher/--no-cache-teacher",),
    "intermediate_learning_rate": ("--intermediate-lr",),
}

#: The :class:`~kdistill.config.DataConfig` fields that say where a task's data is and how your own files are read:
#: every command that loads task data takes them.
DATA_SOURCE = ("data_dir", "dataset", "train_file", "validation_file", "text_columns", "label_column", "labels", "problem_type",
               "label_separator", "label_names", "drop_unlabeled")
#: Question answering's windows and answer search (DataConfig), beside --max-length wherever it is taken.
QA_WINDOWS = ("doc_stride", "max_answer_length", "n_best", "null_threshold")


def _comma_list(text: str | None) -> list[str] | None:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """``(inner type, optional)`` of ``X | None`` / ``Optional[X]``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
        if str in args:  # e.g. a file name or the names themselves (Python): a file name on the command line
            return str, True
        return annotation, True
    return annotation, False


def _class(source):
    return source if isinstance(source, type) else type(source)


def field_help(source, name: str) -> str:
    """The help of field ``name`` of ``source`` (a config class, or an instance whose values are the command's
    defaults, e.g. general distillation's own :class:`~kdistill.config.TrainConfig`): description and default."""
    field = _class(source).model_fields[name]
    text = (field.description or "").strip()
    default = field.get_default(call_default_factory=True) if isinstance(source, type) else getattr(source, name)
    if default is True:
        return f"{text} [default: on]" if text else "[default: on]"
    if default is not None and default != [] and not isinstance(default, bool):
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        text = f"{text} [default: {shown}]" if text else f"[default: {shown}]"
    return text


def option_parameter(source, name: str, *, flags: Sequence[str] | None = None, param: str | None = None,
                     help: str | None = None) -> tuple[inspect.Parameter, Callable[[Any], Any] | None]:
    """The typer option of config field ``name`` of ``source`` (a config class, or an instance holding the command's
    defaults) as an :class:`inspect.Parameter` (default ``None``), and the parser that turns its command-line text into
    the field's value (``None``: the value as typer gives it).

    Raises:
        TypeError: a field type with no command-line form here (a nested model, a dict).
    """
    cls = _class(source)
    field = cls.model_fields[name]
    inner, _ = _unwrap(field.annotation)
    flat = flat_name(field, name)
    flags = tuple(flags or FLAGS.get(flat) or FLAGS.get(name) or (f"--{flat.replace('_', '-')}",))
    parse = None
    if typing.get_origin(inner) is Literal:  # checked by the config: a bad value is its one-line error
        values = typing.get_args(inner)
        annotation: Any = Optional[int] if all(isinstance(v, int) for v in values) else Optional[str]
        choices = " | ".join(map(str, typing.get_args(inner)))
        if help is None and not all(str(c) in (field.description or "") for c in typing.get_args(inner)):
            help = f"{field_help(source, name)} (one of: {choices})"
    elif inner is bool:
        annotation = Optional[bool]
    elif inner in (int, float, str):
        annotation = Optional[inner]
    elif typing.get_origin(inner) is list and typing.get_args(inner)[0] in (int, float):
        cast = typing.get_args(inner)[0]
        annotation, parse = Optional[str], functools.partial(_numbers, what=flags[0], cast=cast)
    elif typing.get_origin(inner) is list:  # text, or a list of choices the config checks
        annotation, parse = Optional[str], _comma_list
    else:
        raise TypeError(f"{cls.__name__}.{name}: no command-line form for {field.annotation!r}")
    option = typer.Option(None, *flags, help=help if help is not None else field_help(source, name))
    return inspect.Parameter(param or flat, inspect.Parameter.KEYWORD_ONLY, default=option,
                             annotation=annotation), parse


def _numbers(text: str, what: str, cast) -> list:
    from kdistill.cli.common import _numbers as parse

    return parse(text, what, cast)


def config_options(group: str, *fields: tuple[Any, Sequence[str]], flags: dict[str, Sequence[str]] | None = None,
                   parsers: dict[str, Callable[[Any], Any]] | None = None, helps: dict[str, str] | None = None):
    """Add an option for each config field of ``fields`` (``(config class or instance, field names)`` pairs; an
    instance gives the command's defaults for the help) to a typer command,
    which receives the given ones as one dict ``group`` (``None`` = not given is dropped), parsed to field values.

    The dict's keys are the fields' flat names (:func:`kdistill.config.flat_names`: ``exit_every``,
    ``teacher_learning_rate``), what :func:`kdistill.config.merge` takes. ``flags``: spellings for this command that
    differ from :data:`FLAGS`; ``parsers``: field → function of the command-line text (e.g. a layer map), beside the
    built-in comma lists; ``helps``: field → this command's help text (where its default differs from the field's).
    """

    def decorate(fn):
        sig = inspect.signature(fn)
        made = _parameters(fields, flags or {}, parsers or {}, helps or {})
        own = [p for p in sig.parameters.values() if p.name != group]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            from kdistill.cli.common import user_errors

            given = {}
            with user_errors():  # a value its parser refuses (e.g. a bad --layer-map) is one line, exit 2
                for name, param, parse in made:
                    value = kwargs.pop(param.name, None)
                    if value is not None:
                        given[name] = parse(value) if parse is not None else value
            return fn(*args, **{group: given}, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=[*own, *(p for _, p, _ in made)])
        return wrapper

    return decorate


def _parameters(fields, flags: dict, parsers: dict, helps: dict) -> list[tuple[str, inspect.Parameter, Any]]:
    """``(flat name, typer parameter, parser)`` per field of ``fields``, and per renamed field its old spelling too
    (hidden, for one release: :func:`kdistill.config.merge` says it is deprecated)."""
    made = []
    for cls, names in fields:
        for n in names:
            param, parse = option_parameter(cls, n, flags=flags.get(n), help=helps.get(n))
            made.append((param.name, param, parsers.get(n, parse)))
            was = deprecated_name(_class(cls).model_fields[n])
            if was:
                old = inspect.Parameter(f"deprecated_{was}", inspect.Parameter.KEYWORD_ONLY, annotation=param.annotation,
                                        default=typer.Option(None, f"--{was.replace('_', '-')}", hidden=True))
                made.append((was, old, parsers.get(n, parse)))
    return made
