"""The repair loop: distil the pruned model's remaining MLP weights towards the unpruned model.

The teacher's logits are computed on the fly, batch by batch (see :mod:`._swap`); no
full-vocabulary teacher logits are ever held beyond one micro-batch. The held-out slice is
measured before training and every ``eval_every`` steps; the weights at the best held-out
loss are kept, and when no step improved on the pruned model's own loss the repair is
rolled back to the pruned weights exactly.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from frontier.errors import FrontierError
from frontier.pruning.operator import PruningOperator
from frontier.pruning.plan import Plan
from frontier.pruning.surgery import Pruner, Selection
from frontier.repair._budget import CpuBudget
from frontier.repair._config import RepairConfig
from frontier.repair._data import RepairData
from frontier.repair._loss import HeldOut, LossParts, distill_loss
from frontier.repair._progress import Reporter, SilentReporter
from frontier.repair._swap import Modules, TeacherSwap

# One micro-batch's logits ([b, T, V] fp32) and what backward keeps of them stay under this.
LOGITS_BUDGET_BYTES = 1 << 30
_LOGIT_COPIES = 6  # student, teacher, two log-softmaxes, their gradients


@dataclass
class RepairResult:
    """What a repair did. ``modules`` are the repaired projections, per layer, for export."""

    config: RepairConfig
    data: dict[str, Any]
    before: HeldOut
    after: HeldOut
    kept_step: int
    steps_run: int
    stop_reason: str
    tokens_trained: int
    cpu_seconds: float
    wall_seconds: float
    device: str
    precision: str
    trained_parameters: int
    history: list[dict[str, float]] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    modules: Modules = field(default_factory=list, repr=False)

    @property
    def rolled_back(self) -> bool:
        return self.kept_step == 0


def micro_batch_size(seq_len: int, vocab: int, requested: int | None) -> int:
    fit = max(1, LOGITS_BUDGET_BYTES // (_LOGIT_COPIES * seq_len * vocab * 4))
    return min(fit, requested) if requested else fit


def repair(
    engine: Pruner | PruningOperator,
    plan: Plan | Selection,
    data: RepairData,
    config: RepairConfig,
    *,
    reporter: Reporter | None = None,
    start: Modules | None = None,
) -> RepairResult:
    """Apply ``plan`` with ``engine`` (its own plan application: an operator's refit
    included) and distil the result towards the unpruned model.

    ``start``: per layer, projections to start from instead of the plan's (a local
    reconstruction's, :func:`frontier.reconstruct.reconstruct`); they are trained in place.

    The engine must not have a plan applied. On return it has: the model is the repaired
    pruned model, and ``engine.restore()`` gives back the unpruned one bit-identically.
    """
    if engine.applied:
        raise FrontierError("repair applies the plan itself; restore the pruner first")
    pruner = engine.pruner if isinstance(engine, PruningOperator) else engine
    ad = pruner.adapter
    names = (*ad.up, ad.down)
    originals = [{n: h.get(n) for n in names} for h in pruner.handles]
    engine.apply(plan)
    if start is not None:
        if len(start) != len(pruner.handles):
            engine.restore()
            raise FrontierError(
                f"{len(start)} layers to start from, the model has {len(pruner.handles)}"
            )
        for h, layer in zip(pruner.handles, start, strict=True):
            for name, module in layer.items():
                h.set(name, module)
    swap = TeacherSwap(pruner.handles, originals, names)
    return _Loop(pruner.model, swap, data, config, reporter or SilentReporter()).run()


class _Loop:
    def __init__(
        self,
        model: Any,
        swap: TeacherSwap,
        data: RepairData,
        config: RepairConfig,
        reporter: Reporter,
    ) -> None:
        self.model = model
        self.swap = swap
        self.data = data
        self.cfg = config
        self.reporter = reporter
        self.device = next(model.parameters()).device
        vocab = int(model.get_output_embeddings().weight.shape[0])
        self.micro = micro_batch_size(data.seq_len, vocab, config.micro_batch)
        self.cuda_bf16 = self.device.type == "cuda" and config.bf16

    # -- forward passes --------------------------------------------------------------
    def _autocast(self) -> Any:
        if self.cuda_bf16:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _logits(self, ids: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.model(input_ids=ids, use_cache=False).logits[:, :-1].float()

    def _teacher(self, ids: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), self.swap.teacher():
            return self._logits(ids)

    def _loss(self, ids: torch.Tensor) -> LossParts:
        """The distillation loss of one micro-batch against the on-the-fly teacher."""
        teacher = self._teacher(ids)
        return distill_loss(
            self._logits(ids),
            teacher,
            ids[:, 1:],
            temperature=self.cfg.temperature,
            ce_weight=self.cfg.ce_weight,
        )

    @torch.no_grad()
    def evaluate(self) -> HeldOut:
        sums = [0.0, 0.0, 0.0]
        count = 0
        for start in range(0, self.data.heldout.shape[0], self.micro):
            ids = self.data.heldout[start : start + self.micro].to(self.device)
            parts = self._loss(ids)
            n = ids[:, 1:].numel()
            for i, v in enumerate((parts.loss, parts.kl, parts.ce)):
                sums[i] += float(v) * n
            count += n
        return HeldOut(sums[0] / count, sums[1] / count, sums[2] / count)

    def _evaluate(self, budget: CpuBudget) -> HeldOut:
        """:meth:`evaluate`, its CPU time counted in ``budget``."""
        t = time.process_time()
        held = self.evaluate()
        budget.evaluated(time.process_time() - t)
        return held

    # -- training ----------------------------------------------------------------------
    def _lr_at(self, step: int, horizon: int | None = None) -> float:
        """Linear warm-up, then a cosine to 10% of ``lr`` at ``horizon`` (``steps``, or
        fewer where a CPU budget ends the run first)."""
        cfg = self.cfg
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / (cfg.warmup_steps + 1)
        end = cfg.steps if horizon is None else min(cfg.steps, horizon)
        span = max(1, end - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    def _batches(self) -> Any:
        gen = torch.Generator().manual_seed(self.cfg.seed)
        n = self.data.train.shape[0]
        while True:  # seeded epochs over the training windows
            order = torch.randperm(n, generator=gen)
            for start in range(0, n - n % self.cfg.batch_windows or n, self.cfg.batch_windows):
                yield self.data.train[order[start : start + self.cfg.batch_windows]]

    def _train_step(self, batch: torch.Tensor) -> float:
        total = 0.0
        n_all = batch[:, 1:].numel()
        for start in range(0, batch.shape[0], self.micro):
            ids = batch[start : start + self.micro].to(self.device)
            parts = self._loss(ids)
            share = ids[:, 1:].numel() / n_all
            (parts.loss * share).backward()
            total += float(parts.loss.detach()) * share
        return total

    def run(self) -> RepairResult:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        params = self.swap.parameters()
        frozen = [(p, p.requires_grad) for p in self.model.parameters()]
        for p, _ in frozen:
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        try:
            return self._run(params, cpu0, wall0)
        finally:
            for p in params:
                p.requires_grad_(False)
                p.grad = None
            for p, flag in frozen:
                p.requires_grad_(flag)

    def _run(self, params: list[torch.nn.Parameter], cpu0: float, wall0: float) -> RepairResult:
        cfg = self.cfg
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
        self.reporter.start(cfg.steps, self.data.describe())
        budget = CpuBudget(
            None if cfg.cpu_minutes is None else 60 * cfg.cpu_minutes, cpu0, cfg.eval_every
        )
        before = self._evaluate(budget)
        self.reporter.evaluated(0, before, True)
        best, best_step = before, 0
        best_state = [p.detach().clone() for p in params]
        history = [{"step": 0, **before.to_dict()}]
        losses: list[float] = []
        bad, step, reason, tokens = 0, 0, "steps", 0
        tokens_per_step = cfg.batch_windows * (self.data.seq_len - 1)
        batches = self._batches()
        while step < cfg.steps:
            # stop while one more step and the closing evaluation still fit the budget
            if not budget.room_for_step():
                reason = "cpu budget"
                break
            left = budget.steps_left()
            for group in opt.param_groups:
                group["lr"] = self._lr_at(step, None if left is None else step + left)
            opt.zero_grad(set_to_none=True)
            t, t_cpu = time.perf_counter(), time.process_time()
            loss = self._train_step(next(batches))
            if not math.isfinite(loss):
                reason = "non-finite loss"
                break
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            tokens += tokens_per_step
            losses.append(loss)
            budget.stepped(time.process_time() - t_cpu)
            self.reporter.step(step, loss, tokens_per_step / max(time.perf_counter() - t, 1e-9))
            # every eval_every steps, and once more when the budget ends the run (so that
            # its last steps can be kept)
            closing = not budget.room_for_step()
            if step % cfg.eval_every == 0 or step == cfg.steps or closing:
                held = self._evaluate(budget)
                improved = held.loss < best.loss
                history.append({"step": step, **held.to_dict()})
                self.reporter.evaluated(step, held, improved)
                if improved:
                    best, best_step, bad = held, step, 0
                    best_state = [p.detach().clone() for p in params]
                else:
                    bad += 1
                    if bad >= cfg.patience:
                        reason = "early stop"
                        break
        with torch.no_grad():  # keep the best weights (the pruned ones when nothing helped)
            for p, saved in zip(params, best_state, strict=True):
                p.copy_(saved)
        self.reporter.finish(best_step, reason)
        return RepairResult(
            config=cfg,
            data=self.data.describe(),
            before=before,
            after=best,
            kept_step=best_step,
            steps_run=step,
            stop_reason=reason,
            tokens_trained=tokens,
            cpu_seconds=time.process_time() - cpu0,
            wall_seconds=time.perf_counter() - wall0,
            device=str(self.device),
            precision="bf16 autocast, fp32 master weights" if self.cuda_bf16 else "fp32",
            trained_parameters=sum(p.numel() for p in params),
            history=history,
            train_losses=losses,
            modules=self.swap.pruned,
        )
