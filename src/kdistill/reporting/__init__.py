"""The teacher-vs-student "proof" report: measurements (size, CPU latency) and rendering.

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
from kdistill.reporting.render import ModelEntry, build_report, render_markdown, write_report

__all__ = [
    "LatencyStats",
    "ModelEntry",
    "SizeStats",
    "build_report",
    "count_parameters",
    "disk_size_mb",
    "measure_latency",
    "measure_latency_interleaved",
    "median_token_length",
    "render_markdown",
    "write_report",
]
