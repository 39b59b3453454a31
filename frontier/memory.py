"""What a study of a model needs in memory, from its config alone (nothing is loaded).

The figures follow the layout of the data, not a measurement:

- **weights**: every parameter at the compute dtype, on the device;
- **statistics**: per layer, the activation mean, mean |x| and variance (float64) and,
  with the refit, the fitting and held-out Gram matrices of the down projection's input
  (``2 (I+1)^2`` float64 values). They live in the disk cache and are read one layer at
  a time; the calibration pass holds the sums of as many layers at once as its budget
  allows (:class:`Layout`), running the text once per group of layers;
- **refit factors**: per layer, the float32 factors a trial's refit reads
  (:meth:`frontier.pruning.refit.LayerRefit.prefix`: about ``3/4 (I+1)^2 + 2 H (I+1)``
  values, the blocks some kept count reads; or on a GPU the compact ``2 H (I+1)``, plus
  one ``(I+1)^2`` matrix per two layers, which holds the triangle each of them reads),
  on the device while they fit half its free memory,
  else in pinned host memory, or on disk (read a block at a time by each trial) where
  the host's budget is spent; a trial then holds the blocks of two layers at most (the
  one it refits, the next read ahead: :func:`read_block_bytes`);
- **refit set-up**: the float64 work space of one layer's set-up, on the device, one
  layer at a time: :data:`SETUP_SQUARES` ``(I+1)^2`` matrices, the Gram and four of the
  factorisation's at its peak. The greedy OBS ranking (``obs-greedy``, the default
  criterion) runs before it in less: the Gram, and at most about three of the ridged
  Gram's Cholesky factor, its inverse and the inverse's shrinking copies.

:func:`plan_layout` chooses, from the host memory a run may use, how many layers' Gram
sums a calibration pass holds and how many layers' refit factors stay in memory (the
rest on disk): the in-memory path where everything fits, the lean path where not, the
same figures either way. :func:`plan_layout` turns a run that cannot fit even the lean path
into a one-line error before anything is computed; :meth:`Layout.peaks` is
the estimate ``benchmarks/memory.py`` holds against measured peaks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from frontier.errors import FrontierError

GIB = 2**30
# float64 (I+1)^2 matrices at the peak of one layer's refit set-up: the Gram on the device
# and four of the factorisation's (benchmarks/setup_memory.py measures them on the CPU)
SETUP_SQUARES = 5
# resident memory of a frontier process that has imported torch, transformers, optuna and
# its study code, with a tiny model loaded (CPU build of torch 2.13, transformers 5.25):
# 0.38 GiB where the page cache has let go of most of torch's libraries, 0.45 GiB right
# after they were installed (their mapped file pages count as resident, 75 vs 133 MB);
# between the two
PROCESS_BASE = 440 * 2**20
# the tokenizer's resident memory per vocabulary entry (measured with benchmarks/memory.py:
# Gemma-3's 262k-entry tokenizer held about 0.3 GiB beyond the weights, SmolLM2's 49k about
# 0.06 GiB)
TOKENIZER_BYTES_PER_ENTRY = 1200
# bytes per calibration token per MLP neuron and per hidden unit held during one batch of
# the calibration pass (the forward's activations, the statistics' float64 copies and the
# Gram product of one column block); from benchmarks/memory.py's measured peaks
LOGITS_BUDGET_BYTES = 2**30  # objectives._lm keeps each batch's logits under this
# what a CUDA context and the kernels' work space take on the GPU before any tensor
CUDA_CONTEXT = 2**30
# what a trial on a GPU leaves free beside its pruned projections and logits (the
# forward's activations, the allocator's fragments)
TRIAL_MARGIN = 2**29
PASS_BYTES_PER_NEURON = 48
PASS_BYTES_PER_HIDDEN = 64


@dataclass(frozen=True)
class MemoryNeeds:
    """Bytes of each part of a study (see the module's docstring)."""

    weights: int
    statistics: int
    refit_factors: int
    refit_setup: int

    def host(self, *, factors_on_device: bool) -> int:
        """Host bytes at the peak: the statistics, plus the factors where they do not stay
        on the device."""
        return self.statistics + (0 if factors_on_device else self.refit_factors)

    def to_dict(self) -> dict[str, float]:
        return {k: round(v / GIB, 2) for k, v in vars(self).items()}


def mlp_shape(config: Any) -> tuple[int, int, int]:
    """(layers, hidden size, MLP width) of a decoder config (the text model's, for
    multimodal families)."""
    from frontier.arch import adapter_for

    cfg = adapter_for(config).decoder_config(config)
    layers = _first(cfg, "num_hidden_layers", "n_layer")
    hidden = _first(cfg, "hidden_size", "n_embd")
    width = _first(
        cfg, "intermediate_size", "ffn_dim", "ffn_hidden_size", "n_inner", default=4 * hidden
    )
    return layers, hidden, width


def _first(cfg: Any, *names: str, default: int | None = None) -> int:
    for name in names:
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    if default is None:
        raise FrontierError(f"the config has none of {', '.join(names)}")
    return default


def setup_bytes(hidden: int, width: int) -> int:
    """One layer's float64 refit set-up at its peak: :data:`SETUP_SQUARES` ``(I+1)^2``
    matrices and the weight, its product with the Gram and a copy (``3 H (I+1)``)."""
    n = width + 1
    return (SETUP_SQUARES * n * n + 3 * hidden * n) * 8


def read_block_bytes(hidden: int, width: int) -> int:
    """The most a trial reads of one layer's factors on disk, over every kept count ``k``
    (:meth:`frontier.pruning.refit.LayerRefit.blocks`): with ``n = I + 1``, ``Y[:, :k]``
    and ``L[:k, :k]`` up to half kept, else ``P[k:, :k]``, ``B[:, :k]`` and ``Q[:, k:]``,
    at most ``H n + n^2 / 4`` float32 values (about 135 MB at Qwen2.5-1.5B's shape)."""
    n = width + 1
    return (hidden * n + n * n // 4) * 4


def _kept_factor_values(n: int, hidden: int) -> int:
    """The float32 values one layer keeps of its refit factors, not compact, with ``n``
    rows of the ridged Gram (:func:`frontier.pruning.refit.product_from` ``s``):
    ``L[:s-1, :s-1]``, ``Y[:, :s-1]``, ``P[s:, :]``, ``B`` and ``Q[:, s:]``."""
    s = n // 2 + 1
    return (s - 1) ** 2 + (n - s) * n + hidden * ((s - 1) + n + (n - s))


def estimate(
    config: Any,
    dtype: str,
    *,
    refit: bool = True,
    grams: bool | None = None,
    compact: bool = False,
) -> MemoryNeeds:
    """The memory a study of ``config`` in ``dtype`` needs: ``refit`` (the default
    operator), ``grams`` (gathered for the refit or a criterion that reads them, such as
    obs; default: with the refit), ``compact`` refit factors (a GPU's)."""
    from frontier.models import weight_bytes

    layers, hidden, width = mlp_shape(config)
    n = width + 1
    stats = layers * 3 * width * 8
    if refit or grams:
        stats += layers * 2 * n * n * 8
    return MemoryNeeds(
        weights=weight_bytes(config, dtype),
        statistics=stats,
        refit_factors=(
            (
                ((layers + 1) // 2 * n * n + layers * 2 * hidden * n)
                if compact
                else layers * _kept_factor_values(n, hidden)
            )
            * 4
            if refit
            else 0
        ),
        refit_setup=setup_bytes(hidden, width) if refit else 0,
    )


@dataclass(frozen=True)
class Layout:
    """How a run holds what it computes, chosen from the memory it may use
    (:func:`plan_layout`); recorded in the study's protocol.

    ``gram_layers``: layers whose Gram sums one calibration pass gathers (the text is run
    once per group); ``factor_layers``: layers whose refit factors stay in memory, the
    others on disk. Both at most ``layers``; the in-memory path has both at ``layers``."""

    layers: int
    gram_layers: int
    factor_layers: int
    needs: MemoryNeeds
    batch_tokens: int
    budget: int | None = None  # the host bytes the plan had to fit (None: no limit)
    vocab: int = 0  # the output head's width: a trial's evaluation holds its logits
    param_bytes: int = 4  # bytes per weight in the model's dtype
    calibration_tokens: int = 0  # a pass after the first starts from their residual stream

    @property
    def passes(self) -> int:
        return -(-self.layers // max(self.gram_layers, 1)) if self.needs.statistics else 1

    @property
    def lean(self) -> bool:
        return self.passes > 1 or self.factor_layers < self.layers

    def _pass_bytes(self, width: int, hidden: int) -> int:
        """One calibration batch's activations, statistics copies and Gram product."""
        return self.batch_tokens * (PASS_BYTES_PER_NEURON * width + PASS_BYTES_PER_HIDDEN * hidden)

    def _gram_bytes(self, width: int) -> int:
        """One layer's fitting and held-out Gram sums (0 where no Grams are gathered)."""
        n = width + 1
        return 2 * n * n * 8 if self.needs.statistics > self.layers * 3 * width * 8 else 0

    def setup_on_gpu(self, gpu_bytes: int | None) -> bool:
        """Whether one layer's set-up fits a GPU of ``gpu_bytes`` beside the weights
        (:func:`frontier.pruning.refit.setup_device` decides the same at run time)."""
        need = self.needs.weights + self.needs.refit_setup * 1.1
        return gpu_bytes is None or need <= gpu_bytes - CUDA_CONTEXT

    def peaks(
        self, *, width: int, hidden: int, on_gpu: bool = False, gpu_bytes: int | None = None
    ) -> dict[str, int]:
        """Estimated host bytes at the peak of each stage (the model's weights and the
        process's own memory included; on a GPU of ``gpu_bytes`` the weights and the
        float64 set-up are on the device, not here, unless the set-up does not fit there
        beside the weights)."""
        n = width + 1
        base = PROCESS_BASE + self.vocab * TOKENIZER_BYTES_PER_ENTRY
        base += 0 if on_gpu else self.needs.weights
        small = self.layers * 3 * width * 8
        grams = self._gram_bytes(width)
        act = self._pass_bytes(width, hidden)
        per_factor = self.needs.refit_factors // max(self.layers, 1)
        factors = per_factor * self.factor_layers
        if on_gpu and gpu_bytes is not None:  # those the GPU keeps are not here
            factors = max(0, factors - self.gpu_factor_bytes(gpu_bytes))
        # on a GPU the sums stay there; each layer's pair comes to the host on its way to disk
        held = (2 if on_gpu else self.gram_layers) * grams + (0 if on_gpu else n * n * 8)
        # with several passes, the residual stream after each pass's last layer, every
        # calibration token, in host memory (the next pass starts from it)
        stream = self.calibration_tokens * hidden * self.param_bytes if self.passes > 1 else 0
        out = {"calibration": base + small + (0 if on_gpu else act) + held + stream}
        if grams and not on_gpu:  # the greedy ranking: the Gram and about three of its size
            out["ranking"] = base + small + 4 * n * n * 8
        mlp, logits = self._mlp_bytes(width, hidden), trial_logits_bytes(self.vocab)
        if self.needs.refit_factors:
            setup = 0 if on_gpu and self.setup_on_gpu(gpu_bytes) else self.needs.refit_setup
            out["setup"] = base + small + factors + setup
            # on a GPU, the unpruned layers a trial parks here (frontier.pruning.parking)
            parked = self.parked_bytes(width=width, hidden=hidden, gpu_bytes=gpu_bytes)
            # with factors on disk, the blocks of the layer refitted and of the next, read
            # ahead (frontier.pruning.prefetch); on the CPU they are let go when the plan
            # is applied, before the evaluation makes its logits beside the pruned MLPs
            read = 2 * read_block_bytes(hidden, width) if self.factor_layers < self.layers else 0
            on_host = parked + read if on_gpu else mlp + max(read, logits)
            out["trial"] = base + small + factors + on_host
        return out

    def gpu_factor_bytes(self, gpu_bytes: int) -> int:
        """The refit factors that stay on a GPU of ``gpu_bytes``: while they fit half of
        what the weights leave free (:meth:`frontier.pruning.placement.Refitter.build`)."""
        free = gpu_bytes - CUDA_CONTEXT - self.needs.weights
        return min(self.needs.refit_factors, max(free, 0) // 2)

    def _mlp_bytes(self, width: int, hidden: int) -> int:
        """Every layer's MLP projections at the model's dtype."""
        return self.layers * 3 * hidden * width * self.param_bytes

    def parked_bytes(self, *, width: int, hidden: int, gpu_bytes: int | None) -> int:
        """The unpruned MLP bytes a trial on a GPU of ``gpu_bytes`` parks in host memory,
        whole layers, so that its pruned copies fit beside the weights, the factors'
        share aside (:func:`frontier.budget.trial_room`, :mod:`frontier.pruning.parking`);
        0 where the GPU holds both, or is not known."""
        if gpu_bytes is None:
            return 0
        mlp = self._mlp_bytes(width, hidden)
        per_layer = mlp // max(self.layers, 1)
        free = gpu_bytes - CUDA_CONTEXT - self.needs.weights
        room = free - self.gpu_factor_bytes(gpu_bytes)
        room -= trial_logits_bytes(self.vocab) + TRIAL_MARGIN
        over = mlp - max(room, 0)
        layers = min(self.layers, max(0, -(-over // max(per_layer, 1))))
        return layers * per_layer

    def trial_bytes(self, *, width: int, hidden: int) -> int:
        """What a trial adds beside the weights and the factors: the pruned MLP weights
        beside the unpruned ones kept for the restore (at most as large), and a search
        evaluation's batch of fp32 logits (2,048 tokens, at most LOGITS_BUDGET_BYTES),
        their copy without the last position and their log-softmax."""
        return trial_logits_bytes(self.vocab) + self._mlp_bytes(width, hidden)

    def gpu_peak(self, *, width: int, hidden: int, gpu_bytes: int) -> int:
        """Estimated GPU bytes at the peak of a run on a GPU (the CUDA context apart): the
        weights and the largest of one calibration group's sums (at least one layer's),
        the ranking, one layer's float64 set-up, and a trial (:meth:`trial_bytes`, beside
        the refit factors kept on the GPU, :meth:`gpu_factor_bytes`, less what it parks in
        host memory, :meth:`parked_bytes`). Where the set-up does not fit beside the
        weights in ``gpu_bytes``, it runs on the host (:meth:`peaks` with ``gpu_bytes``);
        a layer's set-up that no longer fits beside the factors kept so far runs there too
        (:func:`frontier.pruning.refit.setup_device` decides at run time)."""
        n = width + 1
        sums = self._gram_bytes(width)
        # the greedy ranking: the Gram and about three of its size
        rank = 4 * n * n * 8 if sums else 0
        # where it does not fit, the set-up runs on the host: see peaks()
        setup = self.needs.refit_setup if self.setup_on_gpu(gpu_bytes) else 0
        act = self._pass_bytes(width, hidden)
        # a trial, beside the factors kept on the GPU, parks unpruned layers in host memory
        # where its pruned copies do not fit
        trial = self.trial_bytes(width=width, hidden=hidden) + self.gpu_factor_bytes(gpu_bytes)
        trial -= self.parked_bytes(width=width, hidden=hidden, gpu_bytes=gpu_bytes)
        return self.needs.weights + max(sums + act, rank, setup, trial)

    def disk_bytes(self) -> int:
        """What the run writes to its cache on disk: every layer's statistics and Grams
        and, on the lean path, every layer's refit factors (each stage checks its part
        against the free space first: :func:`frontier.budget.check_disk`)."""
        lean_factors = self.factor_layers < self.layers
        return self.needs.statistics + (self.needs.refit_factors if lean_factors else 0)

    def describe(self) -> dict[str, object]:
        return {
            "path": "lean" if self.lean else "in memory",
            "calibration_passes": self.passes,
            "gram_layers_per_pass": min(self.gram_layers, self.layers),
            "factor_layers_in_memory": self.factor_layers,
            "host_budget_gib": None if self.budget is None else round(self.budget / GIB, 2),
        }


def plan_layout(
    config: Any,
    dtype: str,
    *,
    refit: bool = True,
    grams: bool | None = None,
    compact: bool = False,
    batch_tokens: int = 2048,
    budget: int | None = None,
    on_gpu: bool = False,
    gpu_bytes: int | None = None,
    calibration_tokens: int = 0,
) -> Layout:
    """The layout that fits ``budget`` host bytes in all (None: everything in memory):
    every layer at once where that fits, else as many Gram sums per calibration pass and
    factors in memory as do. Refuses, in one line, a budget that even one layer at a time
    cannot fit."""
    from frontier.arch import adapter_for

    layers, hidden, width = mlp_shape(config)
    vocab = int(getattr(adapter_for(config).decoder_config(config), "vocab_size", 0) or 0)
    from frontier.models.device import torch_dtype

    needs = estimate(config, dtype, refit=refit, grams=grams, compact=compact)
    size = torch_dtype(dtype).itemsize
    tokens = calibration_tokens
    full = Layout(
        layers, layers, layers if refit else 0, needs, batch_tokens, budget, vocab, size, tokens
    )
    if budget is None:
        return full
    lean = Layout(layers, 1, 0, needs, batch_tokens, budget, vocab, size, tokens)
    peaks = lean.peaks(width=width, hidden=hidden, on_gpu=on_gpu, gpu_bytes=gpu_bytes)
    need = max(peaks.values())
    if need > budget:
        raise FrontierError(
            f"needs about {need / GIB:.1f} GiB of host memory even with its statistics and "
            f"factors on disk, a layer at a time; the budget is {budget / GIB:.2f} GiB "
            "(--memory, else 70% of what this machine has available): use a machine with "
            "more memory, or --no-refit --criterion energy"
        )
    gram_layers, per_layer = layers, lean._gram_bytes(width)
    if per_layer:
        gram_layers = min(layers, 1 + int((budget - peaks["calibration"]) // per_layer))
    factor_layers = layers if refit else 0
    if refit and "setup" in peaks:
        per = max(needs.refit_factors // layers, 1)
        # the factors in memory stay through the set-up and every trial; those a GPU keeps
        # take none of the host's budget
        gpu_room = lean.gpu_factor_bytes(gpu_bytes) if on_gpu and gpu_bytes is not None else 0
        room = budget - max(peaks["setup"], peaks["trial"]) + gpu_room
        factor_layers = min(layers, int(room // per))
        if factor_layers < layers:
            # with every layer in memory a trial reads no blocks from disk: that layout's
            # own peaks decide
            every = dataclasses.replace(lean, factor_layers=layers)
            top = every.peaks(width=width, hidden=hidden, on_gpu=on_gpu, gpu_bytes=gpu_bytes)
            if max(top["setup"], top["trial"]) <= budget:
                factor_layers = layers
    return Layout(
        layers, gram_layers, factor_layers, needs, batch_tokens, budget, vocab, size, tokens
    )


def trial_logits_bytes(vocab: int) -> int:
    """A search evaluation's fp32 logits batch (2,048 tokens, at most LOGITS_BUDGET_BYTES),
    its copy without the last position and its log-softmax."""
    return 3 * min(LOGITS_BUDGET_BYTES, 2048 * vocab * 4)
