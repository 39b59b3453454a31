"""The stored schema: key names are the on-disk format, and the writer fills the records."""

from __future__ import annotations

import math
import typing

from frontier.search.trial import measured_metrics, record
from frontier.study import schema
from objectives import Measurement


def test_keys_are_the_stored_format() -> None:
    # Studies already on disk use these strings: renaming one silently loses their data.
    assert schema.ATTR_PLAN == "frontier:plan"
    assert schema.ATTR_SEARCH == "frontier:search"
    assert schema.ATTR_WARM == "frontier:warm_start"
    assert schema.ATTR_SPEC == "frontier:spec"
    assert schema.ATTR_BASELINE_REPORT == "frontier:baseline:report"
    assert schema.final_key(7) == "frontier:final:7"
    assert schema.IDENTITY_ATTRS == ("frontier:plan", "frontier:warm_start", "frontier:family")


def _size() -> Measurement:
    return Measurement("params", 0.8, "minimize", raw=800.0, details={"mlp_kept_fraction": 0.7})


def test_search_record_of_a_ppl_trial_has_the_typed_keys() -> None:
    ppl = Measurement("ppl", 1.25, "minimize", raw=12.5, details={"nll": math.log(12.5)})
    tasks = Measurement(
        "tasks",
        0.9,
        "maximize",
        raw=0.45,
        details={"tasks": {"arc_easy": {"acc": 0.45, "baseline": 0.5, "retained": 0.9}}},
    )
    rec = record(_size(), ppl, tasks)
    assert set(rec) <= set(typing.get_type_hints(schema.SearchRecord))
    assert rec["ppl_ratio"] == 1.25 and rec["mlp_kept"] == 0.7 and rec["params_kept"] == 0.8
    assert rec["tasks"]["arc_easy"]["acc"] == 0.45 and rec["mean_retained"] == 0.9
    metrics = measured_metrics(_size(), ppl, tasks)
    assert metrics.ppl_ratio == 1.25 and metrics.kl is None
    assert metrics.tasks["arc_easy"].retention == 0.9


def test_search_record_of_a_kl_trial_and_non_finite_figures() -> None:
    kl = Measurement("kl", math.inf, "minimize", raw=None)
    rec = record(_size(), kl, None)
    assert set(rec) <= set(typing.get_type_hints(schema.SearchRecord))
    assert rec["kl"] == "inf" and "ppl_ratio" not in rec and "tasks" not in rec
    nan = record(_size(), Measurement("ppl", math.nan, "minimize", raw=math.nan), None)
    assert nan["ppl_ratio"] is None and nan["ppl"] is None
    assert measured_metrics(_size(), kl, None).kl == math.inf
