"""What a run may take of this machine: the host budget and the machine's readers."""

from __future__ import annotations

import pytest

from frontier import budget, settings


def test_the_real_reader_sees_this_machine() -> None:
    have = budget.available_host_bytes()
    assert have is None or have > 0
    assert budget.resident_bytes() > 0


def test_the_budget_is_the_setting_else_a_share_of_what_there_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "_memory_budget", None)
    monkeypatch.delenv("FRONTIER_MEMORY_GB", raising=False)
    monkeypatch.setattr(budget, "available_host_bytes", lambda: 10 * 2**30)
    monkeypatch.setattr(budget, "resident_bytes", lambda: 2 * 2**30)
    assert budget.host_budget() == int(12 * 2**30 * budget.DEFAULT_SHARE)
    monkeypatch.setenv("FRONTIER_MEMORY_GB", "3.5")
    assert budget.host_budget() == int(3.5 * 2**30)
    settings.set_memory_budget(2.0)
    assert budget.host_budget() == 2 * 2**30
    monkeypatch.setattr(budget, "available_host_bytes", lambda: None)
    monkeypatch.delenv("FRONTIER_MEMORY_GB")
    settings.set_memory_budget(None)
    assert budget.host_budget() is None  # nothing known: no limit


def test_off_a_gpu_a_trial_parks_nothing() -> None:
    from frontier.testing import tiny_model

    assert budget.trial_room(tiny_model("llama")) is None


def _disk(free: int):  # type: ignore[no-untyped-def]
    import shutil

    return lambda _path: shutil._ntuple_diskusage(10 * free, 9 * free, free)  # type: ignore[attr-defined]


def test_a_run_whose_files_do_not_fit_the_disk_is_refused_in_one_line(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from frontier.errors import FrontierError

    folder = tmp_path / "a" / "b.grams"  # not made yet: its nearest existing parent is read
    monkeypatch.setattr(budget.shutil, "disk_usage", _disk(budget.DISK_MARGIN + 100))
    budget.check_disk(folder, 100, "its statistics")  # fits, margin kept
    with pytest.raises(FrontierError, match=r"^its statistics need about .* GiB of disk") as err:
        budget.check_disk(folder, 101, "its statistics")
    assert "\n" not in str(err.value) and "FRONTIER_HOME" in str(err.value)
    # layers written before (a resumed run) count as done; a running pass's state does not
    folder.mkdir(parents=True)
    (folder / "layer-00000.bin").write_bytes(b"x" * 50)
    (folder / "partial.bin").write_bytes(b"x" * 500)
    budget.check_disk(folder, 150, "its statistics")
    with pytest.raises(FrontierError):
        budget.check_disk(folder, 151, "its statistics")


def test_calibration_checks_the_disk_before_it_writes_a_layer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    from frontier import memory
    from frontier.data.text import TokenSet
    from frontier.errors import FrontierError
    from frontier.importance import compute_scores, gram_cache_path
    from frontier.testing import tiny_config, tiny_loaded

    lm = tiny_loaded("llama")
    ids = torch.randint(0, 300, (4, 16), generator=torch.Generator().manual_seed(3))
    tokens = TokenSet(ids, "random ids", "calibration", 16, "disk-4-16")
    layout = memory.plan_layout(tiny_config("llama"), "fp32")
    folder = gram_cache_path(lm.fingerprint, tokens.fingerprint)
    with monkeypatch.context() as m, pytest.raises(FrontierError, match="statistics need about"):
        m.setattr(
            budget.shutil, "disk_usage", _disk(budget.DISK_MARGIN + layout.needs.statistics // 2)
        )
        compute_scores(lm, "energy", tokens, grams=True, layout=layout)
    assert not folder.exists() or not any(folder.iterdir())
    compute_scores(lm, "energy", tokens, grams=True, layout=layout)
    written = sum(f.stat().st_size for f in folder.glob("layer-*.bin"))
    # the figure checked is what the pass writes (the small statistics aside)
    assert 0.9 < written / layout.needs.statistics < 1.1
