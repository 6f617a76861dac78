"""Timing harness: side-by-side (interleaved) samples, paired ratios, machine facts, tables.

Every comparison runs its variants in one process, alternating A, B, B, A, A, B, ... (the
order flips every round so a slow drift of the machine's load cancels), and reports the
median of the per-round ratios A_i / B_i with their range. Absolute times on a shared
machine mean little; ratios measured this way do.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch

__all__ = ["Samples", "interleave", "calibrate", "machine_info", "mm_peak_gflops", "load_average", "Table", "fmt_s",
           "ratio_cell", "goal_cell"]


@dataclass
class Samples:
    """Wall-clock seconds per sample of each variant, one list entry per round."""

    times: dict[str, list[float]]
    units: dict[str, int] = field(default_factory=dict)  # work units (e.g. iterations) per sample
    cpu: dict[str, list[float]] = field(default_factory=dict)  # process CPU seconds, all threads

    def median(self, name: str) -> float:
        """Median wall seconds per work unit."""
        return statistics.median(self.times[name]) / self.units.get(name, 1)

    def ratio(self, a: str, b: str, *, clock: str = "wall") -> tuple[float, float, float]:
        """Median, min and max over rounds of (a per unit) / (b per unit).

        ``clock="cpu"``: process CPU time instead of wall time. With one torch thread it
        ignores the time this process waits for a core on a shared machine (but counts the
        recorder's writer thread and any spinning OpenMP threads).
        """
        src = self.times if clock == "wall" else self.cpu
        ua, ub = self.units.get(a, 1), self.units.get(b, 1)
        r = [(ta / ua) / (tb / ub) for ta, tb in zip(src[a], src[b])]
        return statistics.median(r), min(r), max(r)


def interleave(fns: Mapping[str, Callable[[], object]], rounds: int, *, warmup: int = 1,
               units: Mapping[str, int] | None = None,
               setup: Mapping[str, Callable[[], object]] | None = None) -> Samples:
    """Time each callable ``rounds`` times, interleaved, after ``warmup`` untimed calls each.

    ``setup[name]``, when given, runs untimed before every call of ``fns[name]``.
    """
    names = list(fns)
    setup = setup or {}
    for name in names:
        for _ in range(warmup):
            if name in setup:
                setup[name]()
            fns[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for i in range(rounds):
        for name in (names if i % 2 == 0 else names[::-1]):
            if name in setup:
                setup[name]()
            c0, t0 = time.process_time(), time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return Samples(times, dict(units or {}), cpu)


def calibrate(step: Callable[[], object], target_seconds: float, *, lo: int = 1, hi: int = 2000) -> int:
    """How many calls of ``step`` take about ``target_seconds`` (after one warm-up call)."""
    step()
    t0 = time.perf_counter()
    step()
    one = max(time.perf_counter() - t0, 1e-6)
    return int(min(hi, max(lo, round(target_seconds / one))))


def load_average() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _peak_mm_gflops(n: int, repeats: int) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        ts.append(time.perf_counter() - t0)
    return 2 * n ** 3 / min(ts) / 1e9  # best of: the peak the machine can reach


def mm_peak_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Best float32 ``torch.mm`` rate (GFLOP/s) at the current thread count."""
    return _peak_mm_gflops(n, repeats)


def machine_info() -> dict[str, object]:
    """CPU model, cores, torch version and threads."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
    }


def fmt_s(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


class Table:
    """A plain-text (and Markdown) table, printed as rows arrive so a slow run shows progress."""

    def __init__(self, title: str, columns: list[str], *, echo: bool = True) -> None:
        self.title, self.columns, self.rows, self.echo = title, columns, [], echo
        if echo:
            print(f"\n## {title}  (load average {load_average()})", flush=True)
            print("| " + " | ".join(columns) + " |", flush=True)
            print("|" + "|".join("---" for _ in columns) + "|", flush=True)

    def add(self, *cells: object) -> None:
        row = [str(c) for c in cells]
        self.rows.append(row)
        if self.echo:
            print("| " + " | ".join(row) + " |", flush=True)

    def note(self, text: str) -> None:
        self.rows.append(["", text])
        if self.echo:
            print(f"  note: {text}", flush=True)


def ratio_cell(r: tuple[float, float, float]) -> str:
    med, lo, hi = r
    return f"{med:.2f} [{lo:.2f}–{hi:.2f}]"


def goal_cell(value: float, goal: float | None) -> str:
    if goal is None:
        return "—"
    return f"≤ {goal:g}: {'met' if value <= goal else 'NOT met'}"
