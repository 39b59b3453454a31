"""The export formats: one declarative row each.

A row says what the format is for people (the CLI's help), which plans it takes, how
its checkpoint is written (``writer``: a function named ``module:function``, imported
only when the format is written, so this module stays torch-free for the CLI), how it
is loaded back (stock transformers, or with the export's modeling file), and the line
that says so. ``gguf`` is a file for llama.cpp rather than a transformers checkpoint: its
own writer checks it in llama.cpp, and ``frontier verify`` does not reload it.

A new format: its writer module (``writer(folder, model, adapter, pruner, widths,
dtype)``, see :mod:`frontier.export._writers`) and a row in :data:`FORMATS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from frontier.errors import FrontierError
from frontier.pruning.plan import Plan


@dataclass(frozen=True)
class Format:
    """One export format.

    Attributes:
        name: what ``--format`` and ``compression.json`` call it.
        help: a clause of the CLI's ``--format`` help.
        writer: ``module:function`` writing the checkpoint's weights and config into a
            folder (None: written otherwise, ``gguf``).
        uniform_only: takes only plans with one width in every layer.
        padded: layers are zero-padded to the widest kept (the same outputs, up to
            float reduction order: checked with a looser tolerance).
        remote_code: transformers loads it with ``trust_remote_code`` (its modeling file);
            :func:`frontier.load_pruned` loads it without.
        checkpoint: a transformers checkpoint (``frontier verify`` re-measures it).
        removes_mlps: takes plans that remove a layer's whole MLP (width 0); a stock
            config has an MLP of one width in every layer.
        load_hint: how to load it, as the CLI says after writing it.
    """

    name: str
    help: str
    writer: str | None
    uniform_only: bool = False
    padded: bool = False
    remote_code: bool = False
    checkpoint: bool = True
    removes_mlps: bool = False
    load_hint: str = "load with AutoModelForCausalLM.from_pretrained(DIR)"

    def check(self, plan: Plan) -> None:
        """A one-line error where this format cannot hold ``plan``."""
        if plan.removed_layers and not self.removes_mlps:
            raise FrontierError(
                f"format {self.name} cannot remove whole MLPs (this plan removes layers "
                f"{', '.join(map(str, plan.removed_layers))}): a stock config has an MLP in "
                "every layer; use format heterogeneous or gguf"
            )
        if self.uniform_only and not plan.is_uniform:
            raise FrontierError(
                f"uniform export needs one width in every layer, this plan keeps "
                f"{min(plan.widths)} to {max(plan.widths)}; use format padded or heterogeneous"
            )

    def write(self, *args: Any) -> None:
        """Run the format's writer (see the module's docstring for its arguments)."""
        if self.writer is None:
            raise FrontierError(f"format {self.name} has no checkpoint writer")
        module, _, function = self.writer.partition(":")
        fn: Callable[..., None] = getattr(importlib.import_module(module), function)
        fn(*args)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "heterogeneous",
            "exact per-layer widths, loads with its modeling file or frontier.load_pruned",
            "frontier.export._writers:write_heterogeneous",
            remote_code=True,
            removes_mlps=True,
            load_hint="load with frontier.load_pruned(DIR), or "
            "AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)",
        ),
        Format(
            "padded",
            "stock config, layers zero-padded to the widest",
            "frontier.export._writers:write_padded",
            padded=True,
        ),
        Format(
            "uniform",
            "stock config, every layer as wide as the widest kept",
            "frontier.export._writers:write_stock",
            uniform_only=True,
        ),
        Format("gguf", "one file for llama.cpp", None, checkpoint=False, removes_mlps=True),
    )
}


def get_format(name: str) -> Format:
    """The row of ``name``, or a one-line error naming the formats."""
    try:
        return FORMATS[name]
    except KeyError:
        raise FrontierError(
            f"unknown export format {name!r}; one of {', '.join(FORMATS)}"
        ) from None


def formats_help() -> str:
    """The CLI's ``--format`` help: every format and what it is."""
    return "; ".join(f"{f.name}: {f.help}" for f in FORMATS.values())


__all__ = ["FORMATS", "Format", "formats_help", "get_format"]
