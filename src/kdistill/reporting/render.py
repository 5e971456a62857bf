"""Build and write the teacher-vs-student "proof" report (JSON, Markdown, PNG).

Units: latencies in ms (batch 1, CPU), throughput in examples/s, sizes in MB (1 MB = 1e6
bytes), retention and param_ratio as fractions (0.981 = 98.1 %).

(Just over 500 lines: the JSON fields, their Markdown rendering and the plot are kept side by side so a new
field is added in one file; the statistics are in :mod:`kdistill.reporting.stats`.)
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import torch

from kdistill.errors import KDistillError
from kdistill.reporting.measure import LatencyStats, SizeStats
from kdistill.results import to_json

__all__ = ["ModelEntry", "Report", "build_report", "write_report", "render_markdown"]


class Report(dict):
    """The teacher-vs-student report: the fields of ``report.json`` as a dict (``report["retention"]``, as scripts
    have read it) plus ``files``, the paths written (``report.json`` / ``.md`` / ``.png``: :func:`write_report`).

    Attributes:
        files: ``{"json" | "md" | "png": path}`` of the written files; empty until written.
    """

    def __init__(self, fields: dict[str, Any] | None = None, *, files: dict[str, Any] | None = None):
        super().__init__(fields or {})
        self.files: dict[str, str] = {k: str(v) for k, v in (files or {}).items()}

    def to_json(self, indent: int | None = 1) -> str:
        """The report as strict JSON (a non-finite value becomes ``null``, its path listed under ``undefined``)."""
        return to_json(dict(self), indent=indent)

    def __reduce__(self):  # pickles (e.g. across processes) with its files
        return (Report, (dict(self),), {"files": self.files})


@dataclass
class ModelEntry:
    """One measured model.

    Attributes:
        name: display name (e.g. ``"teacher"``, ``"student-L4-H256"``).
        path: directory the model was loaded from / saved to, or ``None``.
        metric: task metric on the dev set (e.g. accuracy as a fraction); ``None`` when it is undefined there.
        size: parameter counts and size on disk.
        latency: CPU latency (ms) and throughput (examples/s).
    """

    name: str
    path: str | None
    metric: float | None  # None: undefined on this dev split (e.g. a correlation of constant predictions)
    size: SizeStats
    latency: LatencyStats


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    value = float(num) / float(den)
    return value if math.isfinite(value) else None


def _machine() -> dict[str, Any]:
    uname = platform.uname()
    return {
        "processor": platform.processor() or uname.machine,
        "platform": platform.platform(),
        "machine": uname.machine,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _check_entry(entry: Any, role: str) -> None:
    if not isinstance(entry, ModelEntry):
        raise KDistillError(f"{role} must be a ModelEntry, got {type(entry).__name__}.")
    if entry.metric is not None and (not isinstance(entry.metric, (int, float)) or not math.isfinite(entry.metric)):
        raise KDistillError(f"{role} metric must be a finite number or None (undefined), got {entry.metric!r}.")


def build_report(
    *,
    task: str,
    metric_name: str,
    teacher: ModelEntry,
    student: ModelEntry,
    extra: dict | None = None,
) -> dict:
    """Assemble the JSON-able comparison of teacher and student.

    Args:
        task: task name (e.g. ``"sst2"``).
        metric_name: name of the task metric (e.g. ``"accuracy"``).
        teacher: the measured teacher.
        student: the measured student.
        extra: additional JSON-able keys merged into the report last (they override
            computed keys of the same name).

    Returns:
        A flat dict with keys ``task, metric_name, teacher, student`` (paths),
        ``teacher_name, student_name, teacher_metric, student_metric, retention``
        (student/teacher metric, a fraction, ``None`` if the teacher metric is 0),
        ``teacher_latency_ms, student_latency_ms`` (batch-1 medians, ms),
        ``teacher_latency_p90_ms, student_latency_p90_ms``, ``speedup`` (teacher/student
        median latency), ``teacher_throughput, student_throughput`` (examples/s),
        ``throughput_speedup`` (student/teacher throughput), ``teacher_params,
        student_params, teacher_params_non_embedding, student_params_non_embedding``,
        ``param_ratio`` (student/teacher total params), ``teacher_disk_mb, student_disk_mb``
        (MB = 1e6 bytes, or ``None``), ``seq_len, latency_runs, threads,
        throughput_batch_size`` (taken from the teacher's measurement; ``student_seq_len``,
        ``student_latency_runs``, ``student_threads`` are added only if they differ),
        ``machine`` (dict: processor, platform, cpu_count, torch version, ...), ``date``
        (ISO 8601, UTC), then ``extra``; last ``undefined`` (only when a value is ``None`` for a known reason:
        ``{key: why}``, e.g. retention when the teacher metric is 0, merged with ``extra["undefined"]``). A model's
        metric may be ``None`` (undefined on the dev split); its ratios are then ``None`` too.

    Raises:
        KDistillError: if ``teacher``/``student`` are not :class:`ModelEntry` or have a
            non-finite metric, or ``extra`` is not a dict.
    """
    _check_entry(teacher, "teacher")
    _check_entry(student, "student")
    if extra is not None and not isinstance(extra, dict):
        raise KDistillError(f"extra must be a dict, got {type(extra).__name__}.")
    tl, sl = teacher.latency, student.latency
    report: dict[str, Any] = {
        "task": task,
        "metric_name": metric_name,
        "teacher": teacher.path,
        "student": student.path,
        "teacher_name": teacher.name,
        "student_name": student.name,
        "teacher_metric": None if teacher.metric is None else float(teacher.metric),
        "student_metric": None if student.metric is None else float(student.metric),
        "retention": _ratio(student.metric, teacher.metric),
        "teacher_latency_ms": tl.batch1_median_ms,
        "student_latency_ms": sl.batch1_median_ms,
        "teacher_latency_p90_ms": tl.batch1_p90_ms,
        "student_latency_p90_ms": sl.batch1_p90_ms,
        "speedup": _ratio(tl.batch1_median_ms, sl.batch1_median_ms),
        "teacher_throughput": tl.throughput_bs32,
        "student_throughput": sl.throughput_bs32,
        "throughput_speedup": _ratio(sl.throughput_bs32, tl.throughput_bs32),
        "teacher_params": teacher.size.params_total,
        "student_params": student.size.params_total,
        "teacher_params_non_embedding": teacher.size.params_non_embedding,
        "student_params_non_embedding": student.size.params_non_embedding,
        "param_ratio": _ratio(student.size.params_total, teacher.size.params_total),
        "teacher_disk_mb": teacher.size.disk_mb,
        "student_disk_mb": student.size.disk_mb,
        "seq_len": tl.seq_len,
        "latency_runs": tl.n_runs,
        "threads": tl.threads,
        "throughput_batch_size": tl.throughput_batch_size,
    }
    for key, t_val, s_val in (
        ("seq_len", tl.seq_len, sl.seq_len),
        ("latency_runs", tl.n_runs, sl.n_runs),
        ("threads", tl.threads, sl.threads),
        ("throughput_batch_size", tl.throughput_batch_size, sl.throughput_batch_size),
    ):
        if t_val != s_val:
            report[f"student_{key}"] = s_val
    report["machine"] = _machine()
    report["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    undefined = _undefined_ratios(report, teacher, student, metric_name)
    if extra:
        report.update(extra)
    undefined.update((extra or {}).get("undefined") or {})
    if undefined:
        report["undefined"] = undefined
    return report


def _undefined_ratios(report: dict, teacher: ModelEntry, student: ModelEntry, metric_name: str) -> dict[str, str]:
    """Why each ratio of the report that is ``None`` is undefined (``{"retention": "..."}``)."""
    out = {}
    if report["retention"] is None:
        if teacher.metric is None or student.metric is None:
            who = "teacher" if teacher.metric is None else "student"
            out["retention"] = f"the {who}'s {metric_name} is undefined on this dev split, so a ratio to it is too"
        else:
            out["retention"] = f"the teacher's {metric_name} is 0: a ratio to it is undefined"
    for key, what in (("speedup", "a batch-1 latency"), ("throughput_speedup", "a throughput"),
                      ("param_ratio", "a parameter count")):
        if report[key] is None:
            out[key] = f"{what} is missing or 0: the ratio is undefined"
    return out


# --------------------------------------------------------------------------- formatting


def _fmt_num(value: Any, fmt: str, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:{fmt}}{suffix}"


def _fmt_params(n: Any) -> str:
    if n is None:
        return "n/a"
    n = int(n)
    if n >= 1e6:
        short = f"{n / 1e6:.1f}M"
    elif n >= 1e3:
        short = f"{n / 1e3:.1f}k"
    else:
        return str(n)
    return f"{n:,} ({short})"


def _short_params(n: Any) -> str:
    if n is None:
        return "? params"
    n = int(n)
    if n >= 1e6:
        return f"{n / 1e6:.1f}M params"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k params"
    return f"{n} params"


def _threads(n: Any) -> str:
    """``"1 thread"``, ``"4 threads"``, ``"? threads"``."""
    return f"{n} thread" if n == 1 else f"{'?' if n is None else n} threads"


def _column(role: str, name: str | None) -> str:
    """Table column title: the role, with the model's name only when it says more (no "teacher (teacher)")."""
    return role if not name or name == role else f"{role} ({name})"


def _ci(value: Any) -> tuple[float, float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        lo, hi = float(value[0]), float(value[1])
        return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None
    return None


def _fmt_ci(value: Any) -> str:
    ci = _ci(value)
    return "" if ci is None else f" [{ci[0]:.4f}, {ci[1]:.4f}]"


def _fmt_p(p: Any) -> str:
    if not isinstance(p, (int, float)):
        return "p = ?"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def _evidence_lines(report: dict) -> list[str]:
    """The baseline, the intervals, the paired test and the flags, in words (nothing for older reports)."""
    r = report.get
    metric = r("metric_name", "metric")
    lines: list[str] = []
    n = r("dev_examples")
    if n:
        step = f"; one example is {100 / n:.2f} point of {metric}" if metric == "accuracy" else ""
        cut = (f", **cut to its first {n} rows by `--max-eval-samples`** (not the full dev set)"
               if r("dev_truncated") else "")
        lines.append(f"Dev set: {n} examples{cut}{step}.")
    base = r("baseline") or {}
    if r("baseline_metric") is not None:
        src = base.get("source", "?")
        if base.get("kind") == "majority class":
            share = f", {100 * base['share']:.1f} % of its labels" if base.get("share") is not None else ""
            what = f"always `{base.get('label', base.get('value'))}`, the majority class of the {src} split{share}"
        elif base.get("kind") == "mean prediction" and isinstance(base.get("value"), (int, float)):
            what = f"always {base['value']:.3f}, the mean score of the {src} split; a constant has no correlation"
        else:
            what = f"{base.get('kind', 'constant')} of the {src} split"
        lines.append(f"Baseline, a constant prediction ({what}): {metric} "
                     f"{_fmt_num(r('baseline_metric'), '.4f')}{_fmt_ci(r('baseline_ci'))}.")
    if _ci(r("teacher_ci")) is not None:
        level = r("ci_level") or 0.95
        lines.append(
            f"Intervals: {100 * level:.0f} % bootstrap percentile intervals over {r('bootstrap_resamples', '?')} resamples "
            f"of the dev examples (seed {r('bootstrap_seed', '?')}); they show how much the figure could move with "
            "another draw of a dev set of this size, not the variation between training runs.")
    if r("difference") is not None:
        lines.append(f"Teacher − student: {_fmt_num(r('difference'), '+.4f')}{_fmt_ci(r('difference_ci'))}.")
    test = r("paired_test") or {}
    if test:
        if test.get("name") == "McNemar":
            lines.append(
                f"Paired test: McNemar ({test.get('method', 'exact')}): the teacher alone is right on {test.get('b10', '?')} "
                f"examples, the student alone on {test.get('b01', '?')}; {_fmt_p(test.get('p_value'))}.")
        else:
            lines.append(
                f"Paired test: {test.get('name', '?')} of the {metric} difference over "
                f"{test.get('n_resamples', '?')} resamples; {_fmt_p(test.get('p_value'))}.")
    flags = r("flags") or []
    if not (lines or flags):
        return []
    out = ["", "## What these numbers can show", ""] + [f"- {x}" for x in lines]
    if flags:
        out += ["", "**Caution:**", ""] + [f"- {f[:1].upper()}{f[1:]}{'' if f.endswith('.') else '.'}" for f in flags]
    return out


def _provenance_lines(report: dict) -> list[str]:
    versions = report.get("versions") or {}
    lines = []
    if versions:
        lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v is not None) + ".")
    if "git_commit" in report:
        commit = report.get("git_commit")
        dirty = " (with uncommitted changes)" if report.get("git_dirty") else ""
        lines.append(f"kdistill source: git commit {commit}{dirty}." if commit else
                     "kdistill source: not a git checkout (no commit recorded).")
    for role in ("teacher", "student"):
        arch = report.get(f"{role}_architecture")
        if arch:
            lines.append(f"{role.capitalize()} architecture: " + ", ".join(f"{k} {v}" for k, v in arch.items()) + ".")
    return [f"- {x}" for x in lines] + [""] if lines else []


RUNTIME_NAMES = {"eager_fp32": "PyTorch eager fp32", "ort_fp32": "ONNX Runtime fp32", "ort_int8": "ONNX Runtime int8"}


def _runtime_lines(report: dict) -> list[str]:
    """The "Runtimes" table: teacher and student in eager PyTorch, ORT fp32 and ORT int8 (when the report has them)."""
    rows = report.get("runtimes") or {}
    lines = []
    if rows:
        metric = report.get("metric_name", "metric")
        bs = report.get("throughput_batch_size", 32)
        lines += ["", "## Runtimes", "",
                  f"| model | runtime | dev {metric} | latency bs1 median (ms) | p90 (ms) | throughput bs{bs} (ex/s) | size (MB) |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for role in ("teacher", "student"):
            for runtime, row in (rows.get(role) or {}).items():
                lines.append(f"| {role} | {RUNTIME_NAMES.get(runtime, runtime)} | {_fmt_num(row.get('metric'), '.4f')} | "
                             f"{_fmt_num(row.get('latency_ms'), '.2f')} | {_fmt_num(row.get('latency_p90_ms'), '.2f')} | "
                             f"{_fmt_num(row.get('throughput'), '.1f')} | {_fmt_num(row.get('disk_mb'), '.1f')} |")
        lines += ["", f"Speedups: eager/eager {_fmt_num(report.get('speedup'), '.2f', 'x')}, ORT fp32/ORT fp32 "
                  f"{_fmt_num(report.get('ort_speedup'), '.2f', 'x')}, ORT int8/ORT int8 "
                  f"{_fmt_num(report.get('ort_int8_speedup'), '.2f', 'x')}; **deployment speedup** (student ORT int8 vs "
                  f"teacher ORT fp32) {_fmt_num(report.get('deployment_speedup'), '.2f', 'x')}. ORT timing: "
                  f"{report.get('ort_timing', 'n/a')}. int8: ONNX Runtime dynamic quantization (weights int8 per channel)."]
    for role, err in (report.get("runtimes_errors") or {}).items():
        lines.append(f"- no ONNX Runtime rows for the {role}: {err}")
    return lines


def render_markdown(report: dict) -> str:
    """Render a report dict (from :func:`build_report`) as Markdown.

    The result has a heading, a ``| | teacher | student |`` table (a column is titled
    ``teacher (<name>)`` only when the model's name is not just its role) with rows for the main
    metric (with its confidence interval when the report has one), every other metric of the task,
    retention, params, non-embedding params, disk MB, batch-1 latency median and p90 (ms),
    throughput (examples/s) and speedup; then, when the report has them (:func:`kdistill.reporting.
    compare.make_report`), a "What these numbers can show" section: dev-set size and truncation, the
    constant baseline with its interval, what the intervals mean, the teacher − student difference
    with its interval, the paired test, and the flags as a "Caution" list; then how latency was
    measured, the machine, library versions, git commit and model architectures. Missing values are
    shown as ``n/a``.

    Raises:
        KDistillError: if ``report`` is not a dict.
    """
    if not isinstance(report, dict):
        raise KDistillError(f"render_markdown expects a report dict, got {type(report).__name__}.")
    r = report.get
    metric = r("metric_name", "metric")
    retention = r("retention")
    bs = r("throughput_batch_size", 32)
    teacher_name = r("teacher_name") or "teacher"
    student_name = r("student_name") or "student"
    t_metrics, s_metrics = r("teacher_metrics") or {}, r("student_metrics") or {}
    rows = [
        (metric, _fmt_num(r("teacher_metric"), ".4f") + _fmt_ci(r("teacher_ci")),
         _fmt_num(r("student_metric"), ".4f") + _fmt_ci(r("student_ci"))),
    ]
    rows += [(name, _fmt_num(value, ".4f"), _fmt_num(s_metrics.get(name), ".4f"))
             for name, value in t_metrics.items() if name != metric]
    rows += [
        ("retention", "100.0 %", _fmt_num(None if retention is None else 100 * retention, ".1f", " %")),
        ("params", _fmt_params(r("teacher_params")), _fmt_params(r("student_params"))),
        (
            "non-embedding params",
            _fmt_params(r("teacher_params_non_embedding")),
            _fmt_params(r("student_params_non_embedding")),
        ),
        ("disk (MB)", _fmt_num(r("teacher_disk_mb"), ".1f"), _fmt_num(r("student_disk_mb"), ".1f")),
        (
            "latency median, batch 1 (ms)",
            _fmt_num(r("teacher_latency_ms"), ".2f"),
            _fmt_num(r("student_latency_ms"), ".2f"),
        ),
        (
            "latency p90, batch 1 (ms)",
            _fmt_num(r("teacher_latency_p90_ms"), ".2f"),
            _fmt_num(r("student_latency_p90_ms"), ".2f"),
        ),
        (
            f"throughput, batch {bs} (examples/s)",
            _fmt_num(r("teacher_throughput"), ".1f"),
            _fmt_num(r("student_throughput"), ".1f"),
        ),
        ("speedup (batch-1 latency)", "1.00x", _fmt_num(r("speedup"), ".2f", "x")),
    ]
    lines = [
        f"# Distillation report: {r('task', '?')}",
        "",
        f"Teacher: `{r('teacher') or teacher_name}`  ",
        f"Student: `{r('student') or student_name}`",
        "",
        f"| | {_column('teacher', teacher_name)} | {_column('student', student_name)} |",
        "|---|---:|---:|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += _runtime_lines(report)
    lines += _evidence_lines(report)
    if isinstance(r("undefined"), dict) and r("undefined"):
        lines += ["", "Undefined values (n/a above):", ""] + [f"- `{k}`: {why}" for k, why in r("undefined").items()]
    machine = r("machine") or {}
    cpu = machine.get("processor") or machine.get("machine") or "CPU"
    lines += [
        "",
        (
            f"Latency: CPU, batch 1, one real dev text of {r('seq_len', '?')} tokens (default: dev-set median length), "
            f"median and p90 of {r('latency_runs', '?')} timed forward passes after warm-up, "
            f"torch.inference_mode, {_threads(r('threads'))}. "
            f"Throughput: batches of {bs} dev texts with dynamic padding (max 128 tokens), "
            "forward passes only."
        ),
        "",
        (
            f"Machine: {cpu}, {machine.get('cpu_count', '?')} CPUs, torch {machine.get('torch', '?')}; "
            f"date {r('date', '?')}."
        ),
        "",
    ]
    lines += _provenance_lines(report)
    return "\n".join(lines)


# --------------------------------------------------------------------------- plot


def _plot(report: dict, others: Sequence[ModelEntry], path: Path) -> tuple[float, float]:
    """Metric vs batch-1 latency. Teacher and student carry their confidence intervals as error bars;
    the constant baseline is a dotted line with its interval as a band. The y-range always takes in the
    baseline (and every interval), so that the scale shows a teacher-student gap next to the distance
    from chance rather than magnified on its own. Returns the y-range ``(low, high)``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = [
        ("teacher", report.get("teacher_name") or "teacher", report.get("teacher_latency_ms"),
         report.get("teacher_metric"), report.get("teacher_params"), _ci(report.get("teacher_ci"))),
        ("student", report.get("student_name") or "student", report.get("student_latency_ms"),
         report.get("student_metric"), report.get("student_params"), _ci(report.get("student_ci"))),
    ]
    points += [
        ("other", o.name, o.latency.batch1_median_ms, o.metric, o.size.params_total, None) for o in others
    ]
    style = {
        "teacher": dict(color="tab:red", marker="s", s=90),
        "student": dict(color="tab:blue", marker="o", s=90),
        "other": dict(color="tab:gray", marker="^", s=60),
    }

    fig = Figure(figsize=(7, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    labelled: set[str] = set()
    xs, ys = [], []
    level = report.get("ci_level") or 0.95
    for role, name, x, y, params, ci in points:
        if x is None or y is None:
            continue
        xs.append(float(x))
        ys.append(float(y))
        if ci is not None:
            lo, hi = ci
            ax.errorbar([x], [y], yerr=[[max(float(y) - lo, 0.0)], [max(hi - float(y), 0.0)]], fmt="none",
                        ecolor=style[role]["color"], elinewidth=1.5, capsize=6, zorder=2)
            ys += [lo, hi]
        label = role if ci is None else f"{role} ({100 * level:.0f}% CI)"
        ax.scatter([x], [y], zorder=3, label=None if role in labelled else label, **style[role])
        labelled.add(role)
        ax.annotate(
            f"{name}\n{_short_params(params)}",
            (x, y),
            textcoords="offset points",
            xytext=(8, 6),
            fontsize=9,
        )
    for role, color in (("teacher", "tab:red"), ("student", "tab:blue")):
        for runtime, marker in (("ort_fp32", "D"), ("ort_int8", "v")):
            row = ((report.get("runtimes") or {}).get(role) or {}).get(runtime)
            if not row or row.get("latency_ms") is None or row.get("metric") is None:
                continue
            x, y = float(row["latency_ms"]), float(row["metric"])
            xs.append(x), ys.append(y)
            key = f"ort-{runtime}"
            label = {"ort_fp32": "ONNX Runtime fp32", "ort_int8": "ONNX Runtime int8"}[runtime]
            ax.scatter([x], [y], zorder=3, marker=marker, s=70, facecolors="none", edgecolors=color, linewidths=1.6,
                       label=None if key in labelled else f"{label} (hollow)")
            labelled.add(key)
            ax.annotate(f"{role} {runtime.split('_')[1]}", (x, y), textcoords="offset points", xytext=(6, -12),
                        fontsize=8, color=color)
    t_metric = report.get("teacher_metric")
    metric_name = report.get("metric_name", "metric")
    if t_metric is not None:
        target = 0.99 * float(t_metric)
        ax.axhline(target, linestyle="--", color="tab:red", linewidth=1, alpha=0.7,
                   label=f"99% of teacher ({target:.4f})")
        ys.append(target)
    base = report.get("baseline_metric")
    if isinstance(base, (int, float)) and math.isfinite(base):
        kind = (report.get("baseline") or {}).get("kind", "constant")
        ax.axhline(float(base), linestyle=":", color="black", linewidth=1.2,
                   label=f"{kind.replace(' ', '-')} baseline ({base:.4f}; band: its CI)")
        ys.append(float(base))
        bci = _ci(report.get("baseline_ci"))
        if bci is not None and bci[1] > bci[0]:
            ax.axhspan(bci[0], bci[1], color="gray", alpha=0.15, zorder=0)
            ys += list(bci)
    if xs:
        ax.set_xlim(0, max(xs) * 1.35)
    if ys:
        lo, hi = min(ys), max(ys)
        pad = max((hi - lo) * 0.12, abs(hi) * 0.01, 1e-3)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("CPU latency, batch 1, median (ms)  — lower is better")
    ax.set_ylabel(f"{metric_name} — higher is better")
    ax.set_title(
        f"{report.get('task', '')}: {metric_name} vs latency "
        f"(seq_len {report.get('seq_len', '?')}, {_threads(report.get('threads'))})"
    )
    speedup = report.get("speedup")
    retention = report.get("retention")
    if speedup is not None and retention is not None:
        text = f"student: {speedup:.2f}x faster, {100 * retention:.1f}% of teacher {metric_name}"
        p = (report.get("paired_test") or {}).get("p_value")
        if isinstance(p, (int, float)):
            verdict = "significant" if p < 1 - level else "not significant"
            text += f"\nteacher−student difference {verdict} ({_fmt_p(p)})"
        if isinstance(report.get("deployment_speedup"), (int, float)):
            text += (f"\nONNX Runtime: {report.get('ort_speedup') or float('nan'):.2f}x fp32 vs fp32; deployment "
                     f"(student int8 vs teacher fp32) {report['deployment_speedup']:.2f}x")
        if any(str(f).startswith(("the teacher is", "the student is")) for f in report.get("flags") or []):
            text += "\nretention not meaningful: a model is at chance level"
        ax.text(0.02, 0.03, text, transform=ax.transAxes, fontsize=9, color="tab:blue")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return tuple(float(v) for v in ax.get_ylim())


def write_report(report: dict, out_dir: str | Path, *, others: Sequence[ModelEntry] = ()) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.png`` into ``out_dir``.

    Args:
        report: a dict from :func:`build_report`.
        out_dir: output directory, created if missing.
        others: extra measured models (e.g. other students or baselines) drawn as grey
            points on the plot and listed under ``"others"`` in the JSON.

    Returns:
        ``{"json": Path, "md": Path, "png": Path}``.

    Raises:
        KDistillError: if ``report`` is not a dict, an element of ``others`` is not a
            :class:`ModelEntry`, or ``out_dir`` exists and is not a directory.
    """
    if not isinstance(report, dict):
        raise KDistillError(f"write_report expects a report dict, got {type(report).__name__}.")
    others = list(others)
    for o in others:
        if not isinstance(o, ModelEntry):
            raise KDistillError(f"others must contain ModelEntry objects, got {type(o).__name__}.")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise KDistillError(f"Report output {out} exists and is not a directory.")
    out.mkdir(parents=True, exist_ok=True)

    data = dict(report)
    if others:
        data["others"] = [dataclasses.asdict(o) for o in others]
    paths = {"json": out / "report.json", "md": out / "report.md", "png": out / "report.png"}
    paths["json"].write_text(to_json(data, indent=2, default=str) + "\n", encoding="utf-8")  # strict: no NaN
    paths["md"].write_text(render_markdown(report), encoding="utf-8")
    _plot(report, others, paths["png"])
    return paths
