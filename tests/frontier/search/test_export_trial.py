"""A study's chosen trial exported from the CLI, reloaded, and rebuilt by apply; a rebuild
other than the model the trial measured is refused."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import torch
from optuna.trial import FrozenTrial, TrialState
from safetensors.torch import load_file

from frontier.cli import main
from frontier.export import load_pruned
from frontier.importance import Scores, calibrate
from frontier.pruning.plan import Plan
from frontier.pruning.ridge import ALPHAS
from frontier.search import context as search_context
from frontier.testing import TinyStudy


def test_export_then_apply_is_bit_identical(tiny_study: TinyStudy, tmp_path: Path) -> None:
    spec, chosen = tiny_study.spec, tiny_study.chosen
    out, again = tmp_path / "export", tmp_path / "again"
    args = ["export", "s", str(chosen.number), "--storage", spec.storage_url, "--out", str(out)]
    assert main(args) == 0
    record = json.loads((out / "compression.json").read_text())
    assert record["study"] == "s" and record["trial"] == chosen.number
    assert record["criterion"] == spec.criterion == "obs-greedy"
    assert record["calibration_fingerprint"]
    assert record["operator"]["name"] == "obs-greedy+refit"
    assert len(record["operator"]["alpha"]) == 3
    assert record["refit"]["file"] == "refit.safetensors" and (out / "refit.safetensors").is_file()
    assert record["plan"]["widths"] == chosen.user_attrs["frontier:plan"]["widths"]
    assert "final:ppl_ratio" in record["metrics"] and "search:ppl_ratio" in record["metrics"]
    model, _tok = load_pruned(out)
    widths = [layer.mlp.down_proj.in_features for layer in model.model.layers]
    assert widths == record["plan"]["widths"]
    assert (
        main(
            [
                "apply",
                str(out / "compression.json"),
                "--model",
                tiny_study.model,
                "--out",
                str(again),
            ]
        )
        == 0
    )
    a, b = load_file(str(out / "model.safetensors")), load_file(str(again / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (out / "refit.safetensors").read_bytes() == (again / "refit.safetensors").read_bytes()
    # an existing non-empty output folder is refused without --force
    assert main(args) == 2
    assert main([*args, "--force"]) == 0


def _set_applied(db: Path, trial: FrozenTrial, value: object) -> None:
    """Rewrite (None: delete) a finished trial's stored record, as Optuna cannot."""
    with sqlite3.connect(db) as con:
        where = "key = 'frontier:applied' AND trial_id = ?"
        if value is None:
            con.execute(f"DELETE FROM trial_user_attributes WHERE {where}", (trial._trial_id,))
        else:
            con.execute(
                f"UPDATE trial_user_attributes SET value_json = ? WHERE {where}",
                (json.dumps(value), trial._trial_id),
            )


@pytest.mark.slow  # five exports (a study's copy; was 25 s with a study of its own)
def test_export_refuses_a_rebuild_other_than_the_measured_one(
    tiny_study: TinyStudy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    db = tmp_path / "s.db"
    spec, study = tiny_study.spec, tiny_study.study
    assert spec.storage_url == f"sqlite:///{db}"
    t = next(t for t in study.get_trials() if t.state == TrialState.COMPLETE)
    plan = Plan.from_dict(t.user_attrs["frontier:plan"])
    recorded = t.user_attrs["frontier:applied"]
    assert len(recorded["kept"]) == 3 and isinstance(recorded["alpha"], str)
    args = ["export", "s", str(t.number), "--storage", spec.storage_url, "--out"]

    def refused(out: str) -> str:
        assert main([*args, str(tmp_path / out)]) == 2
        # one line, after whatever progress the loaders drew
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f"error: trial {t.number} rebuilds as another model")
        assert not (tmp_path / out).exists()
        return err

    assert main([*args, str(tmp_path / "same")]) == 0  # the study's own rebuild

    # a near-tie in the scores that goes the other way here: one kept neuron flips
    layer = next(i for i, (w, f) in enumerate(zip(plan.widths, plan.full, strict=True)) if w < f)

    def near_tie(*a: Any, **k: Any) -> Scores:
        scores = calibrate(*a, **k)
        per = list(scores.per_layer)
        order = torch.argsort(per[layer], descending=True, stable=True)
        pair = order[plan.widths[layer] - 1 : plan.widths[layer] + 1]  # last kept, first not
        per[layer] = per[layer].clone()
        per[layer][pair] = per[layer][pair.flip(0)]
        return dataclasses.replace(scores, per_layer=tuple(per))

    with monkeypatch.context() as m:
        m.setattr(search_context, "calibrate", near_tie)
        err = refused("flipped")
    assert f"kept neurons of layer {layer} differ" in err and "ridge" not in err

    # a ridge strength chosen otherwise here (the alpha cache beside the Gram matrices)
    (cache,) = (tmp_path / "home").rglob("*.alpha.json")
    chosen_alphas = json.loads(cache.read_text())
    other = next(a for a in ALPHAS if a != chosen_alphas["alpha"][2])
    cache.write_text(json.dumps({**chosen_alphas, "alpha": [*chosen_alphas["alpha"][:2], other]}))
    err = refused("realpha")
    assert f"ridge strengths differ (layer 2 alpha {other:g} (" in err
    assert "kept neurons" not in err
    cache.write_text(json.dumps(chosen_alphas))

    # the stored record disagrees (as from another machine's selection)
    _set_applied(db, t, {**recorded, "kept": [*recorded["kept"][:2], "00000000"]})
    assert "kept neurons of layer 2 differ" in refused("tampered")

    # a trial recorded before the record existed exports as before
    _set_applied(db, t, None)
    assert main([*args, str(tmp_path / "old")]) == 0
    assert (tmp_path / "old" / "compression.json").is_file()


@pytest.mark.slow  # two exports (a study's copy; was a study of its own): make test-slow
def test_a_trial_whose_plan_removes_mlps_exports_and_reloads(
    tiny_study: TinyStudy, tmp_path: Path
) -> None:
    """``frontier export`` reads the trial's stored plan: widths 0 (whole MLPs removed)
    export through the study's operator, the refit solving nothing but the layer's bias."""
    db = tmp_path / "s.db"
    spec, study = tiny_study.spec, tiny_study.study
    assert spec.storage_url == f"sqlite:///{db}"
    t = next(t for t in study.get_trials() if t.state == TrialState.COMPLETE)
    plan = Plan.from_dict(t.user_attrs["frontier:plan"])
    removed = Plan((0, plan.widths[1], 0), plan.full, plan.multiple, plan.floor)
    with sqlite3.connect(db) as con:
        con.execute(
            "UPDATE trial_user_attributes SET value_json = ? "
            "WHERE key = 'frontier:plan' AND trial_id = ?",
            (json.dumps(removed.to_dict()), t._trial_id),
        )
    _set_applied(db, t, None)  # the kept neurons recorded were for the other plan
    out = tmp_path / "out"
    assert (
        main(["export", "s", str(t.number), "--storage", spec.storage_url, "--out", str(out)]) == 0
    )
    record = json.loads((out / "compression.json").read_text())
    assert record["plan"]["widths"] == list(removed.widths) and record["kept"][0] == []
    assert record["operator"]["refit"] is True and 0 in record["refit"]["layers"]
    model, _tok = load_pruned(out)
    widths = [layer.mlp.down_proj.in_features for layer in model.model.layers]
    assert widths == list(removed.widths)
    padded = ["export", "s", str(t.number), "--storage", spec.storage_url, "--format", "padded"]
    assert main([*padded, "--out", str(tmp_path / "padded")]) == 2
