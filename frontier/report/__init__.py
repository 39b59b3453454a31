"""A study's report: ``report.md`` with its pictures and the ``summary.json`` it was built from.

Everything comes from a :class:`~frontier.study.summary.StudySummary`, so
``write_report(StudySummary.from_json(path.read_text()), out)`` rebuilds a report
without the model, the study database or torch. ``_writer`` writes the files,
``_protocol`` and ``_results`` render the sections, ``_markdown`` the tables and numbers.
"""

from frontier.report._protocol import CHANCE, task_docs
from frontier.report._writer import (
    REPORT_FILES,
    default_dir,
    render_report,
    report,
    write_report,
)

__all__ = [
    "CHANCE",
    "REPORT_FILES",
    "default_dir",
    "render_report",
    "report",
    "task_docs",
    "write_report",
]
