"""The greedy OBS removal order against a brute-force greedy that re-solves every refit."""

from __future__ import annotations

import pytest
import torch

from frontier.importance._greedy import (
    STEPS,
    energy_share_scores,
    greedy_removal,
    greedy_removal_rank,
    removal_block,
)


def _problem(n: int = 12, h: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(200, n, generator=gen, dtype=torch.float64)
    x[:, 3] = 0.7 * x[:, 1] + 0.1 * x[:, 3]  # correlated neurons, as real MLPs have
    x = torch.cat([x, torch.ones(200, 1, dtype=torch.float64)], dim=1)
    w = torch.randn(h, n + 1, generator=gen, dtype=torch.float64)
    return w, x.T @ x / x.shape[0]


def _error(w: torch.Tensor, g: torch.Tensor, keep: list[int], ridge: torch.Tensor) -> float:
    """The refitted output error of keeping ``keep``, solved directly."""
    total = float(torch.trace(w @ g @ w.T))
    if not keep:
        return total
    k = torch.tensor(keep)
    gk = g[k][:, k] + torch.diag(ridge[k])
    b = (w @ g)[:, k]
    return total - float(torch.trace(b @ torch.linalg.solve(gk, b.T)))


def _brute_force(
    w: torch.Tensor, g: torch.Tensor, lam: float, block: int, fixed: int | None = None
) -> torch.Tensor:
    n = g.shape[0]
    ridge = torch.full((n,), lam, dtype=torch.float64)
    if fixed is not None:
        ridge[fixed] = 0.0
    alive = list(range(n))
    order: list[int] = []
    while len(alive) > (fixed is not None):
        base = _error(w, g, alive, ridge)
        cost = {
            j: _error(w, g, [i for i in alive if i != j], ridge) - base for j in alive if j != fixed
        }
        drop = sorted(cost, key=lambda j: cost[j])[:block]
        order += drop
        alive = [i for i in alive if i not in drop]
    order = [j - (fixed is not None and j > fixed) for j in order]
    rank = torch.empty(len(order), dtype=torch.float64)
    rank[torch.tensor(order)] = torch.arange(len(order), dtype=torch.float64)
    return rank


@pytest.mark.parametrize("block", [1, 3, 5])
def test_greedy_order_equals_brute_force_re_solving(block: int) -> None:
    w, g = _problem()
    lam = 0.01 * float(g[:-1, :-1].diagonal().mean())
    got = greedy_removal_rank(w[:, :-1], g[:-1, :-1], lam, block=block)
    assert torch.equal(got, _brute_force(w[:, :-1], g[:-1, :-1], lam, block))
    assert sorted(got.tolist()) == list(range(12))


@pytest.mark.parametrize("fixed", [12, 4])
def test_a_fixed_column_is_never_removed_and_gets_no_rank(fixed: int) -> None:
    w, g = _problem()
    if fixed != 12:  # the constant input somewhere else than last
        perm = list(range(13))
        perm[fixed], perm[12] = 12, fixed
        w, g = w[:, perm], g[perm][:, perm]
    got = greedy_removal_rank(w, g, 0.05, fixed=fixed, block=2)
    assert got.shape == (12,)
    assert torch.equal(got, _brute_force(w, g, 0.05, 2, fixed=fixed))


def test_the_bias_column_is_not_ridged() -> None:
    # activations with large means: the bias carries much of the output, and ridging it
    # (as if it were a neuron) changes which neurons the bias can stand in for
    w, g = _problem(seed=3)
    x_mean = torch.linspace(0.0, 4.0, 12, dtype=torch.float64)
    g[:-1, :-1] += torch.outer(x_mean, x_mean)
    g[:-1, -1] = g[-1, :-1] = x_mean
    got = greedy_removal_rank(w, g, 0.5, fixed=12, block=1)
    assert torch.equal(got, _brute_force(w, g, 0.5, 1, fixed=12))


def test_the_default_block_counts_the_neurons_without_the_bias() -> None:
    # 384 neurons and a constant input: blocks of removal_block(384) = 8, not 9
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1000, 384, generator=gen, dtype=torch.float64)
    x = torch.cat([x, torch.ones(1000, 1, dtype=torch.float64)], dim=1)
    g = x.T @ x / 1000
    w = torch.randn(6, 385, generator=gen, dtype=torch.float64)
    got = greedy_removal_rank(w, g, 0.01, fixed=384)
    assert torch.equal(got, greedy_removal_rank(w, g, 0.01, fixed=384, block=8))
    assert not torch.equal(got, greedy_removal_rank(w, g, 0.01, fixed=384, block=9))


def test_a_duplicate_neuron_goes_first_and_its_twin_is_then_kept_long() -> None:
    # neuron 1 duplicates neuron 0's activation: dropping either alone costs nothing,
    # since the other takes over its column. One-shot OBS ranks both as free; the greedy
    # order drops one and then sees the other carry both.
    w, g = _problem(seed=2)
    w, g = w[:, :-1], g[:-1, :-1]
    g[1, :], g[:, 1] = g[0, :], g[:, 0]
    g[1, 1] = g[0, 0]
    w[:, 0] *= 10.0  # both twins matter a lot together
    rank = greedy_removal_rank(w, g, 1e-6, block=1)
    assert min(rank[0], rank[1]) == 0
    assert max(rank[0], rank[1]) >= 6  # kept into the second half
    one_shot = w.square().sum(0) / torch.linalg.inv(g + 1e-6 * torch.eye(12)).diagonal()
    assert set(one_shot.argsort()[:2].tolist()) == {0, 1}  # one-shot drops both first


def test_the_block_grows_only_past_steps_times_eight() -> None:
    assert STEPS == 48
    assert removal_block(64) == removal_block(8 * STEPS) == 8
    assert removal_block(8 * STEPS + 1) == 9
    assert removal_block(1536) == 32 and removal_block(14336) == 299


def test_the_default_block_is_removal_block() -> None:
    w, g = _problem(n=20)
    got = greedy_removal_rank(w[:, :-1], g[:-1, :-1], 0.01)
    assert torch.equal(got, greedy_removal_rank(w[:, :-1], g[:-1, :-1], 0.01, block=8))
    assert not torch.equal(got, greedy_removal_rank(w[:, :-1], g[:-1, :-1], 0.01, block=1))


@pytest.mark.parametrize(("block", "fixed"), [(1, None), (3, None), (2, 12)])
def test_the_cost_at_each_block_end_is_the_re_solved_error_added(
    block: int, fixed: int | None
) -> None:
    # the cost a neuron carries once its whole block has gone is the refitted error of
    # what is left, solved directly, less the full set's
    w, g = _problem(seed=5)
    if fixed is None:
        w, g = w[:, :-1], g[:-1, :-1]
    lam = 0.02
    got = greedy_removal(w, g, lam, fixed=fixed, block=block)
    n = g.shape[0]
    ridge = torch.full((n,), lam, dtype=torch.float64)
    if fixed is not None:
        ridge[fixed] = 0.0
    base = _error(w, g, list(range(n)), ridge)
    order = torch.argsort(got.rank).tolist()  # neuron indices (``fixed`` taken out)
    column = [j + (fixed is not None and j >= fixed) for j in order]
    for end in range(block, len(order) + 1, block):
        left = [i for i in range(n) if i not in column[:end]]
        want = _error(w, g, left, ridge) - base
        assert float(got.cost[order[end - 1]]) == pytest.approx(want, rel=1e-7, abs=1e-10)
    costs = got.cost[torch.tensor(order)]
    assert bool((costs[1:] >= costs[:-1]).all())  # never falls along the order
    assert got.energy == pytest.approx(float(torch.trace(w @ g @ w.T)))


def test_energy_share_scores_keep_the_order_and_share_one_scale() -> None:
    w, g = _problem(seed=6)
    w, g = w[:, :-1], g[:-1, :-1]
    removal = greedy_removal(w, g, 1e-3, block=4)
    scores = energy_share_scores(removal)
    # a float32 sort (the selector's) gives the greedy's order exactly
    assert torch.equal(
        torch.argsort(scores.float(), descending=True), removal.rank.argsort().flip(0)
    )
    assert len(set(scores.float().tolist())) == scores.numel()
    # all removed, no bias: the whole output energy is lost but the full set's own (ridge)
    # error; scaling the weights scales the error and the energy alike: shares stay
    full = _error(w, g, list(range(12)), torch.full((12,), 1e-3, dtype=torch.float64))
    assert float(scores.max()) == pytest.approx(1.0 - full / removal.energy, rel=1e-5)
    scaled = energy_share_scores(greedy_removal(7.0 * w, g, 1e-3, block=4))
    assert torch.allclose(scaled, scores, rtol=1e-5)


def test_tied_costs_still_give_distinct_scores_in_order() -> None:
    # a layer whose first neurons write nothing: their costs are all 0
    w, g = _problem(seed=7)
    w, g = w[:, :-1].clone(), g[:-1, :-1]
    w[:, :5] = 0.0
    removal = greedy_removal(w, g, 1e-3, block=4)
    scores = energy_share_scores(removal)
    assert torch.equal(
        torch.argsort(scores.float(), descending=True), removal.rank.argsort().flip(0)
    )


def _proximal_brute_force(w: torch.Tensor, g: torch.Tensor, lam: float, block: int) -> torch.Tensor:
    """The greedy order of the proximal objective min_V (V - W) H (V - W)^T with the dropped
    columns of V zero (H = G + lam I), every candidate re-solved directly."""
    n = g.shape[0]
    h = g + lam * torch.eye(n, dtype=torch.float64)
    b = w @ h

    def objective(keep: list[int]) -> float:
        total = float(torch.trace(w @ h @ w.T))
        if not keep:
            return total
        k = torch.tensor(keep)
        return total - float(torch.trace(b[:, k] @ torch.linalg.solve(h[k][:, k], b[:, k].T)))

    alive, order = list(range(n)), []
    while alive:
        base = objective(alive)
        cost = {j: objective([i for i in alive if i != j]) - base for j in alive}
        drop = sorted(cost, key=lambda j: cost[j])[:block]
        order += drop
        alive = [i for i in alive if i not in drop]
    rank = torch.empty(n, dtype=torch.float64)
    rank[torch.tensor(order)] = torch.arange(n, dtype=torch.float64)
    return rank


@pytest.mark.parametrize("block", [1, 3])
def test_the_proximal_greedy_order_equals_brute_force_re_solving(block: int) -> None:
    w, g = _problem()
    w, g = w[:, :-1], g[:-1, :-1]
    lam = 0.05 * float(g.diagonal().mean())
    got = greedy_removal_rank(w, g, lam, block=block, proximal=True)
    assert torch.equal(got, _proximal_brute_force(w, g, lam, block))
    assert not torch.equal(got, greedy_removal_rank(w, g, lam, block=block))
