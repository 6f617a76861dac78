"""spectral_lab benchmarks: ratios measured side by side in one process run.

    python benchmarks/run.py            # full (~15 min on 2 cores)
    python benchmarks/run.py --quick    # smaller sizes, fewer rounds (a few minutes)
    python benchmarks/run.py --only batching floor --threads 1

Every timing is a ratio of two variants run interleaved in this process (median of the
per-round ratios, [min–max] over rounds), printed as Markdown tables with the load average
at the time, so that the output can be pasted into benchmarks/README.md. No section asserts
on time: goals are reported as met or not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import bench_allocator  # noqa: E402
import bench_files  # noqa: E402
import bench_kernel  # noqa: E402
import bench_peers  # noqa: E402
import bench_startup  # noqa: E402
import bench_sweep  # noqa: E402
import bench_training as T  # noqa: E402
import _nets as N  # noqa: E402
from _harness import load_average, machine_info, mm_peak_gflops  # noqa: E402

SECTIONS = ("threads", "recording", "batching", "floor", "limit", "precision", "peers", "startup", "cli", "analyzers",
            "storage", "sweep", "catalogue", "kernel", "allocator")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer rounds")
    p.add_argument("--threads", default="auto",
                   help="torch intra-op threads: a number, 'torch' (torch's default) or 'auto' (default: "
                        "1 when the machine is busy — 1-minute load average >= 1 — else torch's default)")
    p.add_argument("--only", nargs="+", choices=SECTIONS, metavar="SECTION",
                   help=f"run only these sections: {', '.join(SECTIONS)}")
    a = p.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*TF32.*")  # torch.backends.mkldnn.flags() warns on CPU
    default_threads = torch.get_num_threads()
    threads, why = _threads(a.threads, default_threads)
    torch.set_num_threads(threads)
    sections = a.only or SECTIONS
    budget = T.Budget(sample_seconds=0.3 if a.quick else 0.8, rounds=3 if a.quick else 4, quick=a.quick)

    started = time.perf_counter()
    info = machine_info()
    peaks = {k: _peak_at(k) for k in sorted({1, threads, default_threads})}
    print(f"# spectral_lab benchmarks — {dt.datetime.now().isoformat(timespec='seconds')}")
    print(f"command: `python benchmarks/run.py {shlex.join(sys.argv[1:] if argv is None else argv)}`")
    print(f"machine: {info['cpu']}, {info['cores']} cores; torch {info['torch']} (default {default_threads} threads, "
          f"OMP_WAIT_POLICY {info['omp_wait_policy']}); float32 torch.mm 2048² peak "
          + ", ".join(f"{v:.0f} GFLOP/s with {k} thread{'s' if k > 1 else ''}" for k, v in peaks.items())
          + f"; load average at start {load_average()}")
    print(f"threads: {threads} ({why})")

    per_iteration: dict = {}
    if "threads" in sections and default_threads > 1:
        T.threads(budget, default_threads)
    if "recording" in sections:
        T.recording_overhead(budget)
    if "batching" in sections:
        cases = [N.LINEAR256, N.CONV64, N.CONV256, N.DIP_SMALL] + ([] if a.quick else [N.DIP_DEFAULT])
        T.batching(budget, cases, per_iteration)
    if "floor" in sections:
        T.floor(budget, per_iteration)
    if "limit" in sections:
        if not per_iteration:  # measured on its own: time the package's R = 1 and R = 10 loops briefly
            T.batching(T.Budget(budget.sample_seconds, 3, True), [N.CONV256, N.DIP_SMALL], per_iteration)
        peak = max(peaks[threads], _peak_at(threads))  # again: the machine's load changes
        T.physical_limit(per_iteration, peak, threads)
    if "precision" in sections:
        T.precision(budget)
    if "peers" in sections:
        bench_peers.peers(budget)
        bench_peers.peers_process(budget, threads)
    if "startup" in sections:
        bench_startup.startup(budget, threads)
    if "cli" in sections:
        T.cli_end_to_end(budget, threads)
    if "analyzers" in sections:
        bench_files.analyzers(a.quick, threads)
    if "storage" in sections:
        bench_files.storage(a.quick)
    if "sweep" in sections:
        bench_sweep.sweep(a.quick)
    if "catalogue" in sections:
        bench_sweep.catalogue(a.quick)
    if "kernel" in sections:
        bench_kernel.kernel(a.quick)
    if "allocator" in sections:
        bench_allocator.allocator(a.quick, threads)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at end {load_average()}")
    return 0


def _peak_at(threads: int) -> float:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return mm_peak_gflops(2048, 10)
    finally:
        torch.set_num_threads(before)


def _threads(option: str, default: int) -> tuple[int, str]:
    if option == "torch":
        return default, "torch's default"
    if option == "auto":
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
        if default > 1 and load >= 1.0:
            return 1, (f"auto: the machine is busy (1-minute load {load:.1f}), and torch's {default} OpenMP "
                       f"threads then wait for each other (see the threads table); --threads torch to override")
        return default, "auto: torch's default on an idle machine"
    try:
        n = int(option)
    except ValueError:
        raise SystemExit(f"--threads must be a number, 'torch' or 'auto', got {option!r}") from None
    if n < 1:
        raise SystemExit(f"--threads must be >= 1, got {n}")
    return n, "--threads"


if __name__ == "__main__":
    raise SystemExit(main())
