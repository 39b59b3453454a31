"""The refit's cost per layer and trial: LayerRefit.prefix at a real layer shape, against
the product with the inverse factor it replaced (2026-12-06), side by side in one run.

One layer is set up from a random positive-definite Gram (the time of a prefix depends on
the shapes alone), then every kept count of a grid is refitted both ways: ``prefix`` as it
is (a triangular solve up to half kept, the block-inverse product above) and the
earlier form (``Y[:, :n] @ Z[:n, :n]`` below half, the same product above). Both read
contiguous copies of their blocks, as they do from memory or disk.

    python benchmarks/refit_cost.py                     # Qwen2.5-1.5B's MLP: 1536 x 8960
    python benchmarks/refit_cost.py --hidden 576 --width 1536   # SmolLM2-135M's
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch


def _best(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    from frontier._tensorfile import LayerFolder
    from frontier.pruning.refit import LayerRefit

    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=1536)
    ap.add_argument("--width", type=int, default=8960)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keeps", default="0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    h, i = args.hidden, args.width
    t = time.perf_counter()
    x = torch.randn(i, 2 * h, generator=gen, dtype=torch.float64)
    gram = x @ x.t() / (2 * h)
    gram.diagonal().add_(0.1)
    w = torch.randn(h, i, generator=gen, dtype=torch.float64) / i**0.5
    order = torch.randperm(i, generator=gen)
    layer = LayerRefit(w, None, gram, 1e-2, order)
    del x, gram
    setup = time.perf_counter() - t
    z = torch.linalg.inv(layer._l.double()).float()  # the earlier factor: L^-1
    folder = LayerFolder(Path(tempfile.mkdtemp()) / "factors")  # the lean path's layer
    layer.save(folder, 0)
    disk = LayerRefit.load(folder, 0, in_memory=False)
    rows = []
    for keep in (float(k) for k in args.keeps.split(",")):
        k = max(1, round(keep * i))

        def earlier(n: int = k) -> torch.Tensor:  # reordered as prefix
            at = layer.blocks(n)  # the same blocks; the product with L^-1 for the solve
            if "_l" in at:
                cols = layer._y[:, :n].contiguous() @ z[:n, :n].contiguous()
            else:
                p = layer._p[at["_p"]].contiguous()
                cols = layer._b[:, :n].contiguous() - layer._q[at["_q"]].contiguous() @ p
            return cols[:, layer.order[:n].sort().indices]

        now = _best(lambda: layer.prefix(k), args.repeats)  # noqa: B023
        before = _best(earlier, args.repeats)
        on_disk = _best(lambda: disk.prefix(k), args.repeats)  # noqa: B023
        _, cols, _ = layer.prefix(k)
        same = float((cols - earlier()).abs().max() / cols.abs().max())
        rows.append(
            {
                "keep": keep,
                "k": k,
                "seconds": now,
                "earlier_seconds": before,
                "speedup": before / now,
                "disk_seconds": on_disk,
                "max_rel_diff": same,
            }
        )
        print(
            f"keep {keep:.2f} (k={k}): prefix {now:.3f} s, earlier {before:.3f} s, "
            f"{before / now:.2f}x; from disk {on_disk:.3f} s; largest difference "
            f"{same:.1e} of the largest weight",
            flush=True,
        )
    mean_now = sum(r["seconds"] for r in rows) / len(rows)
    mean_before = sum(r["earlier_seconds"] for r in rows) / len(rows)
    shutil.rmtree(folder.folder.parent, ignore_errors=True)
    print(
        f"{h} x {i}, {args.threads} threads: set-up {setup:.0f} s; mean over the grid "
        f"{mean_now:.3f} s a layer now, {mean_before:.3f} s before ({mean_before / mean_now:.2f}x)"
    )
    print(json.dumps({"hidden": h, "width": i, "threads": args.threads, "rows": rows}))


if __name__ == "__main__":
    main()
