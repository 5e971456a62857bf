"""The typed configs document themselves (groundwork of issue 25: the CLI, its help and the docs generated from them).

* every config field that a flag of today's CLI sets (per ``tests/snapshots/cli.json``) has a description, on every
  config class that holds it (the student section is a union of kinds: each kind that has the field) — the classes
  of ``kdistill.config`` and those of ``kdistill search`` / ``kdistill provision`` (``SearchConfig``, its
  ``SearchSpace`` and ``ParamRange``, ``ProvisionConfig``; their ``base.*`` paths lead into the run config classes);
* every field of the search and provisioning configs has a description, flag or no flag, and every such class a
  docstring;
* ``kdistill config-schema [--kind KIND]`` prints the JSON schema of the ``--config`` file of each kind of run, every
  property described; an unknown kind is one line, exit 2.

Nothing trains and nothing loads a model.
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import json
import pkgutil
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

import kdistill.config as K
from kdistill.cli import app

SNAPSHOT = Path(__file__).parent / "snapshots" / "cli.json"
#: The config whose fields are a command's bare snapshot paths (the ``root`` of make_cli_snapshot's hook).
ROOTS: dict[str, type[BaseModel]] = {
    "distill": K.RunConfig, "finetune": K.RunConfig, "run": K.ChainConfig, "compress": K.CompressConfig,
    "general-distill": K.GeneralDistillConfig, "fit-mlm-head": K.MlmHeadConfig,
    "early-exit": K.EarlyExitRunConfig, "born-again": K.BornAgainConfig,
}
#: Commands whose config lives outside ``kdistill.config`` (its fields are another module's); their paths are walked
#: all the same, into their own classes (``space.params.temperature.high``) and the ``kdistill.config`` classes they
#: reach (``base.distill.temperature``), and every field reached is checked.
OTHER_ROOTS = {"search": ("kdistill.search.study", "SearchConfig"),
               "provision": ("kdistill.provision.run", "ProvisionConfig")}
#: The packages of the configs outside ``kdistill.config`` (every pydantic class defined in their modules).
OTHER_PACKAGES = ("kdistill.search", "kdistill.provision")
#: Where the config classes whose fields the flag check covers are defined.
DOCUMENTED = ("kdistill.config.", *(f"{p}." for p in OTHER_PACKAGES))
#: Commands without a root config: a path starts with the name of a pydantic argument of the engine call.
ARGUMENTS: dict[str, type[BaseModel]] = {"data": K.DataConfig, "sweep": K.SweepConfig}
KINDS = [*K.FILE_KINDS, "compress"]

runner = CliRunner()


def _models(annotation) -> list[type[BaseModel]]:
    """The config classes an annotation holds (``X | None``, a discriminated union, ``Annotated[...]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    return []


def _dict_values(annotation) -> list[type[BaseModel]]:
    """The config classes of a mapping's values (``dict[str, ParamRange]``, also ``| None``); [] for any other."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _dict_values(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _dict_values(arg)]
    if isinstance(origin, type) and issubclass(origin, collections.abc.Mapping):
        args = typing.get_args(annotation)
        return _models(args[1]) if len(args) == 2 else []
    return []


def _owners(command: str, path: str) -> list[tuple[type[BaseModel], str]]:
    """``(class, field)`` for each config class that holds the field a snapshot path names.

    A path continues into a field's config class(es) (each kind of a union that has the next name); a mapping of
    configs (``space.params``: name -> ``ParamRange``) continues past its key into the value class
    (``space.params.temperature.high``), and a path that ends at a key names the mapping field; a field that is no
    config (``train.schedules.temperature``: a dict of strings) ends it. An unknown name is an error, not a skip.
    """
    parts = path.split(".")
    if command in ROOTS:
        classes = [ROOTS[command]]
    elif command in OTHER_ROOTS:
        classes = [_other_root(command)]
    else:
        assert parts[0] in ARGUMENTS, f"{command}: no config class known for '{path}' (add it to ARGUMENTS/ROOTS)"
        classes, parts = [ARGUMENTS[parts[0]]], parts[1:]
    i = 0
    while i < len(parts):
        name = parts[i]
        having = [cls for cls in classes if name in cls.model_fields]
        assert having, f"{command}: '{path}': no field '{name}' in {[c.__name__ for c in classes]}"
        annotations = [cls.model_fields[name].annotation for cls in having]
        inner = [m for a in annotations for m in _models(a)]
        values = [] if inner else [m for a in annotations for m in _dict_values(a)]
        if values and i + 2 < len(parts):  # NAME.KEY.FIELD: past the key into the mapping's value class
            classes, i = values, i + 2
            continue
        if i == len(parts) - 1 or not inner:
            return [(cls, name) for cls in having]
        classes, i = inner, i + 1
    raise AssertionError(path)


def _mapped_fields() -> dict[tuple[type[BaseModel], str], set[str]]:
    """Every ``(config class, field)`` that some flag sets, with the flags (``command --flag``) that reach it."""
    snap = json.loads(SNAPSHOT.read_text())
    moves = _snapshot_test().FIELD_MOVES  # paths of today's configs (the snapshot keeps main's)
    move = _snapshot_test()._generator()._move
    out: dict[tuple[type[BaseModel], str], set[str]] = {}
    for command, c in snap["commands"].items():
        for flag, option in c.get("options", {}).items():
            for outcome in option["contexts"].values():
                for path in outcome.get("fields", []):
                    if path.startswith(("call:", "effect:")):
                        continue
                    for owner in _owners(command, move(path, command, moves)):
                        out.setdefault(owner, set()).add(f"{command} {flag}")
    return out


def _snapshot_test():
    """tests/test_cli_snapshot.py as a module (its FIELD_MOVES; it loads the snapshot generator)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cli_snapshot_test", Path(__file__).parent / "test_cli_snapshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _other_root(command: str) -> type[BaseModel]:
    module, name = OTHER_ROOTS[command]
    return getattr(importlib.import_module(module), name)


def _other_classes() -> list[type[BaseModel]]:
    """Every pydantic class defined in a module of :data:`OTHER_PACKAGES` (the search and provisioning configs)."""
    found: dict[str, type[BaseModel]] = {}
    for package in OTHER_PACKAGES:
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(pkg.__path__, f"{package}."):
            module = importlib.import_module(info.name)
            for name, cls in vars(module).items():
                if inspect.isclass(cls) and cls.__module__ == module.__name__ and issubclass(cls, BaseModel):
                    found[f"{module.__name__}.{name}"] = cls
    return [found[k] for k in sorted(found)]


def test_every_field_a_flag_sets_has_a_description():
    mapped = _mapped_fields()
    ours = {k: v for k, v in mapped.items() if k[0].__module__.startswith(DOCUMENTED)}
    config = [k for k in ours if k[0].__module__.startswith("kdistill.config.")]
    assert len(config) > 100, sorted(f"{c.__name__}.{f}" for c, f in config)  # the walk reached the configs
    for cls in (K.LayersFromTeacherStudent, K.SpecStudent, K.BiLSTMStudent, K.PretrainedStudent):
        assert any(c is cls for c, _ in ours), cls  # every student kind reached through the union
    # search and provision: their own configs (the search space through its mapping of ranges) and, through
    # base.*, the run config classes
    from kdistill.search.space import ParamRange, SearchSpace

    expected = {"search": (_other_root("search"), SearchSpace, ParamRange, K.RunConfig, K.DataConfig,
                           K.KDMethod, K.TinyBertMethod, K.TrainConfig, K.SpecStudent),
                "provision": (_other_root("provision"), K.RunConfig, K.DataConfig, K.KDMethod, K.TrainConfig)}
    for command, classes in expected.items():
        reached = {cls for (cls, _), flags in ours.items() if any(f.split(" ")[0] == command for f in flags)}
        assert not [c.__name__ for c in classes if c not in reached], (command, sorted(c.__name__ for c in reached))
    own = [k for k in ours if k[0].__module__.startswith(tuple(f"{p}." for p in OTHER_PACKAGES))]
    assert len(own) > 25, sorted(f"{c.__name__}.{f}" for c, f in own)  # SearchConfig's and ProvisionConfig's flags
    missing = sorted(f"{cls.__name__}.{name} ({', '.join(sorted(flags))})" for (cls, name), flags in ours.items()
                     if not (cls.model_fields[name].description or "").strip())
    assert not missing, "config fields set by a flag without a description:\n  " + "\n  ".join(missing)


def test_search_and_provision_configs_describe_every_field():
    """Every field of ``SearchConfig``, ``ProvisionConfig`` and the search-space classes (and of any other pydantic
    class of their packages) has a description, whether or not a flag sets it, and every such class a docstring."""
    from kdistill.search.space import ParamRange, SearchSpace

    classes = _other_classes()
    for cls in (_other_root("search"), _other_root("provision"), SearchSpace, ParamRange):
        assert cls in classes, cls  # the walk of the packages found them
    missing = [f"{cls.__module__}.{cls.__name__}.{name}" for cls in classes for name, field in cls.model_fields.items()
               if not (field.description or "").strip()]
    assert not missing, "search/provision config fields without a description:\n  " + "\n  ".join(missing)
    undocumented = [f"{cls.__module__}.{cls.__name__}" for cls in classes if not (cls.__doc__ or "").strip()]
    assert not undocumented, f"classes without a docstring: {undocumented}"


def test_config_classes_have_docstrings():
    from kdistill.config import base, data, methods, run, students, train

    for module in (base, data, students, methods, train, run):
        for name, cls in vars(module).items():
            if inspect.isclass(cls) and cls.__module__ == module.__name__ and issubclass(cls, BaseModel):
                assert (cls.__doc__ or "").strip(), f"{module.__name__}.{name} has no docstring"


def _schema(*args: str) -> tuple[int, dict | None, str]:
    result = runner.invoke(app, ["config-schema", *args])
    try:
        return result.exit_code, json.loads(result.stdout), result.output
    except json.JSONDecodeError:
        return result.exit_code, None, result.output


def _properties(schema: dict) -> dict[str, dict[str, dict]]:
    """``{model title: {property: its schema}}`` for the top-level model and every ``$defs`` model."""
    models = {schema["title"]: schema, **{d.get("title", k): d for k, d in schema.get("$defs", {}).items()}}
    return {title: m.get("properties", {}) for title, m in models.items() if m.get("type") == "object"}


@pytest.mark.parametrize("kind", KINDS)
def test_config_schema_prints_a_described_schema(kind):
    code, schema, output = _schema("--kind", kind)
    assert code == 0, output
    assert schema is not None, f"not JSON: {output[:300]}"
    expected = K.CompressConfig if kind == "compress" else K.FILE_KINDS[kind]
    assert schema == json.loads(json.dumps(expected.model_json_schema())), kind
    props = _properties(schema)
    assert props[expected.__name__], kind
    undescribed = [f"{title}.{name}" for title, fields in props.items() for name, prop in fields.items()
                   if not str(prop.get("description", "")).strip()]
    assert not undescribed, f"{kind}: properties without a description: {undescribed}"


def test_config_schema_defaults_to_kd_and_names_every_kind_in_its_help():
    code, schema, output = _schema()
    assert code == 0, output
    assert schema == _schema("--kind", "kd")[1]
    assert schema["title"] == "RunConfig"
    help_text = " ".join(runner.invoke(app, ["config-schema", "--help"]).output.split())
    for kind in KINDS:
        assert kind in help_text, kind


def test_config_schema_unknown_kind_is_one_line_exit_2():
    result = runner.invoke(app, ["config-schema", "--kind", "nope"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "nope" in lines[0] and all(kind in lines[0] for kind in KINDS), lines[0]
    assert result.stdout.strip() == ""  # nothing that looks like a schema
