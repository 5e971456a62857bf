"""The teacher-vs-student "proof" report: measurements (size, CPU latency) and rendering.

Statistics (:mod:`kdistill.reporting.stats`): constant baseline, bootstrap intervals, paired tests.

Units: latency in ms, throughput in examples/s, disk size in MB (1 MB = 1e6 bytes).
"""

from kdistill.reporting.measure import (
    LatencyStats,
    SizeStats,
    count_parameters,
    disk_size_mb,
    measure_latency,
    measure_latency_interleaved,
    median_token_length,
)
from kdistill.reporting.render import ModelEntry, Report, build_report, render_markdown, write_report
from kdistill.reporting.stats import assess, baseline_metric, bootstrap_ci, mcnemar, paired_bootstrap_diff

__all__ = [
    "LatencyStats",
    "ModelEntry",
    "Report",
    "SizeStats",
    "assess",
    "baseline_metric",
    "bootstrap_ci",
    "build_report",
    "count_parameters",
    "disk_size_mb",
    "measure_latency",
    "mcnemar",
    "measure_latency_interleaved",
    "median_token_length",
    "paired_bootstrap_diff",
    "render_markdown",
    "write_report",
]
