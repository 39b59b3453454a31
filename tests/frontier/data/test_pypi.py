"""Fetching an sdist from a package index, offline: a local HTTP server plays the index."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from frontier.data._pypi import fetch_sdist, find_file, index_url, parse_project_page
from frontier.errors import FrontierError

PAYLOAD = b"not really a tarball, but bytes with a known digest\n" * 100
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
NAME = "demo-pkg-1.0.0.tar.gz"


class _Index(http.server.BaseHTTPRequestHandler):
    """``/simple/demo-pkg/`` as PEP 691 JSON or PEP 503 HTML, and the file itself."""

    pages: ClassVar[dict[str, tuple[str, bytes]]] = {}
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path not in self.pages:
            self.send_error(404)
            return
        content_type, body = self.pages[self.path]
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def index() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Index.requests.clear()
    _Index.pages = {"/files/aa/" + NAME: ("application/octet-stream", PAYLOAD)}
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def serve_json(sha256: str = DIGEST) -> None:
    page = {
        "files": [{"filename": NAME, "url": "../../files/aa/" + NAME, "hashes": {"sha256": sha256}}]
    }
    _Index.pages["/simple/demo-pkg/"] = (
        "application/vnd.pypi.simple.v1+json",
        json.dumps(page).encode(),
    )


def serve_html(sha256: str = DIGEST) -> None:
    body = f'<html><body><a href="/files/aa/{NAME}#sha256={sha256}">{NAME}</a></body></html>'
    _Index.pages["/simple/demo-pkg/"] = ("text/html", body.encode())


@pytest.mark.parametrize("serve", [serve_json, serve_html], ids=["json", "html"])
def test_fetches_the_file_the_index_lists_and_checks_its_digest(
    serve: object, index: str, tmp_path: Path
) -> None:
    serve()  # type: ignore[operator]
    got = fetch_sdist("Demo_Pkg", NAME, tmp_path, sha256=DIGEST, index=index)
    assert got == tmp_path / NAME and got.read_bytes() == PAYLOAD
    assert got.stat().st_mode & 0o777 == 0o666 & ~_umask()  # not mkstemp's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME]  # no temporary file left
    # Cached: the index is not asked again.
    _Index.requests.clear()
    assert fetch_sdist("demo-pkg", NAME, tmp_path, sha256=DIGEST, index=index) == got
    assert _Index.requests == []


def test_index_listing_another_digest_than_the_pinned_one_is_refused(
    index: str, tmp_path: Path
) -> None:
    serve_json(sha256="0" * 64)
    with pytest.raises(FrontierError, match="not the pinned"):
        fetch_sdist("demo-pkg", NAME, tmp_path, sha256=DIGEST, index=index)
    assert list(tmp_path.iterdir()) == []


def test_downloaded_bytes_that_do_not_match_are_never_kept(index: str, tmp_path: Path) -> None:
    serve_html(sha256="1" * 64)  # the index's own digest is wrong for the bytes it serves
    with pytest.raises(FrontierError, match="sha256"):
        fetch_sdist("demo-pkg", NAME, tmp_path, sha256=None, index=index)
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_cached_file_is_an_error_not_used(tmp_path: Path) -> None:
    (tmp_path / NAME).write_bytes(PAYLOAD[:-1])
    with pytest.raises(FrontierError, match="delete it and retry"):
        fetch_sdist("demo-pkg", NAME, tmp_path, sha256=DIGEST, index="http://127.0.0.1:9/x")


def test_missing_file_and_unreachable_index_are_one_line_errors(index: str, tmp_path: Path) -> None:
    serve_json()
    with pytest.raises(FrontierError, match=r"lists no demo-pkg-2\.0\.tar\.gz"):
        find_file("demo-pkg", "demo-pkg-2.0.tar.gz", index=index)
    with pytest.raises(FrontierError, match="cannot read the package index"):
        find_file("nothing-here", NAME, index=index)  # 404


def test_index_url_follows_pip_index_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    assert index_url() == "https://pypi.org/simple"
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    assert index_url() == "https://mirror.example/simple"


def test_html_page_parsing_resolves_relative_links_and_reads_the_digest() -> None:
    body = b'<a href="../../packages/x/bigbench-1.0.0.tar.gz#sha256=abc">bigbench-1.0.0.tar.gz</a>'
    (f,) = parse_project_page(body, "text/html", "https://pypi.org/simple/bigbench/")
    assert f.filename == "bigbench-1.0.0.tar.gz" and f.sha256 == "abc"
    assert f.url == "https://pypi.org/packages/x/bigbench-1.0.0.tar.gz"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
