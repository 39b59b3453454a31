"""What ``compression.json`` says about a repair (the ``repair`` object)."""

from __future__ import annotations

from typing import Any

from frontier.repair._trainer import RepairResult

METHOD = "logit distillation towards the unpruned model"
TEACHER = (
    "the unpruned model itself, logits computed on the fly per micro-batch by swapping its "
    "original MLP modules back in (bit-identical; no second copy, no stored logits)"
)


def repair_record(
    result: RepairResult,
    *,
    report_before: dict[str, Any] | None = None,
    report_after: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON object recorded under ``repair``: data, tokens, steps, losses, seed, settings.

    ``report_after`` holds the repaired model's figures under the study's report protocol,
    the ones ``frontier verify`` re-measures an export against.
    """
    cfg = result.config
    out: dict[str, Any] = {
        "method": METHOD,
        "teacher": TEACHER,
        "trained": "the MLP projections that remain (gate/up/down or their family's names)",
        "trained_parameters": result.trained_parameters,
        "loss": {
            "kl_temperature": cfg.temperature,
            "ce_weight": cfg.ce_weight,
            "formula": "(1 - ce_weight) * T^2 * KL(p_T || q_T) + ce_weight * CE",
        },
        "optimizer": {
            "name": "AdamW",
            "lr": cfg.lr,
            "weight_decay": cfg.weight_decay,
            "betas": [0.9, 0.95],
            "schedule": f"linear warm-up {cfg.warmup_steps} steps, cosine to 10% of lr at "
            + (
                f"step {cfg.steps}"
                if cfg.cpu_minutes is None
                else f"step {cfg.steps} or the last step the CPU budget allows, re-estimated "
                "every step from the measured CPU cost of a step and of an evaluation; the "
                "budget's last step is evaluated"
            ),
            "grad_clip": 1.0,
        },
        "seed": cfg.seed,
        "data": {
            **result.data,
            "never_read": ["search", "report"],
            "split": "calibration documents split by document into training and held-out",
        },
        "steps_run": result.steps_run,
        "kept_step": result.kept_step,
        "rolled_back": result.rolled_back,
        "stop_reason": result.stop_reason,
        "tokens_trained": result.tokens_trained,
        "heldout_before": result.before.to_dict(),
        "heldout_after": result.after.to_dict(),
        "heldout_history": result.history,
        "cpu_seconds": result.cpu_seconds,
        "wall_seconds": result.wall_seconds,
        "device": result.device,
        "precision": result.precision,
        "deterministic": (
            "not promised: the same settings, seed, torch version, thread count and device "
            "repeat it, but apply does not re-run it"
        ),
        "config": cfg.to_dict(),
    }
    if report_before is not None:
        out["report_before"] = report_before
    if report_after is not None:
        out["report"] = report_after
    return out
