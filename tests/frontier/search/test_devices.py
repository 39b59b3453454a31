"""A study's device and dtype: recorded, refused on resume when changed, bf16 on the CPU,
a trial that runs out of memory, and extra workers started by ``find`` (``--devices``)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.trial import TrialState

from frontier.cli import main
from frontier.errors import FrontierError
from frontier.search import devices
from frontier.search import find as find_module
from frontier.search.context import build_context
from frontier.search.find import find, worker
from frontier.search.storage import n_finished
from frontier.search.trial import TrialFailed, run_trial
from frontier.study.schema import ATTR_FAILED, ATTR_PROTOCOL
from frontier.study.spec import StudySpec
from frontier.testing import SMALL_STUDY_FLAGS, small_spec

WRAPPER = Path(__file__).parents[2] / "reliability" / "_cli_wrapper.py"


def _spec(folder: Path, tmp_path: Path, **kw: Any) -> StudySpec:
    return small_spec(folder, f"sqlite:///{tmp_path}/studies/s.db", **kw)


def test_a_bf16_study_runs_on_the_cpu_and_names_its_dtype(
    tiny_folder: Path, tmp_path: Path
) -> None:
    result = find(_spec(tiny_folder, tmp_path, trials=6, dtype="bf16", device="cpu"))
    study = result.study
    assert n_finished(study) == 6
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert done and all(all(map(torch.isfinite, map(torch.tensor, t.values))) for t in done)
    protocol = study.user_attrs[ATTR_PROTOCOL]
    assert (protocol["device"], protocol["dtype"]) == ("cpu", "bf16")
    assert study.user_attrs["frontier:spec"]["dtype"] == "bf16"


def test_resuming_under_another_dtype_is_refused_naming_it(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tiny_folder, tmp_path, trials=2, warm_start=False, device="cpu")
    find(spec)
    with pytest.raises(FrontierError, match=r"dtype: 'fp32' -> 'bf16'"):
        find(spec.replace(dtype="bf16", trials=3))
    # from the command line: one line, exit status 2, the finished trials intact (the
    # study's own small settings, so that the dtype alone differs)
    code = main(
        ["find", "--model", str(tiny_folder), "--study", "s", "--storage", spec.storage_url,
         "--slo", "ppl<1.5", "--no-warm-start", "--device", "cpu", *SMALL_STUDY_FLAGS,
         "--calibration-seq-len", str(spec.calibration_seq_len), "--multiple",
         str(spec.multiple), "--dtype", "bf16", "--trials", "3", "--no-report"]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "Traceback" not in "".join(err)
    assert "other settings (dtype: 'fp32' -> 'bf16'); rerun" in err[-1]
    study = optuna.load_study(study_name="s", storage=spec.storage_url)
    assert n_finished(study) == 2


def test_a_worker_of_another_dtype_is_refused_before_loading(
    tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tiny_folder, tmp_path, trials=2, warm_start=False, device="cpu")
    find(spec)

    def no_load(*_a: Any, **_k: Any) -> None:
        raise AssertionError("the model was loaded before the settings were checked")

    monkeypatch.setattr("frontier.search.context.load_model", no_load)
    with pytest.raises(FrontierError, match=r"dtype: 'fp32' -> 'fp16'.*--device/--dtype"):
        worker("s", spec.storage_url, dtype="fp16")
    with (
        pytest.raises(FrontierError, match="no CUDA GPU")
        if not torch.cuda.is_available()
        else (pytest.raises(FrontierError, match="device: 'cpu' -> 'cuda'"))
    ):
        worker("s", spec.storage_url, device="cuda:0")


def test_a_trial_out_of_memory_fails_alone_and_leaves_the_model_whole(
    tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = build_context(_spec(tiny_folder, tmp_path, device="cpu"))
    before = {k: v.clone() for k, v in ctx.lm.model.state_dict().items()}
    real = ctx.cheap.evaluate
    calls = {"n": 0}

    def evaluate(lm: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the second trial, with its plan applied
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(lm)

    monkeypatch.setattr(ctx.cheap, "evaluate", evaluate)
    study = optuna.create_study(directions=["minimize", "minimize"])
    for keep in (0.9, 0.5, 0.7):
        study.enqueue_trial(ctx.space.params_for(_uniform(ctx, keep)))
    study.optimize(lambda t: run_trial(ctx, t), n_trials=3, catch=(TrialFailed,))
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    reason = study.trials[1].user_attrs[ATTR_FAILED]
    assert reason.startswith("out of memory on cpu (CUDA out of memory. Tried to allocate")
    after = ctx.lm.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the plan was restored


def _uniform(ctx: Any, keep: float) -> Any:
    from frontier.pruning.plan import Plan

    return Plan.uniform(keep, ctx.pruner.full)


def test_devices_are_one_kind_and_distinct() -> None:
    assert devices.parse_devices("cuda:0, cuda:1") == ("cuda:0", "cuda:1")
    for bad, why in (
        ("cuda:0,cpu", "one kind of device"),
        ("cuda:0,cuda:0", "twice"),
        ("auto", "not auto"),
        ("", "at least one"),
        ("gpu0", "unknown device"),
    ):
        with pytest.raises(FrontierError, match=why):
            devices.parse_devices(bad)
    spec = StudySpec(study="s", storage="journal:x", trials=40, threads=3, timeout=60.0)
    cmd = devices.worker_command(spec, "cuda:1")
    assert cmd[:5] == [sys.executable, "-m", "frontier.cli", "worker", "s"]
    # the command itself runs (the end-to-end test below runs it under a wrapper)
    shown = subprocess.run([*cmd[:4], "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "usage: frontier worker" in shown.stdout, shown.stderr
    joined = " ".join(cmd)
    for part in ("--storage journal:x", "--trials 40", "--device cuda:1", "--threads 3",
                 "--timeout 60.0", "--early-stop"):  # fmt: skip
        assert part in joined
    # the early stop as find runs it, whatever the study stored
    assert "--no-early-stop" in devices.worker_command(spec.replace(early_stop=False), "cuda:1")


@pytest.mark.slow  # a whole study with a second worker process (20 s): make test-slow
def test_find_with_a_second_device_runs_a_worker_that_shares_the_study(
    tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both processes wait at a barrier before their first trial, so the worker (which
    # loads and calibrates first) gets trials on a busy machine too.
    barrier = tmp_path / "barrier"
    monkeypatch.setenv("FRONTIER_TEST_BARRIER", str(barrier))
    monkeypatch.setenv("FRONTIER_TEST_BARRIER_N", "2")
    monkeypatch.chdir(tmp_path)
    real_command = devices.worker_command
    monkeypatch.setattr(
        devices,
        "worker_command",
        lambda spec, device: [sys.executable, str(WRAPPER), *real_command(spec, device)[3:]],
    )
    real_trial = find_module.run_trial
    waited = {"done": False}

    def run_at_barrier(ctx: Any, trial: Any) -> Any:
        if not waited["done"]:
            waited["done"] = True
            barrier.mkdir(exist_ok=True)
            (barrier / "main").touch()
            deadline = time.monotonic() + 240
            while len(list(barrier.iterdir())) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
        return real_trial(ctx, trial)

    monkeypatch.setattr(find_module, "run_trial", run_at_barrier)
    spec = _spec(tiny_folder, tmp_path, trials=8, warm_start=False, device="cpu")
    result = find(spec, workers=("cpu",))
    study = result.study
    log = (tmp_path / "studies" / "logs" / "s.worker-cpu.log").read_text()
    ran = re.search(r"worker finished: ran (\d+) trial", log)
    assert ran is not None, log[-2000:]
    assert int(ran.group(1)) >= 1 and result.ran >= 1
    assert 8 <= n_finished(study) <= 9  # the total over both; one may finish its last
    assert int(ran.group(1)) + result.ran == n_finished(study)
    assert not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.FAIL)]


def test_a_bf16_studys_exports_verify_in_its_dtype(tiny_folder: Path, tmp_path: Path) -> None:
    """The export holds the weights the study measured (by default in its dtype), and
    verify measures any export in the study's dtype: an fp32 export of a bf16 study gives
    the study's figures exactly."""
    from frontier.export import read_record
    from frontier.search.export import export
    from frontier.search.verify import verify

    spec = _spec(tiny_folder, tmp_path, trials=4, dtype="bf16", device="cpu", warm_start=False)
    study = find(spec).study
    plain = export(study, None, tmp_path / "default")
    assert read_record(plain.path).dtype == "bf16"
    wide = export(study, None, tmp_path / "fp32", dtype="fp32")
    assert read_record(wide.path).dtype == "fp32"
    for result in (plain, wide):
        checked = verify(study, result.path)
        assert checked.ok, checked.checks
        assert all(c.reported == c.measured for c in checked.checks)
