"""The base of every config class: unknown keys are errors, assignments validated, every float finite."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigBase(BaseModel):
    """The base of every config class: unknown keys are errors, assignments are validated, every float is finite
    (each field carries its ``description``: the help text of the flag that sets it)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)  # every float finite


#: Tags of the discriminated unions (student kinds, task-run methods, general-distillation objectives): left out of error locations
#: (``student.layers``, not ``student.layers-from-teacher.layers``).
UNION_TAGS = frozenset({"layers-from-teacher", "spec", "pretrained", "bilstm", "finetune", "kd", "tinybert",
                        "distilbert", "minilm"})


def one_line(err: ValidationError, where: str) -> str:
    """A pydantic ValidationError as one line: ``key.path: message; ...`` (unknown keys named as such)."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"] if not (isinstance(x, str) and x in UNION_TAGS))
        parts.append(f"unknown key '{loc}'" if e["type"] == "extra_forbidden" else f"{loc}: {e['msg']}")
    return f"{where}: {'; '.join(parts)}"
