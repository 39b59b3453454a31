"""What a study is, apart from running it: torch-free and shared by the runner and readers.

- :mod:`frontier.study.slo`: the SLO language (``ppl<2.0``, ``arc_easy>=90%``).
- :mod:`frontier.study.measured`: what an evaluation measured, as SLOs read it.
- :mod:`frontier.study.schema`: the keys and typed records a study stores in Optuna.
- :mod:`frontier.study.point`: one trial's figures (:class:`TrialPoint`).
- :mod:`frontier.study.verdicts`: the verdicts on them (missed SLOs, the nearest trial).
- :mod:`frontier.study.summary`: a study's numbers (:class:`StudySummary`), the JSON form
  reports are built from.
- :mod:`frontier.study.read`: reading an Optuna study into those values.

Nothing here imports torch or transformers, so ``frontier pareto``, ``show`` and
``report`` open a study without loading a model library.
"""
