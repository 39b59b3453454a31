"""One-shot pruning: score a model, apply one plan, measure perplexity before and after."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from frontier.importance import calibrate
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import count_mlp_parameters, count_parameters
from frontier.settings import CALIBRATION_TOKENS

if TYPE_CHECKING:
    from frontier.models import LoadedModel


@dataclass(frozen=True)
class CalibrationSpec:
    """Which text the importance scores are computed on."""

    text: str = "wiki-sample"
    n_tokens: int = CALIBRATION_TOKENS
    seq_len: int = 512
    batch_size: int = 4


@dataclass(frozen=True)
class PruneResult:
    plan: Plan
    criterion: str
    operator: str
    ppl_before: float
    ppl_after: float
    params_before: int
    params_after: int
    mlp_before: int
    mlp_after: int
    seconds: dict[str, float]
    protocol: dict[str, Any]

    @property
    def ppl_ratio(self) -> float:
        return self.ppl_after / self.ppl_before


def prune(
    model: LoadedModel | str,
    keep: float,
    *,
    criterion: str = "obs-greedy",
    calibration: CalibrationSpec | None = None,
    text: str = "wiki-sample",
    eval_tokens: int = 4096,
    compensate: bool = False,
    refit: bool = True,
    trust_remote_code: bool = False,
    device: str = "cpu",
    dtype: str = "fp32",
    progress: Callable[[str], None] | None = None,
) -> PruneResult:
    """Keep ``keep`` of every layer's MLP neurons and report perplexity on report text.

    ``model`` is a loaded model or anything :func:`~frontier.models.load_model` takes
    (loaded in ``dtype`` on ``device``, ``auto`` for either).
    ``calibration.text`` is what the scores are computed on, ``text`` what perplexity is
    measured on (the report part of it, disjoint from the calibration part).
    """
    from frontier.models import load_model
    from frontier.pruning.operator import PruningOperator
    from objectives.perplexity import Perplexity

    say = progress or (lambda _msg: None)
    lm = (
        load_model(
            model,
            dtype=dtype,
            device=device,
            trust_remote_code=trust_remote_code,
            progress=progress,
        )
        if isinstance(model, str)
        else model
    )
    cal = calibration or CalibrationSpec()
    say(f"scoring {lm.name} with '{criterion}' and pruning to keep {keep:.0%}")
    times: dict[str, float] = {}
    t = time.perf_counter()
    scores = calibrate(
        lm,
        criterion,
        text=cal.text,
        n_tokens=cal.n_tokens,
        seq_len=cal.seq_len,
        batch_size=cal.batch_size,
        grams=refit,
    )
    times["scores"] = time.perf_counter() - t
    ppl = Perplexity(text=text, role="report", n_tokens=eval_tokens)
    t = time.perf_counter()
    ppl.prepare(lm)
    times["baseline"] = time.perf_counter() - t
    t = time.perf_counter()
    pruner = PruningOperator.for_model(lm, scores, refit=refit, compensate=compensate)
    times["operator"] = time.perf_counter() - t
    plan = Plan.uniform(keep, pruner.full)
    params, mlp = count_parameters(lm.model), count_mlp_parameters(lm.model)
    with pruner.pruned(plan):
        t = time.perf_counter()
        m = ppl.evaluate(lm)
        times["pruned_eval"] = time.perf_counter() - t
        params_after, mlp_after = count_parameters(lm.model), count_mlp_parameters(lm.model)
    assert m.raw is not None and m.baseline is not None
    return PruneResult(
        plan=plan,
        criterion=criterion,
        operator=pruner.name,
        ppl_before=m.baseline,
        ppl_after=m.raw,
        params_before=params,
        params_after=params_after,
        mlp_before=mlp,
        mlp_after=mlp_after,
        seconds=times,
        protocol={
            "calibration": scores.calibration,
            "operator": pruner.describe(),
            **({"memory": pruner.layout.describe()} if pruner.layout is not None else {}),
            "evaluation": ppl.protocol(),
            "scores_from_cache": scores.from_cache,
        },
    )
