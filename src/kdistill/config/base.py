"""The base of every config class: unknown keys are errors, assignments validated, every float finite."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigBase(BaseModel):
    """The base of every config class: unknown keys are errors, assignments are validated, every float is finite
    (each field carries its ``description``: the help text of the flag that sets it)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)  # every float finite

