"""The refit: kept down-projection columns re-solved so the layer's output changes least.

For one layer with down weight ``W`` ([H, I], output = W a (+ b)) and the calibration
second moment ``G = E[a a^T]``, keeping neurons ``K`` and refitting them minimises, over
the calibration activations, ``E||W a - W' a_K||^2 + lambda ||W'||^2``:

    W' = W G[:, K] (G[K, K] + lambda I)^-1

Where the down projection has a bias, ``a`` is augmented with the constant 1 (whose
column of ``W`` is the bias, never penalised), so the new bias absorbs the dropped
neurons' mean output as FLAP's compensation does, and more. ``lambda`` is ``alpha`` times
the mean diagonal of ``G``; ``alpha`` is chosen per layer (:mod:`frontier.pruning.ridge`) by the
error of the layer's output on the held-out calibration windows (never on search or
report text), at a reference selection.

Speed: a trial refits every layer, and the kept set of a layer is always a prefix of
one fixed order (the criterion's ranking). So each layer factors ``G + lambda I``, once,
in that order (:meth:`LayerRefit.prefix`), and a trial costs one float32 step per
layer (a triangular solve or a product, whichever is less work for the kept count).
Any other kept set is solved directly (:meth:`LayerRefit.columns`).

Where it runs: the set-up (the alpha choice and the factorisations) is float64 on the
model's device, one layer at a time; its float32 factors then stay on a GPU while they
fit half of its free memory (:mod:`frontier.pruning.placement`), and the rest in pinned
host memory, from which a trial copies only the blocks its kept counts need. On the CPU
everything is in host memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from frontier._tensorfile import LayerFolder, TensorFile
from frontier.errors import FrontierError

#: what the saved factors hold (a layer saved in another format is set up again):
#: 2: the Cholesky factor ``L`` a prefix solves against, where 1 held its inverse ``Z``;
#: 3: only the blocks a prefix reads (:func:`product_from`), where 2 held whole squares
FACTOR_FORMAT = 3


def product_from(total: int, compact: bool) -> int:
    """The first kept count ``n`` (the bias column counted, ``total`` in all) that
    :meth:`LayerRefit.prefix` refits with the product form (``P``, ``B`` and ``Q``);
    below it, the solve (``Y`` and ``L``): the solve up to half kept, the product beyond,
    and the product for every count in a compact layer (0).

    So a layer not compact keeps only ``L[:s-1, :s-1]``, ``Y[:, :s-1]``, ``P[s:, :]`` and
    ``Q[:, s:]`` (``s`` this count): 351 MB a layer at Qwen2.5-1.5B's shape, not 807."""
    return 0 if compact else total // 2 + 1


@dataclass(frozen=True)
class DownWeights:
    """A layer's new down projection: ``weight`` in the module's own layout, and its bias
    (None: the projection keeps having no bias, or keeps its own)."""

    weight: torch.Tensor
    bias: torch.Tensor | None = None


class DiskFactor:
    """A float32 factor kept on disk (the lean path): reads only the block a trial slices
    from it (``factor[r0:r1, c0:c1]``), nothing held in memory."""

    def __init__(self, file: TensorFile, name: str) -> None:
        self.file, self.name = file, name
        self.shape = torch.Size(file.shape(name))

    def numel(self) -> int:
        return int(self.shape.numel())

    def __getitem__(self, index: tuple[slice, slice]) -> torch.Tensor:
        rows, cols = index
        r0, r1, _ = rows.indices(self.shape[0])
        c0, c1, _ = cols.indices(self.shape[1])
        return self.file.block(self.name, r0, r1, c0, c1)


class LayerRefit:
    """The closed-form refit of one layer (set up in float64).

    Args:
        w: the unpruned down weight as [H, I] (output x neurons).
        bias: the down projection's bias [H], or None when it has none.
        gram: ``E[x x^T]`` for ``x = [a; 1]``, [(I+1), (I+1)].
        alpha: ridge strength relative to the mean diagonal of the activations' Gram.
        order: the ranking whose prefixes :meth:`prefix` refits (set up at once).
        device: where the float64 set-up runs (default: the CPU); the factors stay there
            until :meth:`place` moves them.
        proximal: damp the kept columns toward their unpruned values instead of toward
            zero (OBS's form, as ZipLM and SparseGPT): ``min E||W x - V x_K||^2 +
            lam ||V - W_K||^2``, solved by ``V (G_KK + lam) = (W G)_K + lam W_K``, so the
            right-hand side is ``W M`` instead of ``W G``; with every neuron kept it
            gives ``W`` back exactly.
        compact: keep only the factors of the ``H k (I-k)`` form, used for every ``k``
            (up to 4x the work at small ``k``): for a GPU, where memory is what runs out.
            Two compact layers of one width share one square matrix for their ``P``
            (:meth:`share_p`), so a pair holds ``(I+1)^2 + 4 H (I+1)`` values, against
            ``3/2 (I+1)^2 + 4 H (I+1)`` for two layers not compact (:func:`product_from`).
    """

    def __init__(
        self,
        w: torch.Tensor,
        bias: torch.Tensor | None,
        gram: torch.Tensor,
        alpha: float,
        order: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
        compact: bool = False,
        proximal: bool = False,
    ) -> None:
        i = w.shape[1]
        self.proximal = proximal
        self.compact = compact
        self.width = i
        self.has_bias = bias is not None
        self.device = torch.device(device)
        self.resident = True  # the factors live on ``device`` (see :meth:`place`)
        self.p_shared = False  # P is read transposed from another layer's (:meth:`share_p`)
        self.p_holds = False  # P holds another layer's too
        w = w.double().to(self.device)
        if bias is not None:
            w = torch.cat([w, bias.double().to(self.device).view(-1, 1)], dim=1)
        g = (gram if self.has_bias else gram[:i, :i]).to(self.device, torch.float64)
        self.alpha = alpha
        self.m_scale = float(gram[:i, :i].diagonal().mean())
        self.lam = alpha * self.m_scale
        ridge = torch.full((g.shape[0],), self.lam, dtype=torch.float64, device=self.device)
        if self.has_bias:
            ridge[-1] = 0.0
        self.w = w
        self.m = g.clone()  # G + the ridge on its diagonal, without a dense diag(ridge)
        self.m.diagonal().add_(ridge)
        # the bias column's ridge is 0, so W M only adds lam W_K to the neurons' columns
        self.a = w @ (self.m if proximal else g)
        del g  # may be the caller's Gram: nothing more is held of it
        self.order: torch.Tensor | None = None
        if order is not None:
            self._prepare_prefixes(order)

    def _prepare_prefixes(self, order: torch.Tensor) -> None:
        """Set up the fast refit of every prefix of ``order`` (most important first).

        In that order, with ``M = L L^T`` and ``Z = L^-1``, the Cholesky factor of a
        leading block of ``M`` is the leading block of ``L``, so keeping the first ``k``
        gives ``W' = Y[:, :k] Z[:k, :k]`` with ``Y = A Z^T``, found as the solution of
        ``W' L[:k, :k] = Y[:, :k]``: one triangular solve, ``H k^2`` multiply-adds
        (half of the product with ``Z``). When more are kept than dropped, the
        block-inverse identity ``W'_K = B_K - B_D N_DD^-1 N_DK`` (``N = M^-1``, ``B = A
        N``), with ``N = U U^T`` factored upper-triangular so a trailing block's factor is
        the trailing block of ``U`` (``V = U^-1``), gives ``W' = B_K - Q[:, D] P[D, K]``
        with ``Q = B V^T``, ``P = V N``: ``2 H k (I-k)``.

        Memory: every float64 ``(I+1)^2`` matrix is let go as soon as it is used up, so
        at most four are held at once beside the Gram (``benchmarks/setup_memory.py``).
        """
        order = order.cpu().long()
        perm = torch.cat([torch.tensor([self.width]), order]) if self.has_bias else order
        perm = perm.to(self.device)
        m = self.m[perm.view(-1, 1), perm.view(1, -1)]
        a = self.a[:, perm]
        # not needed any more (columns() and errors() are for layers set up without an order)
        self.m = self.a = self.w = torch.empty(0, dtype=torch.float64)
        chol, info = torch.linalg.cholesky_ex(m)
        del m
        if int(info) != 0:
            raise FrontierError(
                f"the refit's set-up: the ridged Gram of a {self.width:,}-neuron layer is not "
                f"positive definite (alpha {self.alpha:g}): use more calibration tokens"
            )
        # only the blocks a prefix reads are kept (product_from): the solve's up to s - 1
        # kept, the product's from s on
        s = product_from(chol.shape[0], self.compact)
        eye = torch.eye(chol.shape[0], dtype=torch.float64, device=self.device)
        none = torch.empty(0, device=self.device)  # a compact layer keeps no solve
        self._l = none if self.compact else chol[: s - 1, : s - 1].float().contiguous()
        z = torch.linalg.solve_triangular(chol, eye, upper=False)
        del chol
        n = z.t() @ z
        self._y = none if self.compact else (a @ z[: s - 1].t()).float()
        del z
        flip = torch.linalg.cholesky(n.flip(0, 1))  # N = U U^T, U upper = flip(flip)
        inv = torch.linalg.solve_triangular(flip, eye, upper=False)
        del flip, eye
        v = inv.flip(0, 1)
        del inv
        b = a @ n
        self._b, self._q = b.float(), (b @ v[s:].t()).float()
        del b
        self._p = (v[s:] @ n).float()
        self.order = order

    _FACTORS = ("_y", "_l", "_b", "_q", "_p")

    def _own(self) -> list[str]:
        """The factors this layer holds (a shared P belongs to the layer that holds it)."""
        return [n for n in self._FACTORS if hasattr(self, n) and not (n == "_p" and self.p_shared)]

    @property
    def on_disk(self) -> bool:
        """Whether the factors are read from disk at each trial (:meth:`load`)."""
        return isinstance(self._p, DiskFactor)

    def save(self, folder: LayerFolder, layer: int) -> None:
        """Write the factors, the order and what :meth:`prefix` needs to ``folder`` (a
        layer set up with an order and its own P)."""
        assert self.order is not None and not (self.p_shared or self.p_holds)
        meta = [self.width, int(self.has_bias), int(self.compact), self.alpha, self.lam]
        tensors = {n: getattr(self, n) for n in self._FACTORS}
        tensors["order"] = self.order
        meta += [self.m_scale, FACTOR_FORMAT]
        tensors["meta"] = torch.tensor(meta, dtype=torch.float64)
        folder.write(layer, tensors)

    @classmethod
    def load(cls, folder: LayerFolder, layer: int, *, in_memory: bool) -> LayerRefit:
        """A layer :meth:`save` wrote: its factors read into host memory, or, not
        ``in_memory``, read from disk a block at a time by each trial."""
        f = folder.file(layer)
        width, bias, compact, alpha, lam, m_scale, _ = f.read("meta").tolist()
        self = cls.__new__(cls)
        self.width, self.has_bias, self.compact = int(width), bool(bias), bool(compact)
        self.alpha, self.lam, self.m_scale = alpha, lam, m_scale
        self.device, self.resident = torch.device("cpu"), True
        self.p_shared = self.p_holds = False
        self.m = self.a = self.w = torch.empty(0, dtype=torch.float64)
        self.order = f.read("order")
        for name in cls._FACTORS:
            setattr(self, name, f.read(name) if in_memory else DiskFactor(f, name))
        return self

    def share_p(self, other: LayerRefit) -> bool:
        """Hold ``other``'s ``P`` in this layer's ``P``, where neither layer reads: a
        prefix reads only the strict lower triangle ``P[n:, :n]``, so ``other``'s strict
        lower triangle goes, transposed, into this one's strict upper triangle (an exact
        copy), and ``other`` reads its blocks there, as ``P[:n, n:]`` transposed. Both
        layers must be compact and set up in one width; False (nothing done) otherwise.
        The P of a compact model then takes half the memory."""
        if not (
            self.compact
            and other.compact
            and not (self.on_disk or other.on_disk)
            and not (self.p_shared or self.p_holds)
            and not (other.p_shared or other.p_holds)
            and self._p.shape == other._p.shape
            and self._p.data_ptr() != other._p.data_ptr()
        ):
            return False
        src = other._p
        rows = self._p.shape[0]
        step = 1024  # rows at a time: the masks stay small
        cols = torch.arange(rows, device=self._p.device).view(1, -1)
        for r0 in range(0, rows, step):
            r1 = min(r0 + step, rows)
            above = cols > torch.arange(r0, r1, device=self._p.device).view(-1, 1)
            block = self._p[r0:r1]  # a view: written in place, wherever self's P lives
            block[above] = src[:, r0:r1].t().to(self._p.device)[above]
        other._p = self._p
        other.p_shared = self.p_holds = True
        return True

    def place(self, device: torch.device | str, *, resident: bool) -> None:
        """Compute trials on ``device``: the factors move there when ``resident``, else
        they stay in host memory (pinned for a GPU) and each trial copies the blocks it
        needs. A shared P stays where the layer holding it put it."""
        self.device = torch.device(device)
        self.resident = resident and not self.on_disk
        if self.on_disk:
            return
        for name in self._own():
            t = getattr(self, name)
            if resident:
                t = t.to(self.device)
            else:
                t = t.cpu()
                if self.device.type == "cuda":
                    t = t.pin_memory()
            setattr(self, name, t)

    def _on(self, t: torch.Tensor) -> torch.Tensor:
        return t if t.device == self.device else t.to(self.device, non_blocking=True)

    def factor_bytes(self) -> int:
        """Bytes of the float32 factors :meth:`prefix` reads that this layer holds (on
        disk or in memory)."""
        return sum(getattr(self, n).numel() * 4 for n in self._own())

    def blocks(self, k: int) -> dict[str, tuple[slice, slice]]:
        """The block (rows, columns) of each stored factor that :meth:`prefix` of ``k``
        reads: ``Y[:, :n]`` and ``L[:n, :n]`` below :func:`product_from`'s count, else
        ``P[n:, :n]``, ``B[:, :n]`` and ``Q[:, n:]`` (``n`` counting the bias column; ``P``
        and ``Q`` stored from that count on; a shared ``P`` read as ``P[:n, n:]``,
        transposed)."""
        n = k + int(self.has_bias)
        s = product_from(self._b.shape[1], self.compact)
        whole = slice(None)
        if n < s:
            return {"_y": (whole, slice(None, n)), "_l": (slice(None, n), slice(None, n))}
        p = (
            (slice(None, n), slice(n, None))
            if self.p_shared
            else (slice(n - s, None), slice(None, n))
        )
        return {"_p": p, "_b": (whole, slice(None, n)), "_q": (whole, slice(n - s, None))}

    def prefix(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(kept indices sorted, refitted weight [H, k] in that order, bias or None) for the
        first ``k`` of the order, in float32."""
        assert self.order is not None, "built without an order"
        # each block as a contiguous copy, as a block read from disk (DiskFactor) is: the
        # same products, bit for bit, wherever the factors live
        got = {
            name: self._on(getattr(self, name)[index].contiguous())
            for name, index in self.blocks(k).items()
        }
        if "_l" in got:
            # H n^2 multiply-adds, half the product with Z[:n, :n] (1.1-1.5x faster at
            # Qwen2.5-1.5B's shape, as fast within milliseconds at SmolLM2's:
            # benchmarks/refit_cost.py)
            cols = torch.linalg.solve_triangular(got["_l"], got["_y"], upper=False, left=False)
        else:
            p = got["_p"].t() if self.p_shared else got["_p"]
            cols = got["_b"] - got["_q"] @ p
        kept, pos = self.order[:k].sort()
        bias = cols[:, 0] if self.has_bias else None
        return kept, cols[:, int(self.has_bias) :][:, pos.to(cols.device)], bias

    def columns(self, keep: torch.Tensor) -> torch.Tensor:
        """The refitted weight [H, |K|] (with the bias as a last column where there is one)."""
        keep = keep.to(self.m.device)
        mask = torch.ones(self.m.shape[0], dtype=torch.bool, device=keep.device)
        mask[keep] = False
        if self.has_bias:
            mask[-1] = False
            keep = torch.cat([keep, torch.tensor([self.width], device=keep.device)])
        if not mask.any():
            return self.w[:, keep].clone()
        chol = torch.linalg.cholesky(self.m[keep][:, keep])
        return torch.cholesky_solve(self.a[:, keep].t(), chol).t()

    def error(self, keep: torch.Tensor, held: torch.Tensor) -> float:
        """Output error on a held-out Gram, relative to the layer's output energy there."""
        return self.errors(keep, held, [self.alpha])[self.alpha]

    def errors(
        self, keep: torch.Tensor, held: torch.Tensor, alphas: Sequence[float]
    ) -> dict[float, float]:
        """:meth:`error` for several ridge strengths, sharing what does not depend on them.

        With ``V`` the refitted columns, ``E||W x - V x_K||^2 = tr(W Gh W^T) - 2 tr(V (Gh
        W^T)[K]) + tr(V Gh[K, K] V^T)`` on the held-out Gram ``Gh``.
        """
        where = self.device
        g = held if self.has_bias else held[: self.width, : self.width]
        g = g.to(where, torch.float64)
        idx = keep.to(where)
        if self.has_bias:
            idx = torch.cat([idx, torch.tensor([self.width], device=where)])
        gw = g @ self.w.t()  # [I(+1), H]
        total = float((self.w * gw.t()).sum())
        g_kk, gw_k = g[idx][:, idx], gw[idx]
        m_kk, a_k = self.m[idx][:, idx], self.a[:, idx]
        diag = torch.zeros(m_kk.shape[0], dtype=torch.float64, device=where)
        diag[: len(keep)] = 1.0  # the bias is never penalised
        w_k = self.w[:, idx] * diag  # the proximal form's pull, without the bias column
        if self.proximal:
            a_k = a_k - self.lam * w_k  # (W G)_K: this layer's own ridge taken out
        out = {}
        for alpha in alphas:
            lam = alpha * float(self.m_scale)
            base = m_kk - torch.diag(diag * self.lam)  # G[K, K] without this layer's ridge
            chol, info = torch.linalg.cholesky_ex(base + torch.diag(diag * lam))
            if int(info) != 0:  # not positive definite in floating point: not a candidate
                out[alpha] = math.inf
                continue
            rhs = a_k + lam * w_k if self.proximal else a_k
            v = torch.cholesky_solve(rhs.t(), chol).t()  # [H, K]
            err = total - 2 * float((v * gw_k.t()).sum()) + float(((v @ g_kk) * v).sum())
            out[alpha] = max(err, 0.0) / max(total, 1e-300)
        return out


def setup_device(w: torch.Tensor) -> torch.device:
    """Where one layer's float64 set-up runs: the weights' device, unless that is a GPU
    without room for it beside the model (an 8B model's layer needs 9 GiB, which a 24 GB
    GPU holding the bf16 weights has not): then the CPU, slower but within the host's
    memory (:func:`frontier.memory.estimate`'s ``refit_setup``)."""
    if w.device.type != "cuda":
        return w.device
    from frontier.budget import gpu_free_bytes
    from frontier.memory import setup_bytes

    need = setup_bytes(*w.shape)
    return w.device if need * 1.1 <= gpu_free_bytes(w.device) else torch.device("cpu")
