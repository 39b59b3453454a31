"""The lean path's reads ahead of its solves: the blocks of a layer whose refit factors are
on disk, read in a background thread while the layer before it is refitted.

:meth:`LayerRefit.prefix <frontier.pruning.refit.LayerRefit.prefix>` of a layer on disk
reads a few blocks of its factors (``Y`` and ``L``, or ``P``, ``B`` and ``Q``: at
Qwen2.5-1.5B's shape up to about 135 MB) and then solves with them. :func:`read_ahead`
reads those blocks, as the layer's own :class:`~frontier.pruning.refit.DiskFactor` reads
them, into a stand-in of the layer whose ``prefix`` is the same code on the same bytes,
so the weights are the same, bit for bit. :class:`ReadAhead` keeps one such read in
flight beyond the layer being solved (file reads let go of the GIL, the solve's kernels
too), so a trial's disk reads overlap its compute instead of following it.

The blocks are the ones ``prefix`` names (:meth:`LayerRefit.blocks`); a stand-in refuses
any block it was not given, so a ``prefix`` that came to read other blocks fails loudly
instead of reading from disk behind the overlap.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

import torch

from frontier.pruning.refit import LayerRefit

#: a block of a 2-D factor: rows ``r0:r1``, columns ``c0:c1``
Block = tuple[int, int, int, int]


def _block(shape: torch.Size, index: tuple[slice, slice]) -> Block:
    rows, cols = index
    r0, r1, _ = rows.indices(shape[0])
    c0, c1, _ = cols.indices(shape[1])
    return r0, r1, c0, c1


class ReadBlock:
    """A factor of a layer on disk that holds the one block read ahead for a trial (or
    none): slicing that block gives it, any other slice is an error."""

    def __init__(self, shape: torch.Size, index: tuple[slice, slice] | None, data: torch.Tensor):
        self.shape = shape
        self._at = None if index is None else _block(shape, index)
        self._data = data

    def numel(self) -> int:
        return int(self.shape.numel())

    def __getitem__(self, index: tuple[slice, slice]) -> torch.Tensor:
        at = _block(self.shape, index)
        if at != self._at:
            raise RuntimeError(
                f"the refit read block {at} of a factor read ahead as {self._at}: "
                "LayerRefit.blocks no longer matches LayerRefit.prefix"
            )
        return self._data


def read_ahead(layer: LayerRefit, k: int) -> LayerRefit:
    """A stand-in of ``layer`` (on disk) whose :meth:`~LayerRefit.prefix` of ``k`` solves
    with blocks read now, as the layer's own factors would read them then."""
    assert layer.on_disk, "only a layer on disk is read ahead"
    want = layer.blocks(k)
    view = copy.copy(layer)
    for name in LayerRefit._FACTORS:
        factor = getattr(layer, name)
        index = want.get(name)
        data = factor[index] if index is not None else torch.empty(0)
        setattr(view, name, ReadBlock(factor.shape, index, data))
    return view


class ReadAhead:
    """Reads the blocks of the given layers (index, layer on disk, kept count) in that
    order, one background thread, at most one read in flight beyond the layer
    :meth:`take` last handed out: the host memory of two layers' blocks at most.

    Use as a context manager; :meth:`take` each listed layer in order."""

    def __init__(self, todo: Iterable[tuple[int, LayerRefit, int]]) -> None:
        self._todo = iter(todo)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="refit-read")
        self._next: tuple[int, Future[LayerRefit]] | None = None
        self._submit()

    def _submit(self) -> None:
        job = next(self._todo, None)
        self._next = None if job is None else (job[0], self._pool.submit(read_ahead, *job[1:]))

    def take(self, index: int) -> LayerRefit:
        """The stand-in of layer ``index`` (waiting for its read), the next read started."""
        assert self._next is not None and self._next[0] == index, "layers taken out of order"
        view = self._next[1].result()
        self._submit()
        return view

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # a trial that stopped early waits for the one read in flight, and drops it
        self._pool.shutdown(wait=True, cancel_futures=True)
