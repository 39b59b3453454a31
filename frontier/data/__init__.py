"""Data: text for calibration and perplexity (``text``), the benchmark tasks (``tasks``)
and their offline mirror (``mirror``)."""

# Neither module imports torch nor datasets at the top: this stays cheap.
from frontier.data.mirror import build_mirror, mirror_tasks, read_manifest, task_manager
from frontier.data.tasks import BENCHMARKS, TASKS, TRUTHFULQA_SUBSET, BenchmarkTask, benchmark

__all__ = [
    "BENCHMARKS",
    "TASKS",
    "TRUTHFULQA_SUBSET",
    "BenchmarkTask",
    "benchmark",
    "build_mirror",
    "mirror_tasks",
    "read_manifest",
    "task_manager",
]
