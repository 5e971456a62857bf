"""Your own files read as a saved model's run read them: the reading options a run recorded (``kdistill_run.json``)
and the label names a model carries (``config.json``), for ``evaluate``, ``report`` and ``export`` of that model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["own_data_options", "model_labels"]


def own_data_options(model: str, task: str | None, data_options: dict[str, Any]) -> dict[str, Any]:
    """Your own files without ``--task``, read as the model's run read them.

    Options not given are taken from the run beside the model (``kdistill_run.json``'s ``data``: ``problem_type``,
    ``label_separator``, ``label_names`` — the names file, or when it is gone the model's own names, which are the
    file's in the same order — and ``drop_unlabeled``). With only a validation file, it is read for both splits
    with the model's label set (its ``id2label``).
    """
    import json

    if task is not None or not (data_options.get("validation_file") or data_options.get("train_file")):
        return data_options
    opts = dict(data_options)
    run_file = Path(model) / "kdistill_run.json"
    recorded: dict[str, Any] = {}
    if run_file.is_file():
        try:
            recorded = (json.loads(run_file.read_text()).get("data") or {})
        except (ValueError, AttributeError):
            recorded = {}
    for key in ("problem_type", "label_separator", "drop_unlabeled"):
        if opts.get(key) is None and recorded.get(key) is not None:
            opts[key] = recorded[key]
    if opts.get("label_names") is None and not opts.get("labels") and recorded.get("label_names"):
        names = recorded["label_names"]
        opts["label_names"] = names if isinstance(names, list) or Path(names).is_file() else model_labels(model)
    if opts.get("validation_file") and not opts.get("train_file"):
        # only the evaluation split is needed: read it for both, with the model's own label set
        opts["train_file"] = opts["validation_file"]
        if not opts.get("labels") and not opts.get("label_names"):
            opts["labels"] = model_labels(model)
    return opts


def model_labels(model: str) -> list[str] | None:
    """The label names of a saved classifier (``id2label`` in class-id order), or None."""
    import json

    cfg = Path(model) / "config.json"
    if not cfg.exists():
        return None
    id2label = json.loads(cfg.read_text()).get("id2label") or {}
    return [str(id2label[k]) for k in sorted(id2label, key=int)] or None
