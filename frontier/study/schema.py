"""What a study stores in Optuna: the attribute keys and the records under them.

A study is a plain Optuna study; frontier's own data live in user attributes, as JSON:

============================  ======  ===================================================
key                           on      value
============================  ======  ===================================================
``frontier:plan``             trial   the trial's :class:`~frontier.pruning.plan.Plan` (``to_dict``)
``frontier:warm_start``       trial   the warm-start label (``uniform-0.75``, ...)
``frontier:search``           trial   :class:`SearchRecord`: search-time figures
``frontier:timing``           trial   :class:`TimingRecord`: seconds spent on the trial
``frontier:applied``          trial   :class:`AppliedRecord`: digests of what was applied
``frontier:screened``         trial   why tasks were not measured (a PRUNED trial)
``frontier:failed``           trial   why evaluation failed (a FAIL trial: NaN)
``frontier:spec``             study   the :class:`~frontier.study.spec.StudySpec` dict
``frontier:fingerprint``      study   the spec's fingerprint (written last: set-up done)
``frontier:model_fingerprint``study   the model's weight fingerprint
``frontier:baseline``         study   the unpruned model's search-time measurements
``frontier:baseline:report``  study   the unpruned model's held-out measurements
``frontier:protocol``         study   how the numbers were measured (texts, versions, ...)
``frontier:final:N``          study   :class:`FinalRecord` of trial N (held-out figures)
``frontier:uniform_limit``    study   the bisected uniform plan at the SLOs (its trial, keep)
``frontier:early_stop``       study   where the search stopped early, and the rule's numbers
============================  ======  ===================================================

Final records sit on the study, not the trial, because a finished Optuna trial cannot be
changed. The SLO verdicts of the search-time figures are the trial's Optuna constraints
(``trial.constraints``: SLO text -> violation, > 0 violated), those of the final figures
the record's ``violations``. Pure data: no Optuna, no torch.
"""

from __future__ import annotations

from typing import Any, TypedDict

# -- trial attributes ----------------------------------------------------------------------
ATTR_PLAN = "frontier:plan"
ATTR_WARM = "frontier:warm_start"
ATTR_SEARCH = "frontier:search"
ATTR_TIMING = "frontier:timing"
ATTR_SCREENED = "frontier:screened"
ATTR_FAILED = "frontier:failed"
ATTR_APPLIED = "frontier:applied"
ATTR_FAMILY = "frontier:family"  # the allocation family of a warm-start trial's plan
#: What a trial *is* (kept when it is queued again); the other attributes are results.
IDENTITY_ATTRS: tuple[str, ...] = (ATTR_PLAN, ATTR_WARM, ATTR_FAMILY)

# -- study attributes ----------------------------------------------------------------------
ATTR_SPEC = "frontier:spec"
ATTR_FINGERPRINT = "frontier:fingerprint"
ATTR_MODEL_FINGERPRINT = "frontier:model_fingerprint"
ATTR_BASELINE = "frontier:baseline"
ATTR_BASELINE_REPORT = "frontier:baseline:report"
ATTR_PROTOCOL = "frontier:protocol"
ATTR_FINAL = "frontier:final"
ATTR_UNIFORM = "frontier:uniform_limit"
#: Where the search phase stopped early (:mod:`frontier.study.early_stop`): ``trial``,
#: ``patience``, ``noise_mlp_removed``, ``best_trial``, ``best_mlp_removed``, ...
ATTR_EARLY_STOP = "frontier:early_stop"
ATTR_PROBE = "frontier:layer_probe"  # the search signal with each layer's MLP removed
ATTR_FAMILIES = "frontier:family_limits"  # each allocation family's bisected keep


def final_key(number: int) -> str:
    """The study attribute holding trial ``number``'s final record."""
    return f"{ATTR_FINAL}:{number}"


# -- records ---------------------------------------------------------------------------
class TaskRecord(TypedDict, total=False):
    """One task's figures as the tasks objective reports them.

    ``ci`` (retention) and ``acc_ci`` are two-sided intervals at ``confidence`` over the
    paired documents; ``gained``/``lost`` count the documents only the pruned / only the
    unpruned model got right. Records from before intervals lack them.
    """

    acc: float
    baseline: float | None
    retained: float | None
    metric: str
    n_docs: int
    ci: list[float]
    acc_ci: list[float]
    confidence: float
    gained: int
    lost: int


class SearchRecord(TypedDict, total=False):
    """A trial's figures (search-time under ``frontier:search``; also the base of final).

    Fractions kept, not removed. ``ppl_ratio``/``ppl``/``nll`` when the figure is
    perplexity, with ``ppl_ci``, the ratio's paired interval over the text's windows at
    ``ppl_confidence`` (records from before it, or on one window, lack both); ``kl`` when
    it is KL; ``tasks``, ``mean_retained`` and ``mean_acc`` only
    when tasks were measured. A non-finite float is stored as None (NaN) or "inf"/"-inf".
    """

    params_kept: float
    mlp_kept: float
    total_params: float | None
    ppl_ratio: float | str | None
    ppl: float | str | None
    nll: float | str | None
    ppl_ci: list[float | str | None]
    ppl_confidence: float
    kl: float | str | None
    tasks: dict[str, TaskRecord]
    mean_retained: float | str | None
    mean_acc: float | str | None
    extra: dict[str, float | str | None]  # objective-backed SLO metrics (speed), by name


class FinalRecord(SearchRecord, total=False):
    """Held-out figures of a Pareto trial, with their SLO verdicts.

    ``violations``: SLO text -> constraint value (> 0 violated; None not measured; an SLO
    without a held-out counterpart, KL, keeps its search-time value). ``feasible``: every
    SLO has a value and none is violated.
    """

    violations: dict[str, float | None]
    feasible: bool
    # held-out perplexity tokens: report_tokens, or fit_tokens for a trial re-measured only
    # to spread the front (``spread``: such a trial is never chosen); records written
    # before these fields: report_tokens
    tokens: int
    spread: bool
    # held-out perplexity on each of the spec's check_texts: source -> {ppl_ratio, ppl}
    check_texts: dict[str, dict[str, Any]]
    # task SLOs whose interval straddles the floor at the study's confidence: the figures
    # cannot tell whether the trial meets them (it is not feasible, and is not chosen)
    undecided: list[str]


class AppliedRecord(TypedDict):
    """What the operator applied when the trial was measured, as digests an export checks
    its rebuild against (:mod:`frontier.search.applied`; trials from before it lack it).

    ``kept``: per layer, the first 8 hex digits of the SHA-256 of the kept neuron indices
    (ascending, int64 little-endian). ``alpha``: the first 16 hex digits of the SHA-256 of
    the refit's per-layer ridge strengths (exact reprs, comma-joined); None without refit.
    """

    kept: list[str]
    alpha: str | None


class TimingRecord(TypedDict):
    """Seconds a trial took: in all, in forward passes, in surgery."""

    total: float
    forward: float
    surgery: float


class BaselineMeasurement(TypedDict, total=False):
    """One objective's measurement of the unpruned model (``frontier:baseline`` values)."""

    name: str
    direction: str
    value: float
    raw: float | None
    baseline: float | None
    details: dict[str, Any]
