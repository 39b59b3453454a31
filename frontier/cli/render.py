"""What the commands print: rich tables on stdout, one-line progress messages on stderr.

``frontier show``'s view of one trial is :mod:`frontier.cli.render_trial`'s."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    from rich.console import Console

    from frontier.compare import ComparisonResult
    from frontier.export import ExportResult
    from frontier.laws import Axis, StudyFits
    from frontier.models import Alias
    from frontier.prune import PruneResult
    from frontier.repair import RepairedExport
    from frontier.search.display import LiveProgress
    from frontier.search.progress import PlainProgress
    from frontier.search.verify import Verification
    from frontier.study.read import StudyTrial
    from frontier.study.spec import StudySpec
    from frontier.study.summary import StudySummary


def console() -> Console:
    from rich.console import Console

    return Console(stderr=False, highlight=False)


def say(msg: str) -> None:
    """A progress message of the library (``… loading ...``), on stderr."""
    print(f"… {msg}", file=sys.stderr, flush=True)


def tracked(shown: LiveProgress | PlainProgress) -> Callable[[str], None]:
    """:func:`say`, and the trial tracker told what runs (its ``still working`` lines)."""

    def both(msg: str) -> None:
        say(msg)
        shown.note(msg)

    return both


def trial_progress(con: Console, total: int | None) -> LiveProgress | PlainProgress:
    """Rich's live bar on a terminal; plain lines at a steady pace anywhere else."""
    if sys.stdout.isatty():
        from frontier.search.display import LiveProgress

        return LiveProgress(con, total)
    from frontier.search.progress import PlainProgress

    return PlainProgress(total)


def _fmt(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, float) else str(x)


# -- models, data, prune ----------------------------------------------------------------
def models(aliases: list[Alias], default: str) -> None:
    from rich.table import Table

    table = Table(title="built-in models (from PyPI)")
    table.add_column("alias", no_wrap=True)  # the name a user types: never cut
    for col in ("model", "license", "cached"):
        table.add_column(col)
    for a in aliases:
        name = a.name + (" (default)" if a.name == default else "")
        table.add_row(name, a.description, a.license, str(a.cache_dir) if a.is_cached else "no")
    console().print(table)


def mirror(path: Any, manifest: Mapping[str, Any]) -> None:
    con = console()
    con.print(f"benchmark mirror at {path}")
    for task, info in sorted((manifest.get("task_docs") or {}).items()):
        docs = info.get("docs") if isinstance(info, dict) else info
        if isinstance(docs, dict):  # a group: total over its subtasks
            docs = f"{sum(docs.values())} in {len(docs)} subtasks"
        split = info.get("split", "") if isinstance(info, dict) else ""
        con.print(f"  {task:16s} {docs} documents {split}")
    if manifest.get("truthfulqa"):
        con.print(f"  note: {manifest['truthfulqa']}")


def pruned(name: str, r: PruneResult) -> None:
    ev = r.protocol["evaluation"]
    con = console()
    con.print(f"[bold]{name}[/]: {r.plan.describe()}, operator {r.operator}")
    con.print(
        f"  parameters   {r.params_before:,} -> {r.params_after:,} "
        f"({100 * (1 - r.params_after / r.params_before):.1f}% removed)"
    )
    con.print(f"  perplexity   {r.ppl_before:.3f} -> {r.ppl_after:.3f}  (ratio {r.ppl_ratio:.3f})")
    con.print(
        f"  protocol     {ev['source']}, {ev['role']} articles, {ev['tokens']} tokens in "
        f"{ev['windows']} windows of {ev['seq_len']}"
    )
    con.print("  seconds      " + ", ".join(f"{k} {v:.1f}" for k, v in r.seconds.items()))


# -- studies ----------------------------------------------------------------------------
def find_header(con: Console, spec: StudySpec) -> None:
    con.print(
        f"[bold]frontier find[/] {spec.model}: SLOs {' AND '.join(spec.slos)}; "
        f"study '{spec.study_name}' in {spec.storage_url}"
    )


def outcome(con: Console, study: optuna.Study, tasks: list[str]) -> bool:
    """The Pareto table, then the chosen point or the nearest miss; True if one was chosen."""
    from frontier.search.display import pareto_table
    from frontier.study.read import chosen_trial, nearest_trial, read_trials

    front = read_trials(study, pareto_only=True)
    if front:
        con.print(
            pareto_table(
                f"Pareto set of '{study.study_name}' (search-time and final figures; * = chosen)",
                front,
                tasks,
            )
        )
    else:
        con.print("no trial met every SLO at search time, so the Pareto set is empty")
    chosen = chosen_trial(study)
    if chosen is not None:
        f = chosen.final or chosen.search
        con.print(
            f"[bold green]chosen point: trial {chosen.number}[/]: "
            f"{100 * (chosen.mlp_removed or 0):.1f}% of MLP parameters removed, "
            f"{100 * (chosen.params_removed or 0):.1f}% of all parameters; "
            f"ppl ratio {_fmt(f.get('ppl_ratio'))} on held-out text"
        )
        for line in (uniform_line(study), early_stop_line(study)):
            if line:
                con.print(line)
        con.print(f"export it with: frontier export {study.study_name} --out DIR")
        return True
    line = early_stop_line(study)
    if line:
        con.print(line)
    trials = read_trials(study)
    near = nearest_trial(study, trials)
    # the re-measured trials first, each with why it was not chosen; then the others
    for line in unchosen_lines(study, trials, None if near is None else near.number):
        con.print(line)
    if near is None and not any(t.final is not None for t in trials):
        con.print("[bold red]no trial meets every SLO[/]; none measured")
        return False
    if near is not None and near.final is None:
        con.print(_missed(near, study.study_name))
    return False


def unchosen_lines(
    study: optuna.Study, trials: list[StudyTrial], nearest: int | None = None
) -> list[str]:
    """No point was chosen: each re-measured trial and why it was not chosen (the
    ``nearest`` trial marked), and what would decide an undecided floor."""
    from rich.markup import escape

    from frontier.cli.render_unchosen import remeasured, untold, why_not
    from frontier.study.schema import ATTR_UNIFORM
    from frontier.study.spec import stored_spec

    done = remeasured(trials)
    if not done:
        return []
    uniform = (study.user_attrs.get(ATTR_UNIFORM) or {}).get("trial")
    head = f"{len(done)} trial(s) re-measured on held-out data, and why each is not chosen:"
    held_out = any(t.final_point is not None and not t.final_point.missed for t in done)
    if any(t.feasible for t in trials) or held_out:
        out = [f"[bold yellow]no point was chosen[/]; {head}"]
    else:
        out = [f"[bold red]no trial meets every SLO[/]; {head}"]
    out += [
        "  "
        + ("nearest: " if t.number == nearest else "")
        + escape(why_not(t, study.study_name, uniform=uniform))
        for t in done
    ]
    if any(untold(t) for t in done):
        cap = stored_spec(study).report_docs
        out.append(
            "  (could not tell: on every report document of the task's split the interval "
            "still straddles the floor at the study's --confidence)"
            if cap is None
            else f"  (could not tell: the final stage reads at most --report-docs {cap} "
            "documents per task; without the flag, a new study reads up to the whole split)"
        )
    return out


def _missed(trial: StudyTrial, study_name: str) -> str:
    """No point was chosen: what the nearest trial not re-measured misses on its
    search-time figures, or that it met them all and was not re-measured."""
    figures = trial.figures
    if figures is None:
        return f"[bold red]no trial meets every SLO[/]; nearest: trial {trial.number}"
    size = f"trial {trial.number} ({100 * figures.mlp_removed:.1f}% MLP removed)"
    if not figures.missed:
        return (
            f"[bold yellow]no point was chosen[/], but {size} meets every SLO at search time "
            "and was not re-measured on held-out data: the largest candidates are, up to "
            "--report-points of them; rerun the same command with a larger --report-points "
            "to re-measure more (finished trials are kept)"
        )
    return (
        f"[bold red]no trial meets every SLO[/]; nearest: {size} (not re-measured), which "
        f"misses {', '.join(figures.missed)} on its search-time figures "
        f"(ppl ratio {_fmt(figures.ppl_ratio)})"
    )


def pareto(study_name: str, found: list[StudyTrial], tasks: list[str], *, all_trials: bool) -> None:
    from frontier.search.display import pareto_table

    if not found:  # no empty table: say why there is nothing to show
        console().print(
            f"'{study_name}': no trials yet"
            if all_trials
            else f"'{study_name}': the Pareto set is empty: no trial met every SLO at search "
            "time (--all lists every trial)"
        )
        return
    title = f"{'all trials' if all_trials else 'Pareto set'} of '{study_name}' (* = chosen)"
    console().print(pareto_table(title, found, tasks))


def uniform_line(study: optuna.Study) -> str | None:
    """The bisected uniform plan and the chosen point's gain over it, in one line (None
    when the study has no bisected uniform plan)."""
    from frontier.study.read import read_summary

    summary = read_summary(study)
    u = summary.uniform
    if u is None:
        return None
    where = "held-out" if u.stage == "final" else "search-time"
    line = (
        f"bisected uniform plan: keep {summary.uniform_limit.get('keep'):.4f}, trial "
        f"{u.number}, {100 * u.mlp_removed:.1f}% of MLP parameters removed, ppl ratio "
        f"{_fmt(u.ppl_ratio)} on {where} text"
        + (" (it misses the SLOs there)" if not u.feasible else "")
    )
    gain = summary.gain_over_uniform()
    if gain is not None:
        line += f"; the chosen point removes {gain:.2f}x as much"
    return line


def early_stop_line(study: optuna.Study) -> str | None:
    """Where the study's search stopped early, in one line (None if it did not)."""
    from frontier.search.early_stop import stopped_early
    from frontier.study.early_stop import describe

    rec = stopped_early(study)
    if rec is None:
        return None
    return f"{describe(rec)}; the rest of --trials was not run (--no-early-stop runs it)"


def pareto_json(study_name: str, found: list[StudyTrial], uniform: Any) -> None:
    """The trials and the bisected uniform plan (``summary.json``'s ``uniform_limit``, with
    its figures and the chosen point's gain over it; null when the study has none)."""
    out = {"study": study_name, "trials": [r.to_dict() for r in found], "uniform_limit": uniform}
    print(json.dumps(out, indent=2, default=str))


# -- exports ----------------------------------------------------------------------------
def exported(result: ExportResult) -> None:
    con = console()
    rec = result.record
    if result.gguf is not None:
        from frontier.export import gguf_lines

        for line in gguf_lines(result):
            con.print(line, highlight=False)
        return
    con.print(
        f"[bold]{result.path}[/]: {rec.export_format} checkpoint, {rec.dtype}, "
        f"{result.weights_bytes / 1e6:.1f} MB of weights"
    )
    con.print(f"reload checked: max |logit difference| {result.max_abs_logit_diff:.2e}")
    from frontier.export.formats import get_format

    con.print(get_format(rec.export_format).load_hint)


def repaired(done: RepairedExport) -> None:
    r = done.result

    def ratio(rec: Mapping[str, Any]) -> str:
        value = rec.get("ppl_ratio")
        return f"{value:.3f}" if isinstance(value, (int, float)) else "n/a"

    con = console()
    parts = []
    if done.local is not None:
        loc = done.local
        parts.append(
            f"local reconstruction of {len(loc.layers)} MLPs, "
            f"{sum(f.steps_run for f in loc.layers)} steps, {loc.cpu_seconds / 60:.1f} CPU-minutes"
        )
    if r is not None:
        parts.append(
            f"distillation {r.steps_run} steps, {r.tokens_trained:,} tokens, "
            f"{r.cpu_seconds / 60:.1f} CPU-minutes"
        )
    con.print(
        f"trial {done.trial}: held-out ppl ratio {ratio(done.before)} before repair, "
        f"{ratio(done.after)} after ({'; '.join(parts)})"
    )
    if r is not None and r.rolled_back:
        con.print("the repair did not improve the held-out loss: the pruned weights were kept")
    exported(done.export)


def verified(result: Verification) -> None:
    from rich.table import Table

    how = "trust_remote_code=True" if result.trust_remote_code else "plain transformers"
    table = Table(
        title=f"{result.folder} ({result.export_format}, loaded with {how}) vs "
        f"study {result.study} trial {result.trial}'s report"
    )
    for col in ("metric", "report", "export", "difference", ""):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for c in result.checks:
        table.add_row(
            c.metric,
            f"{c.reported:.6g}",
            f"{c.measured:.6g}",
            f"{c.difference:+.2e}",
            "[green]equal[/]" if c.ok else "[red]DIFFERS[/]",
        )
    con = console()
    con.print(table)
    con.print(f"{result.parameters:,} parameters in the loaded checkpoint")
    if not result.ok:
        con.print("[red]the export does not reproduce the report's figures[/]")


# -- analysis ---------------------------------------------------------------------------
def fits(summary: StudySummary, fits: StudyFits, x: Axis) -> None:
    con = console()
    con.print(
        f"[bold]{summary.name}[/]: fits on "
        + (
            "every trial's search-time figures"
            if fits.stage == "search"
            else f"the {len(summary.final)} Pareto points' held-out figures"
        )
        + f"; r = fraction of {'MLP' if x == 'mlp' else 'all'} parameters removed"
    )
    con.print(fits.describe(), highlight=False)
    for fit in (fits.loss_quadratic, fits.loss_power, *fits.tasks.values(), fits.retention):
        if fit is not None:
            con.print("  " + fit.describe(), highlight=False)
    chosen = summary.chosen
    for limit in fits.limits:
        line = "  " + limit.describe()
        if chosen is not None:
            removed = chosen.mlp_removed if x == "mlp" else chosen.params_removed
            line += f" (search chose {100 * removed:.1f}%)"
        con.print(line, highlight=False)


def compared(result: ComparisonResult) -> None:
    con = console()
    con.print(result.describe())
    con.print(f"{result.markdown}\n{result.chart}")
