"""Result files as strict JSON: no NaN or infinity; an undefined value is written as ``null`` with a reason.

Every result kdistill writes (``report.json``, ``train_results.json``, the search, provisioning, compression and
born-again records, ``mlm_head.json`` ...) goes through :func:`to_json`:

* non-finite floats (NaN, ±inf) become ``None`` and the dotted path of each is listed, with a reason, under the
  record's ``undefined`` key (``{"retention": "...", "teacher_metrics.pearson": "..."}``);
* numpy scalars and arrays become plain Python values;
* the text is made with ``allow_nan=False``, so a stray non-finite value can never produce invalid JSON.

Values that are undefined for a known reason (a correlation of constant predictions, a ratio to a metric of 0) are
set to ``None`` by the code that knows the reason, which records it under ``undefined`` itself (:func:`mark_undefined`).
Printers format such values with :func:`fmt_num` (``n/a``). Imports nothing heavy (the CLI uses it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

__all__ = ["UNDEFINED_KEY", "finite", "fmt_num", "mark_undefined", "to_json", "write_json"]

#: The key under which a record lists its undefined (``null``) values and why.
UNDEFINED_KEY = "undefined"
NOT_FINITE = "not a finite number (NaN or infinite): undefined"


def _numpy_value(obj: Any) -> tuple[bool, Any]:
    """``(True, plain value)`` for a numpy scalar or array, else ``(False, obj)`` (numpy is not imported here)."""
    if type(obj).__module__ == "numpy":
        if hasattr(obj, "tolist"):
            return True, obj.tolist()
        if hasattr(obj, "item"):
            return True, obj.item()
    return False, obj


def finite(obj: Any, *, found: dict[str, str] | None = None, path: str = "") -> Any:
    """A copy of ``obj`` (dicts, lists, tuples, numbers, numpy values) with every non-finite float replaced by ``None``.

    ``found`` (when given) receives ``{dotted path: reason}`` for each replaced value (list items as ``key.0``).
    """
    is_np, obj = _numpy_value(obj)
    if is_np:
        return finite(obj, found=found, path=path)
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, int)):
        return obj
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        if found is not None:
            found[path or "value"] = NOT_FINITE
        return None
    if isinstance(obj, dict):
        return {k: finite(v, found=found, path=f"{path}.{k}" if path else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v, found=found, path=f"{path}.{i}" if path else str(i)) for i, v in enumerate(obj)]
    return obj


def to_json(obj: Any, *, indent: int | None = 1, default: Callable[[Any], Any] | None = None, **kwargs: Any) -> str:
    """``obj`` as strict JSON text (see the module docstring); ``default`` as for :func:`json.dumps`.

    A dict gets the paths of the non-finite values it held added to its ``undefined`` key (reasons already there win).
    """
    found: dict[str, str] = {}
    clean = finite(obj, found=found)
    if found and isinstance(clean, dict):
        known = clean.get(UNDEFINED_KEY) if isinstance(clean.get(UNDEFINED_KEY), dict) else {}
        clean[UNDEFINED_KEY] = {**found, **known}
    return json.dumps(clean, indent=indent, default=default, allow_nan=False, **kwargs)


def write_json(path: str | Path, obj: Any, **kwargs: Any) -> Path:
    """Write :func:`to_json` of ``obj`` (and a final newline) to ``path``; returns the path."""
    path = Path(path)
    path.write_text(to_json(obj, **kwargs) + "\n", encoding="utf-8")
    return path


def mark_undefined(values: dict[str, Any], reasons: dict[str, str], *, prefix: str,
                   undefined: dict[str, str]) -> dict[str, Any]:
    """``values`` with each name of ``reasons`` set to ``None``; ``undefined[f"{prefix}.{name}"]`` gets its reason."""
    out = dict(values)
    for name, why in reasons.items():
        if name in out:
            out[name] = None
            undefined[f"{prefix}.{name}" if prefix else name] = why
    return out


def fmt_num(value: Any, spec: str = ".4f", suffix: str = "", *, scale: float = 1.0, na: str = "n/a") -> str:
    """``value * scale`` formatted with ``spec`` and ``suffix``; ``na`` for ``None``, a non-number or a non-finite value."""
    value = _numpy_value(value)[1]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        return na
    return f"{float(value) * scale:{spec}}{suffix}"
