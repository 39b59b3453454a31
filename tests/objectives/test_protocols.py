"""What the text objectives write into every study's protocol, their default sizes and the
identity of their cached baselines: the figures users compare rest on these, so they are
pinned in full."""

from __future__ import annotations

from typing import Any

import pytest

from frontier.data.text import TextSource
from frontier.errors import FrontierError
from frontier.testing import tiny_loaded
from objectives import create

_WIKI = TextSource("wiki-sample").label


def test_perplexity_protocol_and_defaults() -> None:
    assert create("ppl").protocol() == {
        "objective": "ppl",
        "metric": "perplexity ratio",
        "source": _WIKI,
        "role": "search",
        "tokens": 4096,
    }


def test_kl_protocol_and_defaults() -> None:
    kl = create("kl")
    assert kl.protocol() == {
        "objective": "kl",
        "metric": "mean KL(unpruned || pruned), nats/token, top-k coarsened",
        "top_k": 256,
        "top_k_mass": 0.0,  # not measured until prepared
        "source": _WIKI,
        "role": "search",
        "tokens": 2048,
    }


def test_kl_protocol_reports_the_mass_its_top_k_covers() -> None:
    lm = tiny_loaded("llama")
    small = create("kl", n_tokens=128, seq_len=64, top_k=8)
    whole = create("kl", n_tokens=128, seq_len=64, top_k=10_000)
    for kl in (small, whole):
        kl.prepare(lm)
    assert small.protocol()["top_k"] == 8
    assert 0.0 < small.protocol()["top_k_mass"] < 1.0
    assert whole.protocol()["top_k_mass"] == pytest.approx(1.0, abs=1e-6)
    # the mass is the unpruned model's, measured once: evaluating does not change it
    before = small.protocol()["top_k_mass"]
    small.evaluate(lm)
    assert small.protocol()["top_k_mass"] == before


@pytest.mark.parametrize("name", ["ppl", "kl"])
def test_the_strided_layout_reaches_the_protocol(name: str) -> None:
    assert create(name, strided=True).protocol()["layout"] == "strided"
    assert "layout" not in create(name).protocol()  # first tokens: the legacy layout


def test_perplexity_before_prepare_names_itself() -> None:
    lm = tiny_loaded("llama")
    ppl = create("ppl", n_tokens=64, seq_len=32)
    message = (
        "objective 'ppl': evaluate() called before prepare(); prepare() must first "
        "measure the unpruned model"
    )
    with pytest.raises(FrontierError) as info:
        ppl.nll(lm)  # type: ignore[attr-defined]
    assert str(info.value) == message
    ppl.windows(lm)  # type: ignore[attr-defined]  # the text is read, the baseline is not
    with pytest.raises(FrontierError) as info:
        ppl.evaluate(lm)
    assert str(info.value) == message


def test_the_perplexity_baseline_is_cached_under_its_model_tokens_and_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The cache identity of the unpruned baseline: the same figure is reused only for the
    # same weights, the same token windows and the same code computing it (a changed metric
    # is measured afresh), in the cache users' earlier runs wrote.
    import objectives.perplexity as perplexity
    from objectives._lm import window_logits, window_nlls

    seen: list[tuple[Any, ...]] = []
    real = perplexity.cached_baseline

    def spy(kind: str, key: dict[str, Any], compute: Any, *, code: Any = ()) -> Any:
        seen.append((kind, key, tuple(code)))
        return real(kind, key, compute, code=code)

    monkeypatch.setattr(perplexity, "cached_baseline", spy)
    lm = tiny_loaded("llama")
    ppl = create("ppl", n_tokens=64, seq_len=32)
    ppl.prepare(lm)
    tokens = ppl.tokens  # type: ignore[attr-defined]
    assert seen == [
        (
            "window-nll",
            {"model": lm.fingerprint, "tokens": tokens.fingerprint},
            (window_nlls, window_logits),
        )
    ]
