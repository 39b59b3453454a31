"""The lean path's read-ahead, measured at a real layer shape: Refitter.weights over N
layers whose factors are on disk and not in the page cache, reading each layer's blocks
in turn (serial) against reading the next layer's while one is refitted (prefetch), side
by side in one run.

One layer's factors are made, ``--factors random`` (the default, seconds): random
well-conditioned float32 factors of the real shapes (``L`` lower-triangular with a unit
diagonal and small entries below it), or ``--factors real`` (about 100 s and 4 GB at
1.5B): set up from a random positive-definite Gram, as ``benchmarks/refit_cost.py``
does; the time of a prefix depends on the shapes alone. They are saved as the lean
path saves a layer, and copied to N layer files (about 0.35 GB each at Qwen2.5-1.5B's
shape: N=4 is 1.4 GB, in a temporary folder deleted at the end). Before each cold pass
every file is dropped from the page cache (``posix_fadvise(DONTNEED)``; the run first
shows it works, timing one factor read cold and again warm). Each keep ratio is timed
warm (the compute alone), cold serial and cold with the read-ahead, every layer at that
ratio.

    python benchmarks/refit_prefetch.py                 # Qwen2.5-1.5B's MLP: 1536 x 8960, N=4
    python benchmarks/refit_prefetch.py --hidden 576 --width 1536 --layers 8  # SmolLM2's
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch


def _drop(paths: list[Path]) -> None:
    """Drop the files' pages from the page cache (they are written and synced: clean)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _random_factors(
    h: int, i: int, order: torch.Tensor, gen: torch.Generator
) -> dict[str, torch.Tensor]:
    """A layer file as LayerRefit.save writes one (no bias, not compact), its factors
    random and well conditioned: what a prefix reads and solves with has the real shapes."""
    from frontier.pruning.refit import FACTOR_FORMAT, product_from

    s = product_from(i, compact=False)  # the blocks a layer keeps: L, Y to s - 1; P, Q from s
    lower = torch.randn(s - 1, s - 1, generator=gen).tril_(-1).div_(i)
    lower.diagonal().fill_(1.0)
    meta = [i, 0, 0, 1e-2, 1e-2, 1.0, FACTOR_FORMAT]
    return {
        "_y": torch.randn(h, s - 1, generator=gen),
        "_l": lower,
        "_b": torch.randn(h, i, generator=gen),
        "_q": torch.randn(h, i - s, generator=gen),
        "_p": torch.randn(i - s, i, generator=gen).div_(i),
        "order": order,
        "meta": torch.tensor(meta, dtype=torch.float64),
    }


def main() -> None:
    from frontier._tensorfile import LayerFolder
    from frontier.arch import WeightLayout
    from frontier.pruning.placement import Refitter
    from frontier.pruning.refit import LayerRefit

    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=1536)
    ap.add_argument("--width", type=int, default=8960)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keeps", default="0.3,0.5,0.7")
    ap.add_argument("--dir", default=None, help="where the temporary factor files go")
    ap.add_argument("--factors", choices=["random", "real"], default="random")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    h, i = args.hidden, args.width
    print(f"load average (1, 5, 15 min) at the start: {os.getloadavg()}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="refit-prefetch-", dir=args.dir))
    try:
        gen = torch.Generator().manual_seed(0)
        t = time.perf_counter()
        order = torch.randperm(i, generator=gen)
        folder = LayerFolder(root / "factors")
        folder.folder.mkdir(parents=True)
        if args.factors == "real":
            x = torch.randn(i, 2 * h, generator=gen, dtype=torch.float64)
            gram = x @ x.t() / (2 * h)
            gram.diagonal().add_(0.1)
            w = torch.randn(h, i, generator=gen, dtype=torch.float64) / i**0.5
            layer = LayerRefit(w, None, gram, 1e-2, order)
            del x, gram, w
            layer.save(folder, 0)
            del layer
        else:
            folder.write(0, _random_factors(h, i, order, gen))
        setup = time.perf_counter() - t
        paths = [folder.path(0)]
        for n in range(1, args.layers):  # the same factors in N files: N layers' reads
            shutil.copyfile(folder.path(0), folder.path(n))
            paths.append(folder.path(n))
        _drop(paths)  # syncs the copies, so that their pages can be dropped
        size = sum(p.stat().st_size for p in paths)
        print(
            f"{h} x {i}, {args.factors} factors: made in {setup:.0f} s; {args.layers} layer "
            f"files of {size / args.layers / 1e9:.2f} GB ({size / 1e9:.2f} GB) in {root}",
            flush=True,
        )

        # the page-cache drop works: one factor read cold, then warm
        f = folder.file(0)
        mb = f.shape("_l")[0] * f.shape("_l")[1] * 4 / 1e6
        _drop(paths)
        t = time.perf_counter()
        f.read("_l")
        cold = time.perf_counter() - t
        t = time.perf_counter()
        f.read("_l")
        warm = time.perf_counter() - t
        print(
            f"read of L ({mb:.0f} MB): cold {cold:.2f} s ({mb / cold:.0f} MB/s), warm "
            f"{warm:.2f} s ({mb / warm:.0f} MB/s)",
            flush=True,
        )

        refitter = Refitter(
            [LayerRefit.load(folder, n, in_memory=False) for n in range(args.layers)]
        )
        downs = [SimpleNamespace(weight=torch.empty(0))] * args.layers  # float32, CPU
        rows = []
        for keep in (float(k) for k in args.keeps.split(",")):
            k = max(1, round(keep * i))
            kept = [order[:k].sort().values] * args.layers

            def run(prefetch: bool, kept: list[torch.Tensor] = kept) -> float:
                t = time.perf_counter()
                refitter.weights(kept, downs, WeightLayout.LINEAR, prefetch=prefetch)
                return (time.perf_counter() - t) / args.layers

            run(False)  # warm the files, and the first call's allocations
            warm_s = statistics.median(run(False) for _ in range(args.repeats))
            serial, ahead = [], []
            for rep in range(args.repeats):  # alternated, each pass cold
                for prefetch in (False, True) if rep % 2 == 0 else (True, False):
                    _drop(paths)
                    (ahead if prefetch else serial).append(run(prefetch))
            row = {
                "keep": keep,
                "k": k,
                "warm_serial_s_per_layer": warm_s,
                "cold_serial_s_per_layer": statistics.median(serial),
                "cold_prefetch_s_per_layer": statistics.median(ahead),
                "cold_serial_all": serial,
                "cold_prefetch_all": ahead,
            }
            row["ratio"] = row["cold_prefetch_s_per_layer"] / row["cold_serial_s_per_layer"]
            rows.append(row)
            print(
                f"keep {keep:.2f} (k={k}): warm {warm_s:.3f} s/layer; cold serial "
                f"{row['cold_serial_s_per_layer']:.3f}, cold prefetch "
                f"{row['cold_prefetch_s_per_layer']:.3f} s/layer; prefetch/serial "
                f"{row['ratio']:.2f}",
                flush=True,
            )
        print()
        print("| keep | k | warm s/layer | cold serial s/layer | cold prefetch s/layer | ratio |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['keep']:.2f} | {r['k']} | {r['warm_serial_s_per_layer']:.3f} | "
                f"{r['cold_serial_s_per_layer']:.3f} | {r['cold_prefetch_s_per_layer']:.3f} | "
                f"{r['ratio']:.2f} |"
            )
        mean = {
            key: statistics.mean(r[key] for r in rows)
            for key in (
                "warm_serial_s_per_layer",
                "cold_serial_s_per_layer",
                "cold_prefetch_s_per_layer",
            )
        }
        ratio = mean["cold_prefetch_s_per_layer"] / mean["cold_serial_s_per_layer"]
        print(
            "mean over the keeps: "
            + ", ".join(f"{key} {v:.3f}" for key, v in mean.items())
            + f"; prefetch/serial {ratio:.2f}"
        )
        print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
        print(
            json.dumps(
                {
                    "hidden": h,
                    "width": i,
                    "layers": args.layers,
                    "factors": args.factors,
                    "threads": args.threads,
                    "file_bytes": size,
                    "cold_read_s": cold,
                    "warm_read_s": warm,
                    "rows": rows,
                    "mean": mean,
                }
            )
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
