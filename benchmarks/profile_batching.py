"""Where the time of R = 10 batched small nets goes: torch.profiler's self CPU time per op,
R = 10 trained together ÷ ten R = 1 fits one after another (package ``fit``, no callbacks).

    python benchmarks/profile_batching.py [--iterations 100] [--runs-sweep 1,2,5,10,20,40]

A diagnostic for benchmarks/README.md ("Small-net batching"), not a timing benchmark: the
profiler adds its own overhead per op, and one pass is one sample. The second table times
(interleaved, unprofiled) R runs batched ÷ R runs one after another for several R next to the
bytes of optimiser state the batched step streams (parameters, gradients and Adam's two
moments, 16 bytes a parameter) and this machine's cache sizes: where the ratio turns up as
that state outgrows a cache, the floor is memory, not the code.
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
from _harness import interleave  # noqa: E402


def cache_sizes() -> dict[str, str]:
    """Cache sizes of CPU 0 as Linux reports them (``L1d``, ``L2``, ``L3``; empty elsewhere)."""
    out = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind = (index / "level").read_text().strip(), (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if kind != "Instruction":
            out[f"L{level}" + ("d" if kind == "Data" else "")] = size
    return out


def runs_sweep(case: N.Case, runs: list[int], iterations: int, rounds: int = 5) -> None:
    """R batched ÷ R sequential per iteration, interleaved, with the batched state's size."""
    params = sum(p.numel() for p in N.package_net(case, 1)[0].parameters())
    print(f"\n### {case.label}: R batched ÷ R one after another ({params:,} parameters a run; "
          f"caches {', '.join(f'{k} {v}' for k, v in cache_sizes().items()) or 'unknown'})")
    print("| R | state of the batched step (16 B / parameter) | batched ms / iteration | sequential ms / iteration "
          "| ratio [range] |")
    print("|---|---|---|---|---|")
    for r in runs:
        batched = N.package_fit(case, r)
        singles = [N.package_fit(case, 1, [s]) for s in range(r)]
        s = interleave({"batched": lambda: batched(iterations), "sequential": lambda: [f(iterations) for f in singles]},
                       rounds, units={"batched": iterations, "sequential": iterations})
        med, lo, hi = s.ratio("batched", "sequential")
        print(f"| {r} | {16 * params * r / 2**20:.1f} MiB | {s.median('batched') * 1e3:.2f} | "
              f"{s.median('sequential') * 1e3:.2f} | {med:.2f} [{lo:.2f}–{hi:.2f}] |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--top", type=int, default=6, help="ops listed per variant")
    p.add_argument("--runs-sweep", default="1,2,5,10,20,40", metavar="R,R,...",
                   help="R of the batched ÷ sequential table ('' skips it)")
    a = p.parse_args(argv)
    if a.iterations < 1 or a.top < 1:
        raise SystemExit("--iterations and --top must be >= 1")
    try:
        sweep = [int(r) for r in a.runs_sweep.split(",") if r.strip()]
    except ValueError:
        raise SystemExit(f"--runs-sweep takes comma-separated integers, got {a.runs_sweep!r}") from None
    if any(r < 1 for r in sweep):
        raise SystemExit("--runs-sweep: every R must be >= 1")
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
    for case in (N.LINEAR256, N.CONV64):
        if sweep:
            runs_sweep(case, sweep, max(1, its // 5))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
