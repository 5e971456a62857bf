"""The one merge: a config file (or a config, or nothing) and flat options over it → a typed config.

Every command and every function of the Python API builds its config here (:func:`merge`): the CLI's options and the
API's keyword arguments are *flat* (``temperature=2, epochs=1, data_dir=...``), and each flat name sets exactly one
field of the config class, found by walking its sections (:func:`flat_names`). A field is reached by its own name,
or by the name in its ``flat`` metadata where the plain name would be ambiguous (``json_schema_extra={"flat":
"sweep_batch_size"}``: the sweep's batch size beside the engine's). A section that is a discriminated union (a task
run's ``method``, general distillation's ``objective``, the ``student``) contributes the fields of its chosen member
only.
``None`` is "not given": the file's value, else the field's default, stands.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from kdistill.config.base import ConfigBase, one_line
from kdistill.errors import KDistillError

__all__ = ["merge", "flat_names", "deprecated_names", "flat_name", "deprecated_name", "warn_deprecated"]

#: Union sections chosen by a flat option of their own name (its ``name``): a task run's method, general distillation's
#: objective.
SELECTED = ("method", "objective")
#: Index key prefix of the deprecated flat names (never a field name).
DEPRECATED = "deprecated:"


def _model(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _members(field) -> dict[str, type[BaseModel]] | None:
    """The members of a discriminated-union field by their discriminator value (None: not such a field)."""
    disc = field.discriminator
    if not isinstance(disc, str):
        return None
    args = typing.get_args(field.annotation) if typing.get_origin(field.annotation) in (
        typing.Union, types.UnionType) else ()
    return {m.model_fields[disc].default: m for m in args if _model(m)} or None


def flat_name(field, name: str) -> str:
    """The flat option name of a config field: its ``flat`` metadata (``exit_every``), else the field's name."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return str(extra.get("flat", name))


def deprecated_name(field) -> str | None:
    """The flat name a field had before it was renamed (a deprecated alias, kept for one release), or None."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return extra.get("was")


def warn_deprecated(old: str, new: str, where: str = "") -> None:
    """The one warning line of a deprecated spelling (``--max-drop`` → ``--max-int8-drop``)."""
    import logging

    logging.getLogger("kdistill").warning("option %s is deprecated: use %s%s", old, new, f" ({where})" if where else "")


def _walk(cls: type[BaseModel], data: dict[str, Any], prefix: tuple[str, ...], out: dict[str, list[tuple[str, ...]]],
          *, student: bool) -> None:
    for name, field in cls.model_fields.items():
        sub = data.get(name) if isinstance(data.get(name), dict) else {}
        members = _members(field)
        if members is not None:
            if name == "student" and not student:
                continue
            disc = field.discriminator
            default = field.get_default(call_default_factory=True)
            chosen = sub.get(disc, getattr(default, disc, None))
            member = members.get(chosen)
            if member is not None:
                _walk(member, sub, (*prefix, name), out, student=student)
            continue
        model = _model(field.annotation)
        if model is not None and issubclass(model, ConfigBase):
            _walk(model, sub, (*prefix, name), out, student=student)
            continue
        if name in ("kind",) or (prefix and name == "name"):
            continue  # discriminators are chosen by the section's own key
        if typing.get_origin(field.annotation) is typing.Literal and len(typing.get_args(field.annotation)) == 1:
            continue  # a constant: the kind of run a file holds (method: chain ...), not an option
        out.setdefault(flat_name(field, name), []).append((*prefix, name))
        if deprecated_name(field):
            out.setdefault(f"{DEPRECATED}{deprecated_name(field)}", []).append((*prefix, name, flat_name(field, name)))


def flat_names(cls: type[BaseModel], data: dict[str, Any] | None = None, *,
               student: bool = True) -> dict[str, tuple[str, ...]]:
    """Flat option name → the path of the one field it sets in ``cls`` (with ``data``'s union members chosen).

    Raises:
        ValueError: a flat name that reaches two fields (a declaration error: give one a ``flat`` name).
    """
    found: dict[str, list[tuple[str, ...]]] = {}
    _walk(cls, data or {}, (), found, student=student)
    found = {k: v for k, v in found.items() if not k.startswith(DEPRECATED)}
    clash = {k: v for k, v in found.items() if len(v) > 1}
    if clash:
        raise ValueError(f"{cls.__name__}: flat names reach several fields: "
                         + "; ".join(f"{k}: {', '.join('.'.join(p) for p in v)}" for k, v in clash.items()))
    return {k: v[0] for k, v in found.items()}


def deprecated_names(cls: type[BaseModel], data: dict[str, Any] | None = None) -> dict[str, str]:
    """Old flat name → today's, for the renamed fields ``cls`` reaches (``schedule`` → ``exit_schedule`` ...)."""
    found: dict[str, list[tuple[str, ...]]] = {}
    _walk(cls, data or {}, (), found, student=True)
    return {k[len(DEPRECATED):]: v[0][-1] for k, v in found.items() if k.startswith(DEPRECATED)}


def _rename_deprecated(cls: type[BaseModel], data: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` with deprecated flat names replaced by today's, each said once in a warning line."""
    old = {k: v for k, v in deprecated_names(cls, data).items() if k in given}
    for was, now in old.items():
        if now in given:
            raise KDistillError(f"option {was} is the deprecated spelling of {now}: give only {now}")
        warn_deprecated(was, now, cls.__name__)
        given[now] = given.pop(was)
    return given


def _union_path(cls: type[BaseModel], name: str) -> tuple[str, ...] | None:
    """Where the union section ``name`` (``student``, ``method``) sits: ``(name,)``, or ``("run", name)`` in a
    compress or chain config (None: the class has none)."""
    field = cls.model_fields.get(name)
    if field is not None and _members(field):
        return (name,)
    run = _model(cls.model_fields["run"].annotation) if "run" in cls.model_fields else None
    inner = _union_path(run, name) if run is not None else None
    return None if inner is None else ("run", *inner)


def _owner(cls: type[BaseModel], path: tuple[str, ...]) -> type[BaseModel]:
    """The config class that holds the last field of ``path`` (``RunConfig`` for ``("run", "student")``)."""
    for key in path[:-1]:
        cls = _model(cls.model_fields[key].annotation)
    return cls


def _at(data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key in path:
        data = data.setdefault(key, {})
    return data


def _defaults(cls: type[BaseModel]) -> dict[str, Any]:
    """The sections ``cls`` declares with defaults of its own (general distillation's 1-epoch ``train``, born-again's
    ``distill`` at alpha 0 and T 1 ...): only those values, as set in the declaration, so options given without a base
    update them rather than the section class's defaults, and a config built from options alone still tells what was
    set from what was defaulted (``model_dump(exclude_unset=True)``: what a resume compares)."""
    out = {}
    for name, field in cls.model_fields.items():
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            values = default.model_dump(exclude_unset=True)
            if values and isinstance(field.discriminator, str):
                values = {field.discriminator: getattr(default, field.discriminator), **values}
            if values:
                out[name] = values
    return out


def _read(base: Any, cls: type[BaseModel]) -> tuple[dict[str, Any], str | None]:
    """The base's settings as a plain dict (today's layout) and the file it came from."""
    if base is None:
        return _defaults(cls), None
    if isinstance(base, BaseModel):
        return base.model_dump(), None
    if isinstance(base, dict):
        return dict(base), None
    from kdistill.config.files import load_config

    return load_config(base, cls).model_dump(), str(base)


def merge(cls: type[BaseModel], base: Any = None, /, **given: Any):
    """A ``cls`` config: ``base`` (None, a config file's path, a config, or a dict), the given flat options over it.

    Flat options: any name of :func:`flat_names` (``temperature``, ``epochs``, ``data_dir``, ``exit_every`` ...);
    ``method`` (a task run: the method's name; another method's settings do not carry over), ``student`` (a kind or a
    pretrained model's path; another student's fields do not carry over, its own fields alone update the base's);
    ``task`` (``data.task``; your own ``train_file``/``validation_file`` given without it means no task). ``None`` is
    not given. A base from a file must name an output folder, or one must be given.

    Raises:
        KDistillError: an unreadable or invalid file, an option that no field of ``cls`` takes (or not for the chosen
            method or student kind), an invalid value, no output folder (one line each).
    """
    from kdistill.config.students import STUDENT_KINDS, student_config

    data, source = _read(base, cls)
    where = f"--config {source}" if source else "options"
    given = {k: v for k, v in given.items() if v is not None}
    for section in SELECTED:  # the method / objective first: it decides which settings the options reach
        path = _union_path(cls, section)
        if path is None:
            continue
        parent = _at(data, path[:-1])
        old = parent.get(section) if isinstance(parent.get(section), dict) else {}
        name = str(given.pop(section, None) or old.get("name") or _owner(cls, path).model_fields[section].default.name)
        if old.get("name") != name:
            parent[section] = {"name": name}  # another one: the base's settings of the old one do not carry over
    spath = _union_path(cls, "student")
    student = given.pop("student", None)
    if student is not None and spath is None and "student" in cls.model_fields:  # a pretrained model's path
        data["student"] = {"kind": "pretrained", "path": str(student)}
        student = None
    given = _rename_deprecated(cls, data, given)
    names = flat_names(cls, data, student=False)
    if (given.get("train_file") or given.get("validation_file")) and "task" not in given and "task" in names:
        given["task"] = ...  # your own files without a task: no task (set below, after the None filter)
    sopts: dict[str, Any] = {}
    unknown = []
    student_fields = {f for k in STUDENT_KINDS.values() for f in k.model_fields} - {"kind", "path"}
    for key, value in given.items():
        path = names.get(key)
        if path is not None:
            _at(data, path[:-1])[path[-1]] = None if value is ... else value
        elif spath is not None and key in student_fields:
            sopts[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise KDistillError(_unknown(cls, data, sorted(unknown)))
    if spath is not None and (student is not None or sopts):
        parent = _at(data, spath[:-1])
        old = dict(parent.get(spath[-1]) or _defaults(_owner(cls, spath)).get("student") or {})
        kind = old.pop("kind", None) or "layers-from-teacher"
        if student is not None and str(student) != (old.get("path") if kind == "pretrained" else kind):
            old, kind = {}, str(student)  # another student: the base's student fields do not carry over
        elif kind == "pretrained":
            kind = old.pop("path")
        parent[spath[-1]] = student_config(kind, **{**old, **sopts}).model_dump()
    try:
        cfg = cls.model_validate(data)
    except ValidationError as err:
        raise _option_error(err, names, given) or KDistillError(one_line(err, where)) from None
    out = names.get("output_dir")
    if source is not None and out is not None and _value(cfg, out) in (None, "", "."):
        raise KDistillError(f"--config {source} names no output folder: give one (-o / output_dir)")
    return cfg


def _option_error(err: ValidationError, names: dict[str, tuple[str, ...]], given: dict[str, Any]):
    """An :class:`~kdistill.errors.OptionError` naming the given option whose value the first error is about (None:
    the error is elsewhere, e.g. in the file)."""
    from kdistill.config.base import UNION_TAGS
    from kdistill.errors import OptionError

    first = err.errors()[0]
    loc = tuple(str(x) for x in first.get("loc", ()) if not (isinstance(x, str) and x in UNION_TAGS))
    for key in given:
        if names.get(key) == loc or (key in loc[-1:] and loc[:1] in (("student",), ("run",))):
            return OptionError(key, first["msg"], first.get("input"))
    return None


def _value(cfg: BaseModel, path: tuple[str, ...]) -> Any:
    for key in path:
        cfg = getattr(cfg, key)
    return cfg


def _unknown(cls: type[BaseModel], data: dict[str, Any], keys: list[str]) -> str:
    """The one-line error for options ``cls`` does not take: those of another method / objective say which."""
    from kdistill.config.methods import GENERAL_OBJECTIVES, METHODS

    for section, members in (("method", METHODS), ("objective", GENERAL_OBJECTIVES)):
        path = _union_path(cls, section)
        if path is None:
            continue
        others = {k: [n for n, m in members.items() if k in m.model_fields] for k in keys}
        if all(others.values()):
            return (f"option(s) {', '.join(keys)} do not apply to {section} '{_at(data, path).get('name')}' (they are "
                    + "; ".join(f"{k}: {', '.join(v)}" for k, v in others.items()) + ")")
    return f"unknown option(s): {', '.join(keys)}"
