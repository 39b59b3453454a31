"""The proximal form of the refit (damped toward the unpruned columns): its fast prefixes
equal the closed form, it gives the unpruned weights back when every neuron is kept, and
its held-out errors for other ridge strengths are those of the fits they describe."""

from __future__ import annotations

import pytest
import torch

from frontier.pruning.refit import LayerRefit

H, I, N = 6, 12, 40  # noqa: E741 - the refit's own names: outputs, neurons, tokens


def _layer(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(H, I, generator=gen, dtype=torch.float64)
    a = torch.randn(N, I, generator=gen, dtype=torch.float64) @ torch.randn(
        I, I, generator=gen, dtype=torch.float64
    )
    x = torch.cat([a, torch.ones(N, 1, dtype=torch.float64)], dim=1)
    held = torch.randn(N, I, generator=gen, dtype=torch.float64)
    xh = torch.cat([held, torch.ones(N, 1, dtype=torch.float64)], dim=1)
    return w, (x.t() @ x) / N, (xh.t() @ xh) / N, torch.randn(H, generator=gen).double()


def _closed_form(w: torch.Tensor, g: torch.Tensor, keep: torch.Tensor, lam: float) -> torch.Tensor:
    """argmin_V E||W a - V a_K||^2 + lam ||V - W_K||^2 (no bias), in float64."""
    gi = g[:I, :I]
    m = gi[keep][:, keep] + lam * torch.eye(len(keep), dtype=torch.float64)
    rhs = (w @ gi)[:, keep] + lam * w[:, keep]
    return torch.linalg.solve(m, rhs.t()).t()


@pytest.mark.parametrize("k", [3, 6, 9])
def test_prefixes_are_the_closed_form(k: int) -> None:
    w, g, _, _ = _layer()
    order = torch.randperm(I, generator=torch.Generator().manual_seed(1))
    layer = LayerRefit(w.float(), None, g, 0.1, order, proximal=True)
    kept, cols, _ = layer.prefix(k)
    want = _closed_form(w, g, kept, layer.lam)
    assert torch.allclose(cols.double(), want, atol=1e-4, rtol=1e-4)
    ridge = LayerRefit(w.float(), None, g, 0.1, order).prefix(k)[1]
    assert not torch.allclose(ridge.double(), want, atol=1e-3)  # the two forms differ


def test_every_neuron_kept_gives_the_unpruned_weights_back() -> None:
    w, g, _, _ = _layer()
    order = torch.arange(I)
    prox = LayerRefit(w.float(), None, g, 1.0, order, proximal=True).prefix(I)[1]
    ridge = LayerRefit(w.float(), None, g, 1.0, order).prefix(I)[1]
    assert torch.allclose(prox.double(), w, atol=1e-4)
    assert (ridge.double() - w).abs().max() > 1e-2  # today's form shrinks every column


def test_heldout_errors_are_the_fits_errors_at_every_strength() -> None:
    w, g, held, bias = _layer()
    keep = torch.tensor([0, 2, 3, 5, 8, 11])
    layer = LayerRefit(w, bias, g, 1e-2, proximal=True)
    errs = layer.errors(keep, held, [1e-3, 1e-1, 1.0])
    wb = torch.cat([w, bias.view(-1, 1)], dim=1)
    idx = torch.cat([keep, torch.tensor([I])])
    for alpha, err in errs.items():
        lam = alpha * float(g[:I, :I].diagonal().mean())
        ridge = torch.zeros(len(idx), dtype=torch.float64)
        ridge[:-1] = lam
        m = g[idx][:, idx] + torch.diag(ridge)
        rhs = (wb @ g)[:, idx] + torch.cat([lam * w[:, keep], torch.zeros(H, 1)], dim=1)
        v = torch.linalg.solve(m, rhs.t()).t()
        full = torch.trace(wb @ held @ wb.t())
        d = torch.zeros_like(wb)
        d[:, idx] = v
        resid = wb - d
        want = float(torch.trace(resid @ held @ resid.t()) / full)
        assert err == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_the_operator_applies_and_names_the_proximal_form(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from frontier.data.text import TokenSet
    from frontier.importance import compute_scores
    from frontier.pruning.operator import PruningOperator
    from frontier.pruning.plan import Plan
    from frontier.testing import tiny_loaded

    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path))
    lm = tiny_loaded("llama")
    ids = torch.randint(0, 300, (16, 16), generator=torch.Generator().manual_seed(3))
    scores = compute_scores(lm, "energy", TokenSet(ids, "r", "calibration", 16, "r"), grams=True)
    prox = PruningOperator(lm.model, scores, refit=True, proximal=True, alphas=[1.0] * 3)
    ridge = PruningOperator(lm.model, scores, refit=True, alphas=[1.0] * 3)
    assert prox.describe()["refit_form"].startswith("proximal")
    assert ridge.describe()["refit_form"].startswith("ridge")
    selection = prox.select(Plan.uniform(0.75, prox.full, multiple=4))
    a, b = prox.weights(selection), ridge.weights(selection)
    assert a is not None and b is not None
    for wa, wb in zip(a, b, strict=True):
        assert wa is not None and wb is not None
        # at a strong ridge, today's form shrinks the columns, the proximal one does not
        assert wa.weight.norm() > 1.2 * wb.weight.norm()
