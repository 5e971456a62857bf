"""Teacher vs student on the dev split: metric, retention, size, latency, speedup — the report of every run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kdistill.config import DataConfig


def make_report(*, teacher: str, student: str, data: DataConfig, output_dir: str | Path, teacher_metric: float | None = None,
                student_metric: float | None = None, latency_runs: int = 100, extra: dict | None = None) -> dict[str, Any]:
    """Compare ``teacher`` and ``student``: metric, retention, size, latency, speedup.

    Metrics not given are measured on the validation split; batch-1 latency is timed teacher and
    student interleaved (:func:`kdistill.reporting.measure_latency_interleaved`), so both see the same
    machine conditions. Writes ``report.json``, ``report.md`` and ``report.png`` into ``output_dir``.

    Returns:
        The report dict, with a private ``_files`` entry listing the written paths.

    Raises:
        ModelError / DataError: a model without a trained head for the task, bad data options.
    """
    from kdistill.data.batching import tokenize
    from kdistill.data.loading import load_data
    from kdistill.engine.evaluation import evaluate_model
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.reporting.measure import SizeStats, count_parameters, disk_size_mb, measure_latency_interleaved
    from kdistill.reporting.render import ModelEntry, build_report, write_report

    splits, spec = load_data(data)
    dev = splits["validation"]
    texts = list(zip(dev["text_a"], dev["text_b"])) if "text_b" in dev.column_names else dev["text_a"]
    entries, nets, toks = [], [], []
    for name, path, metric in (("teacher", teacher, teacher_metric), ("student", student, student_metric)):
        net = load_classifier(path, spec, require_trained_head=True, what=name)
        tok = load_tokenizer(path)
        if metric is None:
            ds = tokenize(dev, tok, max_length=data.max_length, cache_dir=data.cache_dir, desc=f"tokenize dev ({name})")
            metric = evaluate_model(net, ds, tok, spec)[spec.main_metric]
        total, non_emb = count_parameters(net)
        disk = disk_size_mb(path) if Path(path).is_dir() else None
        entries.append((name, path, float(metric), SizeStats(params_total=total, params_non_embedding=non_emb, disk_mb=disk)))
        nets.append(net), toks.append(tok)
    stats = measure_latency_interleaved(nets, toks, texts, n_runs=latency_runs)
    entries = [ModelEntry(name=n, path=str(p), metric=m, size=s, latency=lat) for (n, p, m, s), lat in zip(entries, stats)]
    rep = build_report(task=spec.name, metric_name=spec.main_metric, teacher=entries[0], student=entries[1], extra=extra)
    rep["_files"] = write_report(rep, output_dir)
    return rep
