"""The typed configs document themselves (groundwork of issue 25: the CLI, its help and the docs generated from them).

* every config field that a flag of today's CLI sets (per ``tests/snapshots/cli.json``) has a description, on every
  config class that holds it (the student section is a union of kinds: each kind that has the field);
* ``kdistill config-schema [--kind KIND]`` prints the JSON schema of the ``--config`` file of each kind of run, every
  property described; an unknown kind is one line, exit 2.

Nothing trains and nothing loads a model.
"""

from __future__ import annotations

import json
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
#: all the same, and the fields of ``kdistill.config`` classes they reach (``base.distill.temperature``) are checked.
OTHER_ROOTS = {"search": ("kdistill.search.study", "SearchConfig"),
               "provision": ("kdistill.provision.run", "ProvisionConfig")}
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


def _owners(command: str, path: str) -> list[tuple[type[BaseModel], str]]:
    """``(class, field)`` for each config class that holds the field a snapshot path names.

    A path continues into a field's config class(es) (each kind of a union that has the next name); a field that is
    no config (``train.schedules.temperature``: a dict) ends it. An unknown name is an error, not a skip.
    """
    parts = path.split(".")
    if command in ROOTS:
        classes = [ROOTS[command]]
    elif command in OTHER_ROOTS:
        module, name = OTHER_ROOTS[command]
        classes = [getattr(__import__(module, fromlist=[name]), name)]
    else:
        assert parts[0] in ARGUMENTS, f"{command}: no config class known for '{path}' (add it to ARGUMENTS/ROOTS)"
        classes, parts = [ARGUMENTS[parts[0]]], parts[1:]
    for i, name in enumerate(parts):
        having = [cls for cls in classes if name in cls.model_fields]
        assert having, f"{command}: '{path}': no field '{name}' in {[c.__name__ for c in classes]}"
        inner = [m for cls in having for m in _models(cls.model_fields[name].annotation)]
        if i == len(parts) - 1 or not inner:
            return [(cls, name) for cls in having]
        classes = inner
    raise AssertionError(path)


def _mapped_fields() -> dict[tuple[type[BaseModel], str], set[str]]:
    """Every ``(config class, field)`` that some flag sets, with the flags (``command --flag``) that reach it."""
    snap = json.loads(SNAPSHOT.read_text())
    out: dict[tuple[type[BaseModel], str], set[str]] = {}
    for command, c in snap["commands"].items():
        for flag, option in c.get("options", {}).items():
            for outcome in option["contexts"].values():
                for path in outcome.get("fields", []):
                    if path.startswith(("call:", "effect:")):
                        continue
                    for owner in _owners(command, path):
                        out.setdefault(owner, set()).add(f"{command} {flag}")
    return out


def test_every_field_a_flag_sets_has_a_description():
    mapped = _mapped_fields()
    ours = {k: v for k, v in mapped.items() if k[0].__module__.startswith("kdistill.config.")}
    assert len(ours) > 100, sorted(f"{c.__name__}.{f}" for c, f in ours)  # the walk reached the configs
    for cls in (K.LayersFromTeacherStudent, K.SpecStudent, K.BiLSTMStudent, K.PretrainedStudent):
        assert any(c is cls for c, _ in ours), cls  # every student kind reached through the union
    missing = sorted(f"{cls.__name__}.{name} ({', '.join(sorted(flags))})" for (cls, name), flags in ours.items()
                     if not (cls.model_fields[name].description or "").strip())
    assert not missing, "config fields set by a flag without a description:\n  " + "\n  ".join(missing)


def test_config_classes_have_docstrings():
    import inspect

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
