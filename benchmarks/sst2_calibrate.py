"""Calibration and provisioning on SST-2 (issue 17): searched distillation settings, students chosen for latency
budgets measured on this machine.

    python benchmarks/sst2_calibrate.py                       # every part (hours on 2 cores; resumable)
    python benchmarks/sst2_calibrate.py --only search         # search | provision (comma-separated)
    python benchmarks/sst2_calibrate.py --smoke               # ~1-2 minutes: tiny slices, checks the pipeline only
    python benchmarks/sst2_calibrate.py --render-only         # result files again from the finished run folders

Teacher: the base-size MPNet teacher of benchmarks/sst2_mpnet_teacher.py ($KDISTILL_CACHE/teachers/mpnet-sst2) when
it is there, else the shared MiniLM-L6 teacher (recorded); ``--teacher`` chooses. Student: a copy of teacher layers
(``--layers``, default 0,2,5 for the 6-layer MiniLM, every other layer otherwise).

1. **search** (``kdistill.search``): T, alpha, learning rate and the L_cos weight on short runs (``--trial-steps``),
   TPE, median pruning, each trial scored on the held-out selection slice of the train split (never dev); then the
   best settings at full length, against the same student on gold labels alone (alpha = 1) and with the default KD
   settings (T = 2, alpha = 0.5) — same length, same selection rule — with paired bootstrap intervals of the dev
   differences (Efron & Tibshirani 1993; :func:`kdistill.reporting.stats.paired_bootstrap_diff`).
   Target: >= 0.5 point above gold-only and above default KD.
2. **provision** (``kdistill.provision``) at 50 %, 25 % and 12 % of the teacher's batch-1 latency in ONNX Runtime int8
   (the teacher measured in the same runtime on this machine), candidates = teacher-layer subsets, pruned teacher
   layers, spec shapes and BiLSTMs; each chosen student's measured latency must be within its budget, and its
   retention is set against the hand-picked students of the earlier issues (``benchmarks/results/*.json``) at the same
   or lower share of their teacher's latency. One plot: all candidates, the budgets, the chosen students.
Dynamic batch size vs fixed batch 32 (epoch time, dev accuracy), the issue's third measurement, is
benchmarks/sst2_dynamic_batch.py (results sst2_dynamic_batch.{json,md}).

Writes benchmarks/results/sst2_calibrate_{search,provision}.{json,md} and .png plots; ``--smoke`` writes
sst2_calibrate_smoke_* into its run folder instead (not results). Runs live under $KDISTILL_CACHE/calibrate/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sst2_foundation import GLUE, RESULTS, TEACHER, machine  # noqa: E402

CACHE = Path(os.environ.get("KDISTILL_CACHE", Path.home() / ".cache" / "kdistill"))
MPNET = CACHE / "teachers" / "mpnet-sst2"
BUDGETS = (0.50, 0.25, 0.12)


def pick_teacher(arg: str | None, smoke: bool) -> tuple[Path, str]:
    if arg:
        return Path(arg), "given (--teacher)"
    if not smoke and (MPNET / "config.json").exists() and (MPNET / "train_results.json").exists():
        return MPNET, "base-size MPNet teacher (benchmarks/sst2_mpnet_teacher.py)"
    return TEACHER, "shared MiniLM-L6 teacher" + (" (smoke)" if smoke else " (the MPNet teacher is not built here)")


def settings(args) -> dict:
    """Data / engine settings of every run (smoke: tiny slices and steps)."""
    if args.smoke:
        return dict(data=dict(data_dir=str(GLUE), max_train_samples=400, max_eval_samples=64, selection_size=30),
                    train=dict(batch_size=16, max_steps=8, eval_steps=4, seed=42, show_progress=False),
                    trial=dict(trial_max_steps=4), n_trials=3, latency_runs=3, report_latency_runs=3)
    return dict(data=dict(data_dir=str(GLUE)),
                train=dict(batch_size=32, epochs=args.epochs, eval_steps=300, seed=42, learning_rate=1e-4),
                trial=dict(trial_max_steps=args.trial_steps), n_trials=args.trials, latency_runs=50,
                report_latency_runs=300)


def dev_predictions(paths: dict[str, Path], data: dict):
    from kdistill.config import DataConfig
    from kdistill.data.batching import eval_loader, tokenize
    from kdistill.data.loading import load_data
    from kdistill.engine.evaluation import predict
    from kdistill.models import load_classifier, load_tokenizer

    splits, spec = load_data(DataConfig(task="sst2", **{k: v for k, v in data.items() if k != "selection_size"}))
    preds, gold = {}, None
    for name, path in paths.items():
        net, tok = load_classifier(str(path), spec, require_trained_head=True), load_tokenizer(str(path))
        preds[name], gold = predict(net, eval_loader(tokenize(splits["validation"], tok), tok, batch_size=64),
                                    show_progress=False)
    return preds, gold, spec


# --------------------------------------------------------------------------- 1. search
def lr_of(run: Path) -> float:
    """The peak learning rate a finished run used (its ``kdistill_run.json``)."""
    return json.loads((run / "kdistill_run.json").read_text())["train"]["learning_rate"]


def part_search(args, root: Path, teacher: Path, teacher_what: str, s: dict, command: str) -> dict:
    import kdistill
    from kdistill.metrics import compute_metrics
    from kdistill.reporting.stats import paired_bootstrap_diff
    from kdistill.search import search

    layers = [int(x) for x in args.layers.split(",")] if args.layers else None
    common = dict(**s["data"], **s["train"], **({"layers": layers} if layers else {}))
    sdir = root / "search"
    if not args.render_only:
        res = search(str(teacher), "sst2", output_dir=sdir, n_trials=s["n_trials"],
                     params=["temperature", "alpha", "learning_rate", "cos_weight"], pruner="median",
                     resume=(sdir / "search.json").exists(), report_latency_runs=s["report_latency_runs"],
                     **s["trial"], **common)
        if res.interrupted:
            raise SystemExit(f"the search in {sdir} was stopped; run again to resume it")
    found = json.loads((sdir / "search_results.json").read_text())  # what the search wrote (also --render-only)
    runs = {"searched": Path(found["final"]["output_dir"])}
    for name, opts in (("gold_only", dict(alpha=1.0)), ("default_kd", dict(alpha=0.5, temperature=2.0))):
        out = root / name
        if not (out / "report.json").exists() and not args.render_only:
            kdistill.distill(str(teacher), "sst2", output_dir=out, overwrite=True,
                             latency_runs=s["report_latency_runs"], **opts, **common)
        runs[name] = out
    preds, gold, spec = dev_predictions({"teacher": teacher, **runs}, s["data"])
    acc = {k: float(compute_metrics(spec, p, gold)["accuracy"]) for k, p in preds.items()}
    diffs = {}
    for ref in ("gold_only", "default_kd"):
        d = paired_bootstrap_diff(spec, preds["searched"], preds[ref], gold, n_resamples=1000, seed=0)
        diffs[f"searched_minus_{ref}"] = {"difference": d["difference"], "ci": d["ci"], "p_value": d["p_value"]}
    reports = {k: json.loads((p / "report.json").read_text()) for k, p in runs.items()}
    target_gold = diffs["searched_minus_gold_only"]["difference"] >= 0.005
    target_kd = diffs["searched_minus_default_kd"]["difference"] > 0
    best = reports["searched"]
    result = {"benchmark": "sst2_calibrate_search", "task": "sst2", "teacher": str(teacher),
              "student": f"layers-from-teacher {layers or 'every other'}",
              "method": "kd with T, alpha, learning rate and L_cos weight searched (Optuna TPE, median pruning, "
                        "scored on the held-out selection slice)",
              "metric_name": "accuracy", "teacher_metric": acc["teacher"], "student_metric": acc["searched"],
              "retention": acc["searched"] / acc["teacher"], "teacher_latency_ms": best.get("teacher_latency_ms"),
              "student_latency_ms": best.get("student_latency_ms"), "speedup": best.get("speedup"),
              "command": command, "machine": machine(),
              "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "smoke": args.smoke,
              "teacher_what": teacher_what,
              "search": {"n_trials": found["n_trials"], **s["trial"], "best_trial": found["best_trial"],
                         "best_params": found["best_params"], "best_selection_metric": found["best_selection_metric"],
                         "states": found["states"],
                         "folder": str(sdir), "scored_on": "held-out selection slice of the train split"},
              "rows": {k: {"dev_accuracy": acc[k], "retention": acc[k] / acc["teacher"],
                           "selection_eval": json.loads((runs[k] / "train_results.json").read_text()).get("selection_eval"),
                           "train_seconds": reports[k].get("train_seconds"), "dev_ci": reports[k].get("student_ci"),
                           "learning_rate": lr_of(runs[k]),
                           "student_latency_ms": reports[k].get("student_latency_ms"),
                           "temperature": reports[k].get("temperature"), "alpha": reports[k].get("alpha"),
                           "cos_weight": reports[k].get("cos_weight"), "run": str(runs[k])} for k in runs},
              "differences": diffs, "target": {"searched_minus_gold_at_least_0.5_points": target_gold,
                                               "searched_above_default_kd": target_kd},
              "settings": {**s["data"], **s["train"]}}
    name = "sst2_calibrate_smoke_search" if args.smoke else "sst2_calibrate_search"
    target = (root if args.smoke else RESULTS) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    if (sdir / "search.png").exists():
        shutil.copyfile(sdir / "search.png", target.with_suffix(".png"))

    def ci(d):
        return f"{100 * d['difference']:+.2f} [{100 * d['ci'][0]:+.2f}, {100 * d['ci'][1]:+.2f}] (p {d['p_value']:.3f})"

    md = [f"# {name}", "", f"`{command}`", "", f"Machine: {result['machine']}. Teacher: {teacher_what} "
          f"(dev {acc['teacher']:.4f}). Student: {result['student']}.", "",
          f"Search: {s['n_trials']} trials (TPE, median pruning) of {s['trial']} scored on the held-out selection "
          f"slice; best trial {found['best_trial']}: "
          + ", ".join(f"{k} = {v:.4g}" for k, v in found["best_params"].items())
          + f" (selection {found['best_selection_metric']:.4f}). States: {found['states']}.", "",
          "| student (same length, same selection rule) | T | alpha | cos | lr | dev acc [95% CI] | retention | train s |",
          "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for k, r in result["rows"].items():
        t = "—" if r["temperature"] is None or r["alpha"] == 1.0 else f"{r['temperature']:.3g}"  # alpha 1: no teacher
        md.append(f"| {k} | {t} | {r['alpha']:.3g} | {r['cos_weight']:.3g} | {r['learning_rate']:.3g} | "
                  f"{r['dev_accuracy']:.4f} [{r['dev_ci'][0]:.4f}, {r['dev_ci'][1]:.4f}] | {100 * r['retention']:.1f} % | "
                  f"{r['train_seconds']:.0f} |")
    md += ["", f"searched − gold only: {ci(diffs['searched_minus_gold_only'])} points (target ≥ +0.5: "
               f"{'met' if target_gold else 'not met'})",
           f"searched − default KD: {ci(diffs['searched_minus_default_kd'])} points (target > 0: "
           f"{'met' if target_kd else 'not met'}"
           + (" on the point estimate only: the interval includes 0" if target_kd
              and diffs["searched_minus_default_kd"]["ci"][0] <= 0 else "") + ")", ""]
    target.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return result


# --------------------------------------------------------------------------- 2. provision
def hand_picked(teacher: Path) -> list[dict]:
    """Earlier issues' students of the same teacher: retention and latency as a share of the teacher's.

    ``runtime`` ``ort_int8``: the students of benchmarks/sst2_deploy.py, timed in ONNX Runtime int8 beside the teacher's
    own int8 graph (the provisioning runtime: the strict comparison); ``eager``: every result file with a report
    (PyTorch eager, student and teacher timed in one run; a looser comparison, since eager shares of small models are
    smaller than int8 ones).
    """
    rows, name = [], teacher.name
    deploy = RESULTS / "sst2_deploy.json"
    if deploy.exists():
        d = json.loads(deploy.read_text())
        if name in str(d["pairs"][0]["teacher"]):
            by = {(r["model"], r["runtime"]): r for r in d["rows"]}
            t8, t_metric = by[("teacher", "ort_int8")], by[("teacher", "eager_fp32")]["metric"]
            for (model, runtime), r in sorted(by.items()):
                if model != "teacher" and runtime == "ort_int8":
                    rows.append({"result": f"sst2_deploy {model}", "runtime": "ort_int8", "student_metric": r["metric"],
                                 "retention": r["metric"] / t_metric,
                                 "share": r["latency_ms"]["2"] / t8["latency_ms"]["2"]})
    for path in sorted(RESULTS.glob("*.json")):
        if path.name.startswith("sst2_calibrate"):
            continue
        try:
            d = json.loads(path.read_text())
        except ValueError:
            continue
        if not isinstance(d, dict) or not d.get("retention") or not d.get("student_latency_ms") or not d.get(
                "teacher_latency_ms") or not str(d.get("teacher", "")).rstrip("/").endswith(name):
            continue
        rows.append({"result": path.stem, "runtime": "eager", "student_metric": d.get("student_metric"),
                     "retention": d["retention"], "share": d["student_latency_ms"] / d["teacher_latency_ms"]})
    return rows


def against_hand_picked(row: dict, picked: list[dict]) -> dict:
    """For one budget: the best hand-picked student at the same or lower latency share, per runtime, and whether the
    provisioned student's retention is at least its (None: no hand-picked student that fast)."""
    out = {}
    for runtime in ("ort_int8", "eager"):
        peers = [h for h in picked if h["runtime"] == runtime and h["share"] <= row["share"] + 1e-9]
        best = max(peers, key=lambda h: h["retention"]) if peers else None
        out[runtime] = {"best": best, "at_least": None if best is None or row["retention"] is None
                        else bool(row["retention"] >= best["retention"])}
    return out


def part_provision(args, root: Path, teacher: Path, teacher_what: str, s: dict, command: str) -> dict:
    from kdistill.config import DataConfig
    from kdistill.data.loading import load_data
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.provision import provision
    from kdistill.provision.latency import LatencyCache, default_cache_file, length_texts, measure

    runtime = "ort-int8"
    splits, spec = load_data(DataConfig(task="sst2", **s["data"]))
    net, tok = load_classifier(str(teacher), spec, require_trained_head=True), load_tokenizer(str(teacher))
    cache = LatencyCache(default_cache_file())
    t_lat = measure(net, tok, length_texts(splits), runtime=runtime, n_runs=s["latency_runs"], cache=cache)
    t_fp32 = measure(net, tok, length_texts(splits), runtime="ort", n_runs=s["latency_runs"], cache=cache)
    del net
    grid = (dict(kinds=["layers", "spec", "bilstm"], layer_counts=[1, 2], spec_layers=[1], spec_widths=[0.25],
                 bilstm_hidden=[64], short_steps=3, top_k=2) if args.smoke else dict(short_steps=300, top_k=3))
    rows, cands = [], None
    for share in BUDGETS:
        budget = share * t_lat.latency_ms
        out = root / f"provision_{int(round(100 * share))}"
        if not args.render_only:
            provision(str(teacher), "sst2", output_dir=out, latency_budget_ms=budget, runtime=runtime,
                      latency_runs=s["latency_runs"], report_latency_runs=s["report_latency_runs"],
                      resume=(out / "provision.json").exists(), **grid, **s["data"], **s["train"])
        done = json.loads((out / "provision_results.json").read_text())  # what provisioning wrote (also --render-only)
        cands = json.loads((out / "candidates.json").read_text())["candidates"]
        rep = json.loads((Path(done["final"]["output_dir"]) / "report.json").read_text())
        chosen, trained, dev_acc = done["chosen"], done["trained_latency_ms"], done["final"]["dev_metrics"]["accuracy"]
        budget = done["latency_budget_ms"]
        rows.append({"share": share, "budget_ms": budget, "chosen": chosen["name"], "kind": chosen["kind"],
                     "measured_ms": chosen["latency_ms"], "trained_ms": trained,
                     "within_budget": chosen["latency_ms"] <= budget and (trained is None or trained <= budget),
                     "params": chosen["params"], "dev_accuracy": dev_acc,
                     "dev_ci": rep.get("student_ci"), "retention": rep.get("retention"),
                     "teacher_minus_student": rep.get("difference"), "teacher_minus_student_ci": rep.get("difference_ci"),
                     "short_metric": chosen["short_metric"], "folder": str(out),
                     # the project's result fields, latency in the provisioning runtime (ORT int8, batch 1)
                     "task": "sst2", "teacher": str(teacher), "student": chosen["name"],
                     "method": f"kdistill provision --runtime {runtime} --latency-budget {budget:.4f} (KD, T = 2, "
                               "alpha = 0.5)", "metric_name": "accuracy", "teacher_metric": rep.get("teacher_metric"),
                     "student_metric": dev_acc, "teacher_latency_ms": t_lat.latency_ms,
                     "student_latency_ms": trained if trained is not None else chosen["latency_ms"],
                     "speedup": t_lat.latency_ms / (trained if trained is not None else chosen["latency_ms"]),
                     "train_seconds": rep.get("train_seconds")})
    picked = hand_picked(teacher)
    for r in rows:
        r["hand_picked"] = against_hand_picked(r, picked)
    head = rows[0]  # headline: the 50 % budget; every row carries the same fields
    result = {"benchmark": "sst2_calibrate_provision", **{k: head[k] for k in (
                  "task", "student", "method", "metric_name", "teacher_metric", "student_metric", "retention",
                  "student_latency_ms", "speedup")}, "teacher_latency_ms": t_lat.latency_ms,
              "command": command, "machine": machine(),
              "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "smoke": args.smoke,
              "teacher": str(teacher), "teacher_what": teacher_what, "runtime": runtime,
              "teacher_latency_ms_by_runtime": {"ort_int8": t_lat.latency_ms, "ort_fp32": t_fp32.latency_ms},
              "seq_len": t_lat.seq_len, "threads": t_lat.threads, "rows": rows, "candidates": cands,
              "hand_picked": picked,
              "note": ("budgets are shares of the teacher's batch-1 latency in the same runtime (ONNX Runtime int8) on "
                       "this machine; hand-picked students (same teacher) are compared by their share of the teacher's "
                       "latency: in ORT int8 (benchmarks/sst2_deploy.py, the strict comparison) and in PyTorch eager "
                       "(their own reports; looser: eager shares of small models are smaller than int8 ones)")}
    name = "sst2_calibrate_smoke_provision" if args.smoke else "sst2_calibrate_provision"
    target = (root if args.smoke else RESULTS) / name
    target.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    plot_budgets(cands, rows, t_lat.latency_ms, target.with_suffix(".png"), runtime=runtime)
    md = [f"# {name}", "", f"`{command}`", "", f"Machine: {result['machine']}. Teacher: {teacher_what}; batch-1 "
          f"latency {t_lat.latency_ms:.3f} ms in ORT int8 ({t_fp32.latency_ms:.3f} ms ORT fp32), {t_lat.seq_len} "
          f"tokens, {t_lat.threads} threads. {len(cands)} candidates.", "",
          "| budget | chosen | measured ms | within | trained ms | params | dev acc [95% CI] | retention | best "
          "hand-picked at ≤ share, ORT int8 | ≥ it | best hand-picked at ≤ share, eager | ≥ it |",
          "|---|---|---:|---|---:|---:|---:|---:|---|---|---|---|"]

    def peer(h):
        b = h["best"]
        return ((f"{b['result']} ({100 * b['share']:.0f} %, {100 * b['retention']:.1f} %)" if b else "none that fast")
                + " | " + {True: "yes", False: "no", None: "—"}[h["at_least"]])

    for r in rows:
        lo, hi = r.get("dev_ci") or (float("nan"), float("nan"))
        md.append(f"| {100 * r['share']:.0f} % = {r['budget_ms']:.3f} ms | {r['chosen']} | {r['measured_ms']:.3f} | "
                  f"{'yes' if r['within_budget'] else 'NO'} | {(r['trained_ms'] or 0):.3f} | {r['params']:,} | "
                  f"{(r['dev_accuracy'] or 0):.4f} [{lo:.3f}, {hi:.3f}] | {100 * (r['retention'] or 0):.1f} % | "
                  f"{peer(r['hand_picked']['ort_int8'])} | {peer(r['hand_picked']['eager'])} |")
    md += ["", result["note"] + ".", ""]
    target.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return result


def plot_budgets(cands: list[dict], rows: list[dict], teacher_ms: float, path: Path, *, runtime: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"layers": "tab:blue", "pruned": "tab:orange", "spec": "tab:green", "bilstm": "tab:purple"}
    fig, ax = plt.subplots(figsize=(8, 5))
    for kind, color in colors.items():
        pts = [c for c in cands if c["kind"] == kind and c["latency_ms"]]
        if pts:
            ax.scatter([c["latency_ms"] for c in pts], [c["params"] for c in pts], c=color, alpha=0.7, label=kind)
    for r, ls in zip(rows, ("--", "-.", ":")):
        ax.axvline(r["budget_ms"], ls=ls, c="red", label=f"budget {100 * r['share']:.0f} % ({r['budget_ms']:.2f} ms)")
        ax.scatter([r["measured_ms"]], [r["params"]], marker="*", s=300, c="gold", edgecolors="k", zorder=5)
        ax.annotate(f"{100 * r['share']:.0f} %: {r['chosen']}\n dev {(r['dev_accuracy'] or 0):.3f}",
                    (r["measured_ms"], r["params"]), fontsize=7, xytext=(5, 5), textcoords="offset points")
    ax.axvline(teacher_ms, c="k", lw=0.8, label=f"teacher {teacher_ms:.2f} ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"measured batch-1 latency, ms ({runtime}, this machine)")
    ax.set_ylabel("parameters")
    ax.set_title("kdistill provision on SST-2: candidates, budgets, chosen students (★)", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="search,provision")
    ap.add_argument("--teacher", default=None)
    ap.add_argument("--layers", default=None, help="teacher layers of the student (default 0,2,5 for a 6-layer teacher)")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--trial-steps", type=int, default=600, help="optimizer steps per search trial")
    ap.add_argument("--epochs", type=float, default=2.0, help="length of the full runs (the best, gold only, default KD)")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--render-only", action="store_true",
                    help="write the result files from the finished run folders (no training, no new timing)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    command = "python benchmarks/" + Path(__file__).name + " " + shlex.join(sys.argv[1:])
    if args.render_only:  # the runs came from the same command without --render-only
        command = shlex.join(a for a in command.split(" ") if a != "--render-only") + "  &&  " + command
    teacher, what = pick_teacher(args.teacher, args.smoke)
    if args.layers is None and teacher == TEACHER:
        args.layers = "0,2,5"  # the foundation benchmark's student
    root = CACHE / "calibrate" / ("smoke" if args.smoke else "runs")
    if args.smoke:
        import kdistill.reporting.compare as compare

        compare.ORT_ROWS = False  # smoke: reports skip their ONNX Runtime rows (export time); provisioning still uses ORT
        shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    s = settings(args)
    parts = {"search": part_search, "provision": part_provision}
    for name in args.only.split(","):
        parts[name.strip()](args, root, teacher, what, s, command)
    if args.smoke:
        print(f"smoke results in {root} (not benchmarks/results)")


if __name__ == "__main__":
    main()
