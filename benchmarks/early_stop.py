"""Replay the early stop on the committed studies: where would each search have stopped,
how many trials would it have saved, and would the chosen point be the same?

    python benchmarks/early_stop.py [--patience 4,6,8,10,12,15,20] [--noise 0.5,1,2] \
        [--studies studies] > benchmarks/results/early-stop-2026-12-06.log

Reads every study it can, without running a model:

- the Optuna studies in ``STUDIES/*.db`` (each copied to a temporary folder first, so a
  study being written is never opened in place): every finished trial, its warm-start
  label, its search-time size and feasibility, its held-out record, its timing;
- the summaries in ``STUDIES/results/*/summary.json`` of the studies that have no
  database here. A summary does not say which trials were warm starts: the bisection's
  are named by its ``uniform_limit``; the warm starts are the trials right after it (or
  from trial 0 without one) whose plans are uniform or not constant within a layer
  group, which a sampled plan always is (the databases' labels check this guess).

For each patience N and noise (points of MLP removed) the rule of
:mod:`frontier.study.early_stop` runs on the trials in order. Where it stops, the final
stage is replayed on the trials up to the stop with today's rule
(:func:`frontier.search.find.finalize`): the trials feasible at search time, smallest
first, until one passes held out, at most ``report_points`` of them. A held-out verdict
is the study's own record (the re-measurement is deterministic); a candidate the study
never re-measured on report tokens makes the outcome unknown (``?``), and so does a
study whose own final stage this replay does not reproduce (studies made before
today's rule). ``best@stop`` is the largest MLP fraction removed by a trial feasible at
search time up to the stop, beside the chosen point's.

Then the search-time noise: at every trial re-measured on held-out text, the difference
between its held-out and its search-time ppl ratio, turned into points of MLP removed by
the slope of the search-time ratio between the uniform plans either side of the SLO.

Last, the wall time of `make demo` (SmolLM2-135M, ``ppl<2.0``) at 16 and 100 trials with
and without the early stop, from its measured parts (``--setup-s``, ``--trial-s``,
``--final-s``: the 2026-11-30 breakdown in docs/measurements/2026-11-29-calibration-
uniform-limit-search.md), where nothing after the warm starts improves, as in every
replayed study with the default operator.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from frontier.study.early_stop import EarlyStop, Step, decide

Chosen = int | str | None  # a trial, "?" (unknown) or None (nothing passes held out)


@dataclass(frozen=True)
class Trial:
    """What the replay needs of one finished trial."""

    number: int
    warm: bool
    uniform: bool
    feasible: bool  # at search time
    mlp_removed: float | None
    params_kept: float | None
    ppl: float | None  # search-time ppl ratio (the second objective)
    final_ppl: float | None  # held-out, on report tokens
    final_feasible: bool | None  # None: not re-measured on report tokens


@dataclass(frozen=True)
class Study:
    name: str
    source: str
    trials: tuple[Trial, ...]
    chosen: int | None
    report_points: int | None  # None: not known (not binding where a point was chosen)
    slo_ppl: float | None
    trial_seconds: float | None  # mean seconds per trial
    label_check: str = ""

    def trial(self, number: int | None) -> Trial | None:
        return next((t for t in self.trials if t.number == number), None)


# -- reading ------------------------------------------------------------------------------
def _uniform(widths: Sequence[int]) -> bool:
    return len(set(widths)) == 1


def _warm_guess(points: Sequence[dict[str, Any]], groups: int, bisected: set[int]) -> set[int]:
    """Bisection steps, then the contiguous run of uniform or non-group-constant plans."""

    def warm_like(w: Sequence[int]) -> bool:
        g = [i * groups // len(w) for i in range(len(w))]
        return _uniform(w) or any(g[i] == g[i - 1] and w[i] != w[i - 1] for i in range(1, len(w)))

    out = set(bisected)
    for p in sorted(points, key=lambda p: p["number"]):
        if p["number"] in out:
            continue
        if not warm_like(p["widths"]):
            break
        out.add(p["number"])
    return out


def _ppl_threshold(slos: Sequence[str]) -> float | None:
    from frontier.study.slo import parse_slos

    return next((s.threshold for s in parse_slos(slos) if s.metric == "ppl"), None)


def from_summary(path: Path) -> Study:
    d = json.loads(path.read_text())
    proto = d.get("protocol", {})
    groups = int((proto.get("search_space") or {}).get("groups") or 1)
    steps = (d.get("uniform_limit") or {}).get("steps", [])
    warm = _warm_guess(d["points"], groups, {int(s["trial"]) for s in steps if "trial" in s})
    finals = {p["number"]: p for p in d.get("final", []) if not p.get("spread")}
    trials = tuple(
        Trial(
            number=p["number"],
            warm=p["number"] in warm,
            uniform=_uniform(p["widths"]),
            feasible=bool(p["feasible"]),
            mlp_removed=p["mlp_removed"],
            params_kept=1.0 - p["params_removed"],
            ppl=p.get("ppl_ratio"),
            final_ppl=finals[p["number"]].get("ppl_ratio") if p["number"] in finals else None,
            final_feasible=bool(finals[p["number"]]["feasible"]) if p["number"] in finals else None,
        )
        for p in sorted(d["points"], key=lambda p: p["number"])
    )
    chosen = next((p["number"] for p in d["points"] if p.get("chosen")), None)
    seconds = (proto.get("trials") or {}).get("trial_seconds")
    study = Study(
        name=d["name"],
        source=f"results/{path.parent.name}/summary.json",
        trials=trials,
        chosen=chosen,
        report_points=None,
        slo_ppl=_ppl_threshold(d.get("slos", [])),
        trial_seconds=float(seconds) / len(trials) if seconds and trials else None,
    )
    return _with_inferred_limit(study)


def _with_inferred_limit(study: Study) -> Study:
    """Where nothing was chosen and the walk stopped before a candidate never measured,
    the study's report_points was the number it had measured."""
    if study.chosen is not None:
        return study
    for measured, t in enumerate(_candidates(study, last=None)):
        if t.final_feasible is None:
            return replace(study, report_points=measured or None)
    return study


def from_databases(folder: Path, tmp: Path) -> list[Study]:
    import optuna

    from frontier.search.early_stop import steps_of
    from frontier.study.read import choose, read_summary
    from frontier.study.spec import stored_spec

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = []
    for db in sorted(folder.glob("*.db")):
        copy = tmp / db.name
        shutil.copyfile(db, copy)  # never open a study that may be being written
        url = f"sqlite:///{copy}"
        for s in optuna.get_all_study_summaries(url):
            study = optuna.load_study(study_name=s.study_name, storage=url)
            summary = read_summary(study)
            finals = {p.number: p for p in summary.final if not p.spread}
            raw = {t.number: t for t in study.get_trials(deepcopy=False)}
            trials = []
            for st in sorted(steps_of(study), key=lambda st: st.number):
                t, f = raw[st.number], finals.get(st.number)
                plan = t.user_attrs.get("frontier:plan") or {}
                trials.append(
                    Trial(
                        number=st.number,
                        warm=st.warm,
                        uniform=_uniform(plan.get("widths") or [0, 1]),
                        feasible=st.feasible,
                        mlp_removed=st.mlp_removed,
                        params_kept=t.values[0] if t.values else None,
                        ppl=t.values[1] if t.values else None,
                        final_ppl=f.ppl_ratio if f else None,
                        final_feasible=f.feasible if f else None,
                    )
                )
            groups = int((summary.protocol.get("search_space") or {}).get("groups") or 1)
            steps = summary.uniform_limit.get("steps", [])
            guess = _warm_guess(
                [p.to_dict() for p in summary.points], groups, {int(x["trial"]) for x in steps}
            )
            labelled = {t.number for t in trials if t.warm}
            secs = [
                float((raw[t.number].user_attrs.get("frontier:timing") or {}).get("total", 0))
                for t in trials
            ]
            chosen = choose(study)
            out.append(
                Study(
                    name=s.study_name,
                    source=f"{folder.name}/{db.name}",
                    trials=tuple(trials),
                    chosen=chosen.number if chosen else None,
                    report_points=stored_spec(study).report_points,
                    slo_ppl=_ppl_threshold(summary.slos),
                    trial_seconds=statistics.mean(secs) if secs else None,
                    label_check="yes" if guess == labelled else f"no: {labelled} != {guess}",
                )
            )
    return out


# -- replaying ----------------------------------------------------------------------------
def _candidates(study: Study, last: int | None) -> list[Trial]:
    inf = float("inf")
    return sorted(
        (
            t
            for t in study.trials
            if (last is None or t.number <= last) and t.feasible and t.params_kept is not None
        ),
        key=lambda t: (t.params_kept or 0.0, t.ppl if t.ppl is not None else inf, t.number),
    )


def chosen_after(study: Study, last: int | None) -> Chosen:
    """The point the final stage would choose among the trials up to ``last`` (None: all)."""
    for measured, t in enumerate(_candidates(study, last)):
        if study.report_points is not None and measured >= study.report_points:
            return None
        if t.final_feasible is None:
            return "?"
        if t.final_feasible:
            return t.number
    return None


@dataclass(frozen=True)
class Replay:
    stop: int | None
    ran: int
    saved: int
    searched_saved: int
    seconds_saved: float | None
    best: float | None  # the largest search-feasible MLP fraction removed up to the stop
    chosen: Chosen
    same: str


def stop_trial(study: Study, rule: EarlyStop) -> int | None:
    """The trial after which the search stops: the rule asked after every trial, in order,
    as the running search asks it (None: it never stops)."""
    steps = [Step(t.number, t.warm, t.feasible, t.mlp_removed) for t in study.trials]
    for k in range(1, len(steps) + 1):
        d = decide(steps[:k], rule)
        if d.stop:
            return d.trial
    return None


def replay(study: Study, rule: EarlyStop) -> Replay:
    last = stop_trial(study, rule)
    kept = [t for t in study.trials if last is None or t.number <= last]
    sizes = [t.mlp_removed for t in kept if t.feasible and t.mlp_removed is not None]
    saved = len(study.trials) - len(kept)
    reproduced = chosen_after(study, None) == study.chosen
    chosen = chosen_after(study, last) if reproduced else "?"
    same = "?" if chosen == "?" else ("yes" if chosen == study.chosen else "NO")
    return Replay(
        stop=last,
        ran=len(kept),
        saved=saved,
        searched_saved=sum(not t.warm for t in study.trials) - sum(not t.warm for t in kept),
        seconds_saved=None if study.trial_seconds is None else saved * study.trial_seconds,
        best=max(sizes) if sizes else None,
        chosen=chosen,
        same=same,
    )


# -- noise --------------------------------------------------------------------------------
def slope(study: Study) -> float | None:
    """d(search ppl ratio)/d(MLP fraction removed) between the uniform plans either side
    of the ppl SLO."""
    limit = study.slo_ppl
    if limit is None:
        return None
    pts: list[tuple[float, float]] = [
        (t.mlp_removed, t.ppl)
        for t in study.trials
        if t.uniform and t.mlp_removed is not None and t.ppl is not None
    ]
    below = [x for x in pts if x[1] <= limit]
    edge = max(below, default=(0.0, 0.0))[0]
    above = [x for x in pts if x[1] > limit and x[0] > edge]
    if not below or not above:
        return None
    a, b = max(below), min(above)
    return (b[1] - a[1]) / (b[0] - a[0]) if b[0] > a[0] else None


def noise_lines(studies: Sequence[Study]) -> list[str]:
    lines = [
        f"{'study':20s} {'source':42s} {'n':>3s} {'median |d ratio|':>16s} "
        f"{'ratio/point':>11s} {'points (median, max)':>21s}"
    ]
    for s in studies:
        diffs = [
            abs(t.final_ppl - t.ppl)
            for t in s.trials
            if t.final_ppl is not None and t.ppl is not None
        ]
        if not diffs:
            continue
        k, med = slope(s), statistics.median(diffs)
        pts = f"{100 * med / k:.2f}, {100 * max(diffs) / k:.2f}" if k else "-"
        per_point = f"{k / 100:.4f}" if k else "-"
        lines.append(
            f"{s.name[:20]:20s} {s.source[:42]:42s} {len(diffs):3d} {med:16.4f} "
            f"{per_point:>11s} {pts:>21s}"
        )
    return lines


# -- printing -----------------------------------------------------------------------------
def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _chosen(x: Chosen) -> str:
    return "none" if x is None else str(x)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--patience", default="4,6,8,10,12,15,20", help="values of N")
    p.add_argument("--noise", default="0.5,1,2", help="points of MLP removed, comma-separated")
    p.add_argument("--studies", default="studies", help="the studies folder")
    p.add_argument("--setup-s", type=float, default=283.0, help="demo set-up, fresh cache")
    p.add_argument("--cached-setup-s", type=float, default=75.0, help="set-up, calibration cached")
    p.add_argument("--trial-s", type=float, default=4.7, help="one demo trial")
    p.add_argument("--final-s", type=float, default=197.0, help="the demo's held-out stage")
    p.add_argument("--warm", type=int, default=10, help="the demo's bisection + warm starts")
    args = p.parse_args(argv)
    patiences = [int(x) for x in args.patience.split(",")]
    noises = [float(x) for x in args.noise.split(",")]
    folder = Path(args.studies)
    with tempfile.TemporaryDirectory() as tmp:
        studies = from_databases(folder, Path(tmp))
    have = {(s.name, len(s.trials)) for s in studies}
    for path in sorted((folder / "results").glob("*/summary.json")):
        s = from_summary(path)
        if (s.name, len(s.trials)) not in have:
            studies.append(s)

    print("# studies replayed (trials: finished ones; warm: bisection steps and warm starts;")
    print("# replayed: today's final stage on all trials gives the study's own chosen point)")
    for s in studies:
        c = s.trial(s.chosen)
        where = f"chosen {s.chosen} ({_pct(c.mlp_removed)}%)" if c else "none chosen"
        secs = f"{s.trial_seconds:.1f} s/trial" if s.trial_seconds else "-"
        print(
            f"{s.name:18s} {s.source:44s} {len(s.trials):3d} trials, "
            f"{sum(t.warm for t in s.trials):2d} warm, {where}, {secs}, replayed: "
            f"{'yes' if chosen_after(s, None) == s.chosen else 'no'}"
            + (f", warm labels = guess: {s.label_check}" if s.label_check else "")
        )
    print()
    print("# stop: the trial the search stops after (- : never); saved: trials not run, of all")
    print("# and of the searched ones, and their trial seconds; best@stop: largest MLP % removed")
    print("# feasible at search time up to the stop (chosen: the study's chosen point's);")
    print("# chosen: the final stage replayed up to the stop (? : unknown)")
    print(
        f"{'study':18s} {'source':44s} {'N':>3s} {'noise':>5s} {'stop':>4s} {'ran':>7s} "
        f"{'saved':>5s} {'searched':>8s} {'seconds':>7s} {'best@stop':>9s} {'chosen':>6s} "
        f"{'chosen@stop':>11s} {'same':>4s}"
    )
    totals: dict[tuple[int, float], list[tuple[Study, Replay]]] = {}
    for s in studies:
        searched = sum(not t.warm for t in s.trials)
        c = s.trial(s.chosen)
        for n in patiences:
            for noise in noises:
                r = replay(s, EarlyStop(n, noise / 100))
                totals.setdefault((n, noise), []).append((s, r))
                secs = "-" if r.seconds_saved is None else f"{r.seconds_saved:.0f}"
                print(
                    f"{s.name:18s} {s.source:44s} {n:3d} {noise:5.1f} "
                    f"{'-' if r.stop is None else r.stop:>4} {r.ran:3d}/{len(s.trials):<3d} "
                    f"{100 * r.saved / len(s.trials):4.0f}% "
                    f"{100 * r.searched_saved / max(searched, 1):7.0f}% {secs:>7s} "
                    f"{_pct(r.best):>9s} {_pct(c.mlp_removed if c else None):>6s} "
                    f"{_chosen(r.chosen):>11s} {r.same:>4s}"
                )
        print()
    total = sum(len(s.trials) for s in studies)
    print("# over all studies: trials saved; chosen point the same / different / unknown;")
    print("# studies whose best@stop is under their chosen point's MLP % by more than the noise")
    print(f"{'N':>3s} {'noise':>5s} {'saved':>10s} same diff  ? lost")
    for (n, noise), rs in totals.items():
        saved = sum(r.saved for _, r in rs)
        lost = 0
        for s, r in rs:
            c = s.trial(s.chosen)
            if c and c.mlp_removed is not None and (r.best or 0) < c.mlp_removed - noise / 100:
                lost += 1
        print(
            f"{n:3d} {noise:5.1f} {saved:4d} ({100 * saved / total:2.0f}%) "
            f"{sum(r.same == 'yes' for _, r in rs):4d} {sum(r.same == 'NO' for _, r in rs):4d} "
            f"{sum(r.same == '?' for _, r in rs):2d} {lost:4d}"
        )
    print()
    print("# search-time noise: |held-out - search-time ppl ratio| at trials re-measured on")
    print("# report tokens, and as points of MLP removed (the slope between uniform plans)")
    for line in noise_lines(studies):
        print(line)
    print()
    print("# make demo's wall time (s) where nothing after the warm starts improves: set-up")
    print(
        f"# {args.setup_s:.0f} s ({args.cached_setup_s:.0f} s with the calibration cached), "
        f"{args.warm} warm trials, {args.trial_s} s a trial, held-out stage {args.final_s:.0f} s"
    )
    print(f"{'trials':>6s} {'N':>3s} {'ran':>4s} {'wall':>5s} {'was':>5s} {'cut':>4s}   cached")
    for trials in (16, 100):
        for n in patiences:
            ran = min(trials, args.warm + n)
            row = [f"{trials:6d} {n:3d} {ran:4d}"]
            for setup in (args.setup_s, args.cached_setup_s):
                was = setup + trials * args.trial_s + args.final_s
                now = setup + ran * args.trial_s + args.final_s
                row.append(f"{now:5.0f} {was:5.0f} {100 * (1 - now / was):3.0f}%")
            print(row[0] + " " + row[1] + "   " + row[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
