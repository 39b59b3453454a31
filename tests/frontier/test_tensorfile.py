"""Named tensors in one file: whole reads and block reads equal the tensors written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from frontier._tensorfile import LayerFolder, LayerTensors, TensorFile, write_tensors


def test_whole_tensors_and_any_block_read_back_exactly(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(7, 11, generator=gen, dtype=torch.float64)
    b = torch.randn(5, 3, generator=gen)
    c = torch.arange(4)
    write_tensors(tmp_path / "x.bin", {"a": a, "b": b, "c": c, "t": a.t()})
    f = TensorFile(tmp_path / "x.bin")
    assert f.names == ["a", "b", "c", "t"] and f.shape("a") == (7, 11)
    for name, want in (("a", a), ("b", b), ("c", c), ("t", a.t())):
        got = f.read(name)
        assert got.dtype == want.dtype and torch.equal(got, want)
    for r0, r1, c0, c1 in (
        (0, 7, 0, 11),
        (2, 5, 0, 11),
        (0, 7, 3, 4),
        (1, 6, 2, 9),
        (6, 7, 10, 11),
    ):
        assert torch.equal(f.block("a", r0, r1, c0, c1), a[r0:r1, c0:c1])
    assert f.block("a", 3, 3).shape == (0, 11)
    assert f.block("a", 0, 9, 0, 20).shape == (7, 11)  # clipped like a slice


def test_a_layer_folder_reads_one_layer_at_each_access(tmp_path: Path) -> None:
    folder = LayerFolder(tmp_path / "layers")
    for i in range(3):
        folder.write(i, {"g": torch.full((2, 2), float(i), dtype=torch.float64)})
    seq = LayerTensors(folder, "g", 3)
    assert len(seq) == 3 and folder.has(2) and not folder.has(3)
    assert seq[1][0, 0] == 1.0 and seq[-1][0, 0] == 2.0
    first = seq[0]
    first += 5  # the caller owns what it reads: the file is unchanged
    assert seq[0][0, 0] == 0.0
    assert [t[0, 0].item() for t in seq[0:2]] == [0.0, 1.0]
    with pytest.raises(IndexError):
        seq[3]


def test_unsupported_dtypes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="dtype"):
        write_tensors(tmp_path / "x.bin", {"h": torch.zeros(2, dtype=torch.float16)})


def test_an_empty_tensor_is_written_and_read_back(tmp_path: Path) -> None:
    """A refit layer one neuron wide keeps empty blocks (``L[:0, :0]``, ``Y[:, :0]``)."""
    path = tmp_path / "t.bin"
    after = torch.arange(6.0).view(2, 3)
    write_tensors(path, {"empty": torch.zeros(4, 0), "after": after})
    f = TensorFile(path)
    assert f.read("empty").shape == (4, 0)
    assert torch.equal(f.read("after"), after)
