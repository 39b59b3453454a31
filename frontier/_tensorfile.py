"""Named tensors in one file, written atomically and read a block at a time.

The layout is a JSON header (name -> dtype, shape, byte offset) after its 8-byte length,
then each tensor's raw row-major bytes. A whole tensor is read with one ``pread``; a
block of rows and columns with one per row, into one buffer: only the bytes asked for
are read, and nothing stays mapped (a memory-mapped file's pages would count in the
process's resident memory, and the peak this project measures and checks). Used for the
per-layer Gram matrices and refit factors that do not fit in memory at once
(:mod:`frontier.importance._gram`, :mod:`frontier.pruning.refit`).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import overload

import numpy as np
import torch

from frontier._io import atomic_file

_DTYPES = {torch.float64: "f8", torch.float32: "f4", torch.int64: "i8"}
_TORCH = {v: k for k, v in _DTYPES.items()}


def write_tensors(path: Path, tensors: Mapping[str, torch.Tensor]) -> None:
    """Write ``tensors`` (CPU, contiguous copies made where needed) to ``path`` atomically."""
    header: dict[str, dict[str, object]] = {}
    offset = 0
    for name, t in tensors.items():
        if t.dtype not in _DTYPES:
            raise TypeError(f"{name}: dtype {t.dtype} is not stored")
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "offset": offset}
        offset += t.numel() * t.element_size()
    raw = json.dumps(header).encode()
    with atomic_file(path) as tmp, tmp.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for t in tensors.values():
            if t.numel():  # an empty tensor (a block no prefix reads) has no bytes
                f.write(t.detach().cpu().contiguous().numpy().data.cast("B"))
        f.flush()
        os.fsync(f.fileno())


class TensorFile:
    """Read access to a file :func:`write_tensors` wrote."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            self._header = json.loads(f.read(n))
        self._start = 8 + n

    @property
    def names(self) -> list[str]:
        return list(self._header)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._header[name]["shape"])

    def read(self, name: str) -> torch.Tensor:
        """The whole tensor (a fresh, writable CPU tensor)."""
        shape = self.shape(name)
        rows = shape[0] if shape else 1
        return self.block(name, 0, rows).reshape(shape)

    def block(
        self, name: str, r0: int, r1: int, c0: int = 0, c1: int | None = None
    ) -> torch.Tensor:
        """Rows ``r0:r1`` and columns ``c0:c1`` of a 2-D tensor (rows only for others)."""
        info = self._header[name]
        dtype = np.dtype(str(info["dtype"]))
        shape = list(info["shape"])
        row = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        cols = shape[1] if len(shape) == 2 else row
        c1 = cols if c1 is None else c1
        r1, c1 = min(r1, shape[0] if shape else 1), min(c1, cols)
        # torch's allocation (aligned as any tensor's), so products read it as they would
        # the same block of a tensor in memory
        result = torch.empty((max(r1 - r0, 0), max(c1 - c0, 0)), dtype=_TORCH[str(info["dtype"])])
        out = result.numpy()
        if out.size:
            base = self._start + int(info["offset"])
            fd = os.open(self.path, os.O_RDONLY)
            try:
                if c0 == 0 and c1 == cols:  # whole rows: one read
                    _pread_into(fd, out.reshape(-1), base + r0 * cols * dtype.itemsize)
                else:
                    for i in range(r1 - r0):
                        at = base + ((r0 + i) * cols + c0) * dtype.itemsize
                        _pread_into(fd, out[i], at)
            finally:
                os.close(fd)
        return result


def _pread_into(fd: int, out: np.ndarray, offset: int) -> None:
    view = out.data.cast("B")
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got <= 0:
            raise OSError(f"short read at byte {offset + done}")
        done += got


class LayerFolder:
    """One :class:`TensorFile` per layer in a folder, each written as its layer finishes
    (so a run that stops part-way keeps the layers it finished)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, layer: int) -> Path:
        return self.folder / f"layer-{layer:05d}.bin"

    @property
    def partial(self) -> Path:
        """Where a run that is not finished keeps its running state."""
        return self.folder / "partial.bin"

    def has(self, layer: int) -> bool:
        return self.path(layer).is_file()

    def write(self, layer: int, tensors: Mapping[str, torch.Tensor]) -> None:
        write_tensors(self.path(layer), tensors)

    def file(self, layer: int) -> TensorFile:
        return TensorFile(self.path(layer))

    def read(self, layer: int, name: str) -> torch.Tensor:
        return self.file(layer).read(name)


class LayerTensors(Sequence[torch.Tensor]):
    """The tensor ``name`` of every layer of a :class:`LayerFolder`, read from disk on each
    access (a fresh tensor the caller owns): one layer in memory at a time."""

    def __init__(self, folder: LayerFolder, name: str, layers: int) -> None:
        self.folder, self.name, self.layers = folder, name, layers

    def __len__(self) -> int:
        return self.layers

    @overload
    def __getitem__(self, i: int) -> torch.Tensor: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[torch.Tensor]: ...
    def __getitem__(self, i: int | slice) -> torch.Tensor | Sequence[torch.Tensor]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.layers))]
        if not -self.layers <= i < self.layers:
            raise IndexError(i)
        return self.folder.read(i % self.layers, self.name)
