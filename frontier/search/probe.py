"""The layer probe: the search signal with one layer's whole MLP removed, every layer once.

One forward of the search text per layer, through the study's own operator (a width-0
layer: the refit leaves the calibration-mean output in its place), on an otherwise
unpruned model. It says what each layer's MLP is worth end to end, which its cost curve
alone cannot: on SmolLM2-135M removing a whole MLP costs a perplexity ratio of 1.08-1.30
in 25 of the 30 layers and 4.9 to 11,621 in layers 11, 29 and 0. It serves twice:

* the *critical* layers, those whose MLP alone, removed, breaks a quality SLO, are what
  the ``protect`` family keeps whole;
* the whole-removal costs put the layers' cost curves on the signal's own scale
  (:meth:`frontier.search.costs.LayerCosts.calibrated`): the log of the perplexity
  ratio, or the KL divergence, which add across layers to first order.

The study keeps it (``frontier:layer_probe``), so a resumed study does not probe again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from frontier.pruning.plan import Plan

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LayerProbe:
    """Per layer, the search signal with its MLP removed (``metric``: ppl ratio or KL) and
    whether that alone breaks a quality SLO."""

    metric: str
    values: tuple[float, ...]
    breaks: tuple[bool, ...]
    seconds: float = 0.0

    @property
    def critical(self) -> tuple[int, ...]:
        """The layers whose MLP alone, removed, breaks a quality SLO."""
        return tuple(i for i, b in enumerate(self.breaks) if b)

    def removal_costs(self) -> tuple[float, ...]:
        """Whole removal on an additive scale: log of the ppl ratio, or the KL itself
        (a broken forward, NaN or infinite, as the largest finite cost seen, doubled)."""
        raw = [math.log(max(v, 1.0)) if self.metric == "ppl" else v for v in self.values]
        finite = [r for r in raw if math.isfinite(r)]
        worst = 2 * max(finite, default=1.0)
        return tuple(r if math.isfinite(r) else worst for r in raw)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "values": [v if math.isfinite(v) else None for v in self.values],
            "breaks": list(self.breaks),
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerProbe:
        values = tuple(math.inf if v is None else float(v) for v in data["values"])
        return cls(
            str(data["metric"]),
            values,
            tuple(map(bool, data["breaks"])),
            float(data.get("seconds", 0.0)),
        )


def probe_layers(ctx: Any, *, progress: Progress | None = None) -> LayerProbe:
    """Measure the probe with a study's context (:class:`frontier.search.context.
    SearchContext`): its operator, search objective and quality SLOs."""
    from frontier.search.trial import measured_metrics
    from frontier.search.uniform import quality_slos

    say = progress or (lambda _m: None)
    quality = quality_slos(ctx.slos)
    full = ctx.pruner.full
    values: list[float] = []
    breaks: list[bool] = []
    start = time.perf_counter()
    for i in range(len(full)):
        say(f"layer probe: layer {i + 1}/{len(full)} without its MLP")
        widths = tuple(0 if j == i else f for j, f in enumerate(full))
        with ctx.pruner.pruned(Plan(widths, tuple(full))):
            size = ctx.size.evaluate(ctx.lm)
            cheap = ctx.cheap.evaluate(ctx.lm)
        value = float(cheap.value)
        metrics = measured_metrics(size, cheap, None)
        values.append(value if not math.isnan(value) else math.inf)
        breaks.append(math.isnan(value) or any((s.violation(metrics) or 0.0) > 0 for s in quality))
    return LayerProbe(
        ctx.spec.search_metric, tuple(values), tuple(breaks), time.perf_counter() - start
    )
