"""Which study-spec fields are what: those that only say how long or where a study runs
(left out of its fingerprint), and the values that mean what studies stored before a
field existed did (so their fingerprints still match)."""

from __future__ import annotations

from typing import Any

# Fields that say how long or where a study runs, not what it measures.
EXECUTION_FIELDS = frozenset(
    {
        "study",
        "storage",
        "trials",
        "timeout",
        "threads",
        "memory",
        "sampler",
        "report_points",
        "fit_tokens",
        "early_stop",
        "families",  # which plans the search tries, as the sampler: not what a trial measures
        # HFLM's log-likelihoods within 1e-4 either way: how tasks are scored, not what
        "task_scorer",
    }
)


# Fields added later, and the value that means what studies stored before them did.
LEGACY_VALUES: dict[str, Any] = {
    "refit": False,
    "check_texts": [],
    "fit_tokens": None,
    "confidence": None,
    "max_task_docs": None,
    "device": "cpu",  # (the device's kind: cuda:1 measures what cuda:0 does)
    "dtype": "fp32",
    "search_window": None,  # the search text's first tokens, in windows of seq_len
    "early_stop": False,  # every trial of --trials ran
    "task_scorer": "hflm",  # lm-eval's own HFLM scored every request
    "report_first_docs": None,  # the final stage read report_docs in one look
    "families": [],  # no allocation family was bisected
}
