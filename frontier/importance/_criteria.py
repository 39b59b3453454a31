"""Importance criteria: one score per MLP neuron per layer, higher = keep.

Each criterion is a plain function of the layer handles and (when it needs them) the
calibration activation statistics, registered in :data:`CRITERIA`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from frontier.arch import MLPHandle
from frontier.arch.weights import down_matrix, down_vectors, up_vectors
from frontier.errors import FrontierError
from frontier.importance._greedy import energy_share_scores, greedy_removal
from frontier.importance._stats import ActivationStats

ScoreFn = Callable[[Sequence[MLPHandle], ActivationStats | None], list[torch.Tensor]]


@dataclass(frozen=True)
class Criterion:
    """A registered criterion. ``fn`` scores each handle's neurons; one that ``needs_gram``
    must score every layer on its own (it may be called a layer at a time). A
    ``comparable`` criterion's scores are on one scale in every layer (a neuron's score
    is a cost that a score in another layer can be weighed against), so one threshold
    over all layers means something; the others' scores only order a layer's neurons."""

    name: str
    fn: ScoreFn
    needs_calibration: bool
    description: str
    needs_gram: bool = False
    comparable: bool = False


CRITERIA: dict[str, Criterion] = {}


def register_criterion(
    name: str,
    *,
    needs_calibration: bool,
    description: str,
    needs_gram: bool = False,
    comparable: bool = False,
) -> Callable[[ScoreFn], ScoreFn]:
    def wrap(fn: ScoreFn) -> ScoreFn:
        CRITERIA[name] = Criterion(name, fn, needs_calibration, description, needs_gram, comparable)
        return fn

    return wrap


def get_criterion(name: str) -> Criterion:
    try:
        return CRITERIA[name]
    except KeyError:
        raise FrontierError(
            f"unknown importance criterion {name!r}; known: {', '.join(sorted(CRITERIA))}"
        ) from None


def _device(h: MLPHandle) -> torch.device:
    return next(h.down_module.parameters()).device


def _down_norm(h: MLPHandle) -> torch.Tensor:
    # Scores live on the CPU in float64, like the activation statistics, whatever the device.
    return down_vectors(h.down_module, h.adapter.layout).float().norm(dim=1).double().cpu()


@register_criterion(
    "magnitude",
    needs_calibration=False,
    description="weights only: ||down column|| times the norms of the neuron's up rows",
)
def magnitude(handles: Sequence[MLPHandle], _stats: ActivationStats | None) -> list[torch.Tensor]:
    out = []
    for h in handles:
        score = _down_norm(h)
        for up in h.up_modules:
            for rows in up_vectors(up, h.adapter.layout, fused=h.adapter.fused_gate_up):
                score = score * rows.float().norm(dim=1).double().cpu()
        out.append(score)
    return out


@register_criterion(
    "activation",
    needs_calibration=True,
    description="Wanda-style: mean |activation| at the down input times ||down column||",
)
def activation(handles: Sequence[MLPHandle], stats: ActivationStats | None) -> list[torch.Tensor]:
    assert stats is not None
    return [stats.abs_mean[h.index] * _down_norm(h) for h in handles]


@register_criterion(
    "fluctuation",
    needs_calibration=True,
    description="FLAP-style: activation variance times ||down column||^2",
)
def fluctuation(handles: Sequence[MLPHandle], stats: ActivationStats | None) -> list[torch.Tensor]:
    assert stats is not None
    return [stats.var[h.index] * _down_norm(h).square() for h in handles]


@register_criterion(
    "energy",
    needs_calibration=True,
    description="E[a^2] times ||down column||^2: the mean squared output each neuron writes",
)
def energy(handles: Sequence[MLPHandle], stats: ActivationStats | None) -> list[torch.Tensor]:
    assert stats is not None
    return [
        (stats.var[h.index] + stats.mean[h.index].square()) * _down_norm(h).square()
        for h in handles
    ]


OBS_DAMPING = 0.01  # ridge of the OBS inverse: this fraction of the mean diagonal of G


def _gram_and_ridge(h: MLPHandle, stats: ActivationStats | None) -> tuple[torch.Tensor, float]:
    """The layer's Gram of ``[a; 1]`` (float64, on the model's device) and the OBS ridge,
    :data:`OBS_DAMPING` times the mean diagonal of its activation part."""
    assert stats is not None and stats.gram is not None
    g = stats.gram.full(h.index).to(_device(h))
    return g, OBS_DAMPING * float(g[:-1, :-1].diagonal().mean()) + 1e-12


@register_criterion(
    "obs",
    needs_calibration=True,
    needs_gram=True,
    description="OBS-style: ||down column||^2 / [(G + lambda I)^-1]_jj, the output error "
    "of dropping neuron j alone when the others are refitted (G: Gram of the down input; "
    "lambda = 0.01 x mean diag G)",
)
def obs(handles: Sequence[MLPHandle], stats: ActivationStats | None) -> list[torch.Tensor]:
    out = []
    for h in handles:
        # the inverse on the model's device (float64; an 8B layer's is 14,336 wide)
        full, damp = _gram_and_ridge(h, stats)
        g = full[:-1, :-1]
        eye = torch.eye(g.shape[0], dtype=g.dtype, device=g.device)
        inv = torch.cholesky_inverse(torch.linalg.cholesky(g + damp * eye))
        out.append(_down_norm(h).square() / inv.diagonal().cpu())
    return out


@register_criterion(
    "obs-greedy",
    needs_calibration=True,
    needs_gram=True,
    comparable=True,
    description="ZipLM-style greedy OBS: neurons dropped a few at a time, the cheapest "
    "first by the OBS cost on the weights refitted so far (with the bias where the layer "
    "has one); the score is the share of the layer's output energy lost by the time the "
    "neuron goes, in the removal order and comparable across layers (lambda as for obs)",
)
def obs_greedy(handles: Sequence[MLPHandle], stats: ActivationStats | None) -> list[torch.Tensor]:
    return _greedy(handles, stats, proximal=False)


@register_criterion(
    "obs-greedy-proximal",
    needs_calibration=True,
    needs_gram=True,
    description="obs-greedy with the ridge pulling the kept columns toward their unpruned "
    "values instead of toward zero (for the proximal refit)",
)
def obs_greedy_proximal(
    handles: Sequence[MLPHandle], stats: ActivationStats | None
) -> list[torch.Tensor]:
    return _greedy(handles, stats, proximal=True)


def _greedy(
    handles: Sequence[MLPHandle], stats: ActivationStats | None, *, proximal: bool
) -> list[torch.Tensor]:
    out = []
    for h in handles:
        g, damp = _gram_and_ridge(h, stats)
        w, bias = down_matrix(h.down_module, h.adapter.layout)
        w = w.to(torch.float64)
        if bias is None:
            removal = greedy_removal(w, g[:-1, :-1], damp, proximal=proximal)
        else:
            w = torch.cat([w, bias.to(torch.float64).view(-1, 1)], dim=1)
            removal = greedy_removal(w, g, damp, fixed=g.shape[0] - 1, proximal=proximal)
        out.append(energy_share_scores(removal))
    return out


@register_criterion(
    "random",
    needs_calibration=False,
    description="uniform random scores (seed 0): the baseline every criterion must beat",
)
def random_scores(
    handles: Sequence[MLPHandle], _stats: ActivationStats | None
) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.rand(h.width, generator=gen, dtype=torch.float64) for h in handles]
