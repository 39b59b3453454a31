"""The record of what a trial applied, and the check an export makes against it."""

from __future__ import annotations

import pytest
import torch

from frontier.errors import FrontierError
from frontier.pruning.plan import Plan
from frontier.pruning.selection import Selection, select
from frontier.search.applied import alpha_digest, applied_record, check_applied

FULL = (16, 16, 16)
ALPHAS = [0.01, 0.1, 0.001]


def _selection(flip: int | None = None) -> Selection:
    plan = Plan((8, 6, 10), FULL)
    scores = [torch.arange(16, dtype=torch.float32).flip(0) for _ in FULL]
    if flip is not None:  # a near-tie that went the other way: the last kept drops out
        w = plan.widths[flip]
        scores[flip][[w - 1, w]] = scores[flip][[w, w - 1]]
    return select(scores, plan)


def test_the_record_is_short_digests() -> None:
    rec = applied_record(_selection(), ALPHAS)
    assert len(rec["kept"]) == 3 and all(len(d) == 8 for d in rec["kept"])
    assert rec["alpha"] == alpha_digest(ALPHAS) and len(rec["alpha"]) == 16
    assert applied_record(_selection(), None)["alpha"] is None
    # the same selection gives the same digests, whichever way its indices were built
    again = Selection.from_lists(_selection().plan, _selection().to_lists())
    assert applied_record(again, ALPHAS) == rec


def test_the_same_rebuild_passes_and_an_old_record_is_not_checked() -> None:
    rec = dict(applied_record(_selection(), ALPHAS))
    check_applied(rec, _selection(), ALPHAS, number=3)
    check_applied(None, _selection(1), [1.0, 1.0, 1.0], number=3)  # before the record


def test_a_flipped_neuron_is_refused_naming_its_layer() -> None:
    rec = dict(applied_record(_selection(), ALPHAS))
    with pytest.raises(FrontierError) as err:
        check_applied(rec, _selection(flip=1), ALPHAS, number=3)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("trial 3 ")
    assert "kept neurons of layer 1 differ" in msg and "ridge" not in msg


def test_moved_alphas_are_refused_naming_layers_when_the_study_has_them() -> None:
    rec = dict(applied_record(_selection(), ALPHAS))
    here = [0.01, 1.0, 0.001]
    with pytest.raises(FrontierError, match=r"layer 1 alpha 1 \(0.1 measured\)") as err:
        check_applied(rec, _selection(), here, number=3, study_alphas=ALPHAS)
    assert "kept neurons" not in str(err.value)
    # without the study's alphas (or other ones than recorded) it still refuses
    for study in (None, [0.5, 0.5, 0.5]):
        with pytest.raises(FrontierError, match="ridge strengths differ") as err:
            check_applied(rec, _selection(), here, number=3, study_alphas=study)
        assert "layer 1" not in str(err.value)
