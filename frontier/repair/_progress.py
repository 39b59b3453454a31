"""Progress of a repair: a rich bar on a terminal, plain lines otherwise, nothing in tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from frontier.repair._loss import HeldOut


class Reporter(Protocol):
    def start(self, total_steps: int, data: dict[str, Any]) -> None: ...
    def step(self, step: int, loss: float, tokens_per_s: float) -> None: ...
    def evaluated(self, step: int, heldout: HeldOut, improved: bool) -> None: ...
    def finish(self, kept_step: int, reason: str) -> None: ...


class SilentReporter:
    def start(self, total_steps: int, data: dict[str, Any]) -> None:
        pass

    def step(self, step: int, loss: float, tokens_per_s: float) -> None:
        pass

    def evaluated(self, step: int, heldout: HeldOut, improved: bool) -> None:
        pass

    def finish(self, kept_step: int, reason: str) -> None:
        pass


def _held(step: int, h: HeldOut, improved: bool) -> str:
    mark = "best" if improved else "no better"
    return f"held-out at step {step}: loss {h.loss:.4f} (kl {h.kl:.4f}, ce {h.ce:.4f}) {mark}"


def _start(total: int, data: dict[str, Any]) -> str:
    return (
        f"repair: up to {total} steps on {data['train_tokens']:,} calibration tokens "
        f"({data['train_documents']} documents); held-out slice {data['heldout_tokens']:,} "
        f"tokens ({data['heldout_documents']} other documents)"
    )


class PlainReporter:
    """One line every ``every`` steps and at every held-out evaluation (logs, CI)."""

    def __init__(self, say: Callable[[str], None] = print, every: int = 10) -> None:
        self.say = say
        self.every = every
        self.total = 0

    def start(self, total_steps: int, data: dict[str, Any]) -> None:
        self.total = total_steps
        self.say(_start(total_steps, data))

    def step(self, step: int, loss: float, tokens_per_s: float) -> None:
        if step % self.every == 0 or step == 1:
            self.say(f"step {step}/{self.total}: loss {loss:.4f}, {tokens_per_s:,.0f} tokens/s")

    def evaluated(self, step: int, heldout: HeldOut, improved: bool) -> None:
        self.say(_held(step, heldout, improved))

    def finish(self, kept_step: int, reason: str) -> None:
        kept = "the pruned weights (rolled back)" if kept_step == 0 else f"step {kept_step}"
        self.say(f"repair stopped ({reason}); kept {kept}")


class RichReporter(PlainReporter):
    """A progress bar with the loss and tokens/s; held-out evaluations print above it."""

    def __init__(self, console: Any) -> None:
        super().__init__(console.print)
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(
            TextColumn("repair"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  {task.fields[speed]} tok/s"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task: Any = None

    def start(self, total_steps: int, data: dict[str, Any]) -> None:
        super().start(total_steps, data)
        self.task = self.bar.add_task("repair", total=total_steps, loss="-", speed="-")
        self.bar.start()

    def step(self, step: int, loss: float, tokens_per_s: float) -> None:
        self.bar.update(self.task, completed=step, loss=f"{loss:.4f}", speed=f"{tokens_per_s:,.0f}")

    def evaluated(self, step: int, heldout: HeldOut, improved: bool) -> None:
        self.bar.console.print(_held(step, heldout, improved))

    def finish(self, kept_step: int, reason: str) -> None:
        self.bar.stop()
        super().finish(kept_step, reason)


def reporter_for(console: Any) -> Reporter:
    """A rich bar on a terminal, plain lines when output is redirected."""
    return RichReporter(console) if console.is_terminal else PlainReporter(console.print)
