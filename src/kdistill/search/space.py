"""The typed search space of ``kdistill search``: which run settings a trial draws, and from which range.

A space maps setting names (:data:`SEARCHABLE`, plus ``schedule.<knob>`` for the schedules of
:class:`~kdistill.config.TrainConfig`, e.g. ``schedule.temperature=none|linear:4:1``) to a :class:`ParamRange`: a numeric interval (``low``..``high``, optionally
log-uniform, integer for shape settings) or a list of ``choices``. :func:`default_space` gives the settings the
papers calibrate for the run's method (Hinton et al. 2015: T and the hard-label weight; DistilBERT's L_cos weight,
Sanh et al. 2019; TinyBERT's layer-wise weights, Jiao et al. 2020) plus the learning rate and warm-up;
:func:`parse_param` reads the command line's ``NAME=LOW:HIGH[:log]`` / ``NAME=A|B|C`` / ``NAME=off``.

Units: ``learning_rate`` per optimizer step (AdamW), ``warmup_ratio`` a share of the run's steps, ``temperature``
dimensionless (T of the soft targets), weights dimensionless; shape settings in layers, hidden units, heads.
"""

from __future__ import annotations

from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kdistill.errors import KDistillError


class _Base(BaseModel):
    """The search-space models: unknown keys are an error, assignments are validated, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


#: Searchable settings: name -> (what it is, integer-valued?).
SEARCHABLE: dict[str, tuple[str, bool]] = {
    "temperature": ("soft-target temperature T (method.temperature: KD's, or TinyBERT's prediction step)", False),
    "alpha": ("weight of the gold-label loss (method.alpha: KD's, or TinyBERT's prediction step)", False),
    "learning_rate": ("peak learning rate (train.learning_rate)", False),
    "warmup_ratio": ("share of steps warming the learning rate up (train.warmup_ratio)", False),
    "weight_decay": ("AdamW weight decay (train.weight_decay)", False),
    "cos_weight": ("weight of DistilBERT's cosine loss on last hidden states (method.cos_weight, method kd)", False),
    "attn_weight": ("tinybert: weight of the attention loss", False),
    "hidden_weight": ("tinybert: weight of the hidden-state loss", False),
    "emb_weight": ("tinybert: weight of the embedding loss", False),
    # student shape (opt-in): layers-from-teacher copies num_layers evenly spaced teacher layers
    "num_layers": ("student layers (layers-from-teacher: evenly spaced teacher layers; spec: fresh layers)", True),
    "keep_heads": ("layers-from-teacher: heads kept per copied layer (by importance)", True),
    "hidden_size": ("spec student: hidden size", True),
    "num_heads": ("spec student: attention heads", True),
    "intermediate_size": ("spec student: FFN size", True),
    "bilstm_hidden": ("bilstm student: LSTM hidden size per direction", True),
    "bilstm_fc": ("bilstm student: ReLU layer width", True),
}
SHAPE = ("num_layers", "keep_heads", "hidden_size", "num_heads", "intermediate_size", "bilstm_hidden", "bilstm_fc")
SCHEDULE_PREFIX = "schedule."
ALIASES = {"t": "temperature", "lr": "learning_rate", "warmup": "warmup_ratio", "cos": "cos_weight",
           "layers": "num_layers", "heads": "num_heads", "hidden": "hidden_size", "ffn": "intermediate_size"}

Choice = Union[bool, int, float, str]


class ParamRange(_Base):
    """One searched setting: ``low``..``high`` (``log``: log-uniform, needs ``low > 0``; ``step``: a grid), or
    ``choices`` (categorical; e.g. schedule strings such as ``"linear:4:1"``)."""

    low: float | None = Field(default=None, description=(
        "Lower bound of the range (whole number for an integer setting; > 0 with log); with high, instead of choices."))
    high: float | None = Field(default=None, description="Upper bound of the range (included; at least low).")
    log: bool = Field(default=False, description=(
        "Draw log-uniformly between low and high (needs low > 0, no step): NAME=LOW:HIGH:log of --param."))
    step: float | None = Field(default=None, description=(
        "Grid of the range: values low, low+step, ... up to high (integer settings: step 1 when not given)."))
    choices: list[Choice] | None = Field(default=None, description=(
        "The values to choose from (categorical, instead of low/high; not empty): NAME=A|B|C of --param, e.g. "
        "schedule strings such as linear:4:1 for schedule.<knob>."))

    @model_validator(mode="after")
    def _check(self) -> "ParamRange":
        if self.choices is not None:
            if self.low is not None or self.high is not None:
                raise ValueError("give either low/high or choices, not both")
            if not self.choices:
                raise ValueError("choices must not be empty")
            return self
        if self.low is None or self.high is None:
            raise ValueError("a range needs low and high (or choices)")
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("a log range takes no step")
        return self

    def describe(self) -> str:
        """The range as the command line writes it (``1:8:log``, ``0|0.5|1``)."""
        if self.choices is not None:
            return "|".join(str(c) for c in self.choices)
        return f"{self.low:g}:{self.high:g}" + (":log" if self.log else "") + (f":step={self.step:g}" if self.step else "")


class SearchSpace(_Base):
    """The settings a trial draws (name -> :class:`ParamRange`); every other setting is the base run's."""

    params: dict[str, ParamRange] = Field(description=(
        "A searched setting and its range, per name: temperature (T), alpha, learning_rate (lr), warmup_ratio, "
        "weight_decay, cos_weight, attn_weight, hidden_weight, emb_weight, num_layers, keep_heads, hidden_size, "
        "num_heads, intermediate_size, bilstm_hidden, bilstm_fc, schedule.<knob> (at least one; --param "
        "NAME=LOW:HIGH[:log] | NAME=A|B|C | NAME=off, --params NAMES with their default ranges, or --space FILE)."))

    @model_validator(mode="after")
    def _check(self) -> "SearchSpace":
        for name in self.params:
            check_name(name)
        if not self.params:
            raise ValueError("the search space is empty: search at least one setting (see --param)")
        return self


def canonical(name: str) -> str:
    """``T`` → ``temperature``, ``lr`` → ``learning_rate`` ... (names are case-insensitive; ``-`` = ``_``)."""
    key = name.strip().lower().replace("-", "_")
    if key.startswith(SCHEDULE_PREFIX):
        return key
    return ALIASES.get(key, key)


def check_name(name: str) -> None:
    """Raise ``ValueError`` for a setting the search cannot draw (the message lists the searchable ones)."""
    if name.startswith(SCHEDULE_PREFIX) and len(name) > len(SCHEDULE_PREFIX):
        return
    if name not in SEARCHABLE:
        raise ValueError(f"'{name}' is not searchable; searchable: {', '.join(SEARCHABLE)}, schedule.<knob>")


DEFAULT_RANGES: dict[str, ParamRange] = {
    "temperature": ParamRange(low=1.0, high=8.0, log=True),
    "alpha": ParamRange(low=0.0, high=1.0),
    "learning_rate": ParamRange(low=1e-5, high=5e-4, log=True),
    "warmup_ratio": ParamRange(low=0.0, high=0.2),
    "weight_decay": ParamRange(low=0.0, high=0.1),
    "cos_weight": ParamRange(low=0.0, high=2.0),
    "attn_weight": ParamRange(low=0.0, high=2.0),
    "hidden_weight": ParamRange(low=0.0, high=2.0),
    "emb_weight": ParamRange(low=0.0, high=2.0),
}


def default_params(cfg) -> list[str]:
    """The settings searched when the user names none, for the base run ``cfg`` (a :class:`~kdistill.config.RunConfig`).

    ``kd``: T (not with ``kd_loss='mse'``, where T has no effect), α, learning rate, warm-up, and the L_cos weight
    for a ``layers-from-teacher`` student (equal widths; Sanh et al. 2019); ``tinybert``: T, α, learning rate,
    warm-up, attention and hidden-state weights (Jiao et al. 2020); ``finetune``: learning rate and warm-up.
    """
    if cfg.method.name == "finetune":
        return ["learning_rate", "warmup_ratio"]
    if cfg.method.name == "tinybert":
        return ["temperature", "alpha", "learning_rate", "warmup_ratio", "attn_weight", "hidden_weight"]
    names = ["alpha", "learning_rate", "warmup_ratio"]
    if cfg.method.kd_loss == "kl":
        names.insert(0, "temperature")
    if cfg.student.kind == "layers-from-teacher":
        names.append("cos_weight")
    return names


def parse_param(text: str) -> tuple[str, ParamRange | None]:
    """``NAME=SPEC`` of ``--param`` → ``(name, range)``; ``range`` None for ``NAME=off`` (not searched).

    SPEC: ``LOW:HIGH`` (uniform), ``LOW:HIGH:log`` (log-uniform), ``A|B|C`` (choices; numbers are read as numbers),
    ``off``. ``schedule.<knob>`` takes choices only (schedule strings contain ``:``), e.g.
    ``schedule.temperature=none|linear:4:1`` (``none``: no schedule, the constant base value).

    Raises:
        KDistillError: a malformed SPEC or an unknown NAME (one line).
    """
    if "=" not in text:
        raise KDistillError(f"--param takes NAME=LOW:HIGH[:log], NAME=A|B|C or NAME=off; got '{text}'")
    raw_name, spec = (s.strip() for s in text.split("=", 1))
    name = canonical(raw_name)
    try:
        check_name(name)
    except ValueError as err:
        raise KDistillError(f"--param {text}: {err}") from None
    if spec.lower() == "off":
        return name, None
    try:
        if name.startswith(SCHEDULE_PREFIX) or "|" in spec:
            return name, ParamRange(choices=[_number(c.strip()) for c in spec.split("|") if c.strip()])
        parts = spec.split(":")
        log = len(parts) == 3 and parts[2].strip().lower() == "log"
        if len(parts) != 2 and not log:
            raise ValueError("expected LOW:HIGH or LOW:HIGH:log")
        return name, ParamRange(low=float(parts[0]), high=float(parts[1]), log=log)
    except ValueError as err:
        msg = err.errors()[0]["msg"] if hasattr(err, "errors") else str(err)
        raise KDistillError(f"--param {text}: {msg}") from None


def schedule_section() -> str | None:
    """Which run-config section holds ``schedules`` (``train`` in this kdistill; ``distill`` in an older draft), or None."""
    from kdistill.config import DistillConfig, TrainConfig

    for name, cls in (("train", TrainConfig), ("distill", DistillConfig)):
        if "schedules" in cls.model_fields:
            return name
    return None


def _number(text: str) -> Choice:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def build_space(cfg, *, params: list[str] | None = None, overrides: dict[str, ParamRange | None] | None = None,
                space: SearchSpace | None = None) -> SearchSpace:
    """The search space of a search over the base run ``cfg``.

    Args:
        params: which settings to search (names or aliases); default :func:`default_params` (or ``space``'s).
        overrides: ranges given on the command line (``--param``): they replace the default range; a name here is
            searched even when ``params`` does not list it; ``None`` removes it from the space.
        space: a whole space (e.g. read from a file) to start from instead of the defaults.

    Raises:
        KDistillError: an unknown name, a setting without a default range and none given (shape settings and
            schedules have no default range), schedules without ``TrainConfig.schedules``, or an empty space.
    """
    from pydantic import ValidationError

    start = dict(space.params) if space is not None else {}
    names = [canonical(n) for n in params] if params else (list(start) or default_params(cfg))
    out: dict[str, ParamRange] = {}
    for name in names:
        try:
            check_name(name)
        except ValueError as err:
            raise KDistillError(f"--params: {err}") from None
        rng = start.get(name) or DEFAULT_RANGES.get(name)
        if rng is None and name not in (overrides or {}):
            raise KDistillError(f"'{name}' has no default range: give one with --param {name}=LOW:HIGH (or A|B|C)")
        if rng is not None:
            out[name] = rng
    for name, rng in (overrides or {}).items():
        name = canonical(name)
        if rng is None:
            out.pop(name, None)
        else:
            out[name] = rng
    if any(n.startswith(SCHEDULE_PREFIX) for n in out) and schedule_section() is None:
        raise KDistillError("schedule.* settings need the schedules of issue 17 (part 1), which this kdistill lacks")
    for name in out:
        if name in SEARCHABLE and SEARCHABLE[name][1] and out[name].choices is None:
            for bound in (out[name].low, out[name].high):
                if float(bound) != int(bound):
                    raise KDistillError(f"--param {name}: an integer setting needs whole-number bounds, got "
                                        f"{out[name].describe()}")
    try:
        return SearchSpace(params=out)
    except ValidationError as err:
        raise KDistillError(f"search space: {err.errors()[0]['msg']}") from None


# --------------------------------------------------------------------------- drawing a trial
def suggest(trial, space: SearchSpace) -> dict[str, Any]:
    """Draw every setting of ``space`` from an Optuna ``trial`` (``suggest_float`` / ``suggest_int`` /
    ``suggest_categorical``; Akiba et al. 2019). Returns ``{name: value}`` in the space's order."""
    out = {}
    for name, rng in space.params.items():
        if rng.choices is not None:
            out[name] = trial.suggest_categorical(name, list(rng.choices))
        elif name in SEARCHABLE and SEARCHABLE[name][1]:
            step = int(rng.step) if rng.step else 1
            out[name] = trial.suggest_int(name, int(rng.low), int(rng.high), step=step, log=rng.log)
        else:
            out[name] = trial.suggest_float(name, float(rng.low), float(rng.high), log=rng.log, step=rng.step)
    return out


def apply_params(cfg, values: dict[str, Any], *, teacher_layers: int | None = None):
    """``cfg`` (a :class:`~kdistill.config.RunConfig`) with the drawn ``values`` in place (a validated copy).

    Routing: T and α go to ``distill`` (``tinybert`` for that method), ``learning_rate`` / ``warmup_ratio`` /
    ``weight_decay`` to ``train``, loss weights to their section, ``schedule.<knob>`` into
    ``train.schedules[knob]`` (:mod:`kdistill.objectives.schedules`; ``none`` removes that knob's schedule), shape settings to the student:
    ``num_layers`` of a ``layers-from-teacher`` student copies that many evenly spaced teacher layers
    (:func:`kdistill.students.transformer.default_layers`; needs ``teacher_layers``).

    Raises:
        KDistillError: a value the run config refuses (e.g. hidden size not divisible by heads is caught later by the
            student builder), a shape setting the student kind does not take.
    """
    from pydantic import ValidationError

    from kdistill.config import merge

    flat = {k: v for k, v in values.items() if not k.startswith(SCHEDULE_PREFIX) and k not in SHAPE}
    data = merge(type(cfg), cfg, **flat).model_dump()
    schedules = {k[len(SCHEDULE_PREFIX):]: v for k, v in values.items() if k.startswith(SCHEDULE_PREFIX)}
    if schedules:
        section = schedule_section()
        if section is None:
            raise KDistillError("schedule.* settings need the schedules of issue 17 (part 1)")
        current = dict(data[section].get("schedules") or {})
        for knob, value in schedules.items():
            if str(value).lower() == "none":
                current.pop(knob, None)
            else:
                current[knob] = str(value)
        data[section]["schedules"] = current
    shape = {k: v for k, v in values.items() if k in SHAPE}
    if shape:
        student = dict(data["student"])
        kind = student["kind"]
        if kind == "layers-from-teacher" and "num_layers" in shape:
            from kdistill.students.transformer import default_layers

            if teacher_layers is None:
                raise KDistillError("num_layers of a layers-from-teacher student needs the teacher's layer count")
            student["layers"] = default_layers(teacher_layers, int(shape.pop("num_layers")))
            student["heads"] = None
        allowed = {"layers-from-teacher": {"keep_heads"}, "spec": {"num_layers", "hidden_size", "num_heads",
                   "intermediate_size"}, "bilstm": {"bilstm_hidden", "bilstm_fc"}}.get(kind, set())
        wrong = sorted(set(shape) - allowed)
        if wrong:
            raise KDistillError(f"{', '.join(wrong)} cannot be searched for a {kind} student")
        student.update(shape)
        data["student"] = student
    try:
        return type(cfg).model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        raise KDistillError(f"trial settings {values}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
