"""The objective contract: evaluate an in-memory (possibly pruned) model, return a number."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from frontier.errors import FrontierError

if TYPE_CHECKING:
    from frontier.models import LoadedModel

Direction = Literal["minimize", "maximize"]


@dataclass(frozen=True)
class Measurement:
    """One objective's result for one model state.

    ``value`` is what the search optimises (a ratio to the unpruned model where the
    objective is relative). ``raw`` is the absolute figure for the pruned model and
    ``baseline`` the same figure for the unpruned model, where they exist.
    """

    name: str
    value: float
    direction: Direction
    raw: float | None = None
    baseline: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "direction": self.direction,
            "raw": self.raw,
            "baseline": self.baseline,
            "details": self.details,
        }


class Objective(ABC):
    """An objective the search can measure.

    Lifecycle: :meth:`prepare` is called once on the *unpruned* model (it computes and
    may cache the baseline); :meth:`evaluate` is then called for each model state (the
    same model object, with a plan applied in place). :meth:`evaluate` never prepares
    itself: called first, it raises :func:`not_prepared`'s error (measured then, the
    baseline would be whatever state the model is in, a pruned one included).
    :meth:`protocol` names everything a reader needs to compare the figure with another
    (text, token counts, context length, task config, documents).
    """

    name: ClassVar[str]
    direction: ClassVar[Direction]

    def prepare(self, lm: LoadedModel) -> None:  # noqa: B027 - optional hook
        """Measure the unpruned model once; the default does nothing."""

    @abstractmethod
    def evaluate(self, lm: LoadedModel) -> Measurement:
        """Measure the model as it is now; :meth:`prepare` must have run."""

    def decide(
        self,
        lm: LoadedModel,
        switch: Callable[[bool], None],
        progress: Callable[[str], None] | None = None,
    ) -> Measurement:
        """The final stage's measurement of the (pruned) model: an objective that reads
        its data in looks until its SLOs are decided may need the unpruned model's
        figures on a look it has not seen yet; it calls ``switch(False)`` to have the
        model unpruned while it measures them, and ``switch(True)`` to have it pruned
        again; ``progress`` is told what each look found. The default: :meth:`evaluate`."""
        return self.evaluate(lm)

    def protocol(self) -> dict[str, Any]:
        return {"objective": self.name}

    def warnings(self) -> list[str]:
        """What a user should be told about the unpruned model's figures (after
        :meth:`prepare`), one line each; e.g. a task it scores near chance on."""
        return []


def not_prepared(name: str) -> FrontierError:
    """The error of an objective's ``evaluate`` called before its ``prepare``."""
    return FrontierError(
        f"objective {name!r}: evaluate() called before prepare(); prepare() must first "
        "measure the unpruned model"
    )


_REGISTRY: dict[str, type[Objective]] = {}

# Built-in entries live in modules that import torch; they are imported on first use
# of the registry so that ``import objectives`` stays cheap.
_BUILTIN_MODULES = (
    "objectives.perplexity",
    "objectives.kl",
    "objectives.size",
    "objectives.speed",
    "objectives.tasks",
)
_loaded = False


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    import importlib

    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)
    _loaded = True


def register(cls: type[Objective]) -> type[Objective]:
    """Class decorator adding an objective to the registry under ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"objective {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def registered() -> dict[str, type[Objective]]:
    _load_builtins()
    return dict(_REGISTRY)


def create(name: str, **params: Any) -> Objective:
    _load_builtins()
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise FrontierError(
            f"unknown objective {name!r}; known: {', '.join(sorted(_REGISTRY))}"
        ) from None
    return cls(**params)
