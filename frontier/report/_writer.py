"""Writing a report: the Markdown text, its pictures and the summary.json beside them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from frontier._io import write_bytes_atomic
from frontier.laws import Axis, StudyFits, fit_study
from frontier.plots import (
    plot_fits,
    plot_pareto,
    plot_retention,
    plot_widths,
)
from frontier.report._protocol import _protocol_section, _resolution_section
from frontier.report._results import (
    _chosen_section,
    _laws_section,
    _pareto_section,
    _verdict,
)
from frontier.study.summary import StudySummary

#: What :func:`write_report` may write, by role (pictures only when they have data).
REPORT_FILES = {
    "report": "report.md",
    "summary": "summary.json",
    "pareto": "pareto.png",
    "fits": "fits.png",
    "widths": "widths.png",
    "retention": "retention.png",
}


def report(summary: StudySummary, out_dir: Path | str | None = None) -> Path:
    """``frontier report``: :func:`write_report` into ``out_dir``, by default
    ``studies/results/STUDY``; return report.md's path."""
    return write_report(summary, out_dir if out_dir is not None else default_dir(summary.name))


def default_dir(study: str) -> Path:
    """Where a study's report goes unless told otherwise."""
    return Path("studies") / "results" / study


def write_report(
    summary: StudySummary, out_dir: Path | str, *, fits: StudyFits | None = None, x: Axis = "mlp"
) -> Path:
    """Write report.md, its PNGs and summary.json into ``out_dir``; return report.md's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fits = fits if fits is not None else fit_study(summary, x=x)
    write_bytes_atomic(out / REPORT_FILES["summary"], (summary.to_json() + "\n").encode())
    images: dict[str, str] = {}
    images["pareto"] = plot_pareto(summary, out / REPORT_FILES["pareto"]).name
    images["fits"] = plot_fits(summary, fits, out / REPORT_FILES["fits"]).name
    if summary.chosen is not None:
        images["widths"] = plot_widths(summary, out / REPORT_FILES["widths"]).name
    if any(summary.baseline_tasks.get(t, 0) > 0 for t in fits.tasks):
        images["retention"] = plot_retention(summary, fits, out / REPORT_FILES["retention"]).name
    path = out / REPORT_FILES["report"]
    write_bytes_atomic(path, render_report(summary, fits, images).encode())
    return path


def render_report(summary: StudySummary, fits: StudyFits, images: Mapping[str, str]) -> str:
    """The markdown text; ``images`` maps a role (pareto, fits, ...) to a relative link."""
    parts = [
        f"# {summary.name}: how far can {summary.model}'s MLPs be pruned?",
        "",
        _verdict(summary),
        "",
        *_protocol_section(summary),
        *_resolution_section(summary),
        *_chosen_section(summary, images),
        *_pareto_section(summary, images),
        *_laws_section(summary, fits, images),
        "## Files",
        "",
        f"- `{REPORT_FILES['summary']}`: every number above; "
        "`frontier.report.write_report(StudySummary.from_json(...), dir)` rebuilds this report.",
        *[f"- `{name}`" for name in images.values()],
        "",
    ]
    return "\n".join(parts)
