"""Mutation testing of the modules that decide results, one mutmut run per module.

Each module is mutated in its own copy of the working tree (``.mutation/NAME/``) and only
the few test files that cover it run against each mutant (mutmut then narrows that to the
tests that reach the mutated function). Slow: run it apart from CI, with ``make mutation``.

    python tools/mutation.py                 # every module
    python tools/mutation.py find kl         # some of them
    python tools/mutation.py --list          # the module -> tests map

Prints, and writes to ``.mutation/summary.json``, the killed / surviving count per module
and the names of the survivors (``mutmut show NAME`` in that module's folder shows one).
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"


@dataclass(frozen=True)
class Target:
    source: str  # the file(s) mutmut mutates (a glob)
    functions: tuple[str, ...]  # mutant-name globs: the functions that decide results
    tests: tuple[str, ...]  # the test files that cover them


def _in(module: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{module}.{n}__mutmut_*" for n in names)


TARGETS: dict[str, Target] = {
    "find": Target(
        "frontier/search/find.py",
        _in("frontier.search.find", "x_finalize", "x__evenly_spaced"),
        (
            "tests/frontier/search/test_choose.py",
            "tests/frontier/search/test_find.py::"
            "test_a_trial_feasible_at_search_but_not_held_out_is_never_chosen",
        ),
    ),
    "choose": Target(
        "frontier/study/*.py",
        (
            *_in("frontier.study.read", "x_choose", "x_final_record", "x_nearest_trial"),
            *_in("frontier.study.verdicts", "x_ranked_by_nearness", "x_nearest"),
        ),
        ("tests/frontier/search/test_choose.py",),
    ),
    "perplexity": Target(
        "objectives/perplexity.py",
        ("objectives.perplexity.*",),
        (
            "tests/objectives/test_reference.py",
            "tests/objectives/test_protocols.py",
            "tests/objectives/test_lm.py",
            "tests/objectives/test_contract.py",
        ),
    ),
    "lm": Target(
        "objectives/_lm.py",
        ("objectives._lm.*",),
        (
            "tests/objectives/test_lm.py",
            "tests/objectives/test_reference.py",
            "tests/objectives/test_contract.py",
        ),
    ),
    "kl": Target(
        "objectives/kl.py",
        ("objectives.kl.*",),
        (
            "tests/objectives/test_reference.py",
            "tests/objectives/test_protocols.py",
            "tests/objectives/test_lm.py",
            "tests/objectives/test_contract.py",
        ),
    ),
    "slo": Target(
        "frontier/study/*.py",
        ("frontier.study.slo.*", "frontier.study.measured.*"),
        ("tests/frontier/study/test_slo.py", "tests/frontier/study/test_slo_baselines.py"),
    ),
    "paired": Target(
        "frontier/stats.py",
        ("frontier.stats.*",),
        ("tests/frontier/test_stats.py", "tests/frontier/study/test_slo.py"),
    ),
    "criteria": Target(
        "frontier/importance/_criteria.py",
        ("frontier.importance._criteria.*",),
        (
            "tests/frontier/importance/test_criteria.py",
            "tests/frontier/importance/test_importance.py",
        ),
    ),
    "greedy": Target(
        "frontier/importance/_greedy.py",
        ("frontier.importance._greedy.*",),
        (
            "tests/frontier/importance/test_greedy.py",
            "tests/frontier/importance/test_criteria.py",
        ),
    ),
    "stats": Target(
        "frontier/importance/_stats.py",
        ("frontier.importance._stats.*",),
        (
            "tests/frontier/importance/test_criteria.py",
            "tests/frontier/importance/test_importance.py",
        ),
    ),
    "surgery": Target(
        "frontier/pruning/surgery.py",
        ("frontier.pruning.surgery.*",),
        ("tests/frontier/pruning/test_surgery.py",),
    ),
    "laws": Target(
        "frontier/laws/*.py",
        ("frontier.laws.*",),
        (
            "tests/frontier/laws/test_laws.py",
            "tests/frontier/laws/test_laws_limits.py",
            "tests/frontier/laws/test_laws_exact.py",
        ),
    ),
}

_RESULT = re.compile(r"^\s*(\S+__mutmut_\d+): (.+)$")


def _copy_tree(dest: Path) -> None:
    """Tracked and untracked-but-not-ignored files of the working tree."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    if dest.exists():
        shutil.rmtree(dest)
    for name in files:
        src = ROOT / name
        if not src.is_file() or name.startswith(("studies/results/", ".mutation/")):
            continue
        out = dest / name
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out)


def undecorate(source: str) -> str:
    """Top-level ``@deco def f`` as ``def f`` then ``f = deco(f)``: the same module.

    mutmut does not mutate decorated functions (the criteria are registered by a
    decorator, the forward passes run under ``torch.inference_mode()``), so the copy it
    mutates applies those decorators after the definition instead.
    """
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, int, str]] = []  # (first decorator line, def line, end, text)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.decorator_list:
            decorators = [ast.get_source_segment(source, d) for d in node.decorator_list]
            applied = node.name
            for d in reversed(decorators):
                applied = f"({d})({applied})"
            first = min(d.lineno for d in node.decorator_list) - 1  # the "@" line, 0-based
            assert node.end_lineno is not None
            edits.append((first, node.lineno - 1, node.end_lineno, f"{node.name} = {applied}\n"))
    for first, def_line, end, text in reversed(edits):
        lines[end:end] = ["\n", text]
        del lines[first:def_line]
    return "".join(lines)


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def _configure(dest: Path, target: Target) -> list[str]:
    tests = [t for t in target.tests if (dest / t.split("::")[0]).is_file()]
    if not tests:
        raise SystemExit(f"none of {target.tests} exists")
    with (dest / "pyproject.toml").open("a") as f:
        f.write(
            "\n[tool.mutmut]\n"
            'source_paths = ["frontier", "objectives"]\n'
            f"only_mutate = {_toml_list([target.source])}\n"
            f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n"
            'pytest_add_cli_args = ["-x", "-q", "--hypothesis-profile=slow-machine"]\n'
            "use_git_change_detection = false\n"
        )
    return tests


def _results(dest: Path) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=dest,
        capture_output=True,
        text=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        m = _RESULT.match(line)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


def run_target(name: str, target: Target, children: int) -> dict[str, object]:
    dest = WORK / name
    _copy_tree(dest)
    tests = _configure(dest, target)
    for source in dest.glob(target.source):
        source.write_text(undecorate(source.read_text()))
    env = {**os.environ, "FRONTIER_THREADS": "1", "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)  # mutmut puts its mutants/ folder first itself
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(children)]
    print(f"== {name}: {target.source} against {' '.join(tests)}", flush=True)
    with (WORK / f"{name}.log").open("w") as log:  # mutmut's progress display
        subprocess.run(
            [*cmd, *target.functions], cwd=dest, env=env, check=False, stdout=log, stderr=log
        )
    results = {
        k: v
        for k, v in _results(dest).items()
        if any(fnmatch.fnmatch(k, p) for p in target.functions)
    }
    killed = sum(v == "killed" for v in results.values())
    survivors = sorted(k for k, v in results.items() if v != "killed")
    total = len(results)
    rate = len(survivors) / total if total else 0.0
    print(f"== {name}: {total} mutants, {killed} killed, {len(survivors)} not ({rate:.1%})")
    for s in survivors:
        print(f"   {s}: {results[s]}")
    return {
        "source": target.source,
        "tests": tests,
        "total": total,
        "killed": killed,
        "survived": len(survivors),
        "survival_rate": rate,
        "survivors": {s: results[s] for s in survivors},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("modules", nargs="*", help=f"some of: {', '.join(TARGETS)}")
    p.add_argument("--children", type=int, default=1, help="parallel mutants (default 1)")
    p.add_argument("--list", action="store_true", help="print the module -> tests map")
    p.add_argument(
        "--tests", nargs="+", default=None, help="other test files/ids (one module only)"
    )
    args = p.parse_args(argv)
    unknown = [m for m in args.modules if m not in TARGETS]
    if unknown:
        p.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    if args.list:
        for name, t in TARGETS.items():
            print(f"{name:11} {t.source:34} {' '.join(t.tests)}")
        return 0
    targets = dict(TARGETS)
    if args.tests:
        if len(args.modules) != 1:
            p.error("--tests needs exactly one module")
        targets[args.modules[0]] = replace(targets[args.modules[0]], tests=tuple(args.tests))
    WORK.mkdir(exist_ok=True)
    summary_path = WORK / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    for name in args.modules or list(TARGETS):
        summary[name] = run_target(name, targets[name], args.children)
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
