"""The final stage's looks at the report documents, and the unpruned scores cached per look.

The documents, their order and the looks are arc_easy's own (the offline mirror); the
scores are stubs, so that a candidate's retention is what the test says it is: the
unpruned model gets 70% of the documents right; a candidate gets a seeded 15% of those
wrong and as many of the others right as its retention needs (documents the two models
disagree on both ways, as real candidates do). Nothing runs lm-eval's scoring.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from frontier.data.mirror import build_mirror
from frontier.errors import FrontierError
from frontier.study.slo import parse_slo
from frontier.testing import tiny_loaded
from objectives._tasks_looks import first_to_end
from objectives.tasks import TaskAccuracy

REPORT_DOCS = 2376 - 250  # arc_easy's test split less the search pool
# looks from 100 documents doubling to the whole report split: 133, 266, 532, 1064, 2126
LOOKS = 5


@pytest.fixture(scope="module")
def mirror() -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as mp:  # the default cache's mirror, built once
        mp.delenv("FRONTIER_HOME", raising=False)
        yield build_mirror(tasks=["arc_easy"])


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTIER_HOME", str(tmp_path / "home"))  # the per-look cache


def _u(key: str, salt: str) -> float:
    return random.Random(f"{salt}:{key}").random()


class Stub:
    """Stub scores: the model is unpruned or carries a plan of ``retention`` (about:
    a seeded draw); every scoring call is logged with the state."""

    def __init__(self, retention: float) -> None:
        self.lose = 0.15 if retention >= 0.85 else 1 - retention
        self.gain = max(0.0, (retention - (1 - self.lose)) * 0.7 / 0.3)
        self.pruned = False
        self.calls: list[tuple[bool, int]] = []  # (pruned?, documents scored)
        self.switches: list[bool] = []

    def rows(self, samples: dict[str, list[int]]) -> dict[str, tuple[float, int]]:
        self.calls.append((self.pruned, sum(len(v) for v in samples.values())))
        out = {}
        for leaf, indices in samples.items():
            for i in indices:
                key = f"{leaf}/{i}"
                right = _u(key, "base") < 0.7
                if self.pruned:
                    flip = _u(key, "flip") < (self.lose if right else self.gain)
                    right = right != flip
                out[key] = (float(right), 4)
        return out

    def switch(self, pruned: bool) -> None:
        self.switches.append(pruned)
        self.pruned = pruned

    def unpruned_docs(self) -> int:
        return sum(n for pruned, n in self.calls if not pruned)


def _objective(
    mirror: Path, stub: Stub, floor: str = "arc_easy>=90%", floors: Any = None, **kw: Any
) -> TaskAccuracy:
    options: dict[str, Any] = {"n_docs": None, "first_docs": 100, "batch_size": 4}
    options.update(kw)
    slos = [parse_slo(f) for f in floors or [floor]]
    obj = TaskAccuracy(["arc_easy"], role="report", floors=slos, mirror=mirror, **options)
    obj._leaf_rows = stub.rows  # type: ignore[method-assign]
    obj.prepare(tiny_loaded("llama"))  # the stub's model is unpruned here
    return obj


def _decide(obj: TaskAccuracy, stub: Stub, say: Any = None) -> dict[str, Any]:
    stub.switch(True)  # the final stage applies the plan, then decides
    stub.switches.clear()
    d = dict(obj.decide(tiny_loaded("llama"), stub.switch, say).details["arc_easy"])
    return d


def _verdict(d: dict[str, Any], floor: float) -> str:
    low, high = d["ci"]
    return "pass" if low >= floor else ("fail" if high < floor else "undecided")


def test_looks_double_to_end_exactly_at_the_documents_end() -> None:
    assert first_to_end(REPORT_DOCS, 100) == 133
    assert first_to_end(REPORT_DOCS, 200) == 266
    assert first_to_end(150, 200) == 150  # fewer than a look: one look of all
    for total in (1, 7, 100, 101, 2126, 9792):
        for start in (1, 3, 100, 200):
            first = first_to_end(total, start)
            assert start <= first <= 2 * start or first == total <= start
            looks = 1
            while first * 2 ** (looks - 1) < total:
                looks += 1
            assert first * 2 ** (looks - 2) < total <= first * 2 ** (looks - 1)


def test_a_candidate_far_above_its_floor_stops_at_the_first_look(mirror: Path) -> None:
    stub = Stub(retention=1.0)
    obj = _objective(mirror, stub, floor="arc_easy>=70%")
    d = _decide(obj, stub)
    assert d["looks"] == 1 and d["n_docs"] == 133 and d["docs"] == {"arc_easy": 133}
    assert d["max_looks"] == LOOKS and d["confidence"] == pytest.approx(1 - 0.1 / LOOKS)
    assert _verdict(d, 0.7) == "pass"
    assert stub.switches == []  # its look's unpruned scores were measured in prepare
    far_fail = Stub(retention=0.3)
    d = _decide(_objective(mirror, far_fail), far_fail)
    assert d["looks"] == 1 and _verdict(d, 0.9) == "fail"


def test_a_candidate_near_its_floor_reads_more_until_decided(mirror: Path) -> None:
    stub = Stub(retention=0.96)
    said: list[str] = []
    d = _decide(_objective(mirror, stub), stub, said.append)
    assert 1 < d["looks"] < LOOKS and _verdict(d, 0.9) == "pass"
    assert d["n_docs"] == 133 * 2 ** (d["looks"] - 1) == d["docs"]["arc_easy"]
    # each new look's unpruned scores were taken with the plan off, then put back
    assert stub.switches == [False, True] * (d["looks"] - 1)
    assert stub.pruned and stub.unpruned_docs() == d["n_docs"]
    # each look is said as it ends (a look of the whole split takes minutes)
    assert len(said) == d["looks"] and said[0].startswith("arc_easy: look 1 of 5, 133 documents")


def test_a_candidate_undecidable_on_the_whole_split_reads_it_all(mirror: Path) -> None:
    stub = Stub(retention=0.93)  # a little above the floor: worth reading to the end
    d = _decide(_objective(mirror, stub), stub)
    assert d["looks"] == LOOKS and d["n_docs"] == REPORT_DOCS and "stopped" not in d
    assert _verdict(d, 0.9) == "undecided"
    # --report-docs caps what a candidate may read: the looks end there
    capped = Stub(retention=0.93)
    d = _decide(_objective(mirror, capped, n_docs=2000), capped)
    assert d["n_docs"] == 2000 and d["looks"] == d["max_looks"] == 5  # 125 ... 2,000
    assert _verdict(d, 0.9) == "undecided"


def test_a_candidate_the_split_cannot_decide_stops_early_and_says_why(mirror: Path) -> None:
    stub = Stub(retention=0.9)  # at the floor: the whole split would leave it undecided
    said: list[str] = []
    d = _decide(_objective(mirror, stub), stub, said.append)
    assert d["looks"] < LOOKS and d["n_docs"] < REPORT_DOCS
    assert _verdict(d, 0.9) == "undecided"
    assert d["stopped"].startswith(f"arc_easy>=90% is undecided on {d['n_docs']:,} documents")
    assert f"the {REPORT_DOCS:,} it may read" in d["stopped"]
    assert said[-1] == f"stopping the looks of arc_easy: {d['stopped']}"
    assert stub.unpruned_docs() == d["n_docs"]  # the unread looks cost nothing


def test_a_failed_floor_stops_the_looks_of_every_other_floor(mirror: Path) -> None:
    stub = Stub(retention=0.96)
    floors = ["arc_easy>=90%", "arc_easy>=0.95"]  # the second, an accuracy, fails at once
    d = _decide(_objective(mirror, stub, floors=floors), stub)
    assert d["looks"] == 1 and _verdict(d, 0.9) == "undecided"
    assert d["stopped"] == "arc_easy>=0.95 failed"
    alone = Stub(retention=0.96)  # the same candidate under the first floor reads on
    assert _decide(_objective(mirror, alone, floors=floors[:1]), alone)["looks"] > 1


def test_the_unpruned_scores_are_cached_per_look_on_disk(mirror: Path) -> None:
    first = Stub(retention=0.96)
    d = _decide(_objective(mirror, first), first)
    assert first.unpruned_docs() == d["n_docs"] > 133
    # the second candidate (a new objective: another process) reads them from disk
    second = Stub(retention=0.96)
    d2 = _decide(_objective(mirror, second), second)
    assert d2["looks"] == d["looks"] and d2["ci"] == d["ci"]
    assert second.unpruned_docs() == 0 and second.switches == []
    # another task configuration, or other documents, is a miss
    for change in ({"batch_size": 8}, {"scorer": "hflm"}, {"seed": 1}):
        other = Stub(retention=0.96)
        _objective(mirror, other, **change)
        assert other.unpruned_docs() == 133, change


def test_evaluate_reads_the_looks_a_record_used(mirror: Path) -> None:
    stub = Stub(retention=0.96)
    d = _decide(_objective(mirror, stub), stub)
    again = Stub(retention=0.96)
    obj = _objective(mirror, again, looks={"arc_easy": d["looks"]})
    again.switch(True)
    same = obj.evaluate(tiny_loaded("llama")).details["arc_easy"]
    assert same["n_docs"] == d["n_docs"] and same["acc"] == d["acc"] and same["ci"] == d["ci"]
    assert again.unpruned_docs() == 0  # every look's unpruned scores from the disk cache


def test_report_looks_are_disjoint_from_every_search_document(mirror: Path) -> None:
    stub = Stub(retention=0.93)  # reads the whole split
    obj = _objective(mirror, stub)
    _decide(obj, stub)
    read = set(obj.baseline_docs["arc_easy"])
    assert len(read) == REPORT_DOCS
    search = TaskAccuracy(["arc_easy"], n_docs=100, max_docs=10_000, mirror=mirror)
    searched = {f"arc_easy/{i}" for i in search.doc_indices()["arc_easy"]}
    assert len(searched) == 250 and not read & searched
    assert len(read | searched) == 2376  # between them, the whole split


def test_looks_are_for_the_report_role() -> None:
    with pytest.raises(FrontierError, match="report role"):
        TaskAccuracy(["arc_easy"], role="search", first_docs=100)


def test_a_floor_undecided_on_every_document_it_may_read_is_hopeless(mirror: Path) -> None:
    from frontier.study.slo import TaskScore, TrialMetrics
    from objectives._tasks_final import hopeless

    stub = Stub(retention=0.96)
    obj = _objective(mirror, stub, n_docs=500)
    d = {"acc": 0.6, "baseline": 0.65, "ci": [0.88, 0.97], "confidence": 0.97, "n_docs": 500}
    metrics = TrialMetrics(tasks={"arc_easy": TaskScore.from_details(d)})
    said = hopeless(obj, {"arc_easy": d}, metrics)
    assert said == "arc_easy>=90% is undecided on all 500 documents it may read"
    # with documents left and an estimate near the floor, it is not
    d["n_docs"] = 250
    assert hopeless(obj, {"arc_easy": d}, metrics) is None
