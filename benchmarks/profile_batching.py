"""Where the time of R = 10 batched small nets goes: torch.profiler's self CPU time per op,
R = 10 trained together ÷ ten R = 1 fits one after another (package ``fit``, no callbacks).

    python benchmarks/profile_batching.py [--iterations 100]

A diagnostic for benchmarks/README.md ("Small-net batching"), not a timing benchmark: the
profiler adds its own overhead per op, and one pass is one sample.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

import _nets as N  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--top", type=int, default=6, help="ops listed per variant")
    a = p.parse_args(argv)
    if a.iterations < 1 or a.top < 1:
        raise SystemExit("--iterations and --top must be >= 1")
    torch.set_num_threads(1)
    its = a.iterations
    for case in (N.LINEAR256, N.CONV64):
        batched = N.package_fit(case, 10)
        singles = [N.package_fit(case, 1, [s]) for s in range(10)]
        variants = {"R = 10 batched": lambda: batched(its), "10 × R = 1": lambda: [s(its) for s in singles]}
        for f in variants.values():  # warm up (and time one pass of each)
            f()
        print(f"\n### {case.label}")
        print("| variant | ms / iteration (unprofiled) | profiled self CPU ms / iteration | op calls / iteration | "
              "top ops: self CPU ms / iteration (share) |")
        print("|---|---|---|---|---|")
        for name, f in variants.items():
            t0 = time.perf_counter()
            f()
            wall = (time.perf_counter() - t0) / its
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                f()
            ka = prof.key_averages()
            total = sum(e.self_cpu_time_total for e in ka)
            top = sorted(ka, key=lambda e: -e.self_cpu_time_total)[:a.top]
            print(f"| {name} | {wall * 1e3:.1f} | {total / its / 1e3:.1f} | {sum(e.count for e in ka) / its:.0f} | "
                  + "; ".join(f"{e.key} {e.self_cpu_time_total / its / 1e3:.1f} ({100 * e.self_cpu_time_total / total:.0f}%,"
                              f" {e.count / its:.0f} calls)" for e in top) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
