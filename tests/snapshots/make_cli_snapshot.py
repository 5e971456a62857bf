"""Snapshot of the ``kdistill`` CLI: every command's flags and what each flag does to the resolved config.

Run by hand from the repository root; it rewrites ``tests/snapshots/cli.json`` (``--check``: compare only;
``--summary``: list the flags that are not exactly one config field)::

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 python tests/snapshots/make_cli_snapshot.py

It prints every difference from the committed file and refuses to write when an effective default changed (unless
``--allow-default-changes``). ``tests/test_cli_snapshot.py`` recomputes the same thing from the live app (with this module's machinery) and
compares it with the committed file. See ``tests/snapshots/README.md`` for when regenerating is legitimate.

How it works (nothing trains, nothing loads a model or data):

* Flags are read from ``typer.main.get_command(kdistill.cli.app)``: spellings, secondary spellings (``--x/--no-x``),
  type, ``multiple``, ``is_flag``, ``required``, ``hidden`` and the declared default.
* Each command is invoked (in-process, typer's CliRunner isolation) with the few arguments it needs
  (:data:`COMMANDS`), while the points where a command hands its built config to the engine (:data:`HOOKS`:
  ``run_recipe``, ``run_chain``, ``run_compress``, ``run_search``, ``run_provision``, ``run_early_exit``, ...) are
  replaced by recorders that ``model_dump()`` the config (and bind the call's other arguments with their defaults)
  and stop the command. ``torch.set_num_threads`` is recorded too (``--num-threads``).
* The recorded call is one nested record: the fields of the config the engine receives at the top (paths
  ``distill.temperature``, ``run.train.seed``, ``base.data.task``), other pydantic arguments under their argument
  name (``data.task`` for ``export_model(data=DataConfig)``), plain arguments of the engine call as ``call:NAME``
  (``call:latency_runs``) and side effects as ``effect:NAME`` (``effect:torch_set_num_threads``).
* Baseline = the record with no optional flag given. For each flag, the command is invoked again with only that flag
  set to a distinct valid value (:func:`probe_values`: ints/floats from a short list, strings from
  :data:`STRING_PROBES`, bools by their other spelling); the paths whose value changed (:func:`diff`: the highest
  level that tells it, e.g. ``student`` when the student kind changes) are the flag's ``fields``; their baseline
  values are its *effective default* (``"<unset>"``: the path does not exist without the flag). This is repeated in each context of the command (``--method tinybert``, ``--student spec`` ...),
  because some flags are routed by another flag; a context's outcome is kept only where it differs from the
  default context's.
* Outcomes per flag and context: ``{"fields", "default", "set", "probe"}``; ``{"no_effect": true}`` (the value
  was accepted and changed nothing recorded); ``{"error": msg}`` (every probe value was refused, e.g. a spec-student
  option with the layers-from-teacher student); ``{"not_probed": why}`` (``--config``).
* Flags among a command's base arguments (``--teacher``, ``-o`` ...) also get ``when_omitted``: the outcome of the
  invocation without them (an error, or the defaults they then take).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any, Iterator

SNAPSHOT = Path(__file__).with_name("cli.json")
UNSET = "<unset>"
TMP = "<TMP>"

# --------------------------------------------------------------------------- where commands hand over their config
#: ``module:attribute`` replaced by a recorder. ``root``: the argument whose config is the command's resolved config
#: (its fields become bare paths); ``alias``: argument renames in paths; ``skip``: arguments not recorded;
#: ``returns``: the recorder returns this instead of stopping the command (a later hook stops it).
HOOKS: dict[str, dict[str, Any]] = {
    # distill, finetune, general-distill, fit-mlm-head (kdistill.api imported these names from kdistill.recipes)
    "kdistill.api:run_recipe": {"root": "cfg", "skip": {"recipe"}},
    "kdistill.api:run_chain": {"root": "cfg"},  # run
    "kdistill.api:run_compress": {"root": "ccfg"},  # compress
    "kdistill.search.study:run_search": {"root": "scfg"},  # search
    "kdistill.provision.run:run_provision": {"root": "pcfg"},  # provision
    "kdistill.recipes.self_distill:run_early_exit": {"root": "cfg"},  # early-exit
    "kdistill.recipes.self_distill:run_born_again": {"root": "cfg"},  # born-again
    "kdistill.selfdistill.sweep:exit_sweep": {"root": None, "alias": {"model_dir": "model"}},  # exit-sweep
    "kdistill.selfdistill.export:export_early_exit": {"root": None, "alias": {"model_dir": "model"}},  # export-early-exit
    "kdistill.students.bilstm:export_bilstm": {"root": None, "alias": {"model_dir": "model"}},  # export-onnx
    "kdistill.data.augment.tinybert_io:run_augment": {"root": None},  # augment (no typed config: its call)
    "kdistill.reporting.compare:make_report": {"root": None},  # report
    "kdistill.deploy.export:export_model": {"root": None},  # export
    # evaluate: the DataConfig it loads, then the model it loads (which stops it)
    "kdistill.data.loading:load_data": {"root": None, "alias": {"cfg": "data"}, "returns": ({}, None)},
    "kdistill.models:load_classifier": {"root": None, "alias": {"name": "model"}, "skip": {"task", "what"}},
}
#: Side effects recorded without stopping the command.
EFFECTS = {"torch:set_num_threads": "effect:torch_set_num_threads"}
#: Arguments never recorded (callbacks).
SKIP_ALWAYS = {"callbacks", "on_trial", "on_candidate", "on_stage"}

# --------------------------------------------------------------------------- how each command is invoked
#: Per command: ``base`` = the arguments it needs (``{TMP}`` is a scratch folder with the files of
#: :func:`_make_scratch`), ``contexts`` = other settings in which every flag is probed again.
SPEC = ["--student", "spec", "--num-layers", "2", "--hidden-size", "64", "--num-heads", "2"]
COMMANDS: dict[str, dict[str, Any]] = {
    "distill": {"base": ["--teacher", "{TMP}/teacher", "-o", "{TMP}/out"],
                "contexts": {"method=tinybert": ["--method", "tinybert"], "student=spec": SPEC,
                             "student=bilstm": ["--student", "bilstm"], "layers=importance": ["--layers", "importance"]}},
    "finetune": {"base": ["-o", "{TMP}/out"]},
    "evaluate": {"base": ["--model", "{TMP}/model"]},
    "report": {"base": ["--teacher", "{TMP}/teacher", "--student", "{TMP}/student"]},
    "export": {"base": ["--model", "{TMP}/model", "-o", "{TMP}/out"]},
    "export-onnx": {"base": ["--model", "{TMP}/model", "-o", "{TMP}/out.onnx"]},
    "run": {"base": ["-o", "{TMP}/out"], "contexts": {"student=bilstm": ["--student", "bilstm"]}},
    "general-distill": {"base": ["--text-file", "{TMP}/text.txt", "-o", "{TMP}/out"],
                        "contexts": {"method=distilbert": ["--method", "distilbert"], "method=minilm": ["--method", "minilm"],
                                     "student=layers-from-teacher": ["--student", "layers-from-teacher"]}},
    "fit-mlm-head": {"base": ["--model", "{TMP}/model", "--text-file", "{TMP}/text.txt", "-o", "{TMP}/out"]},
    "augment": {"base": ["-o", "{TMP}/aug.tsv"]},
    "compress": {"base": ["--teacher", "{TMP}/teacher", "-o", "{TMP}/out"]},
    "search": {"base": ["--teacher", "{TMP}/teacher", "-o", "{TMP}/out"],
               "contexts": {"method=tinybert": ["--method", "tinybert"], "method=finetune": ["--method", "finetune"],
                            "student=spec": SPEC}},
    "provision": {"base": ["--teacher", "{TMP}/teacher", "-o", "{TMP}/out", "--latency-budget", "5"]},
    "early-exit": {"base": ["--model", "{TMP}/model", "-o", "{TMP}/out"],
                   "contexts": {"schedule=joint": ["--exit-schedule", "joint"]}},  # (--schedule before issue 25)
    "exit-sweep": {"base": ["--model", "{TMP}/model"]},
    "born-again": {"base": ["--teacher", "{TMP}/teacher", "--base", "{TMP}/base", "-o", "{TMP}/out"]},
    "export-early-exit": {"base": ["--model", "{TMP}/model", "-o", "{TMP}/out"]},
}

#: Values tried, in order, for string-valued flags (the first that is accepted and changes the record wins).
STRING_PROBES: dict[str, list[str]] = {
    "--teacher": ["{TMP}/teacher2"], "--model": ["{TMP}/model2"], "--base": ["{TMP}/base2"],
    "--student": ["bilstm", "layers-from-teacher", "{TMP}/student2"],
    "--task": ["mrpc", "cola"], "--data-dir": ["{TMP}/glue"],
    "--train-file": ["{TMP}/train.tsv"], "--validation-file": ["{TMP}/dev.tsv"], "--selection-file": ["{TMP}/sel.tsv"],
    "--text-columns": ["sentence"], "--label-column": ["label"], "--labels": ["neg,pos"],
    "--problem-type": ["multi_label", "regression"], "--label-separator": [";"], "--label-names": ["{TMP}/labels.txt"],
    "--layers": ["0,2", "1"], "--word-vectors": ["{TMP}/vectors.txt"], "--embedding-mode": ["frozen"],
    "--augment": ["tang"], "--pair-mode": ["both"], "--method": ["tinybert", "distilbert", "finetune", "kd"],
    "--layer-map": ["last"], "--attention-loss": ["kl"], "--head-rule": ["mean"], "--kd-loss": ["mse"],
    "--hidden-align": ["tokens"], "--mixed-precision": ["bf16"], "--schedule": ["temperature=linear:4:1", "joint", "frozen"],
    "--exit-schedule": ["joint", "frozen"],
    "--lr-scaling": ["linear"], "--select-on": ["dev"], "--deploy": ["int8"], "--quantize": ["dynamic", "static"],
    "--text-file": ["{TMP}/text2.txt"], "--text-dataset": ["wikitext"], "--text-dataset-config": ["wikitext-2-raw-v1"],
    "--text-column": ["content"], "--importance-loss": ["ce"], "--params": ["temperature,alpha"],
    "--param": ["temperature=1:4"], "--objective": ["metric-latency"], "--runtime": ["ort", "eager"],
    "--trial-seed": ["per-trial"], "--pruner": ["halving"], "--rank": ["capacity"], "--kinds": ["layers,spec"],
    "--layer-counts": ["1,2"], "--spec-widths": ["0.5"], "--bilstm-hidden": ["64,150"], "--pooling": ["cls"],
    "--weighting": ["depth"], "--exit-layers": ["2"], "--rules": ["entropy"], "--entropy-thresholds": ["0.1,0.2"],
    "--max-prob-thresholds": ["0.9"], "--patiences": ["1,2"], "--rule": ["entropy"], "--push-to-hub": ["me/model"],
    "--embeddings": ["{TMP}/vectors.txt"], "--mlm": ["{TMP}/mlm"],
}
#: Values tried for path-valued flags.
PATH_PROBES: dict[str, list[str]] = {"--output": ["{TMP}/out2"], "--space": ["{TMP}/space.yaml"],
                                     "--latency-cache": ["{TMP}/cache.json"]}
#: Per command overrides of the above (e.g. augment writes a file whose extension picks the format).
COMMAND_PROBES: dict[tuple[str, str], list[str]] = {("augment", "--output"): ["{TMP}/aug2.jsonl"],
                                                    ("export-onnx", "--output"): ["{TMP}/out2.onnx"]}
INT_PROBES = ["12", "3", "1", "2"]
FLOAT_PROBES = ["0.123", "0.456", "0.9", "1.5"]
#: Flags not probed, and why.
NOT_PROBED = {"--config": "a YAML/JSON config file read as the base of the run (not a field)"}
#: What a flag does where the recorded hand-over does not show it (kept in the snapshot as ``note``).
NOTES: dict[tuple[str, str], str] = {
    ("export", "--push-to-hub"): "not a config field: after export_model returns, api.export uploads the verified "
                                 "folder (kdistill.deploy.export.push_folder); the recorder stops before that",
}


def _make_scratch(root: Path) -> None:
    """The files and folders the base arguments and probe values name (empty: nothing reads them)."""
    for d in ("teacher", "teacher2", "model", "model2", "student", "student2", "base", "base2", "glue", "mlm"):
        (root / d).mkdir(exist_ok=True)
    for f in ("train.tsv", "dev.tsv", "sel.tsv", "text.txt", "text2.txt", "vectors.txt"):
        (root / f).write_text("sentence\tlabel\nfine\t1\n")
    (root / "labels.txt").write_text("neg\npos\n")
    (root / "space.yaml").write_text("params:\n  temperature: {low: 1.0, high: 3.0}\n")


# --------------------------------------------------------------------------- recording
class _Captured(Exception):
    """Raised by a recorder: the command built its config and stops here."""


def _plain(value: Any) -> Any:
    """JSON-able form of a recorded value (pydantic models dumped, paths as strings, tuples as lists)."""
    from enum import Enum

    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return _plain(value.model_dump())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return f"<{type(value).__name__}>"


class Recorder:
    """Installs the recorders of :data:`HOOKS` and :data:`EFFECTS`; ``record`` holds the last invocation's calls."""

    def __init__(self) -> None:
        self.record: dict[str, Any] = {}
        self.hooked: list[str] = []

    def _stub(self, target: str, spec: dict[str, Any], original) -> Any:
        sig = inspect.signature(original)

        def stub(*args: Any, **kwargs: Any) -> Any:
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            self.hooked.append(target)
            for name, value in bound.arguments.items():
                if name in SKIP_ALWAYS or name in spec.get("skip", ()) or callable(value):
                    continue
                from pydantic import BaseModel

                if name == spec.get("root"):
                    self.record.update(_plain(value))
                elif isinstance(value, BaseModel):
                    self.record[spec.get("alias", {}).get(name, name)] = _plain(value)
                else:
                    self.record["call:" + spec.get("alias", {}).get(name, name)] = _plain(value)
            if "returns" in spec:
                return spec["returns"]
            raise _Captured(target)

        return stub

    @contextlib.contextmanager
    def installed(self) -> Iterator["Recorder"]:
        saved = []
        try:
            for target, spec in HOOKS.items():
                module, attr = target.split(":")
                mod = importlib.import_module(module)
                original = getattr(mod, attr)
                saved.append((mod, attr, original))
                setattr(mod, attr, self._stub(target, spec, original))
            for target, key in EFFECTS.items():
                module, attr = target.split(":")
                mod = importlib.import_module(module)
                original = getattr(mod, attr)
                saved.append((mod, attr, original))
                setattr(mod, attr, lambda *a, _key=key, **k: self.record.__setitem__(_key, _plain(a[0] if len(a) == 1 else list(a))))
            yield self
        finally:
            for mod, attr, original in reversed(saved):
                setattr(mod, attr, original)


class Invoker:
    """Runs ``kdistill COMMAND ARGS`` in-process against one click command tree, with the recorders installed."""

    def __init__(self, recorder: Recorder, tmp: Path) -> None:
        import typer
        from typer.testing import CliRunner

        from kdistill.cli import app

        self.cli = typer.main.get_command(app)
        self.runner = CliRunner()
        self.recorder = recorder
        self.tmp = tmp
        self._norm = [(str(tmp), TMP)]
        for key in ("purelib", "platlib"):
            self._norm.append((sysconfig.get_paths()[key], "<site-packages>"))

    def norm(self, value: Any) -> Any:
        if isinstance(value, str):
            for old, new in self._norm:
                value = value.replace(old, new)
            return value
        if isinstance(value, list):
            return [self.norm(v) for v in value]
        if isinstance(value, dict):
            return {k: self.norm(v) for k, v in value.items()}
        return value

    def args(self, tokens: list[str]) -> list[str]:
        return [t.replace("{TMP}", str(self.tmp)) for t in tokens]

    def invoke(self, command: str, tokens: list[str]) -> tuple[dict[str, Any] | None, str]:
        """(record, "") when a recorder stopped the command; (None, the error's last line) otherwise."""
        self.recorder.record, self.recorder.hooked = {}, []
        code, exc = 0, None
        with self.runner.isolation() as streams:
            try:
                self.cli.main(args=[command, *self.args(tokens)], prog_name="kdistill")
            except SystemExit as err:
                code = err.code
            except _Captured:
                pass
            except Exception as err:  # noqa: BLE001  (recorded as the outcome)
                exc = err
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                output = streams[0].getvalue().decode(errors="replace") + streams[1].getvalue().decode(errors="replace")
        stopped = any(not ("returns" in HOOKS[h]) for h in self.recorder.hooked)
        if stopped and exc is None and code in (0, None):
            return self.norm(self.recorder.record), ""
        message = self.norm(_message(output, exc, code))
        return None, message if len(message) <= 240 else message[:237] + "..."


def _message(output: str, exc: BaseException | None, code: Any) -> str:
    """The one line that says why a command did not reach the engine: the exception, the project's ``error:`` line,
    or click's usage error (out of its box)."""
    if exc is not None:
        return f"{type(exc).__name__}: {exc}"
    lines = [l.strip(" \t│╭╮╰╯─") for l in output.splitlines()]
    lines = [l for l in lines if l and l != "Error" and not l.startswith(("Usage:", "Try '"))]
    errors = [l for l in lines if l.startswith("error:")]
    if errors:
        return errors[-1][len("error:"):].strip()
    return lines[-1] if lines else f"exit {code}"


# --------------------------------------------------------------------------- flags
def type_name(param) -> dict[str, Any]:
    """``{"type": INT|FLOAT|STRING|BOOL|PATH|CHOICE, "choices": [...], "min": .., "max": ..}`` of an option, from a
    click ``ParamType`` (click-based typer) or typer's own type descriptor (typer >= 0.2x, vendored click)."""
    out: dict[str, Any] = {}
    ptype = getattr(param, "type", None)
    if ptype is not None and hasattr(ptype, "convert"):
        choices = getattr(ptype, "choices", None)
        cls = type(ptype).__name__
        name = {"IntParamType": "INT", "IntRange": "INT", "FloatParamType": "FLOAT", "FloatRange": "FLOAT",
                "StringParamType": "STRING", "BoolParamType": "BOOL", "Path": "PATH", "Choice": "CHOICE",
                "UnprocessedParamType": "STRING"}.get(cls, cls.upper())
        out["type"] = "CHOICE" if choices else name
        if choices:
            out["choices"] = [str(getattr(c, "value", c)) for c in choices]
        for bound in ("min", "max"):
            if getattr(ptype, bound, None) is not None:
                out[bound] = getattr(ptype, bound)
        return out
    td = param.type_descriptor
    from pathlib import PurePath
    from typing import get_args, get_origin

    ann = td.annotation
    if get_origin(ann) is list:
        ann = get_args(ann)[0]
    if td.is_choice:
        out["type"] = "CHOICE"
        out["choices"] = [str(getattr(c, "value", c)) for c in td.choices]
    elif td.is_path or (isinstance(ann, type) and issubclass(ann, PurePath)):
        out["type"] = "PATH"
    else:
        out["type"] = {int: "INT", float: "FLOAT", str: "STRING", bool: "BOOL"}.get(ann, getattr(ann, "__name__", str(ann)).upper())
    for bound in ("min", "max"):
        if getattr(param, bound, None) is not None:
            out[bound] = getattr(param, bound)
    return out


def flag_key(param) -> str:
    """A flag's name in the snapshot: its first ``--`` spelling."""
    return next((o for o in param.opts if o.startswith("--")), param.opts[0])


def describe(param) -> dict[str, Any]:
    return {"opts": list(param.opts), "secondary_opts": list(getattr(param, "secondary_opts", []) or []),
            **type_name(param), "multiple": bool(param.multiple), "is_flag": bool(getattr(param, "is_flag", False)),
            "required": bool(param.required), "hidden": bool(getattr(param, "hidden", False)),
            "declared_default": _plain(param.default) if not callable(param.default) else "<callable>"}


def probe_values(command: str, param, info: dict[str, Any]) -> list[list[str]]:
    """Argument lists that set only ``param`` (tried in order)."""
    key = flag_key(param)
    if info["is_flag"]:
        secondary = info["secondary_opts"]
        if not secondary:
            return [[param.opts[0]]]
        on, off = [[param.opts[0]]], [[secondary[0]]]
        return off + on if param.default in (True, None) else on + off
    if (command, key) in COMMAND_PROBES:
        values = COMMAND_PROBES[(command, key)]
    elif info["type"] == "CHOICE":
        values = [str(c) for c in info["choices"]]
    elif info["type"] == "INT":
        values = INT_PROBES
    elif info["type"] == "FLOAT":
        values = FLOAT_PROBES
    elif info["type"] == "PATH":
        values = PATH_PROBES.get(key, ["{TMP}/probe.txt"])
    else:
        values = STRING_PROBES.get(key, ["probe"])
    return [[key, v] for v in values]


def _without(tokens: list[str], param) -> tuple[list[str], bool]:
    """``tokens`` without any occurrence of ``param`` (and its value); whether one was there."""
    names = set(param.opts) | set(getattr(param, "secondary_opts", []) or [])
    out, i, found = [], 0, False
    while i < len(tokens):
        if tokens[i] in names:
            found = True
            i += 1 if getattr(param, "is_flag", False) else 2
            continue
        out.append(tokens[i])
        i += 1
    return out, found


def diff(old: Any, new: Any, path: str = "") -> dict[str, tuple[Any, Any]]:
    """``{path: (old, new)}`` of what differs between two records, at the highest level that tells it: a key on one
    side only, or a section whose ``kind`` changed (a student replaced by another kind), is one entry; a section whose
    ``name`` changed (a task run's method replaced by another) is its ``name`` (the method's settings come with it)."""
    if isinstance(old, dict) and isinstance(new, dict) and "name" in old and "name" in new and old["name"] != new["name"]:
        return {f"{path}.name" if path else "name": (old["name"], new["name"])}
    if isinstance(old, dict) and isinstance(new, dict) and old.get("kind", None) == new.get("kind", None):
        out: dict[str, tuple[Any, Any]] = {}
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{key}" if path else key
            if key not in old or key not in new:
                out[sub] = (old.get(key, UNSET), new.get(key, UNSET))
            else:
                out.update(diff(old[key], new[key], sub))
        return out
    return {} if old == new else {path: (old, new)}


def _outcome(base: dict[str, Any], new: dict[str, Any], probe: list[str]) -> dict[str, Any] | None:
    changed = diff(base, new)
    if not changed:
        return None
    fields = sorted(changed)
    return {"fields": fields, "default": {p: changed[p][0] for p in fields}, "set": {p: changed[p][1] for p in fields},
            "probe": probe}


def value_at(record: dict[str, Any], path: str) -> Any:
    """The value at a path of :func:`diff` (``UNSET`` when absent)."""
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return UNSET
        node = node[part]
    return node


def probe_flag(inv: Invoker, command: str, param, info: dict[str, Any], tokens: list[str],
               baseline: dict[str, Any]) -> dict[str, Any]:
    """What setting ``param`` alone does on top of ``tokens`` (whose record is ``baseline``)."""
    key = flag_key(param)
    if key in NOT_PROBED:
        return {"not_probed": NOT_PROBED[key]}
    rest, in_tokens = _without(tokens, param)
    errors, accepted = [], None
    for probe in probe_values(command, param, info):
        record, error = inv.invoke(command, rest + probe)
        if record is None:
            errors.append(error)
            continue
        accepted = accepted or probe
        out = _outcome(baseline, record, inv.norm(inv.args(probe)))
        if out is not None:
            if in_tokens:  # its "default" is the value the base arguments / context give it
                out["given_in_base"] = True
            return out
    if accepted is not None:
        return {"no_effect": True, "probe": inv.norm(inv.args(accepted))}
    return {"error": errors[0], "probe": inv.norm(inv.args(probe_values(command, param, info)[0]))}


def command_snapshot(inv: Invoker, name: str, cmd) -> dict[str, Any]:
    spec = COMMANDS[name]
    base = list(spec["base"])
    contexts = {"default": []} | dict(spec.get("contexts", {}))
    params = [p for p in cmd.params if getattr(p, "opts", None) and type(p).__name__.endswith("Option")]
    baselines = {}
    for ctx, extra in contexts.items():
        record, error = inv.invoke(name, base + extra)
        if record is None:
            raise RuntimeError(f"kdistill {name} {' '.join(base + extra)}: no config recorded ({error})")
        baselines[ctx] = record
    options: dict[str, Any] = {}
    for param in params:
        info = describe(param)
        per_ctx = {ctx: probe_flag(inv, name, param, info, base + extra, baselines[ctx]) for ctx, extra in contexts.items()}
        info["contexts"] = {ctx: out for ctx, out in per_ctx.items() if ctx == "default" or out != per_ctx["default"]}
        rest, in_base = _without(base, param)
        if in_base:  # a base argument: what happens without it
            record, error = inv.invoke(name, rest)
            fields = per_ctx["default"].get("fields", [])
            info["when_omitted"] = ({"error": error} if record is None else
                                    {"default": {p: value_at(record, p) for p in fields}})
        if (name, flag_key(param)) in NOTES:
            info["note"] = NOTES[(name, flag_key(param))]
        options[flag_key(param)] = info
    return {"hidden": bool(getattr(cmd, "hidden", False)), "base": inv.norm(inv.args(base)),
            "contexts": {k: inv.norm(inv.args(v)) for k, v in contexts.items()},
            "baseline": baselines, "options": options}


def _commands(group, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, cmd in group.commands.items():
        full = f"{prefix}{name}"
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, full + " ")
        else:
            yield full, cmd


def snapshot() -> dict[str, Any]:
    """The whole snapshot of today's CLI (what ``cli.json`` holds)."""
    import logging

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    log = logging.getLogger("kdistill")  # the commands set up their stderr handler: put the logger back afterwards
    log_state = (list(log.handlers), log.level, log.propagate)
    try:
        return _snapshot()
    finally:
        log.handlers[:], log.level, log.propagate = log_state


def _snapshot() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kdistill-cli-snapshot-") as tmp_name:
        tmp = Path(tmp_name).resolve()
        _make_scratch(tmp)
        recorder = Recorder()
        with recorder.installed():
            inv = Invoker(recorder, tmp)
            commands = {}
            for name, cmd in _commands(inv.cli):
                if name not in COMMANDS:
                    commands[name] = {"hidden": bool(getattr(cmd, "hidden", False)),
                                      "error": "no entry in make_cli_snapshot.COMMANDS: add its base arguments"}
                    continue
                commands[name] = command_snapshot(inv, name, cmd)
    return {"about": "kdistill CLI snapshot; see tests/snapshots/README.md and make_cli_snapshot.py",
            "commands": commands}


def _json(value: Any, depth: int = 0, width: int = 118) -> str:
    """JSON with a container on one line when it fits ``width``, else one entry a line (readable diffs)."""
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, (dict, list)) or not value or len(flat) + depth <= width:
        return flat
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {_json(v, depth + 1, width)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    return "[\n" + ",\n".join(f"{inner}{_json(v, depth + 1, width)}" for v in value) + f"\n{pad}]"


def dump(snap: dict[str, Any]) -> str:
    """The snapshot as the text of ``cli.json``."""
    return _json(snap) + "\n"


# --------------------------------------------------------------------------- comparing two snapshots
#: Keys of an option compared as its flag set ("what you type"); the rest of its description is informational.
STATIC_KEYS = ("opts", "secondary_opts", "type", "choices", "multiple", "is_flag", "hidden")


def _move(path: str, command: str, moves) -> str:
    """``path`` of the old snapshot renamed by the first matching ``(command or "*", old_prefix, new_prefix)``."""
    for scope, old, new in moves:
        if scope in ("*", command) and (path == old or path.startswith(old + ".")):
            return new + path[len(old):]
    return path


def _moved(out: dict[str, Any], command: str, moves) -> dict[str, Any]:
    out = dict(out)
    for key in ("default", "set"):
        if key in out:
            out[key] = {_move(p, command, moves): v for p, v in out[key].items()}
    if "fields" in out:
        out["fields"] = sorted(_move(p, command, moves) for p in out["fields"])
    return out


def _kind(out: dict[str, Any]) -> str:
    return next(k for k in ("fields", "no_effect", "error", "not_probed", "default") if k in out)


def _show(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


def _compare_outcome(where: str, old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str]]:
    """Differences of one outcome: what kind it is, which fields, their effective defaults, the value set."""
    ko, kn = _kind(old), _kind(new)
    if ko != kn:
        def say(o, k):
            return {"fields": lambda: "sets " + ", ".join(o["fields"]), "no_effect": lambda: "no effect",
                    "error": lambda: f"refused ({o['error']})", "not_probed": lambda: "not probed",
                    "default": lambda: "runs"}[k]()
        return [("behaviour", f"{where}: was {say(old, ko)}, now {say(new, kn)}")]
    out = []
    if old.get("fields", []) != new.get("fields", []):
        out.append(("behaviour", f"{where}: sets {', '.join(old['fields'])} → now {', '.join(new['fields'])}"))
    for path in sorted(set(old.get("default", {})) & set(new.get("default", {}))):
        if old["default"][path] != new["default"][path]:
            out.append(("default", f"{where}: effective default of {path}: {_show(old['default'][path])} → "
                                   f"{_show(new['default'][path])}"))
    for path in sorted(set(old.get("set", {})) & set(new.get("set", {}))):
        if old["set"][path] != new["set"][path] and old.get("probe") == new.get("probe"):
            out.append(("behaviour", f"{where}: {' '.join(old['probe'])} sets {path} = {_show(old['set'][path])}, "
                                     f"now {_show(new['set'][path])}"))
    return out


def compare(old: dict[str, Any], new: dict[str, Any], *, renames=None, added=(), removed=(), field_moves=()) -> list[tuple[str, str]]:
    """Differences between two snapshots as ``(category, line)``; categories: ``flags`` (commands, flag spellings,
    types), ``default`` (an effective default changed), ``behaviour`` (which fields a flag sets, what its value
    becomes, an error where it used to work or the reverse).

    ``renames``: ``{(command, old_flag): new_flag}`` (``command`` "*" = every command that has it); ``added`` /
    ``removed``: ``(command, flag)`` pairs, or ``(command, None)`` for a whole command; ``field_moves``:
    ``(command or "*", old_path_prefix, new_path_prefix)`` applied to the old snapshot's config paths.
    """
    renames = dict(renames or {})
    added, removed = set(added), set(removed)
    diffs: list[tuple[str, str]] = []
    oc, nc = old["commands"], new["commands"]
    for name in oc:
        if name not in nc and (name, None) not in removed:
            diffs.append(("flags", f"{name}: command removed"))
    for name in nc:
        if name not in oc and (name, None) not in added:
            diffs.append(("flags", f"{name}: command added"))
    for name in (n for n in oc if n in nc):
        o, n = oc[name], nc[name]
        if "error" in n:
            diffs.append(("flags", f"{name}: {n['error']}"))
            continue
        if o["hidden"] != n["hidden"]:
            diffs.append(("flags", f"{name}: hidden {o['hidden']} → {n['hidden']}"))
        mapping = {}
        for flag in o["options"]:
            new_flag = renames.get((name, flag), renames.get(("*", flag), flag))
            if new_flag not in n["options"]:
                if (name, flag) not in removed:
                    diffs.append(("flags", f"{name} {flag}: flag removed" + (f" (renamed to {new_flag}: not found)"
                                                                              if new_flag != flag else "")))
                continue
            mapping[flag] = new_flag
        for flag in n["options"]:
            if flag not in mapping.values() and (name, flag) not in added:
                diffs.append(("flags", f"{name} {flag}: flag added"))
        contexts = list(dict.fromkeys([*o["contexts"], *n["contexts"]]))
        for old_flag, new_flag in mapping.items():
            oo, no = o["options"][old_flag], n["options"][new_flag]
            label = f"{name} {old_flag}" + (f" (now {new_flag})" if new_flag != old_flag else "")
            for key in STATIC_KEYS:
                if new_flag != old_flag and key in ("opts", "secondary_opts", "hidden"):
                    continue  # a rename changes the spellings
                ov, nv = oo.get(key), no.get(key)
                if key == "type" and ov == "STRING" and nv == "CHOICE":
                    continue  # free text that became a choice of the values it accepted (the outcomes tell)
                if key == "choices" and ov is None:
                    continue
                if ov != nv:
                    diffs.append(("flags", f"{label}: {key} {_show(ov)} → {_show(nv)}"))
            for ctx in contexts:
                oout = oo["contexts"].get(ctx, oo["contexts"]["default"])
                nout = no["contexts"].get(ctx, no["contexts"]["default"])
                diffs += _compare_outcome(f"{label} [{ctx}]", _moved(oout, name, field_moves), nout)
            if "when_omitted" in oo or "when_omitted" in no:
                ow, nw = oo.get("when_omitted"), no.get("when_omitted")
                if ow is None or nw is None:
                    diffs.append(("behaviour", f"{label}: base argument {'no longer' if nw is None else 'now'} "
                                               "needed by the snapshot's invocation"))
                else:
                    diffs += _compare_outcome(f"{label} (omitted)", _moved(ow, name, field_moves), nw)
    return diffs


def not_single_field(snap: dict[str, Any]) -> list[str]:
    """Lines naming each (command, flag, context) whose outcome is not exactly one config field."""
    lines = []
    for cname, c in snap["commands"].items():
        for fname, o in c.get("options", {}).items():
            for ctx, out in o["contexts"].items():
                fields = [f for f in out.get("fields", []) if not f.startswith(("call:", "effect:"))]
                if len(fields) == 1 and len(out.get("fields", [])) == 1:
                    continue
                what = (out.get("error") and f"refused: {out['error']}") or (out.get("no_effect") and "no effect") or \
                    out.get("not_probed") or ", ".join(out.get("fields", []))
                lines.append(f"{cname} {fname} [{ctx}]: {what}" + (f" — {o['note']}" if o.get("note") else ""))
    return lines


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the committed file")
    parser.add_argument("--summary", action="store_true", help="list the flags that are not exactly one config field")
    parser.add_argument("--allow-default-changes", action="store_true",
                        help="write even though effective defaults changed (see README.md: almost never legitimate)")
    args = parser.parse_args(argv)
    snap = json.loads(dump(snapshot()))
    if args.summary:
        print("\n".join(not_single_field(snap)))
    diffs = compare(json.loads(SNAPSHOT.read_text()), snap) if SNAPSHOT.exists() else []
    for category, line in diffs:
        print(f"[{category}] {line}")
    if args.check:
        print("snapshot unchanged" if not diffs else f"{len(diffs)} difference(s) from {SNAPSHOT}")
        return 1 if diffs else 0
    if any(c == "default" for c, _ in diffs) and not args.allow_default_changes:
        print(f"not written: effective defaults changed (listed above); {SNAPSHOT} keeps today's values")
        return 1
    SNAPSHOT.write_text(dump(snap))
    n = sum(len(c.get("options", {})) for c in snap["commands"].values())
    print(f"wrote {SNAPSHOT}: {len(snap['commands'])} commands, {n} flags")
    return 0


if __name__ == "__main__":
    sys.exit(main())
