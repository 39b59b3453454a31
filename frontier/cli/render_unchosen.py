"""When ``find`` chose no point: each trial the final stage re-measured, and why it was
not chosen, in the order the final stage measured them (the most removed first)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from frontier.errors import FrontierError
from frontier.study.slo import parse_slo

if TYPE_CHECKING:
    from frontier.study.read import StudyTrial


def remeasured(trials: Sequence[StudyTrial]) -> list[StudyTrial]:
    """The trials with a final record, the most MLP removed first (the final stage's
    order: the smallest candidates first)."""
    done = [t for t in trials if t.final is not None and t.search_point is not None]
    return sorted(done, key=lambda t: (-(t.mlp_removed or 0.0), t.number))


def untold(trial: StudyTrial) -> bool:
    """A candidate whose every held-out miss is a floor its documents could not decide."""
    final: Mapping[str, Any] = trial.final or {}
    undecided = set(final.get("undecided") or [])
    figures = trial.final_point
    if final.get("spread") or not undecided or figures is None:
        return False
    return set(figures.missed) <= undecided


def label(trial: StudyTrial) -> str:
    return f"trial {trial.number} ({100 * (trial.mlp_removed or 0.0):.1f}% MLP removed)"


def why_not(trial: StudyTrial, study_name: str, *, uniform: int | None = None) -> str:
    """One re-measured trial, and why it is not the chosen point."""
    final: Mapping[str, Any] = trial.final or {}
    name = label(trial) + (" (the bisected uniform plan)" if trial.number == uniform else "")
    export = f"frontier export {study_name} {trial.number} --out DIR"
    if final.get("spread"):
        return (
            f"{name}: re-measured on fewer held-out tokens only to spread the front for the "
            "fits, never a candidate"
        )
    figures = trial.final_point
    missed = list(figures.missed) if figures is not None else []
    if not missed:
        search_missed = trial.search_point.missed if trial.search_point is not None else ()
        return (
            f"{name} meets every SLO on its held-out figures, but missed "
            f"{', '.join(search_missed) or 'one'} at search time, so the search did not count "
            f"it; export it with: {export}"
        )
    undecided = set(final.get("undecided") or [])
    told = [s for s in missed if s in undecided]
    failed = [s for s in missed if s not in undecided]
    parts = []
    if failed:
        parts.append("which misses " + "; ".join(f"{s} ({_figure(s, final)})" for s in failed))
    stopped = _stopped(final)
    if told and not failed and stopped is not None:
        return f"{name} was given up before its floors were decided: {stopped}; " + "; ".join(
            f"{s} ({_figure(s, final)})" for s in told
        )
    if told and not failed:
        parts.append(
            f"could not tell whether {name} meets "
            + "; ".join(f"{s} ({_figure(s, final)})" for s in told)
            + f": the interval straddles the floor; export it anyway with: {export}"
        )
        return parts[0]
    if told:
        parts.append("could not tell " + "; ".join(f"{s} ({_figure(s, final)})" for s in told))
    return f"{name}, " + ", and ".join(parts)


def _figure(slo_text: str, final: Mapping[str, Any]) -> str:
    """The held-out figure an SLO was judged on, in words."""
    try:
        slo = parse_slo(slo_text)
    except FrontierError:
        return "not measured"
    if slo.metric == "ppl":
        ratio = final.get("ppl_ratio")
        return f"held-out ratio {ratio:.3f}" if isinstance(ratio, float) else "not measured"
    kept = {"params": final.get("params_kept"), "mlp": final.get("mlp_kept")}
    if slo.metric in kept:
        return f"{_pct(kept[slo.metric])} kept"
    task = (final.get("tasks") or {}).get(slo.metric)
    if not isinstance(task, Mapping):
        mean = final.get("mean_retained")
        return f"mean retained {_pct(mean)}" if slo.metric == "tasks" else "its search figure"
    return _task_figure(task, relative=slo.relative)


def _task_figure(d: Mapping[str, Any], *, relative: bool) -> str:
    value = d.get("retained") if relative else d.get("acc")
    ci = d.get("ci") if relative else d.get("acc_ci")
    text = f"{'retained' if relative else 'accuracy'} {_pct(value)}"
    if isinstance(ci, list) and len(ci) == 2:
        level = d.get("confidence")
        at = f" at {_pct(level)}" if isinstance(level, float) else ""
        text += f", interval {_pct(ci[0])}-{_pct(ci[1])}{at}"
    n = d.get("n_docs")
    if isinstance(n, int):
        text += f", on {n} report documents"
    looks, most = d.get("looks"), d.get("max_looks")
    if isinstance(looks, int) and isinstance(most, int):
        text += f" in {looks} look{'s' if looks != 1 else ''}"
        if looks >= most:
            text += ", all it may read (--report-docs; default: the whole split)"
        else:
            text += f" of {most}"
    return text


def _stopped(final: Mapping[str, Any]) -> str | None:
    """Why the final stage stopped reading a candidate's documents early, if it did."""
    for d in (final.get("tasks") or {}).values():
        if isinstance(d, Mapping) and isinstance(d.get("stopped"), str):
            return str(d["stopped"])
    return None


def _pct(x: Any) -> str:
    return f"{100 * x:.1f}%" if isinstance(x, (int, float)) else "n/a"


__all__ = ["label", "remeasured", "untold", "why_not"]
