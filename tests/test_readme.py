"""The README and docs/ stay readable: a short README, closed code fences, links that resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").rglob("*.md"))
PAGES = [README, *DOCS]

MAX_README_LINES = 250
FENCE = re.compile(r"^\s*```")
# What may follow the backticks of an opening fence: a language tag (```bash, ```python).
LANGUAGE_TAG = re.compile(r"[A-Za-z0-9_+.-]*")
# [text](target) and ![alt](target); the target may carry a title ("...") after a space.
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# [label]: target
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
INLINE_CODE = re.compile(r"`[^`]*`")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _fence_problems(text: str) -> list[str]:
    """Each fence line that is malformed, and a fence left open at the end."""
    problems: list[str] = []
    open_at: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not FENCE.match(line):
            continue
        rest = line.strip()[3:].strip()
        if open_at is None:
            if not LANGUAGE_TAG.fullmatch(rest):
                problems.append(f"line {number}: text after an opening fence: {line.strip()!r}")
            open_at = number
        else:
            if rest:
                problems.append(f"line {number}: text after a closing fence: {line.strip()!r}")
            open_at = None
    if open_at is not None:
        problems.append(f"line {open_at}: fence never closed")
    return problems


def _relative_links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every relative link outside code, without its #anchor."""
    links: list[tuple[int, str]] = []
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        prose = INLINE_CODE.sub("", line)
        targets = [m.group(1) for m in INLINE_LINK.finditer(prose)]
        reference = REFERENCE_LINK.match(prose)
        if reference:
            targets.append(reference.group(1))
        for target in targets:
            if target.startswith("#") or SCHEME.match(target):
                continue
            path = target.split("#", 1)[0].split("?", 1)[0]
            if path:
                links.append((number, path))
    return links


def test_docs_exist() -> None:
    assert DOCS, "docs/ holds no Markdown pages"


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines; at most {MAX_README_LINES} (move the detail into docs/)"
    )


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_code_fences_are_closed(page: Path) -> None:
    problems = _fence_problems(page.read_text(encoding="utf-8"))
    assert not problems, f"{_name(page)}: " + "; ".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_relative_links_resolve(page: Path) -> None:
    missing = [
        f"line {number}: {target}"
        for number, target in _relative_links(page.read_text(encoding="utf-8"))
        if not (page.parent / target).exists()
    ]
    assert not missing, f"{_name(page)} links to missing files: " + "; ".join(missing)


def test_fence_check_catches_text_after_a_fence() -> None:
    assert _fence_problems("```bash\nmake demo\n```\n") == []
    assert _fence_problems("```python\nx = 1\n``` The model comes from PyPI\n")
    assert _fence_problems("```\nopen\n")
    assert _fence_problems("``` not a tag\n```\n")


def test_link_check_reads_relative_targets_only() -> None:
    text = (
        "[a](docs/a.md#part) ![b](img.png) [c](https://example.org) [d](#anchor)\n"
        "`[e](in-code.md)`\n```\n[f](in-fence.md)\n```\n[g]: ref.md\n"
    )
    assert _relative_links(text) == [(1, "docs/a.md"), (1, "img.png"), (6, "ref.md")]
