"""One handler per command: parsed arguments -> typed values -> the library call of the
command's name -> :mod:`frontier.cli.render` (``show``: :mod:`frontier.cli.render_trial`).
Each returns the exit status.

| command | library call |
|---|---|
| ``models list`` / ``models pull`` | ``frontier.models.list_models`` / ``frontier.models.pull`` |
| ``data mirror`` | ``frontier.data.build_mirror`` |
| ``prune`` | ``frontier.prune.prune`` |
| ``find`` / ``worker`` | ``frontier.search.find.find`` / ``frontier.search.find.worker`` |
| ``pareto`` / ``show`` | ``frontier.study.read.pareto`` / ``frontier.study.read.show`` |
| ``export`` | ``frontier.search.export.export`` |
| ``apply`` | ``frontier.export.apply`` |
| ``verify`` | ``frontier.search.verify.verify`` |
| ``fit`` / ``report`` | ``frontier.laws.fit`` / ``frontier.report.report`` |
| ``compare`` | ``frontier.compare.compare`` |
| ``llamacpp build`` / ``status`` | ``frontier.export.llamacpp.build`` / ``.find`` |
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from frontier.cli import render, render_trial

if TYPE_CHECKING:
    import optuna

    from frontier.study.summary import StudySummary


def _study(args: argparse.Namespace) -> optuna.Study:
    from frontier.search.storage import load_study

    return load_study(args.study, args.storage)


def _summary(name: str, storage: str | None) -> StudySummary:
    from frontier.search.storage import load_study
    from frontier.study.read import read_summary

    return read_summary(load_study(name, storage))


def _summary_or_file(name: str, storage: str | None) -> StudySummary:
    """A study by name, or a study's written summary (``summary.json``, or the results
    folder holding one): a committed study whose database is not on this machine."""
    import json

    from frontier.errors import FrontierError
    from frontier.study.summary import StudySummary

    path = Path(name)
    if path.is_dir():
        path = path / "summary.json"
    if path.suffix != ".json":
        return _summary(name, storage)
    try:
        return StudySummary.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FrontierError(f"cannot read the study summary {path}: {e}") from None


def _tasks(text: list[str] | None) -> list[str] | None:
    """``--tasks a,b --tasks c`` -> ``[a, b, c]`` (None: not given)."""
    return [t.strip() for t in ",".join(text).split(",") if t.strip()] if text else None


# -- models, data, prune ----------------------------------------------------------------
def models_list(_args: argparse.Namespace) -> int:
    from frontier.models import DEFAULT_ALIAS, list_models

    render.models(list_models(), DEFAULT_ALIAS)
    return 0


def models_pull(args: argparse.Namespace) -> int:
    from frontier.models import pull

    print(pull(args.name, progress=render.say))
    return 0


def data_mirror(args: argparse.Namespace) -> int:
    from frontier.data import build_mirror, read_manifest

    out = Path(args.out) if args.out else None
    path = build_mirror(out, tasks=_tasks(args.tasks), force=args.force, progress=render.say)
    render.mirror(path, read_manifest(path) or {})
    return 0


def prune(args: argparse.Namespace) -> int:
    from frontier.models import load_model
    from frontier.prune import CalibrationSpec, prune

    lm = load_model(
        args.model,
        dtype=args.dtype,
        device=args.device,
        trust_remote_code=args.trust_remote_code,
        progress=render.say,
    )
    result = prune(
        lm,
        args.keep,
        criterion=args.criterion,
        calibration=CalibrationSpec(text=args.calibration_text, n_tokens=args.calibration_tokens),
        text=args.text,
        eval_tokens=args.eval_tokens,
        compensate=args.compensate,
        refit=args.refit,
        progress=render.say,
    )
    render.pruned(lm.name, result)
    return 0


# -- studies ----------------------------------------------------------------------------
def find(args: argparse.Namespace) -> int:
    from frontier import settings
    from frontier.cli.spec_flags import spec_from_args
    from frontier.search.find import find

    spec = spec_from_args(args)
    workers: tuple[str, ...] = ()
    if args.devices:
        from frontier.search.devices import parse_devices

        first, *rest = parse_devices(args.devices)
        spec, workers = spec.replace(device=first), tuple(rest)
    settings.set_threads(spec.threads)
    settings.set_memory_budget(spec.memory)
    con = render.console()
    render.find_header(con, spec)
    shown = render.trial_progress(con, spec.trials)
    try:
        result = find(
            spec,
            progress=render.tracked(shown),
            callbacks=[shown],
            on_start=lambda study, _ctx: shown.start(study),
            workers=workers,
        )
    finally:
        shown.stop()
    con.print(f"ran {result.ran} trial(s) in {result.seconds:.0f} s")
    chosen = render.outcome(con, result.study, list(spec.tasks))
    if args.report:
        from frontier.report import report
        from frontier.study.read import read_summary

        con.print(f"report: {report(read_summary(result.study), args.out)}")
    return 0 if chosen else 3


def worker(args: argparse.Namespace) -> int:
    from frontier.search.find import worker

    shown = render.trial_progress(render.console(), args.trials)
    try:
        ran = worker(
            args.study,
            args.storage,
            trials=args.trials,
            timeout=args.timeout,
            device=args.device,
            dtype=args.dtype,
            early_stop=args.early_stop,
            progress=render.tracked(shown),
            callbacks=[shown],
        )
    finally:
        shown.stop()
    print(f"worker finished: ran {ran} trial(s)")
    return 0


def pareto(args: argparse.Namespace) -> int:
    from frontier.study.read import pareto
    from frontier.study.spec import stored_spec

    study = _study(args)
    found = pareto(study, all_trials=args.all)
    if args.json:
        from frontier.study.read import read_summary

        uniform = read_summary(study).to_dict().get("uniform_limit") or None
        render.pareto_json(study.study_name, found, uniform)
    else:
        tasks = list(stored_spec(study).tasks)
        render.pareto(study.study_name, found, tasks, all_trials=args.all)
        for line in (render.uniform_line(study), render.early_stop_line(study)):
            if line:
                render.console().print(line)
    return 0


def show(args: argparse.Namespace) -> int:
    from frontier.study.read import show

    render_trial.trial(show(_study(args), args.trial))
    return 0


# -- exports ----------------------------------------------------------------------------
def export(args: argparse.Namespace) -> int:
    from frontier.search.export import export

    result = export(
        _study(args),
        args.trial,
        Path(args.out),
        format=args.format,
        dtype=args.dtype,
        force=args.force,
        gguf_type=args.gguf_type or "f32",
        device=args.device,
    )
    render.exported(result)
    return 0


def apply(args: argparse.Namespace) -> int:
    from frontier.export import apply

    result = apply(
        Path(args.source),
        args.model,
        Path(args.out),
        format=args.format,
        dtype=args.dtype,
        force=args.force,
        check_source=args.check_source,
        gguf_type=args.gguf_type,
        trust_remote_code=args.trust_remote_code,
        device=args.device,
        progress=render.say,
    )
    render.exported(result)
    return 0


def verify(args: argparse.Namespace) -> int:
    from frontier.search.verify import verify

    result = verify(_study(args), Path(args.source), device=args.device, progress=render.say)
    render.verified(result)
    return 0 if result.ok else 1


def repair(args: argparse.Namespace) -> int:
    from frontier.repair import RepairConfig, repair_trial, reporter_for

    config = RepairConfig(
        steps=args.steps,
        batch_windows=args.batch_windows,
        seq_len=args.seq_len,
        lr=args.lr,
        temperature=args.temperature,
        ce_weight=args.ce_weight,
        heldout_tokens=args.heldout_tokens,
        eval_every=args.eval_every,
        patience=args.patience,
        seed=args.seed,
        cpu_minutes=args.cpu_minutes,
    )
    local = None
    if args.local or args.local_then_global:
        from frontier.reconstruct import ReconstructConfig

        local = ReconstructConfig(
            steps=args.local_steps,
            lr=args.local_lr,
            inputs=args.local_inputs,
            target=args.local_target,
            seed=args.seed,
            cpu_minutes=args.local_cpu_minutes,
        )
    con = render.console()
    done = repair_trial(
        _study(args),
        args.trial,
        Path(args.out),
        config,
        format=args.format,
        dtype=args.dtype,
        force=args.force,
        reporter=reporter_for(con),
        device=args.device,
        progress=render.say,
        local=local,
        distil=not args.local,
    )
    render.repaired(done)
    return 0


def llamacpp_build(args: argparse.Namespace) -> int:
    from frontier.export import llamacpp as _llamacpp

    _llamacpp.build(render.say, jobs=args.jobs)
    return 0


def llamacpp_status(_args: argparse.Namespace) -> int:
    from frontier.export import llamacpp as _llamacpp

    found = _llamacpp.find()
    print(f"llama.cpp {_llamacpp.VERSION}: {found.bin}" if found else _llamacpp.INSTALL_HINT)
    return 0


# -- analysis ---------------------------------------------------------------------------
def fit(args: argparse.Namespace) -> int:
    from frontier.laws import fit

    summary = _summary(args.study, args.storage)
    render.fits(summary, fit(summary, x=args.x, all_trials=args.all), args.x)
    return 0


def report(args: argparse.Namespace) -> int:
    from frontier.report import report

    print(report(_summary(args.study, args.storage), args.out))
    return 0


def compare(args: argparse.Namespace) -> int:
    from frontier.compare import compare

    summaries = [_summary_or_file(name, args.storage) for name in args.studies]
    render.compared(compare(summaries, Path(args.out)))
    return 0
