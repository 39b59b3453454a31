"""Pictures of a study, drawn from stored numbers: Pareto front, fitted laws, widths, tasks.

Every function takes a :class:`~frontier.study.summary.StudySummary` (and its fits where it draws
them) and an output path, writes a PNG and returns the path. Figures are built with
``matplotlib.figure.Figure`` and the Agg canvas directly, not pyplot: no global figure
state, no backend switch for whoever imports this, safe from worker threads.
``_measured`` draws trials' figures (Pareto front, widths), ``_fitted`` the fitted laws
(loss and accuracy curves, which task breaks first), ``_canvas`` what both share.
"""

from frontier.plots._canvas import subtitle, task_label, text_label
from frontier.plots._fitted import break_threshold, breaking_points, plot_fits, plot_retention
from frontier.plots._measured import draw_intervals, plot_pareto, plot_widths

__all__ = [
    "break_threshold",
    "breaking_points",
    "draw_intervals",
    "plot_fits",
    "plot_pareto",
    "plot_retention",
    "plot_widths",
    "subtitle",
    "task_label",
    "text_label",
]
