"""The pruning core: what a plan is, which neurons it keeps, how the kept ones are refit
and how the model is cut.

- :mod:`~frontier.pruning.plan`: :class:`Plan`, the per-layer widths, one frozen value
  from the search to storage and export;
- :mod:`~frontier.pruning.selection`: which neurons a plan keeps, from a criterion's
  ranking (:class:`Selection`, :class:`Selector`);
- :mod:`~frontier.pruning.refit`: the closed-form refit of the kept down-projection
  columns (the maths of one layer), and :mod:`~frontier.pruning.placement`: where every
  layer's factors live (device, host, disk) and how a trial reads them;
- :mod:`~frontier.pruning.surgery`: cutting the model to a selection in place and
  restoring it exactly (:class:`Pruner`), parking unpruned weights off a full GPU
  (:mod:`~frontier.pruning.parking`);
- :mod:`~frontier.pruning.operator`: the three together, as a study applies them
  (:class:`PruningOperator`).

Importing this package imports nothing else (``frontier.Plan`` stays torch-free).
"""
