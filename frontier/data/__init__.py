"""Data: text for calibration and perplexity (``text``), benchmark mirrors (``mirror``)."""

# The mirror module imports neither torch nor datasets at the top: this stays cheap.
from frontier.data.mirror import (
    TASKS,
    TRUTHFULQA_SUBSET,
    build_mirror,
    mirror_tasks,
    read_manifest,
    task_manager,
)

__all__ = [
    "TASKS",
    "TRUTHFULQA_SUBSET",
    "build_mirror",
    "mirror_tasks",
    "read_manifest",
    "task_manager",
]
