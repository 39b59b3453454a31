"""The lean path (Grams gathered a few layers per pass and read from disk a layer at a
time, refit factors on disk) against the path that holds everything in memory: the same
kept neurons and the same weights on tiny models of every family."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from frontier import memory
from frontier._tensorfile import LayerFolder
from frontier.data.text import TokenSet
from frontier.importance import compute_scores
from frontier.pruning.operator import PruningOperator
from frontier.pruning.plan import Plan
from frontier.testing import TINY_CONFIGS, tiny_config, tiny_loaded


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path))


def _tokens() -> TokenSet:
    ids = torch.randint(0, 300, (16, 16), generator=torch.Generator().manual_seed(3))
    return TokenSet(ids, "random ids", "calibration", 16, "rand-16-16-3")


def _lean_layout(model_type: str) -> memory.Layout:
    """One layer's Gram sums per pass and no factors in memory: the leanest layout."""
    full = memory.plan_layout(tiny_config(model_type), "fp32")
    return dataclasses.replace(full, gram_layers=1, factor_layers=0)


def _refitted(op: PruningOperator, plan: Plan) -> tuple[list[list[int]], list[torch.Tensor]]:
    selection = op.select(plan)
    weights = op.weights(selection)
    assert weights is not None
    return selection.to_lists(), [w.weight for w in weights if w is not None]


@pytest.mark.parametrize("family", sorted(TINY_CONFIGS))
def test_the_lean_path_keeps_and_refits_what_the_in_memory_path_does(
    family: str, tmp_path: Path
) -> None:
    lm = tiny_loaded(family)
    in_memory = compute_scores(lm, "obs-greedy", _tokens(), grams=True, use_cache=False)
    assert in_memory.grams is not None and not in_memory.grams.lean
    layout = _lean_layout(family)
    lean = compute_scores(lm, "obs-greedy", _tokens(), grams=True, layout=layout)
    assert lean.grams is not None and lean.grams.lean  # read from disk a layer at a time
    for i in range(len(lean.per_layer)):
        assert torch.equal(lean.grams.fit[i], in_memory.grams.fit[i])
        assert torch.equal(lean.grams.held[i], in_memory.grams.held[i])
        assert torch.equal(lean.per_layer[i], in_memory.per_layer[i])
        want = in_memory.grams.full(i).diagonal()  # stored beside the matrices
        assert torch.equal(lean.grams.diagonal(i), want)
        assert torch.equal(in_memory.grams.diagonal(i), want)
    alphas = [1e-2] * len(lean.per_layer)
    held = PruningOperator(lm.model, in_memory, refit=True, alphas=alphas)
    spill = LayerFolder(tmp_path / "factors")
    disk = PruningOperator(lm.model, lean, refit=True, alphas=alphas, layout=layout, spill=spill)
    assert disk.refitter is not None and disk.refitter.placement()["resident_layers"] == 0
    assert disk.refitter.placement()["disk_layers"] == len(lean.per_layer)
    for keep in (0.3, 0.5, 0.8):
        plan = Plan.uniform(keep, held.full, multiple=4, floor=4)
        kept_a, weights_a = _refitted(held, plan)
        kept_b, weights_b = _refitted(disk, plan)
        assert kept_a == kept_b
        for a, b in zip(weights_a, weights_b, strict=True):
            assert (a - b).norm() <= 1e-6 * a.norm()


@pytest.mark.parametrize("family", sorted(TINY_CONFIGS))
def test_a_group_of_layers_per_pass_gathers_what_one_pass_does(family: str) -> None:
    """One layer a pass over three layers: three passes, the second and third starting
    from the residual stream the pass before saved (the layers before them are not run
    again), and the same sums, bit for bit, as one pass holding all three."""
    from frontier.importance._gram import gram_bytes
    from frontier.importance._stats import calibration_pass

    lm = tiny_loaded(family)
    ids = _tokens().ids
    one, g1 = calibration_pass(lm.model, lm.adapter, ids)
    width = lm.adapter.handles(lm.model)[0].width
    ran = [0, 0, 0]  # batches each layer's MLP computed
    decoder = lm.adapter.layer_list(lm.model)
    for h in lm.adapter.handles(lm.model):
        h.down_module.register_forward_pre_hook(
            lambda *_, j=h.index: ran.__setitem__(j, ran[j] + 1)
        )
    lines: list[str] = []
    three, g3 = calibration_pass(
        lm.model, lm.adapter, ids, gram_budget=gram_bytes(width), progress=lines.append
    )
    assert g1 is not None and g3 is not None
    assert list(dict.fromkeys(x.split(":")[0] for x in lines)) == [
        f"calibration pass (layers {i}-{i})" for i in range(3)
    ]
    # 16 windows, batches of 4: 14 fitting windows and 2 held out, 5 batches a pass; the
    # first pass runs every layer (the activation statistics), the others their own only
    assert ran == [5, 10, 10]
    for i in range(3):
        assert torch.equal(g1.fit[i], g3.fit[i]) and torch.equal(g1.held[i], g3.held[i])
        assert torch.equal(one.var[i], three.var[i])
    assert all(type(m).forward is m.forward.__func__ for m in decoder)  # put back


def test_the_lean_set_up_checks_the_disk_for_its_factors_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Refused in one line where its factors do not fit the disk; where they do, what it
    writes is the figure checked."""
    import shutil

    from frontier import budget
    from frontier.errors import FrontierError
    from frontier.importance import gram_cache_path

    lm = tiny_loaded("llama")
    layout = _lean_layout("llama")
    scores = compute_scores(lm, "obs-greedy", _tokens(), grams=True, layout=layout)
    monkeypatch.setattr(budget, "layout_for", lambda *_a, **_k: layout)
    free = budget.DISK_MARGIN + layout.needs.refit_factors // 2
    with monkeypatch.context() as m, pytest.raises(FrontierError, match="refit factors need"):
        m.setattr(budget.shutil, "disk_usage", lambda _p: shutil._ntuple_diskusage(0, 0, free))  # type: ignore[attr-defined]
        PruningOperator.for_model(lm, scores, refit=True)
    PruningOperator.for_model(lm, scores, refit=True)
    folder = gram_cache_path(lm.fingerprint, _tokens().fingerprint).with_suffix(
        ".obs-greedy.factors"
    )
    written = sum(f.stat().st_size for f in folder.glob("layer-*.bin"))
    assert 0.9 < written / layout.needs.refit_factors < 1.2
    # the whole run's figure (benchmarks/memory.py --estimates prints it): Grams and factors
    grams = gram_cache_path(lm.fingerprint, _tokens().fingerprint)
    written += sum(f.stat().st_size for f in grams.glob("layer-*.bin"))
    assert 0.9 < written / layout.disk_bytes() < 1.2
