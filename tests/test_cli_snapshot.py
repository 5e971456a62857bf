"""The CLI keeps today's flags and effective defaults (issue 25's "Done when": a snapshot of every command's flag set
and each flag's *effective* default, equal to main's except the listed renames).

The snapshot ``tests/snapshots/cli.json`` was made from main before the CLI was generated from the configs; this test
recomputes it from the live app with the same machinery (``tests/snapshots/make_cli_snapshot.py``: every command run
in-process with the engine hand-over replaced by a recorder, so nothing trains or loads; about 10 s) and compares:

* flag sets: commands, flag spellings (``--temperature``/``-T``, ``--x/--no-x``), types, ``multiple``, ``is_flag``,
  hidden;
* per flag and context (``--method tinybert`` ...): the config field(s) it sets, the value the given one becomes, and
  the value that field has when the flag is not given (its effective default); for base arguments (``--teacher``,
  ``-o``) what happens without them.

A legitimate change is listed below, never hidden by regenerating the snapshot (see tests/snapshots/README.md).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

#: Flags renamed on purpose: ``(command, old flag) → new flag``; ``command`` "*" = every command that has the flag.
#: The old flag's effective defaults and fields are then required of the new one. Empty on today's main.
RENAMES: dict[tuple[str, str], str] = {}
#: Flags renamed to end a name collision, the old spelling kept as a hidden, deprecated alias for one release:
#: ``(command, old flag) → new flag``. The new flag must behave as the old one did; the old one stays, hidden.
#: ``--schedule`` was also distill's KEY=KIND:START:END; ``--max-drop`` was two different gates.
DEPRECATED: dict[tuple[str, str], str] = {
    ("early-exit", "--schedule"): "--exit-schedule",
    **{(command, "--max-drop"): "--max-exit-drop" for command in ("early-exit", "exit-sweep")},
    **{(command, "--max-drop"): "--max-int8-drop" for command in ("distill", "run", "export")},
}
#: Flags or commands that are new on purpose: ``(command, flag)``, or ``(command, None)`` for a whole command.
ADDED: set[tuple[str, str | None]] = {("config-schema", None), ("label", None), ("distill", "--transfer-set"), ("distill", "--transfer-set-ratio"),
                                      ("distill", "--print-config"),
                                      ("finetune", "--print-config"), ("run", "--print-config"),
                                      ("compress", "--print-config"),
                                      # token classification reads hub datasets (or their local Parquet files)
                                      *((c, "--dataset") for c in ("distill", "finetune", "evaluate", "report",
                                                                   "export", "run", "compress", "search", "provision",
                                                                   "early-exit", "exit-sweep", "born-again")),
                                      # question answering's windows and answer search (issue 28)
                                      *((c, f) for c in ("distill", "finetune", "evaluate", "report", "export", "run",
                                                         "compress", "search", "provision")
                                        for f in ("--doc-stride", "--max-answer-length", "--n-best", "--null-threshold")),
                                      # exit-sweep reads your own files the way every other data command does
                                      *(("exit-sweep", f) for f in ("--text-columns", "--label-column", "--labels",
                                                                     "--problem-type", "--label-separator",
                                                                     "--label-names", "--drop-unlabeled"))}
#: Flags or commands removed on purpose (e.g. ``("export-onnx", None)``, which issue 25 removes).
REMOVED: set[tuple[str, str | None]] = {("export-onnx", None)}  # `kdistill export` does it (CHANGELOG.md)
#: Config paths that moved with the config's restructuring: ``(command or "*", old prefix, new prefix)``, applied to
#: the snapshot's paths before comparing (e.g. ``("distill", "distill.temperature", "method.temperature")``). The
#: values must not change; only where they live.
FIELD_MOVES: list[tuple[str, str, str]] = [
    # a task run's method is one section (a union by name): KD's and TinyBERT's settings live in it, --method sets its
    # name (and the chosen method's settings come with it)
    *((command, f"{prefix}method", f"{prefix}method.name") for command, prefix in
      (("distill", ""), ("finetune", ""), ("run", "run."), ("compress", "run."), ("search", "base."),
       ("provision", "base."))),
    *((command, f"{prefix}{old}", f"{prefix}method") for command, prefix in
      (("distill", ""), ("finetune", ""), ("run", "run."), ("compress", "run."), ("search", "base."),
       ("provision", "base.")) for old in ("distill", "tinybert")),
    # general distillation's objective is one section too (tinybert | distilbert | minilm, by name)
    ("general-distill", "objective", "objective.name"),
    *(("general-distill", old, "objective") for old in ("tinybert", "distilbert", "minilm")),
]

#: Behaviour changed on purpose, each with its reason: ``(command, flag, context) → why``. Only an option that had no
#: effect may appear here (the old outcome set a field that nothing reads, or nothing), and its new outcome is a one-line
#: refusal or "no effect".
_OTHER_METHOD = "an option of another method: it set a field the chosen method never reads; now refused in one line"
CHANGED: dict[tuple[str, str, str], str] = {
    **{("distill", flag, "method=tinybert"): _OTHER_METHOD for flag in ("--kd-loss", "--cos-weight", "--hidden-align")},
    **{("search", flag, "method=tinybert"): _OTHER_METHOD for flag in ("--kd-loss", "--cos-weight")},
    **{("search", flag, "method=finetune"): _OTHER_METHOD
       for flag in ("--temperature", "--alpha", "--kd-loss", "--cos-weight")},
    **{("general-distill", "--layers", ctx): "a spec student has no teacher layers to copy: it was ignored, now refused"
       for ctx in ("default", "method=distilbert", "method=minilm")},
    ("general-distill", "--num-layers", "student=layers-from-teacher"): (
        "a layers-from-teacher student counts layers with --num-layers only with --layers importance (task runs); "
        "general distillation recorded it unread"),
    **{("exit-sweep", flag, "default"): ("your own files without --task mean no task, as in every other command "
                                         "(the rule is kdistill.config.merge's)")
       for flag in ("--train-file", "--validation-file")},
}

GENERATOR = Path(__file__).parent / "snapshots" / "make_cli_snapshot.py"


def _generator():
    spec = importlib.util.spec_from_file_location("make_cli_snapshot", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _section(lines: list[str], what: str) -> str:
    return f"{len(lines)} {what}:\n  " + "\n  ".join(lines) if lines else ""


def test_cli_matches_snapshot():
    """One test (the snapshot is computed once, whichever xdist worker runs it): flag sets, then effective defaults
    and field mappings, each difference on one line: command, flag [context]: old → new."""
    gen = _generator()
    old = json.loads(gen.SNAPSHOT.read_text())
    new = json.loads(gen.dump(gen.snapshot()))
    diffs = gen.compare(old, new, renames={**RENAMES, **DEPRECATED}, added=ADDED | set(DEPRECATED), removed=REMOVED,
                        field_moves=FIELD_MOVES)
    for (command, flag), now in DEPRECATED.items():  # the old spelling is still there, hidden
        assert new["commands"][command]["options"][flag]["hidden"] is True, (command, flag)
    listed = {f"{command} {flag} [{ctx}]:" for command, flag, ctx in CHANGED}
    accepted = [line for c, line in diffs if c == "behaviour" and any(line.startswith(k) for k in listed)]
    assert all(("now refused" in line or "now no effect" in line or "data.task" in line) for line in accepted), accepted
    assert len(accepted) == len(CHANGED), sorted(listed - {line.split(":")[0] + ":" for line in accepted})
    diffs = [(c, line) for c, line in diffs if line not in accepted]
    flags = [line for category, line in diffs if category == "flags"]
    behaviour = [f"[{category}] {line}" for category, line in diffs if category in ("default", "behaviour")]
    assert not diffs, (f"the CLI differs from tests/snapshots/cli.json (today's main); list a deliberate rename in "
                       f"RENAMES / ADDED / REMOVED / FIELD_MOVES of {Path(__file__).name}, never regenerate to hide a "
                       f"changed default\n" + "\n".join(filter(None, [_section(flags, "flag-set differences"),
                                                                     _section(behaviour, "effective default / field differences")])))


def test_compare_reports_a_changed_default():
    """The comparison itself: a changed effective default, a changed field and a missing flag are each reported."""
    gen = _generator()
    old = json.loads(gen.SNAPSHOT.read_text())
    new = json.loads(json.dumps(old))
    opt = new["commands"]["distill"]["options"]["--temperature"]
    opt["contexts"]["method=tinybert"]["default"]["tinybert.temperature"] = 2.0
    new["commands"]["distill"]["options"]["--alpha"]["contexts"]["default"]["fields"] = ["tinybert.alpha"]
    del new["commands"]["finetune"]["options"]["--seed"]
    diffs = gen.compare(old, new)
    text = "\n".join(line for _, line in diffs)
    assert ("default", "distill --temperature [method=tinybert]: effective default of tinybert.temperature: 1.0 → 2.0") in diffs, text
    assert any(c == "behaviour" and "distill --alpha [default]" in line for c, line in diffs), text
    assert ("flags", "finetune --seed: flag removed") in diffs, text
    moved = gen.compare(old, json.loads(json.dumps(old)), field_moves=[("distill", "distill", "kd")])
    assert ("behaviour", "distill --temperature [default]: sets kd.temperature → now distill.temperature") in moved
    renamed = gen.compare(old, old, renames={("finetune", "--seed"): "--random-seed"})
    assert ("flags", "finetune --seed: flag removed (renamed to --random-seed: not found)") in renamed
