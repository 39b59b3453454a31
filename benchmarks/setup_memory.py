"""Peak memory of one layer's float64 set-up, in (I+1)^2 matrices, measured on the CPU.

    python benchmarks/setup_memory.py [--width 3072] [--hidden 256]

Each case runs in a fresh process on a synthetic layer of ``--width`` neurons: its
high-water mark (``ru_maxrss``) after the set-up, minus its resident memory just before
(the Gram and the weights, made without larger temporaries), divided by one
``width^2`` float64 matrix. The cases:

- ``refit-full`` / ``refit-compact``: :class:`frontier.pruning.refit.LayerRefit` with an order
  (the factorisations a trial's refit reads; compact is a GPU's layout), the float32
  factors it keeps included;
- ``greedy``: :func:`frontier.importance._greedy.greedy_removal_rank` (the obs-greedy
  ranking).

On a GPU the Gram is copied to the device as well, one more matrix:
:data:`frontier.memory.SETUP_SQUARES` counts it. The allocator can round, so read the
figures to a tenth.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys

CASES = ("refit-full", "refit-compact", "greedy")


def _resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def measure(case: str, width: int, hidden: int) -> float:
    """The set-up's peak above its inputs, in ``width^2`` float64 matrices (this process)."""
    import torch

    from frontier.importance._greedy import greedy_removal_rank
    from frontier.pruning.refit import LayerRefit

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    low = torch.randn(width, 64, generator=gen, dtype=torch.float64)
    gram = low @ low.t() / 64
    gram.diagonal().add_(1.0)
    w = torch.randn(hidden, width, generator=gen, dtype=torch.float64)
    order = torch.randperm(width, generator=gen)
    del low
    before = _resident()
    if case == "greedy":
        greedy_removal_rank(w, gram, 0.01)
    else:
        LayerRefit(w, None, gram, 1e-2, order, compact=case == "refit-compact")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return (peak - before) / (width * width * 8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=3072)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--case", choices=CASES, default=None, help="one case, in this process")
    args = ap.parse_args()
    if args.case:
        print(f"{measure(args.case, args.width, args.hidden):.3f}")
        return
    print(f"width {args.width}, hidden {args.hidden}: peak above the inputs, in width^2 float64")
    for case in CASES:
        out = subprocess.run(
            [sys.executable, __file__, "--case", case, "--width", str(args.width)]
            + ["--hidden", str(args.hidden)],
            check=True,
            capture_output=True,
            text=True,
        )
        print(f"  {case:14s} {float(out.stdout.split()[-1]):.2f}")


if __name__ == "__main__":
    main()
