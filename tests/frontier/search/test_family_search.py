"""A study that bisects allocation families after the uniform plan, on a tiny model."""

from __future__ import annotations

from pathlib import Path

from frontier.search.find import find
from frontier.search.storage import n_finished
from frontier.study.schema import ATTR_FAMILIES, ATTR_FAMILY, ATTR_PROBE, ATTR_UNIFORM, ATTR_WARM
from frontier.study.spec import StudySpec
from frontier.testing import small_spec


def test_families_are_bisected_recorded_and_their_trials_named(
    tiny_folder: Path, tmp_path: Path
) -> None:
    spec = small_spec(
        tiny_folder,
        f"sqlite:///{tmp_path}/studies/s.db",
        trials=30,
        slos=("ppl<1.0",),
        refit=False,
        search_window=None,
        families=("threshold", "removal", "protect", "depth-rising"),
    )
    result = find(spec)
    study = result.study
    probe = study.user_attrs[ATTR_PROBE]
    assert len(probe["values"]) == 3 and len(probe["breaks"]) == 3
    limits = study.user_attrs[ATTR_FAMILIES]
    named = {"threshold", "removal", "protect", "depth-rising"}
    assert named <= set(limits)
    assert all(k.startswith("protect-") for k in set(limits) - named)  # protect thinned
    uniform_keep = study.user_attrs[ATTR_UNIFORM]["keep"]
    own: set[str] = set()
    for name, rec in limits.items():
        if rec.get("skipped"):  # protect, where no single layer breaks the SLO
            assert name == "protect" and not any(probe["breaks"])
            continue
        assert rec["steps"], name
        assert ("protected" in rec) == name.startswith("protect"), name
        for step in rec["steps"]:
            assert step["keep"] <= uniform_keep + 1e-9
            trial = study.trials[step["trial"]]
            if trial.user_attrs[ATTR_FAMILY] == name:
                own.add(name)
                assert trial.user_attrs[ATTR_WARM].startswith(f"{name}-bisect-")
            # else: a plan an earlier trial had measured, not measured again
    assert len(own) >= 2  # families whose plans no earlier trial had measured
    assert "uniform" in {t.user_attrs.get(ATTR_FAMILY) for t in study.trials}
    sampled = [t for t in study.trials if not t.user_attrs.get(ATTR_WARM)]
    assert sampled and all(t.user_attrs[ATTR_FAMILY] == "levels" for t in sampled)
    assert n_finished(study) <= 30


def test_families_flag_and_spec(tmp_path: Path) -> None:
    spec = StudySpec.from_dict({"families": "removal,protect"}, where="test")
    assert spec.families == ("removal", "protect")
    # which plans the search tries, not what a trial measures: not in the fingerprint
    assert spec.fingerprint("m") == StudySpec().fingerprint("m")


def test_protect_is_the_default_family_and_none_turns_families_off() -> None:
    assert StudySpec().families == ("protect",)
    assert StudySpec.from_dict({"families": "none"}, where="test").families == ()
    assert StudySpec(families=("none",)).families == ()
