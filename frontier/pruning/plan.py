"""The plan: how many MLP neurons every layer keeps. One frozen value from search to export."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from frontier.errors import FrontierError

PLAN_FORMAT = 1


def round_width(keep: float, full: int, *, multiple: int, floor: int) -> int:
    """The kept width for a keep ratio: nearest multiple of ``multiple``, within [floor, full].

    ``full`` itself is always reachable (keep 1.0 is the unpruned layer) even when it is
    not a multiple. A ratio never rounds to 0 (keep 0.0 gives ``floor``): removing a
    whole MLP is a width given explicitly, not a rounding of a small ratio.
    """
    if not 0.0 <= keep <= 1.0 or math.isnan(keep):
        raise FrontierError(f"keep ratio must be in [0, 1], got {keep}")
    if keep >= 1.0:
        return full
    width = round(keep * full / multiple) * multiple
    return max(min(width, full), min(floor, full))


@dataclass(frozen=True)
class Plan:
    """Kept MLP width per layer.

    ``widths[i]`` neurons of layer ``i``'s ``full[i]`` are kept. Widths made from keep
    ratios (:meth:`from_ratios`, :meth:`uniform`) are multiples of ``multiple`` (or the
    full width) and never below ``floor``. A width of 0, given explicitly, removes the
    layer's MLP: the residual stream passes on (the down projection's bias alone is
    added where it has one). Which neurons are kept is decided by importance scores at
    apply time; see :class:`frontier.pruning.surgery.Pruner`.
    """

    widths: tuple[int, ...]
    full: tuple[int, ...]
    multiple: int = 8
    floor: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "full", tuple(int(f) for f in self.full))
        if len(self.widths) != len(self.full) or not self.widths:
            raise FrontierError(f"plan has {len(self.widths)} widths for {len(self.full)} layers")
        if self.multiple < 1 or self.floor < 1:
            raise FrontierError("plan multiple and floor must be positive")
        for i, (w, f) in enumerate(zip(self.widths, self.full, strict=True)):
            if not 0 <= w <= f:
                raise FrontierError(f"layer {i}: width {w} outside [0, {f}]")

    # construction -------------------------------------------------------------------
    @classmethod
    def from_ratios(
        cls, keep: Sequence[float], full: Sequence[int], *, multiple: int = 8, floor: int = 8
    ) -> Plan:
        if len(keep) != len(full):
            raise FrontierError(f"{len(keep)} keep ratios for {len(full)} layers")
        widths = tuple(
            round_width(float(k), int(f), multiple=multiple, floor=floor)
            for k, f in zip(keep, full, strict=True)
        )
        return cls(widths, tuple(full), multiple, floor)

    @classmethod
    def uniform(
        cls, keep: float, full: Sequence[int], *, multiple: int = 8, floor: int = 8
    ) -> Plan:
        return cls.from_ratios([keep] * len(full), full, multiple=multiple, floor=floor)

    @classmethod
    def dense(cls, full: Sequence[int]) -> Plan:
        return cls(tuple(full), tuple(full))

    # views --------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.widths)

    def keep_ratios(self) -> tuple[float, ...]:
        return tuple(w / f for w, f in zip(self.widths, self.full, strict=True))

    @property
    def kept_fraction(self) -> float:
        """Fraction of all MLP neurons kept (equals the fraction of MLP parameters kept)."""
        return sum(self.widths) / sum(self.full)

    @property
    def removed_fraction(self) -> float:
        return 1.0 - self.kept_fraction

    @property
    def is_uniform(self) -> bool:
        return len(set(self.widths)) == 1

    @property
    def is_dense(self) -> bool:
        return self.widths == self.full

    @property
    def removed_layers(self) -> tuple[int, ...]:
        """The layers whose whole MLP the plan removes (width 0)."""
        return tuple(i for i, w in enumerate(self.widths) if w == 0)

    # serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "widths": list(self.widths),
            "full": list(self.full),
            "multiple": self.multiple,
            "floor": self.floor,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        try:
            if data.get("format", PLAN_FORMAT) != PLAN_FORMAT:
                raise FrontierError(f"unsupported plan format {data.get('format')!r}")
            return cls(
                tuple(data["widths"]),
                tuple(data["full"]),
                int(data.get("multiple", 8)),
                int(data.get("floor", 8)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FrontierError(f"malformed plan: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FrontierError(f"plan is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise FrontierError("plan JSON must be an object")
        return cls.from_dict(data)

    def describe(self) -> str:
        gone = self.removed_layers
        whole = f", {len(gone)} MLPs removed" if gone else ""
        return (
            f"{self.n_layers} layers, {sum(self.widths)}/{sum(self.full)} MLP neurons kept "
            f"({100 * self.removed_fraction:.1f}% removed{whole})"
        )
