"""The benchmark campaign (issue 27): every experiment a file, every result written by this runner.

    python benchmarks/campaign.py run NAME [NAME ...] [--seeds 42,43] [--num-threads 2] [--redo-unchecked]
    python benchmarks/campaign.py status
    python benchmarks/campaign.py time [NAME ...]          # on an otherwise idle machine: batch 1 and 32 latency
    python benchmarks/campaign.py report                   # tables + plot: docs/campaign.md, README's block
    python benchmarks/campaign.py recreate NAME            # a new machine: re-create NAME from nothing, timed

An experiment is ``benchmarks/experiments/NAME.yaml``: the run config (``config:``, the schema ``kdistill distill
--config`` takes, with ``{teacher}``, ``{glue}``, ``{sets}``, ``{minilm}`` filled in here) and the benchmark's own
fields: ``row`` (the campaign table's row), ``role`` (``kd`` or ``gold``: the gold-only twin), ``twin`` (the other
role's experiment), ``seeds``, ``steps_from`` (a gold twin runs as many optimizer steps as its KD twin's run with the
same seed), ``needs`` (``teacher``, ``set:train``, ``set:tang``, ``set:train-hidden``, ``corpus``, ``run:NAME``:
re-created here when missing, ~1 h for the teacher), ``target``, ``title``, ``command`` (``general-distill`` for a
general distillation step; default a task run).

Each (experiment, seed) trains in ``$KDISTILL_CACHE/campaign/NAME-sSEED`` (resumable: run the same command again),
is evaluated once on SST-2 dev (the kept model was chosen on the held-out train slice, never on dev), and its result is
written to ``benchmarks/results/campaign/NAME-sSEED.json``: metric, per-example dev correctness (for paired tests and
bootstrap intervals), CPU-seconds, wall seconds, threads, machine, git commit, the full config, the selection rule,
the dev size, the hash of the student's weights before its first step (a twin's initialisation is checked against
it). Nothing else writes there. ``--redo-unchecked`` trains again the results that record no such hash.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
EXPERIMENTS = ROOT / "benchmarks" / "experiments"
RESULTS = ROOT / "benchmarks" / "results" / "campaign"
CACHE = Path(os.environ.get("KDISTILL_CACHE", Path.home() / ".cache" / "kdistill"))
RUNS = CACHE / "campaign"
SHARED = ROOT.parent / "shared"


def places() -> dict[str, str]:
    """What an experiment's ``{placeholders}`` stand for on this machine."""
    from sst2_mpnet_teacher import OUT as TEACHER  # noqa: PLC0415

    from kdistill.models import default_pretrained_model

    return {"teacher": str(TEACHER), "glue": str(SHARED / "data" / "glue"), "sets": str(CACHE / "transfer_sets"),
            "minilm": str(default_pretrained_model()), "runs": str(RUNS), "data": str(SHARED / "data"),
            "mpnet_base": str(CACHE / "models" / "all-mpnet-base-v2"),
            "corpus": str(CACHE / "corpora" / "wiki-vital4-en" / "passages.txt")}


def load_experiment(name: str) -> dict[str, Any]:
    """The experiment file ``NAME.yaml`` as a dict (``config`` not yet filled in).

    Raises:
        SystemExit: no such experiment (one line listing the known ones).
    """
    import yaml

    path = EXPERIMENTS / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in EXPERIMENTS.glob("*.yaml")))
        raise SystemExit(f"no experiment '{name}' (benchmarks/experiments/{name}.yaml); known: {known}")
    exp = yaml.safe_load(path.read_text())
    if exp.get("name") != name:
        raise SystemExit(f"{path}: its name field says '{exp.get('name')}', the file name '{name}'")
    return exp


def fill(value: Any, where: dict[str, str]) -> Any:
    """``value`` with ``{placeholder}`` in every string replaced."""
    if isinstance(value, str):
        return value.format(**where)
    if isinstance(value, list):
        return [fill(v, where) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, where) for k, v in value.items()}
    return value


def result_path(name: str, seed: int) -> Path:
    return RESULTS / f"{name}-s{seed}.json"


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The repository's commit (``+dirty`` with uncommitted changes to tracked files outside ``benchmarks/results/``,
    where results land while others train) when this process first asked —
    :func:`main` asks at start, so a result names the code that ran, however far ``main`` moves while it trains."""
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":(exclude)benchmarks/results"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "")


def machine(threads: int) -> dict[str, Any]:
    import torch

    return {"processor": platform.machine(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version(), "threads": threads, "node": platform.node()}


class Stopped(SystemExit):
    """A re-creation step stopped before finishing (e.g. Ctrl-C / SIGTERM: it saved its progress); ``made``: the
    wall seconds spent so far per step."""

    def __init__(self, message: str, made: dict[str, float]):
        super().__init__(f"[campaign] {message}: run the same command to resume")
        self.made = made


#: a step's exit codes that mean "stopped, its progress saved": a clean exit, or Ctrl-C / SIGTERM (killed by the signal,
#: or exiting 128 + its number as the shell reports it)
STOP_CODES = {0, *(c for sig in (signal.SIGINT, signal.SIGTERM) for c in (-sig, 128 + sig))}


def _complete(marker: Path) -> bool:
    """A re-created thing is there: its file exists (a manifest: and says ``complete``)."""
    return marker.exists() and (marker.suffix != ".json" or bool(json.loads(marker.read_text()).get("complete")))


def need_steps() -> dict[str, tuple[Path, list[str]]]:
    """What an experiment's ``needs`` may name besides ``run:EXPERIMENT``: ``{need: (the file that marks it made,
    the script and arguments that make it)}``."""
    from sst2_mpnet_teacher import OUT as TEACHER  # noqa: PLC0415

    sets = CACHE / "transfer_sets"
    return {"teacher": (TEACHER / "model.safetensors", ["benchmarks/sst2_mpnet_teacher.py"]),
            "set:train": (sets / "mpnet-sst2-train" / "manifest.json", ["benchmarks/label_mpnet_sst2.py"]),
            "set:tang": (sets / "mpnet-sst2-tang" / "manifest.json", ["benchmarks/label_mpnet_sst2.py", "--augment"]),
            "set:train-hidden": (sets / "mpnet-sst2-train-hidden" / "manifest.json",
                                 ["benchmarks/label_mpnet_sst2.py", "--hidden-states"]),
            "corpus": (CACHE / "corpora" / "wiki-vital4-en" / "passages.txt", ["benchmarks/fetch_corpus.py"])}


def ensure(needs: list[str]) -> dict[str, float]:
    """Re-create what an experiment needs and this machine lacks (the teacher, transfer sets), by their scripts.
    Returns the wall seconds of each thing re-created here (``{need: seconds}``; what was present is left out)."""
    steps = need_steps()
    made: dict[str, float] = {}
    for need in ["teacher", *[n for n in needs if n != "teacher"]] if needs else []:
        t0 = time.perf_counter()
        if need.startswith("run:"):  # another experiment's model (e.g. a general-distilled student)
            name = need[len("run:"):]
            if not result_path(name, 42).exists():
                print(f"[campaign] {name} is missing here: running it first", flush=True)
                exp = load_experiment(name)
                made.update(ensure(exp.get("needs", [])))
                train_one(exp, 42, torch_threads())
                made[need] = time.perf_counter() - t0
            continue
        marker, script = steps[need]
        if not _complete(marker):
            print(f"[campaign] {need} is missing here: re-creating it with python {shlex.join(script)}", flush=True)
            code = subprocess.run([sys.executable, *script], cwd=ROOT).returncode
            made[need] = time.perf_counter() - t0  # recorded whether it finished, stopped or failed
            if not _complete(marker):
                how = "stopped before finishing" if code in STOP_CODES else f"failed (exit code {code})"
                raise Stopped(f"{need}: its script {how} (its progress is saved)", made)
    return made


def run_config(exp: dict[str, Any], seed: int) -> dict[str, Any]:
    """The experiment's run config for ``seed`` (placeholders filled; a gold twin's ``max_steps`` from its KD twin)."""
    cfg = fill(exp["config"], places())
    cfg.setdefault("train", {})["seed"] = seed
    if exp.get("steps_from"):
        twin = result_path(exp["steps_from"], seed)
        if not twin.exists():
            raise SystemExit(f"{exp['name']} runs as many steps as {exp['steps_from']} (seed {seed}): run that first")
        cfg["train"]["max_steps"] = json.loads(twin.read_text())["optimizer_steps"]
    cfg["output_dir"] = str(RUNS / f"{exp['name']}-s{seed}")
    return cfg


def train_one(exp: dict[str, Any], seed: int, threads: int) -> None:
    """Train (or resume) one (experiment, seed), evaluate it once on dev, write its result file."""
    from kdistill import api

    cfg = run_config(exp, seed)
    commit = git_commit()  # the code this process runs (read when it started)
    out = Path(cfg["output_dir"])
    cpu_file = out.parent / f".{out.name}.cpu.json"  # CPU/wall seconds of earlier invocations that ended
    spent = json.loads(cpu_file.read_text()) if cpu_file.exists() else {"cpu_seconds": 0.0, "wall_seconds": 0.0,
                                                                         "invocations": 0}
    method = (cfg.get("method") or {}).get("name", "kd")
    general = exp.get("command") == "general-distill"
    fn = api.general_distill if general else api.finetune if method == "finetune" else api.distill
    cpu0, wall0 = time.process_time(), time.perf_counter()
    resume = out.exists()
    try:
        res = fn(config=cfg, resume=resume, report=False) if fn is api.distill else fn(config=cfg, resume=resume)
    finally:
        spent = {"cpu_seconds": spent["cpu_seconds"] + time.process_time() - cpu0,
                 "wall_seconds": spent["wall_seconds"] + time.perf_counter() - wall0,
                 "invocations": spent["invocations"] + 1,
                 "invocation_commits": [*spent.get("invocation_commits", []), commit]}
        out.parent.mkdir(parents=True, exist_ok=True)
        cpu_file.write_text(json.dumps(spent))
    if getattr(res, "interrupted", False):
        raise SystemExit(f"{out.name}: stopped; run the same command to resume")
    dev = None if general else dev_eval(out, cfg)  # a general-distilled encoder has no task head
    results = json.loads((out / "train_results.json").read_text())
    settings = json.loads((out / "kdistill_run.json").read_text())
    row = {"name": exp["name"], "seed": seed, "task": (cfg.get("data") or {}).get("task", "sst2"), "row": exp["row"],
           "role": exp["role"], "twin": exp.get("twin"),
           "title": exp.get("title"), "target": exp.get("target"),
           "steps": [n[len("run:"):] for n in exp.get("needs", []) if n.startswith("run:")], "command": f"python benchmarks/campaign.py run {exp['name']} --seeds {seed}",
           "experiment_file": f"benchmarks/experiments/{exp['name']}.yaml", "git_commit": commit,
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(threads),
           **spent, "optimizer_steps": results.get("global_step"), "best_step": results.get("best_step"),
           "student_init_sha256": results.get("student_init_sha256"),
           "selected_on": results.get("selected_on"), "selection": results.get("selection"),
           "transfer_sets": results.get("transfer_sets"), "dev": dev, "config": settings,
           "eval_curve": eval_curve(out, dev), "model_dir": str(out)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    result_path(exp["name"], seed).write_text(json.dumps(row, indent=1) + "\n")
    score = "" if dev is None else f"dev {dev['metric']} = {dev['value']:.4f} "
    print(f"[campaign] {exp['name']} seed {seed}: {score}({spent['cpu_seconds'] / 3600:.2f} CPU-h)", flush=True)


def eval_curve(run: Path, dev: dict[str, Any] | None) -> dict[str, Any] | None:
    """The run's main metric on its held-out selection slice at each evaluation (``logs/train_log.csv``): the
    learning curve a missed target's projection is read from."""
    import csv

    log = run / "logs" / "train_log.csv"
    if dev is None or not log.exists():
        return None
    key = f"eval/{dev['metric']}"
    with open(log, newline="") as f:
        points = [[int(r["step"]), float(r["value"])] for r in csv.DictReader(f) if r["key"] == key]
    return {"metric": dev["metric"], "split": "held-out selection slice of train", "points": points}


def dev_eval(model_dir: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """The model's dev metric and what it is made of per example, in dev order: SST-2 correctness (a string of 0/1),
    CoNLL-2003 entity counts per sentence window, SQuAD F1 per question."""
    import numpy as np

    from kdistill.config import DataConfig
    from kdistill.data.batching import eval_loader, tokenize
    from kdistill.data.loading import load_data
    from kdistill.engine.evaluation import predict
    from kdistill.models import load_classifier, load_tokenizer

    data = cfg.get("data") or {}
    where = {k: data[k] for k in ("data_dir", "train_file", "validation_file", "max_length", "doc_stride") if k in data}
    dcfg = DataConfig(task=data.get("task", "sst2"), **where)
    splits, spec = load_data(dcfg)
    model = load_classifier(str(model_dir), spec, require_trained_head=True).eval()
    tok = load_tokenizer(str(model_dir))
    ds = tokenize(splits["validation"], tok, max_length=dcfg.max_length, doc_stride=dcfg.doc_stride, desc="tokenize dev")
    logits, gold = predict(model, eval_loader(ds, tok, batch_size=64), desc="dev", show_progress=False)
    if spec.qa:  # SQuAD F1 and exact match: per question (its windows' best answer, scored)
        from kdistill.metrics import qa_scores

        scores = qa_scores(spec, logits, gold)
        return {"split": "validation", "rows": int(len(scores)), "metric": "f1", "value": float(scores[:, 1].mean()),
                "exact_match": float(scores[:, 0].mean()), "windows": int(len(ds)),
                "f1_per_question": [round(float(x), 6) for x in scores[:, 1]], "labels_sha": _sha(gold.ids)}
    if spec.token_level:  # entity F1: per sentence window (true positives, predicted, gold)
        from kdistill.metrics import token_tags
        from kdistill.tokens.data import entity_types
        from kdistill.tokens.metrics import prf, sentence_counts

        g, p = token_tags(spec, logits, gold)
        counts = sentence_counts(g, p, entity_types(spec.labels))[:, -1, :]
        return {"split": "validation", "rows": int(len(counts)), "metric": "f1", "value": prf(counts.sum(0))[2],
                "counts": counts.tolist(), "labels_sha": _sha([list(map(int, r)) for r in gold.tolist()])}
    correct = (logits.argmax(-1) == gold).astype(int)
    return {"split": "validation", "rows": int(len(correct)), "metric": "accuracy", "value": float(correct.mean()),
            "correct": "".join(map(str, correct.tolist())), "labels_sha": _sha(np.asarray(gold).tolist())}


def _sha(values) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(values).encode()).hexdigest()[:16]


def teacher_result(threads: int, *, redo: bool = False) -> None:
    """The teacher's dev evaluation, once (``benchmarks/results/campaign/teacher.json``; ``redo``: again)."""
    path = RESULTS / "teacher.json"
    if path.exists() and not redo:
        return
    where = places()
    dev = dev_eval(Path(where["teacher"]), {"data": {"task": "sst2", "data_dir": where["glue"]}})
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"name": "teacher", "title": "all-mpnet-base-v2 fine-tuned on SST-2 "
                                "(benchmarks/sst2_mpnet_teacher.py)", "model_dir": where["teacher"],
                                "command": "python benchmarks/campaign.py run ...", "git_commit": git_commit(),
                                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                "machine": machine(threads), "dev": dev}, indent=1) + "\n")


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def progress(run: Path) -> str:
    """How far an unfinished run got: the newest checkpoint of each stage (TinyBERT's ``intermediate/``, then the
    run's own), or that it has none yet."""
    from kdistill.rundir import RunDir

    if not RunDir(run).is_run():
        return "not started"
    stages = [p for p in sorted(run.iterdir()) if p.is_dir() and not p.is_symlink() and RunDir(p).has_checkpoint()]
    done = []
    for folder in [*stages, run]:
        state = RunDir(folder).checkpoint_state()
        if state is not None:
            name = "last stage" if folder == run and stages else "" if folder == run else f"{folder.name} stage"
            finished = ", finished" if state.get("finished") else ""
            done.append(f"{name + ' ' if name else ''}checkpoint at step {state.get('global_step')}{finished}")
    return f"started ({'; '.join(done) or 'no checkpoint yet'}): run it again to resume"


def to_train(name: str, seed: int, *, redo_unchecked: bool = False) -> bool:
    """Whether ``run`` trains (or resumes) this (experiment, seed): it has no result file, or ``redo_unchecked`` and
    its result records no ``student_init_sha256``. Redoing one deletes its finished old run folder (one without
    ``student_init.json``) and that run's CPU record first; a redo that was stopped is resumed, not restarted."""
    import shutil

    from kdistill.rundir import RunDir

    path = result_path(name, seed)
    if not path.exists():
        return True
    if not redo_unchecked or json.loads(path.read_text()).get("student_init_sha256"):
        return False
    run = RunDir(RUNS / f"{name}-s{seed}")
    if run.is_complete() and not run.init_file.exists():  # the old run: made before the hash was recorded
        print(f"[campaign] {name} seed {seed}: its result records no initial-weights hash; training it again",
              flush=True)
        shutil.rmtree(run.path)
        (run.path.parent / f".{run.path.name}.cpu.json").unlink(missing_ok=True)
    return True


def status() -> None:
    for path in sorted(EXPERIMENTS.glob("*.yaml")):
        exp = load_experiment(path.stem)
        for seed in exp.get("seeds", [42]):
            res = result_path(exp["name"], seed)
            run = RUNS / f"{exp['name']}-s{seed}"
            if res.exists():
                row = json.loads(res.read_text())
                score = "" if row["dev"] is None else f"dev {row['dev']['value']:.4f}, "
                state = f"done: {score}{row['cpu_seconds'] / 3600:.2f} CPU-h"
            else:
                state = progress(run)
            print(f"{exp['name']:<24} seed {seed:<4} {state}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["run", "status", "time", "report", "recreate"])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--seeds", default=None, help="comma-separated: only these of each experiment's seeds")
    ap.add_argument("--num-threads", type=int, default=2)
    ap.add_argument("--redo-unchecked", action="store_true",
                    help="run again the results that record no hash of the student's initial weights (made before "
                         "the runner recorded it, so their twin's initialisation cannot be checked); resumable")
    args = ap.parse_args()
    git_commit()  # the code this process runs: read now, before main can move on
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if args.action == "status":
        return status()
    if args.action == "report":
        from campaign_tables import write_all  # noqa: PLC0415

        return write_all()
    import torch

    torch.set_num_threads(args.num_threads)
    if args.action == "time":
        from campaign_timing import time_models  # noqa: PLC0415

        return time_models(args.names, threads=args.num_threads)
    if args.action == "recreate":
        from campaign_recreate import recreate  # noqa: PLC0415

        if len(args.names) != 1:
            raise SystemExit("recreate takes one experiment name, e.g. bilstm-kd")
        return recreate(args.names[0], threads=args.num_threads)
    for name in args.names:
        exp = load_experiment(name)
        ensure(exp.get("needs", []))
        teacher_result(args.num_threads)
        seeds = exp.get("seeds", [42])
        if args.seeds:
            seeds = [s for s in seeds if str(s) in args.seeds.split(",")]
        for seed in seeds:
            if not to_train(name, seed, redo_unchecked=args.redo_unchecked):
                print(f"[campaign] {name} seed {seed}: done (delete {result_path(name, seed)} to redo)")
                continue
            train_one(exp, seed, args.num_threads)


if __name__ == "__main__":
    main()
