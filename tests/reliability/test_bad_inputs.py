"""Bad input gets one line on stderr (``error: ...``), a non-zero exit, no traceback, and
never costs a study what it already stored.

Every ``find`` row below points at an existing study with finished trials, so a failing
command that damaged it would show.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from frontier.cli import main
from frontier.search.storage import finished, n_finished
from frontier.testing import SMALL_STUDY_FLAGS, tiny_config, tiny_model, tiny_tokenizer

STORED = 3  # finished trials of the study every row points at


@dataclass(frozen=True)
class Inputs:
    """Paths the rows refer to (built once for the module)."""

    root: Path
    model: Path  # the tiny random llama the stored study was made with
    other_model: Path  # same family, other weights
    mixtral: Path  # a mixture-of-experts config: unsupported
    no_layers: Path  # a supported type with zero decoder layers: no MLP at all
    not_a_model: Path  # a text file
    empty_dir: Path
    home: Path  # FRONTIER_HOME the stored study was made in (its importance cache)
    db: Path  # the stored study "s"

    def url(self, db: Path | None = None) -> str:
        return f"sqlite:///{db or self.db}"


@pytest.fixture(scope="module")
def inputs(tiny_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    from transformers import AutoModelForCausalLM, MixtralConfig

    root = tmp_path_factory.mktemp("bad-inputs")
    other = root / "other-llama"
    tiny_model("llama", seed=1).save_pretrained(other)
    tiny_tokenizer().save_pretrained(other)
    mixtral = root / "tiny-mixtral"
    MixtralConfig(
        vocab_size=320,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ).save_pretrained(mixtral)
    no_layers = root / "no-layers"
    config = tiny_config("llama")
    config.num_hidden_layers = 0
    AutoModelForCausalLM.from_config(config).save_pretrained(no_layers)
    tiny_tokenizer().save_pretrained(no_layers)
    text = root / "notes.txt"
    text.write_text("not a model\n")
    (root / "empty").mkdir()
    (root / "taken").mkdir()
    (root / "taken" / "keep.txt").write_text("someone's file\n")
    inp = Inputs(root, tiny_folder, other, mixtral, no_layers, text, root / "empty",
                 root / "home", root / "s.db")  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRONTIER_HOME", str(inp.home))
        mp.setenv("FRONTIER_THREADS", "1")
        mp.chdir(root)  # find's report goes to ./studies/results, not into the repository
        argv = ["find", "--model", str(tiny_folder), "--slo", "ppl<1.5", "--trials", str(STORED)]
        assert main([*argv, *SMALL_STUDY_FLAGS, "--storage", inp.url(), "--study", "s"]) == 0
    return inp


@pytest.fixture
def db(inputs: Inputs, tmp_path: Path, home: Path) -> Path:
    """This test's copy of the stored study (rows must not see each other's changes)."""
    copy = tmp_path / "s.db"
    shutil.copy(inputs.db, copy)
    return copy


def _stored(db: Path, study: str = "s") -> dict[int, Any]:
    s = optuna.load_study(study_name=study, storage=f"sqlite:///{db}")
    return {t.number: (t.state, t.params, t.values) for t in s.get_trials() if finished(t)}


def _find(i: Inputs, db: Path, model: Path | str, *extra: str, trials: int = 2) -> list[str]:
    return ["find", "--model", str(model), "--trials", str(trials), *SMALL_STUDY_FLAGS, *extra,
            "--study", "s", "--storage", i.url(db)]  # fmt: skip


@dataclass(frozen=True)
class Row:
    name: str
    argv: Callable[[Inputs, Path], list[str]]
    says: str  # in the one-line error


ROWS = [
    Row(
        "unknown hub id, offline",
        lambda i, db: _find(i, db, "nosuch-org/nosuch-model", "--slo", "ppl<1.5"),
        "cannot load hub model 'nosuch-org/nosuch-model': the hub is offline",
    ),
    Row(
        "a file that is not a model",
        lambda i, db: _find(i, db, i.not_a_model, "--slo", "ppl<1.5"),
        "notes.txt: not a model",
    ),
    Row(
        "a folder that is not a model",
        lambda i, db: _find(i, db, i.empty_dir, "--slo", "ppl<1.5"),
        "folder has no config.json",
    ),
    Row(
        "unsupported architecture (mixtral)",
        lambda i, db: _find(i, db, i.mixtral, "--slo", "ppl<1.5"),
        "unsupported architecture 'mixtral' (mixture-of-experts MLPs are not supported)",
    ),
    Row(
        "no MLP to prune (zero decoder layers)",
        lambda i, db: _find(i, db, i.no_layers, "--slo", "ppl<1.5"),
        "no MLP to prune",
    ),
    Row(
        "malformed SLO",
        lambda i, db: _find(i, db, i.model, "--slo", "ppl<<1.5"),
        "SLO 'ppl<<1.5': threshold '<1.5' is not a number",
    ),
    Row(
        "SLO in the wrong direction",
        lambda i, db: _find(i, db, i.model, "--slo", "params>=80%"),
        "params is an upper bound",
    ),
    Row(
        "contradictory SLO pair",
        lambda i, db: _find(i, db, i.model, "--slo", "ppl<1.5", "--slo", "ppl<=2"),
        "conflicting SLOs 'ppl<1.5' and 'ppl<=2'",
    ),
    Row(
        "unknown task",
        lambda i, db: _find(i, db, i.model, "--slo", "ppl<1.5", "--tasks", "arc_esy"),
        "unknown task(s) arc_esy; available offline: arc_easy",
    ),
    Row(
        "check text that cannot be read",
        lambda i, db: [
            *_find(i, db, i.model, "--slo", "ppl<1.5"),
            "--check-text",
            f"file:{i.root / 'absent.txt'}",
        ],
        "cannot read text file",
    ),
    Row(
        "unknown check text source",
        lambda i, db: [*_find(i, db, i.model, "--slo", "ppl<1.5"), "--check-text", "c4"],
        "unknown text source 'c4'; use wiki-sample, file:PATH or hf:NAME[:CONFIG]",
    ),
    Row(
        "study name reused with another model",
        lambda i, db: _find(i, db, i.other_model, "--slo", "ppl<1.5", trials=5),
        "study 's' was made with other settings (model: ",
    ),
    Row(
        "study reused with another SLO-independent setting (seq len)",
        lambda i, db: [*_find(i, db, i.model, "--slo", "ppl<1.5", trials=5), "--seq-len", "32"],
        "seq_len: 64 -> 32",
    ),
    Row(
        "unreachable storage (find)",
        lambda i, db: [
            *_find(i, db, i.model, "--slo", "ppl<1.5")[:-2],
            "--storage",
            "postgresql://u:p@127.0.0.1:1/x",
        ],
        "cannot open storage postgresql://***@127.0.0.1:1/x: ",
    ),
    Row(
        "unreachable storage (worker)",
        lambda i, db: ["worker", "s", "--storage", "postgresql://u:p@127.0.0.1:1/x"],
        "cannot open storage postgresql://***@127.0.0.1:1/x: ",
    ),
    Row(
        "export into a folder that is not empty",
        lambda i, db: ["export", "s", "0", "--out", str(i.root / "taken"), "--storage", i.url(db)],
        "taken is not empty; choose another folder or force overwriting",
    ),
    Row(
        "unknown study (pareto)",
        lambda i, db: ["pareto", "nosuch", "--storage", i.url(db)],
        "no study 'nosuch' in sqlite:///",
    ),
    Row(
        "study database that does not exist (pareto): not created",
        lambda i, db: ["pareto", "nosuch", "--storage", f"sqlite:///{i.root / 'absent.db'}"],
        "absent.db does not exist",
    ),
    Row(
        "unknown trial (show)",
        lambda i, db: ["show", "s", "99", "--storage", i.url(db)],
        "study 's' has no trial 99 (trials 0..",
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_bad_input_is_one_line_error(
    row: Row, inputs: Inputs, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _stored(db)
    assert len(before) == STORED
    rc = main(row.argv(inputs, db))
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 2, err
    assert len(errors) == 1 and row.says in errors[0], err
    assert "Traceback" not in err
    assert "u:p@" not in err  # a password is never printed
    assert _stored(db) == before  # nothing stored was lost or changed
    assert (inputs.root / "taken" / "keep.txt").read_text() == "someone's file\n"
    assert not (inputs.root / "absent.db").exists()  # a mistyped storage creates nothing


def test_debug_shows_the_traceback(inputs: Inputs, db: Path) -> None:
    with pytest.raises(Exception, match="unsupported architecture"):
        main(["--debug", *_find(inputs, db, inputs.mixtral, "--slo", "ppl<1.5")])


def test_unsatisfiable_slo_exits_3_with_nearest_trial(
    inputs: Inputs, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # with every layer kept at >= 20% of its MLP, no plan gets to 5% of all parameters
    argv = _find(inputs, db, inputs.model, "--slo", "params<=5%", trials=3)
    argv[argv.index("--study") + 1] = "tiny5"
    assert main(argv) == 3
    out = capsys.readouterr().out
    assert "no trial meets every SLO" in out and "nearest: trial" in out
    assert n_finished(optuna.load_study(study_name="tiny5", storage=inputs.url(db))) == 3


@pytest.mark.parametrize("kind", ["statistics", "scores"])
def test_corrupted_importance_cache_warns_and_recovers(
    inputs: Inputs, db: Path, home: Path, cli: Any, kind: str
) -> None:
    shutil.copytree(inputs.home / "importance", home / "importance")
    (cache,) = [
        p
        for p in (home / "importance").glob("*.safetensors")
        if not p.name.endswith(".gram.safetensors")
        and p.name.endswith(".scores.safetensors") == (kind == "scores")
    ]
    good = cache.read_bytes()
    cache.write_bytes(good[: len(good) // 3])  # e.g. a disk that filled up mid-write
    before = _stored(db)
    p = cli.run(_find(inputs, db, inputs.model, "--slo", "ppl<1.5", trials=STORED + 1))
    assert p.popen.returncode == 0, p.stderr[-3000:]
    warnings = [line for line in p.stderr.splitlines() if "corrupted importance cache" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: "), p.stderr
    assert "Traceback" not in p.stderr
    after = _stored(db)
    assert len(after) == STORED + 1 and all(after[n] == v for n, v in before.items())
    assert cache.read_bytes() == good  # recomputed: the same scores as before


def test_nan_trial_fails_with_reason_and_study_goes_on(
    inputs: Inputs,
    db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import dataclasses

    import frontier.search.trial as trial_module
    from objectives.perplexity import Perplexity

    bad = 1  # this trial's perplexity comes out NaN
    current: list[int] = []
    real_plan_for, real_evaluate = trial_module.plan_for, Perplexity.evaluate

    def plan_for(ctx: Any, trial: optuna.Trial) -> Any:
        current[:] = [trial.number]
        return real_plan_for(ctx, trial)

    def evaluate(self: Perplexity, lm: Any) -> Any:
        m = real_evaluate(self, lm)
        return dataclasses.replace(m, value=math.nan) if current == [bad] else m

    monkeypatch.setattr(trial_module, "plan_for", plan_for)
    monkeypatch.setattr(Perplexity, "evaluate", evaluate)
    argv = _find(inputs, db, inputs.model, "--slo", "ppl<1.5", trials=4)
    argv[argv.index("--study") + 1] = "nan"
    assert main(argv) == 0
    err = capfd.readouterr().err
    assert "Traceback" not in err
    study = optuna.load_study(study_name="nan", storage=inputs.url(db))
    trials = study.get_trials()
    failed = trials[bad]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["frontier:failed"] == "ppl is NaN"
    assert finished(failed)  # its budget is spent: a NaN plan is not retried forever
    later = [t for t in trials[bad + 1 :] if finished(t)]
    assert later and all(t.state == TrialState.COMPLETE for t in later)  # it went on
    assert n_finished(study) == 4
    assert bad not in {t.number for t in study.best_trials}
