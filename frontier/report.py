"""A study's report: ``report.md`` with its pictures and the ``summary.json`` it was built from.

Everything comes from a :class:`~frontier.points.StudySummary`, so
``write_report(StudySummary.from_json(path.read_text()), out)`` rebuilds a report
without the model, the study database or torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from frontier._io import write_bytes_atomic
from frontier.data.tasks import chance_levels
from frontier.laws import Axis, FitResult, StudyFits, fit_study
from frontier.plots import (
    break_threshold,
    breaking_points,
    plot_fits,
    plot_pareto,
    plot_retention,
    plot_widths,
)
from frontier.points import (
    StudySummary,
    TrialPoint,
    mean_retention,
    retention,
    trial_metrics,
    violated,
)

__all__ = ["REPORT_FILES", "render_report", "write_report"]

#: What :func:`write_report` may write, by role (pictures only when they have data).
REPORT_FILES = {
    "report": "report.md",
    "summary": "summary.json",
    "pareto": "pareto.png",
    "fits": "fits.png",
    "widths": "widths.png",
    "retention": "retention.png",
}


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
    for name in (REPORT_FILES["summary"], REPORT_FILES["report"]):
        (out / name).chmod(0o644)  # atomic writes create 0600 files; reports are for sharing
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


# -- formatting ---------------------------------------------------------------------------
def _cell(value: Any) -> str:
    """A table cell: no pipes or newlines, which would break the row."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows), ""]


def _num(x: float | None, fmt: str = ".3f") -> str:
    if x is None:
        return "–"
    if not math.isfinite(x):
        return str(x)
    return format(x, fmt)


def _pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def _pair(search: str, final: str | None) -> str:
    """Search-time and report-fidelity figures side by side, ``search / final``."""
    return search if final is None else f"{search} / {final}"


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Nested protocol mappings as dotted keys; lists as comma-separated values."""
    if isinstance(value, Mapping):
        if not value and prefix:
            yield prefix, "(empty)"
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, (list, tuple)):
        if all(not isinstance(v, (Mapping, list, tuple)) for v in value):
            yield prefix, ", ".join(str(v) for v in value) or "(none)"
        else:
            for i, v in enumerate(value):
                yield from _flatten(v, f"{prefix}[{i}]")
    else:
        yield prefix, "–" if value is None else str(value)


# -- sections -----------------------------------------------------------------------------
def _verdict(summary: StudySummary) -> str:
    p = summary.chosen
    if p is None:
        return (
            f"**No feasible point**: none of {len(summary.points)} trials met every SLO "
            f"({', '.join(f'`{s}`' for s in summary.slos) or 'none given'})."
        )
    ret = mean_retention(p, summary.baselines_for(p))
    tasks = f", mean retained accuracy {_pct(ret)}" if ret is not None else ""
    where = "report-fidelity figures" if p.stage == "final" else "search-time figures"
    text = (
        f"**Chosen: trial {p.number}**, {_pct(p.mlp_removed)} of MLP parameters removed "
        f"({_pct(p.params_removed)} of all parameters), perplexity ratio "
        f"{_num(p.ppl_ratio)}{tasks} ({where})."
    )
    return text + _miss_warning(p)


def _miss_warning(p: TrialPoint) -> str:
    if p.feasible:
        return ""
    if p.stage == "final":
        # The search saw it pass; the held-out figures are the ones to believe.
        return (
            "\n\n> **Warning:** on the report-fidelity figures the chosen point misses at "
            "least one SLO; it met them only on the search-time figures."
        )
    return "\n\n> **Warning:** the chosen point is marked infeasible."


def _protocol_section(summary: StudySummary) -> list[str]:
    rows: list[tuple[str, str]] = [
        ("study", summary.name),
        ("model", summary.model),
        ("unpruned perplexity (search text)", _num(summary.baseline_ppl)),
        ("unpruned loss (search text, nats/token)", _num(summary.baseline_loss, ".4f")),
        *((f"unpruned accuracy: {t}", _num(a, ".4f")) for t, a in summary.baseline_tasks.items()),
        ("trials with search figures", str(len(summary.points))),
        ("Pareto points re-measured at report fidelity", str(len(summary.final))),
    ]
    rows += list(_flatten(summary.protocol))
    slos = [f"- `{s}`: {s.describe()}" for s in summary.parsed_slos()] or ["- (none)"]
    return [
        "## Protocol",
        "",
        *_table(["setting", "value"], rows),
        "SLOs (all must hold):",
        "",
        *slos,
        "",
    ]


#: Accuracy of uniform guessing, where the task fixes it (from the task registry).
CHANCE: dict[str, float] = chance_levels()


def task_docs(protocol: Mapping[str, Any], task: str) -> int | None:
    """Documents a task (or group: the sum over its subtasks) was scored on, per protocol."""
    docs = protocol.get("docs") if isinstance(protocol, Mapping) else None
    if not isinstance(docs, Mapping):
        return None
    leaves = (protocol.get("subtasks") or {}).get(task, [task])
    counts = [docs[leaf] for leaf in leaves if isinstance(docs.get(leaf), int)]
    return sum(counts) if counts else None


def _resolution_section(summary: StudySummary) -> list[str]:
    """How coarse each task's figures are: one document's worth, the sampling error, and
    whether the unpruned model is distinguishable from guessing at all."""
    if not summary.baseline_tasks:
        return []
    stages = [("search", summary.protocol.get("tasks_search") or {}, summary.baseline_tasks)]
    report_proto = (summary.protocol.get("report") or {}).get("tasks") or {}
    if summary.baseline_tasks_final:
        stages.append(("report", report_proto, summary.baseline_tasks_final))
    rows, near_chance = [], set()
    for task in summary.task_names:
        for stage, proto, base in stages:
            n, acc = task_docs(proto, task), base.get(task)
            if n is None or acc is None:
                continue
            se = math.sqrt(max(acc * (1 - acc), 1e-12) / n)
            chance = CHANCE.get(task)
            flag = chance is not None and acc - chance < 2 * se
            near_chance |= {task} if flag else set()
            rows.append(
                [
                    task,
                    stage,
                    str(n),
                    _num(acc),
                    _num(se),
                    _num(chance) if chance is not None else "n/a",
                    _pct(1 / (n * acc)) if acc > 0 else "n/a",
                    "**within 2 SE of chance**" if flag else "",
                ]
            )
    if not rows:
        return []
    lines = [
        "## How fine the task figures are",
        "",
        "Accuracies are means over a sample of documents: the standard error (SE) of the "
        "unpruned accuracy, and the retention one document changes, say how large a "
        "difference the search can see. A retention floor on a task whose unpruned accuracy "
        "is within two SEs of guessing tests noise, not the model. (For TruthfulQA MC2, a "
        "score in [0, 1] per question, the binomial SE shown is an upper bound.)",
        "",
        *_table(
            [
                "task",
                "stage",
                "documents",
                "unpruned accuracy",
                "SE",
                "chance",
                "retention one document can move",
                "",
            ],
            rows,
        ),
    ]
    if near_chance:
        lines += [
            f"> **Note:** {', '.join(sorted(near_chance))}: the unpruned model is not clearly "
            "above chance on these documents; read their retention and floors as noise.",
            "",
        ]
    return lines


def _figures(summary: StudySummary, p: TrialPoint) -> list[str]:
    """One point's figures, in the order of :func:`_pareto_header` after the sizes."""
    ret = retention(p, summary.baselines_for(p))
    cells = [_num(p.ppl_ratio)]
    for task in summary.task_names:
        cells += [_num(p.tasks.get(task)), _pct(ret.get(task))]
    if summary.baseline_tasks:
        cells.append(_pct(mean_retention(p, summary.baselines_for(p))))
    cells.append("yes" if p.feasible else "no")
    return cells


def _point_row(
    summary: StudySummary, search: TrialPoint | None, final: TrialPoint | None
) -> list[str]:
    """One table row; each figure as ``search / final`` when both exist."""
    anchor = search if search is not None else final
    assert anchor is not None
    chosen = anchor.chosen or (final is not None and final.chosen)
    if search is not None and final is not None:
        figures = [
            _pair(s, f)
            for s, f in zip(_figures(summary, search), _figures(summary, final), strict=True)
        ]
    elif search is not None:
        figures = _figures(summary, search)
    else:
        figures = [f"– / {f}" for f in _figures(summary, anchor)]
    head = [
        f"{anchor.number}{' ★' if chosen else ''}",
        _pct(anchor.mlp_removed),
        _pct(anchor.params_removed),
    ]
    return head + figures


def _pareto_header(summary: StudySummary) -> list[str]:
    header = ["trial", "MLP removed", "params removed", "ppl ratio"]
    for task in summary.task_names:
        header += [f"{task} acc", f"{task} retained"]
    if summary.baseline_tasks:
        header.append("mean retained")
    return [*header, "feasible"]


def _pareto_section(summary: StudySummary, images: Mapping[str, str]) -> list[str]:
    by_number = {p.number: p for p in summary.final} | {p.number: p for p in summary.pareto}
    numbers = sorted(by_number, key=lambda n: (by_number[n].mlp_removed, n))
    lines = ["## Pareto set", ""]
    if not numbers:
        lines += ["No trial is on the feasible Pareto front.", ""]
    else:
        if summary.final:
            lines += [
                "Each figure is *search / final*: search-time figures (what the sampler saw) "
                "and report-fidelity figures (held-out text, report documents). "
                "★ marks the chosen point.",
                "",
            ]
        else:
            lines += ["Search-time figures. ★ marks the chosen point.", ""]
        rows = [_point_row(summary, summary.search_for(n), summary.final_for(n)) for n in numbers]
        lines += _table(_pareto_header(summary), rows)
    if "pareto" in images:
        lines += [
            f"![Pareto front: perplexity ratio and retained accuracy vs MLP removed]"
            f"({images['pareto']})",
            "",
        ]
    return lines


def _chosen_section(summary: StudySummary, images: Mapping[str, str]) -> list[str]:
    p = summary.chosen
    if p is None:
        infeasible = [q for q in summary.points if not q.feasible]
        slos = summary.parsed_slos()
        lines = [
            "## Chosen point",
            "",
            "**No feasible point.** No trial met every SLO, so nothing was chosen.",
            "",
        ]
        closest = _closest_misses(summary, infeasible)
        if closest:
            lines += ["The trials that came closest (smallest worst SLO violation):", ""]
            lines += _table(
                ["trial", "MLP removed", "ppl ratio", "mean retained", "misses"],
                [
                    [
                        q.number,
                        _pct(q.mlp_removed),
                        _num(q.ppl_ratio),
                        _pct(mean_retention(q, summary.baselines_for(q))),
                        ", ".join(f"`{m}`" for m in violated(q, summary.baselines_for(q), slos))
                        or "–",
                    ]
                    for q in closest
                ],
            )
        return lines
    search = summary.search_for(p.number)
    final = summary.final_for(p.number)
    lines = [
        "## Chosen point",
        "",
        f"Trial {p.number}: {_pct(p.mlp_removed)} of MLP parameters and "
        f"{_pct(p.params_removed)} of all parameters removed; "
        f"{sum(p.widths)} of {sum(p.full)} MLP neurons kept over {len(p.widths)} layers."
        + _miss_warning(p),
        "",
        *_table(_pareto_header(summary), [_point_row(summary, search, final)]),
    ]
    if "widths" in images:
        lines += [f"![Kept MLP width per layer of trial {p.number}]({images['widths']})", ""]
    return lines


def _closest_misses(summary: StudySummary, points: Sequence[TrialPoint]) -> list[TrialPoint]:
    """The three points whose worst (scaled) SLO violation is smallest; unmeasured last."""
    slos = summary.parsed_slos()

    def worst(p: TrialPoint) -> float:
        metrics = trial_metrics(p, summary.baselines_for(p))
        vs = [s.violation(metrics) for s in slos]
        return math.inf if any(v is None for v in vs) else max((v or 0.0) for v in vs)

    return sorted(points, key=lambda p: (worst(p), p.mlp_removed))[:3]


def _fit_row(fit: FitResult, formula: str) -> list[str]:
    if not fit.ok:
        return [formula, fit.target, str(fit.n), f"not fitted: {fit.reason}", "–", "–"]
    coefs = ", ".join(f"{c.name} = {c.value:.4g} [{c.low:.4g}, {c.high:.4g}]" for c in fit.coefs)
    if fit.note:
        coefs += f" ({fit.note})"
    return [formula, fit.target, str(fit.n), coefs, _num(fit.r2, ".4f"), _num(fit.aic, ".1f")]


def _laws_section(summary: StudySummary, fits: StudyFits, images: Mapping[str, str]) -> list[str]:
    axis = "MLP parameters" if fits.x == "mlp" else "all parameters"
    rows = [
        _fit_row(fits.loss_quadratic, "L0 + a·r + b·r²"),
        _fit_row(fits.loss_power, "L0·(1+r)^β"),
        *(_fit_row(f, "A0 − c·r") for f in fits.tasks.values()),
    ]
    if fits.mean_acc is not None:
        rows.append(_fit_row(fits.mean_acc, "A0 − c·r"))
    if fits.retention is not None:
        rows.append(_fit_row(fits.retention, "A0 − c·r"))
    chosen = summary.chosen
    at = _pct(chosen.mlp_removed if fits.x == "mlp" else chosen.params_removed) if chosen else "–"
    limit_rows = [
        [
            f"`{lim.slo}`",
            lim.fit,
            _pct(lim.r) + (" (extrapolated)" if lim.extrapolated else "")
            if lim.status == "limit"
            else f"{lim.status}: {lim.reason}",
            at,
        ]
        for lim in fits.limits
    ]
    lines = [
        "## Compression laws",
        "",
        f"r is the fraction of {axis} removed; fitted to the {fits.stage}-time figures"
        + (" and the unpruned model at r = 0" if fits.stage == "search" else "")
        + ". Coefficients with 95% confidence intervals (t-distribution); "
        "AIC assumes Gaussian residuals (lower is better).",
        "",
        *_table(["law", "fitted to", "n", "coefficients [95% CI]", "R²", "AIC"], rows),
        f"Loss: {fits.loss_verdict()}.",
        "",
    ]
    if limit_rows:
        lines += [
            "Largest compression at which each fitted curve still meets each SLO, "
            "against the chosen point:",
            "",
            *_table(["SLO", "fit", f"predicted max {axis} removed", "chosen point"], limit_rows),
        ]
    if "fits" in images:
        lines += [f"![Fitted compression laws]({images['fits']})", ""]
    if "retention" in images:
        breaks = breaking_points(summary, fits)
        order = sorted(breaks, key=lambda t: (breaks[t] is None, breaks[t] or 0.0, t))
        lines += ["Which tasks break first (fitted retention below its threshold):", ""]
        for task in order:
            b = breaks[task]
            thr, why = break_threshold(summary, task)
            when = f"at {b:.1f}% {axis} removed" if b is not None else "not within the range"
            lines.append(f"- {task}: {when} (threshold {thr:g}%, {why})")
        lines += ["", f"![Retained accuracy per task]({images['retention']})", ""]
    return lines
