"""Config files (``--config FILE``): read, told apart by kind, migrated and validated (:func:`load_config`); the
command line's options go over them in :func:`kdistill.config.merge`."""

from __future__ import annotations

from typing import Any

from kdistill.config.base import one_line
from kdistill.config.transfer import LabelConfig
from kdistill.config.run import (BornAgainConfig, ChainConfig, CompressConfig, EarlyExitRunConfig, GeneralDistillConfig,
                                 MlmHeadConfig, RunConfig)

# --------------------------------------------------------------------------- config files (--config FILE)
#: What a config file may hold, per kind of run (the ``method`` key tells them apart; a file without one is a task run).
FILE_KINDS = {"finetune": RunConfig, "kd": RunConfig, "tinybert": RunConfig, "general": GeneralDistillConfig,
              "mlm-head": MlmHeadConfig, "chain": ChainConfig, "early-exit": EarlyExitRunConfig,
              "born-again": BornAgainConfig, "label": LabelConfig}


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
    method = data.get("method")
    method = method.get("name", "kd") if isinstance(method, dict) else method  # a task run: the method's name
    # compress's record has a run inside and no method (kdistill run's record: a run inside, method chain)
    kind = CompressConfig if method is None and "run" in data else FILE_KINDS.get(str(method or "kd"))
    if kind is None:
        raise KDistillError(f"--config {path}: unknown method '{method}'; one of {', '.join(FILE_KINDS)}")
    cls = cls or kind
    if kind is not cls:
        raise KDistillError(f"--config {path}: a '{method}' config cannot configure this command "
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
        raise KDistillError(one_line(err, f"--config {path}")) from None
