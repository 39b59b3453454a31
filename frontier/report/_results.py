"""The report's results: the verdict, the chosen point, the Pareto set, the fitted laws."""

from __future__ import annotations

from collections.abc import Mapping

from frontier.laws import FitResult, StudyFits
from frontier.plots import (
    break_threshold,
    breaking_points,
)
from frontier.report._markdown import _num, _pair, _pct, _table
from frontier.study.summary import (
    StudySummary,
    TrialPoint,
    mean_retention,
    ranked_by_nearness,
    retention,
)


def _unconfirmed(summary: StudySummary) -> tuple[list[TrialPoint], list[TrialPoint]]:
    """No point chosen: the trials that met every SLO at search time, and those of them
    re-measured in full on held-out data (none of which met them there)."""
    passed = [q for q in summary.points if q.feasible]
    numbers = {q.number for q in passed}
    measured = [q for q in summary.final if not q.spread and q.number in numbers]
    return passed, measured


def _verdict(summary: StudySummary) -> str:
    p = summary.chosen
    if p is None:
        slos = ", ".join(f"`{s}`" for s in summary.slos) or "none given"
        passed, measured = _unconfirmed(summary)
        if not passed:
            return (
                f"**No feasible point**: none of {len(summary.points)} trials met every SLO "
                f"({slos})."
            )
        return (
            f"**No point chosen**: {len(passed)} of {len(summary.points)} trials met every SLO "
            f"({slos}) at search time, but none of the {len(measured)} re-measured on "
            "held-out text and report documents met them there (a task floor counts as met "
            "only when its whole interval, at the study's confidence, is above it). "
            'See "Chosen point" for what to do.'
        )
    ret = mean_retention(p, summary.baselines_for(p))
    tasks = f", mean retained accuracy {_pct(ret)}" if ret is not None else ""
    where = "report-fidelity figures" if p.stage == "final" else "search-time figures"
    text = (
        f"**Chosen: trial {p.number}**, {_pct(p.mlp_removed)} of MLP parameters removed "
        f"({_pct(p.params_removed)} of all parameters), perplexity ratio "
        f"{_ppl(p)}{tasks} ({where})."
    )
    return text + _miss_warning(p)


def _level(summary: StudySummary) -> str:
    level = (summary.protocol.get("final_remeasurement") or {}).get("confidence")
    return f" at {100 * float(level):.0f}% confidence" if isinstance(level, (int, float)) else ""


def _ppl(p: TrialPoint) -> str:
    """The perplexity ratio and, where measured, its paired interval over the windows."""
    if p.ppl_ci is None:
        return _num(p.ppl_ratio)
    return f"{_num(p.ppl_ratio)} [{_num(p.ppl_ci[0])}–{_num(p.ppl_ci[1])}]"


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


def _figures(summary: StudySummary, p: TrialPoint) -> list[str]:
    """One point's figures, in the order of :func:`_pareto_header` after the sizes."""
    ret = retention(p, summary.baselines_for(p))
    cells = [_ppl(p)]
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
    spread = final is not None and final.spread
    head = [
        f"{anchor.number}{' ★' if chosen else ''}{' †' if spread else ''}",
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
                "★ marks the chosen point."
                + (
                    f" † marks a trial re-measured on fewer held-out tokens "
                    f"({summary.protocol.get('final_remeasurement', {}).get('fit_tokens')}) "
                    "only to spread the front for the fits: never a candidate for the chosen "
                    "point."
                    if any(p.spread for p in summary.final)
                    else ""
                )
                + (
                    " A held-out perplexity ratio in brackets is its paired interval over the "
                    f"text's windows{_level(summary)}: the search chose on its point estimate."
                    if any(p.ppl_ci is not None for p in summary.final)
                    else ""
                ),
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
        passed, measured = _unconfirmed(summary)
        head = "**No feasible point.** No trial met every SLO, so nothing was chosen."
        if passed:
            done = {q.number for q in measured}
            waiting = sorted(
                (q for q in passed if q.number not in done), key=lambda q: -q.mlp_removed
            )
            names = ", ".join(str(q.number) for q in measured) or "none"
            head = (
                f"**No point chosen.** {len(passed)} trials met every SLO at search time; "
                f"of those re-measured on held-out figures (trials {names}), none met them "
                "there. "
                + (
                    f"{len(waiting)} were not re-measured, the largest trial "
                    f"{waiting[0].number} ({_pct(waiting[0].mlp_removed)} of MLP removed): "
                    "rerun the same `frontier find` command with a larger "
                    "`--report-points` to re-measure more candidates (finished trials are "
                    "kept). "
                    if waiting
                    else ""
                )
                + "Where a task interval straddles its floor, more report documents "
                "(`--report-docs`) narrow it; `frontier export STUDY TRIAL` exports any "
                "trial anyway."
            )
        lines = ["## Chosen point", "", head, ""]
        closest = ranked_by_nearness(summary.believed())[:3]
        if closest:
            lines += [
                "The trials that came closest (smallest largest SLO violation, on held-out "
                "figures where measured; the first is the nearest trial `frontier find` "
                "names):",
                "",
            ]
            lines += _table(
                ["trial", "figures", "MLP removed", "ppl ratio", "mean retained", "misses"],
                [
                    [
                        q.number,
                        "held-out" if q.stage == "final" else "search-time",
                        _pct(q.mlp_removed),
                        _num(q.ppl_ratio),
                        _pct(mean_retention(q, summary.baselines_for(q))),
                        ", ".join(f"`{m}`" for m in q.missed) or "–",
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
    lines += _uniform_lines(summary)
    if "widths" in images:
        lines += [f"![Kept MLP width per layer of trial {p.number}]({images['widths']})", ""]
    return lines


def _uniform_lines(summary: StudySummary) -> list[str]:
    u = summary.uniform
    if u is None:
        return []
    limit = summary.uniform_limit
    gain = summary.gain_over_uniform()
    where = "held-out" if u.stage == "final" else "search-time"
    return [
        f"**Against the bisected uniform plan** (every layer keeps the same share; the "
        f"smallest share meeting the SLOs at search time, bisected to "
        f"{limit.get('tol')} of the keep ratio): trial {u.number}, keep "
        f"{float(limit.get('keep') or 0):.4f}, {_pct(u.mlp_removed)} of MLP parameters "
        f"removed at ppl ratio {_num(u.ppl_ratio)} ({where} figures"
        + (", on which it misses the SLOs)" if not u.feasible else ")")
        + (f". The chosen point removes **{gain:.2f}x** as much." if gain is not None else "."),
        "",
    ]


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
