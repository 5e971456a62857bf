"""Task table and data loading: GLUE (local files or hub) and the user's own CSV/TSV/JSONL."""

from kdistill.data.loading import load_data, load_splits
from kdistill.data.tasks import TASKS, TaskSpec, get_task

__all__ = ["TASKS", "TaskSpec", "get_task", "load_data", "load_splits"]
