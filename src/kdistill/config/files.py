"""Flat options and config files: options routed to sections, ``--config FILE`` read and overridden."""

from __future__ import annotations

from typing import Any

from kdistill.config.data import DataConfig
from kdistill.config.methods import (AugmentConfig, DistilBertGeneralConfig, DistillConfig, MiniLMConfig,
                                     TinyBertConfig)
from kdistill.config.run import (BornAgainConfig, ChainConfig, CompressConfig, EarlyExitRunConfig, GeneralDistillConfig,
                                 MlmHeadConfig, RunConfig)
from kdistill.config.students import STUDENT_KINDS, student_config
from kdistill.config.train import ExportConfig, TrainConfig

# --------------------------------------------------------------------------- flat keyword options
#: Where each flat keyword option goes (the first section that has the field wins, except that
#: ``temperature`` / ``alpha`` go to ``tinybert`` for the tinybert method).
SECTIONS = {"data": DataConfig, "distill": DistillConfig, "tinybert": TinyBertConfig, "augment": AugmentConfig,
            "train": TrainConfig, "export": ExportConfig, "distilbert": DistilBertGeneralConfig, "minilm": MiniLMConfig}
#: The sections of a task run (:func:`from_flat`); ``distilbert`` belongs to general distillation only.
RUN_SECTIONS = ("data", "distill", "tinybert", "augment", "train", "export")
STUDENT_OPTIONS = sorted({f for cls in STUDENT_KINDS.values() for f in cls.model_fields} - {"kind", "path"})


def split_options(options: dict[str, Any], *, method: str = "kd",
                  sections: tuple[str, ...] = RUN_SECTIONS) -> dict[str, dict[str, Any]]:
    """Route flat keyword options (``temperature=2, epochs=1, data_dir=...``) to config sections.

    Returns ``{section: {field: value}}`` for ``sections`` plus ``"student"`` (student fields).
    ``None`` values are dropped (= the config's default).

    Raises:
        KDistillError: an option that no section takes (one line listing them).
    """
    from kdistill.errors import KDistillError

    out: dict[str, dict[str, Any]] = {name: {} for name in (*sections, "student")}
    unknown = []
    for key, value in options.items():
        if value is None:
            continue
        if method == "tinybert" and "tinybert" in sections and key in TinyBertConfig.model_fields:
            out["tinybert"][key] = value
        elif key in STUDENT_OPTIONS:
            out["student"][key] = value
        else:
            name = next((n for n in sections if key in SECTIONS[n].model_fields and not (n == "tinybert" and method != "tinybert")), None)
            if name is None:
                unknown.append(key)
            else:
                out[name][key] = value
    if unknown:
        raise KDistillError(f"unknown option(s): {', '.join(sorted(unknown))}")
    return out


def from_flat(*, method: str = "kd", teacher: str | None = None, task: str | None = "sst2", student: str = "layers-from-teacher",
              output_dir: str, overwrite: bool = False, resume: bool = False, **options: Any) -> RunConfig:
    """A :class:`RunConfig` from flat keyword options — what the CLI and :func:`kdistill.distill` take.

    ``student``: ``layers-from-teacher``, ``spec``, ``bilstm`` or a path; its fields (``layers``,
    ``num_layers`` ... ``bilstm_hidden`` ...) are among ``options``; ``layers="importance"`` selects
    layers by head importance. Every other option is a field of one section (see :func:`split_options`).

    Raises:
        KDistillError: unknown options, or options the student kind does not take.
    """
    from kdistill.errors import KDistillError

    parts = split_options(options, method=method)
    sopts = parts.pop("student")
    if isinstance(sopts.get("layers"), str):  # "importance": chosen by head importance (Michel et al. 2019)
        if sopts["layers"] != "importance" or student != "layers-from-teacher":
            raise KDistillError(f"layers must be a list of teacher layers or 'importance' (layers-from-teacher); got '{sopts['layers']}'")
        sopts["layers"], sopts["layer_selection"] = None, "importance"
    if student == "layers-from-teacher" and "num_layers" in sopts and sopts.get("layer_selection") != "importance":
        sopts.pop("num_layers")  # only counts layers chosen by importance
    sc = student_config(student, **sopts)
    fields: dict[str, Any] = {"method": method, "teacher": teacher, "output_dir": str(output_dir),
                              "overwrite": overwrite, "resume": resume,
                              "data": DataConfig(task=task, **parts["data"]),
                              **{name: SECTIONS[name](**parts[name]) for name in ("distill", "tinybert", "augment", "train",
                                                                                   "export")}}
    return RunConfig(student=sc, **fields)


# --------------------------------------------------------------------------- config files (--config FILE)
class Default(str):
    """A default argument that a config file's value replaces (it compares and prints as its value)."""


SST2, LAYERS_FROM_TEACHER, KD = Default("sst2"), Default("layers-from-teacher"), Default("kd")
#: What a config file may hold, per kind of run (the ``method`` key tells them apart; a file without one is a task run).
FILE_KINDS = {"finetune": RunConfig, "kd": RunConfig, "tinybert": RunConfig, "general": GeneralDistillConfig,
              "mlm-head": MlmHeadConfig, "chain": ChainConfig, "early-exit": EarlyExitRunConfig,
              "born-again": BornAgainConfig}


def read_config_file(path: str | Any) -> dict[str, Any]:
    """The mapping in a YAML (``.yaml``/``.yml``) or JSON file (any other name: JSON, then YAML).

    Raises:
        KDistillError: the file is missing, unreadable, or not a mapping (one line, with the parser's reason).
    """
    import json
    from pathlib import Path

    from kdistill.errors import KDistillError

    p = Path(path).expanduser()
    if not p.is_file():
        raise KDistillError(f"--config {p}: no such file")
    text = p.read_text()
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                import yaml

                data = yaml.safe_load(text)
    except Exception as err:  # noqa: BLE001  (JSON and YAML parsers raise their own types)
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise KDistillError(f"--config {p}: not valid JSON or YAML ({reason})") from err
    if not isinstance(data, dict):
        raise KDistillError(f"--config {p}: expected a mapping of settings (like a run's kdistill_run.json), "
                            f"got {type(data).__name__}")
    return data


def _one_line(err, where: str) -> str:
    """A pydantic ValidationError as one line: ``key.path: message; ...`` (unknown keys named as such)."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"] if not (isinstance(x, str) and x in STUDENT_KINDS))
        parts.append(f"unknown key '{loc}'" if e["type"] == "extra_forbidden" else f"{loc}: {e['msg']}")
    return f"{where}: {'; '.join(parts)}"


def load_config(path: str | Any, cls: type | None = None, *, keep_actions: bool = False):
    """A typed run config from a YAML or JSON file — e.g. the ``kdistill_run.json`` that every run writes.

    ``cls`` None: chosen by the file's ``method`` (:data:`FILE_KINDS`; default a task run, :class:`RunConfig`).
    ``overwrite`` and ``resume`` are actions, not settings: they are reset to False (a recorded run was often made
    with ``--overwrite``; re-running its file must not delete anything unless asked again), unless ``keep_actions``.

    A :class:`CompressConfig` file (``kdistill compress``'s record) is told apart by its ``run`` section, a
    :class:`ChainConfig` (``kdistill run``'s record) by ``method: chain``.

    Raises:
        KDistillError: unreadable file; an unknown key (named with its path, e.g. ``distill.temprature``); an invalid
            value; a file of another kind of run than ``cls``.
    """
    from pydantic import ValidationError

    from kdistill.errors import KDistillError

    data = read_config_file(path)
    chain = data.get("method") == "chain"  # kdistill run's record: a run inside, and the teacher stage
    kind = CompressConfig if "run" in data and not chain else FILE_KINDS.get(str(data.get("method", "kd")))  # compress: a run inside
    if kind is None:
        raise KDistillError(f"--config {path}: unknown method '{data.get('method')}'; one of {', '.join(FILE_KINDS)}")
    cls = cls or kind
    if kind is not cls:
        raise KDistillError(f"--config {path}: a '{data.get('method')}' config cannot configure this command "
                            f"(it takes a {cls.__name__})")
    if not keep_actions:
        if "overwrite" in cls.model_fields:
            data = {**data, "overwrite": False, "resume": False}
        if isinstance(data.get("run"), dict):
            data["run"] = {**data["run"], "overwrite": False, "resume": False}
    if "run" in data and isinstance(data["run"], dict):
        data["run"].setdefault("output_dir", ".")
    else:
        data.setdefault("output_dir", ".")  # given on the command line (-o) in the usual case
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise KDistillError(_one_line(err, f"--config {path}")) from None


def override_config(cfg, *, student: str | None = None, task: str | None = ..., **flat: Any):
    """``cfg`` with the given flat options replacing its values (the command line over a config file).

    Top-level fields (``teacher``, ``output_dir``, ``overwrite``, ``resume``, ``method``, ``text_files`` ...) replace
    the file's; ``task`` (when given) goes to ``data.task``; every other option to its section as in
    :func:`split_options` (``temperature`` → ``distill``, or ``tinybert`` for that method ...). ``student`` (a kind or a
    path) replaces the student; student fields alone (``layers``, ``num_layers`` ...) update the file's student.
    ``None`` values are "not given". Works for :class:`RunConfig`, :class:`GeneralDistillConfig`,
    :class:`MlmHeadConfig`.

    Raises:
        KDistillError: an option no section takes, or an invalid value (one line).
    """
    from pydantic import ValidationError

    from kdistill.errors import KDistillError

    flat = {k: v for k, v in flat.items() if v is not None}
    top = {k: flat.pop(k) for k in list(flat) if k in type(cfg).model_fields and k not in SECTIONS and k != "student"}
    sections = tuple(n for n in SECTIONS if n in type(cfg).model_fields and n != "data") + (
        ("data",) if "data" in type(cfg).model_fields else ())
    method = top.get("objective") or getattr(cfg, "objective", None) or top.get("method") or getattr(cfg, "method", "kd")
    parts = split_options(flat, method=str(method), sections=sections)
    data = cfg.model_dump()
    data.update(top)
    if task is not ... and "data" in data:
        data["data"]["task"] = task
    for name in sections:
        if parts.get(name):
            data[name] = {**data[name], **parts[name]}
    sopts = parts.get("student") or {}
    if student is not None or sopts:
        old = dict(data["student"])
        kind = old.pop("kind")
        if student is not None and student != (old.get("path") if kind == "pretrained" else kind):
            old, kind = {}, student  # another student: the file's student fields do not carry over
        elif kind == "pretrained":
            kind = old.pop("path")
        data["student"] = student_config(kind, **{**old, **sopts}).model_dump()
    try:
        return type(cfg).model_validate(data)
    except ValidationError as err:
        raise KDistillError(_one_line(err, "options")) from None
