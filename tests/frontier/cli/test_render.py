"""``frontier show`` prints a trial's figures as labelled rows and tables, never as the
stored records' raw dictionaries, and drops none of them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from frontier.cli import main, render_trial
from frontier.pruning.plan import Plan
from frontier.study.read import StudyTrial
from frontier.testing import HandTrial, store_study

# a line that starts a dict literal, as json.dumps or repr writes one
DICT_LITERAL = re.compile(r"\{\s*['\"]")

TASK = {
    "acc": 0.612,
    "baseline": 0.7,
    "retained": 0.874,
    "metric": "acc_norm",
    "n_docs": 500,
    "ci": [0.82, 0.92],
    "acc_ci": [0.58, 0.64],
    "confidence": 0.95,
    "gained": 12,
    "lost": 73,
}
SEARCH: dict[str, Any] = {
    "params_kept": 0.6123456,
    "mlp_kept": 0.4479166,
    "total_params": 1234567.0,
    "ppl_ratio": 1.2345678,
    "ppl": 12.345678,
    "nll": 2.51327,
    "tasks": {"arc_easy": TASK},
    "mean_retained": 0.931,
    "mean_acc": 0.512,
    "extra": {"speed": 1.2345},
}
FINAL: dict[str, Any] = {
    **SEARCH,
    "ppl_ratio": 1.25,
    "ppl": None,  # NaN, as a record stores it
    "tasks": {"arc_easy": {**TASK, "acc": 0.6, "acc_ci": [0.57, 0.63]}},
    "violations": {"ppl<1.5": -0.25, "arc_easy>=90%": 0.01, "speed>=1.2": None},
    "feasible": False,
    "tokens": 65536,
    "spread": False,
    "check_texts": {"wikitext": {"ppl_ratio": 1.301, "ppl": 14.2}},
    "undecided": ["arc_easy>=90%"],
    "later": {"figure": 1.5},  # a figure of a later version: shown by its key
}


def _trial(final: dict[str, Any] | None) -> StudyTrial:
    return StudyTrial(
        number=3,
        state="complete",
        plan=Plan((16, 40, 64), (64, 64, 64)),
        search=SEARCH,  # type: ignore[arg-type]
        final=final,  # type: ignore[arg-type]
        pareto=True,
        chosen=True,
        warm_start="uniform-0.75",
        note=None,
        timing={"total": 12.5, "forward": 10.25, "surgery": 0.5},
    )


def _shown(r: StudyTrial, capsys: pytest.CaptureFixture[str]) -> str:
    render_trial.trial(r)
    out = capsys.readouterr().out
    assert not [line for line in out.splitlines() if DICT_LITERAL.search(line)], out
    return out


def _row(out: str, *cells: str) -> None:
    """``cells`` on one line, in order, apart by spaces only."""
    pattern = r"\s+".join(re.escape(c) for c in cells)
    assert re.search(rf"(^|\s){pattern}(\s|$)", out, re.MULTILINE), (cells, out)


def test_show_labels_every_figure_with_its_unit_side_by_side(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    out = _shown(_trial(FINAL), capsys)
    _row(out, "figure", "search-time", "held-out")
    _row(out, "MLP parameters kept", "44.8%", "44.8%")
    _row(out, "parameters kept", "61.2%", "61.2%")
    _row(out, "parameters", "1,234,567", "1,234,567")
    _row(out, "ppl ratio", "1.235", "1.250")
    _row(out, "perplexity", "12.346", "-")  # NaN at held-out
    _row(out, "NLL (nats/token)", "2.5133", "2.5133")
    _row(out, "mean task retention", "93.1%", "93.1%")
    _row(out, "mean task accuracy", "0.512", "0.512")
    _row(out, "speed", "1.2345", "1.2345")
    _row(out, "held-out tokens", "65,536")
    _row(out, "meets every SLO", "no")
    _row(out, "re-measured for the fits only", "no")
    _row(out, "ppl ratio (wikitext)", "1.301")
    _row(out, "perplexity (wikitext)", "14.200")
    _row(out, "undecided SLOs", "arc_easy>=90%")
    _row(out, "later figure", "1.5")
    # the tasks: a row per figure, a column per stage
    assert "tasks (intervals at 95% confidence)" in out
    _row(
        out,
        "arc_easy (acc_norm)",
        "accuracy",
        "0.612 (0.580\u20130.640)",
        "0.600 (0.570\u20130.630)",
    )
    _row(out, "baseline", "0.700", "0.700")
    _row(out, "retained", "87.4% (82.0%\u201392.0%)", "87.4% (82.0%\u201392.0%)")
    _row(out, "documents", "500", "500")
    _row(out, "gained / lost", "+12 / -73", "+12 / -73")
    # the held-out verdicts
    _row(out, "ppl<1.5", "met", "-0.25")
    _row(out, "arc_easy>=90%", "could not tell", "+0.01")
    _row(out, "speed>=1.2", "not measured", "-")
    assert "seconds: total 12.5, forward 10.2, surgery 0.5" in out
    _row(out, "layer", "0")  # the plan's widths, as before
    assert "trial 3 (complete, chosen, Pareto, uniform-0.75)" in out


def test_a_trial_never_re_measured_has_one_column_and_no_verdicts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    out = _shown(_trial(None), capsys)
    _row(out, "figure", "search-time")
    assert "held-out" not in out and "SLO" not in out
    _row(out, "ppl ratio", "1.235")
    _row(out, "arc_easy (acc_norm)", "accuracy", "0.612 (0.580\u20130.640)")


def test_a_narrow_terminal_folds_the_tables_and_cuts_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    out = _shown(_trial(FINAL), capsys)
    assert "\u2026" not in out  # no figure is cut short with an ellipsis


def test_frontier_show_on_a_stored_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    url = f"sqlite:///{tmp_path / 'hand.db'}"
    store_study(url, [HandTrial(params_kept=0.5, ppl_ratio=1.3, final_ppl_ratio=1.4)])
    assert main(["show", "hand", "0", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert not [line for line in out.splitlines() if DICT_LITERAL.search(line)], out
    _row(out, "ppl ratio", "1.300", "1.400")
    _row(out, "parameters kept", "50.0%", "50.0%")
    _row(out, "meets every SLO", "yes")
    _row(out, "ppl<1.5", "met", "-0.06667")
    _row(out, "params<=60%", "met", "-0.1667")
