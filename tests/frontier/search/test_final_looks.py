"""One trial's final measurement: the plan applied once, taken off only while a look
scores the unpruned model, and always taken off at the end."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from frontier.search.context import _tasks_objective
from frontier.search.final_looks import Applied, measure, record_looks
from frontier.study.slo import parse_slo
from frontier.study.spec import LEGACY_VALUES, StudySpec, stored_spec
from objectives import Measurement, Objective


class Pruner:
    def __init__(self) -> None:
        self.on = False
        self.log: list[str] = []

    def apply(self, plan: Any) -> None:
        assert not self.on, "applied twice"
        self.on = True
        self.log.append("apply")

    def restore(self) -> None:
        self.on = False
        self.log.append("restore")


class Stub(Objective):
    """Reads the pruner's state when it measures; ``unpruned_looks`` of its looks need the
    unpruned model first (as a task look whose unpruned scores are not cached yet)."""

    direction = "minimize"

    def __init__(
        self, pruner: Pruner, unpruned_looks: int = 0, name: str = "stub", value: float = 1.0
    ) -> None:
        self.pruner, self.unpruned_looks = pruner, unpruned_looks
        self.name, self.value = name, value
        self.seen: list[str] = []

    def evaluate(self, lm: Any) -> Measurement:
        self.seen.append("pruned" if self.pruner.on else "unpruned")
        return Measurement(self.name, self.value, "minimize", details={"mlp_kept_fraction": 0.5})

    def decide(self, lm: Any, switch: Callable[[bool], None], progress: Any = None) -> Measurement:
        for _ in range(self.unpruned_looks):
            switch(False)
            self.seen.append("unpruned" if not self.pruner.on else "pruned?")
            switch(True)
        return self.evaluate(lm)


def _ctx(pruner: Pruner) -> Any:
    slos = (parse_slo("ppl<2.0"), parse_slo("arc_easy>=90%"))
    return SimpleNamespace(
        pruner=pruner, lm=None, size=Stub(pruner), slos=slos, final_side="pessimistic"
    )


@pytest.mark.parametrize("unpruned_looks", [0, 2])
def test_the_plan_is_applied_once_unless_a_look_needs_the_unpruned_model(
    unpruned_looks: int,
) -> None:
    pruner = Pruner()
    tasks = Stub(pruner, unpruned_looks)
    objs: dict[str, Objective] = {
        "ppl": Stub(pruner, name="ppl", value=1.5),
        "check:x": Stub(pruner),
        "tasks": tasks,
    }
    m = measure(_ctx(pruner), plan=None, objectives=objs, spread=False)  # type: ignore[arg-type]
    assert m.applied == 1 + unpruned_looks and set(m.checks) == {"x"}
    assert tasks.seen == ["unpruned"] * unpruned_looks + ["pruned"]
    assert objs["ppl"].seen == ["pruned"]  # type: ignore[attr-defined]
    assert not pruner.on and pruner.log[-1] == "restore"
    # a trial that only spreads the front reads its first look: nothing decided
    spread = Stub(pruner, unpruned_looks=3)
    m = measure(_ctx(pruner), plan=None, objectives={**objs, "tasks": spread}, spread=True)  # type: ignore[arg-type]
    assert m.applied == 1 and spread.seen == ["pruned"]


def test_a_candidate_failing_held_out_perplexity_reads_one_look() -> None:
    pruner = Pruner()
    said: list[str] = []
    for ppl, looks in ((1.99, 3), (2.01, 0)):
        tasks = Stub(pruner, unpruned_looks=3)
        objs: dict[str, Objective] = {"ppl": Stub(pruner, name="ppl", value=ppl), "tasks": tasks}
        m = measure(_ctx(pruner), plan=None, objectives=objs, spread=False, progress=said.append)  # type: ignore[arg-type]
        # no floor can make a candidate over the perplexity SLO a choice: no looks decide
        assert tasks.seen == ["unpruned"] * looks + ["pruned"] and m.applied == 1 + looks
    assert said == ["ppl<2 failed held out: the tasks read one look"]


def test_the_plan_comes_off_when_a_measurement_fails() -> None:
    pruner = Pruner()
    with pytest.raises(RuntimeError), Applied(pruner, plan=None) as applied:  # type: ignore[arg-type]
        applied.set(False)
        applied.set(True)
        raise RuntimeError("boom")
    assert not pruner.on and pruner.log == ["apply", "restore", "apply", "restore"]


def test_record_looks_reads_a_final_records_looks() -> None:
    final = {"tasks": {"arc_easy": {"looks": 3, "n_docs": 532}, "hellaswag": {"n_docs": 9}}}
    assert record_looks(final) == {"arc_easy": 3}
    assert record_looks({"tasks": {"arc_easy": {"n_docs": 500}}}) is None  # before looks
    assert record_looks(None) is None


def test_the_final_stage_reads_in_looks_and_old_studies_keep_one_look() -> None:
    spec = StudySpec(tasks=("arc_easy",), slos=("ppl<2.0", "arc_easy>=90%"))
    assert spec.report_docs is None and spec.report_first_docs == 200
    looks = _tasks_objective(spec, role="report")
    assert looks.first_docs == 200 and looks.n_docs is None  # type: ignore[attr-defined]
    assert [str(f) for f in looks.floors] == ["arc_easy>=90%"]  # type: ignore[attr-defined]
    # a study stored before the field (its report_docs set) reads report_docs in one look,
    # and its fingerprint is what it was
    old = {**spec.to_dict(), "report_docs": 500}
    del old["report_first_docs"]
    study = SimpleNamespace(study_name="old", user_attrs={"frontier:spec": old})
    legacy = stored_spec(study)
    assert legacy.report_first_docs is LEGACY_VALUES["report_first_docs"] is None
    assert "report_first_docs" not in legacy.measured_settings()
    fixed = _tasks_objective(legacy, role="report")
    assert fixed.first_docs is None and fixed.n_docs == 500  # type: ignore[attr-defined]
    # nothing to decide on point estimates: one look of report_docs
    plain = _tasks_objective(spec.replace(confidence=None), role="report")
    assert plain.first_docs is None  # type: ignore[attr-defined]
