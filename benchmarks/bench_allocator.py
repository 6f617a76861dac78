"""Allocator: a fit step with glibc's malloc set to keep freed memory (`spectral_lab.allocator`,
what every record does) ÷ the same step with glibc's defaults (``SPECTRAL_LAB_MALLOC=system``).

mallopt acts on the whole process, so the two cannot share one: each sample is a child process
(`_allocator_worker.py`) that fits a few warm-up steps, then times its steps and counts its
minor page faults; the children alternate, in an order that flips every round.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _harness import Table, fmt_s, ratio_cell

WORKER = Path(__file__).resolve().parent / "_allocator_worker.py"
# (label, model, options, signal shape, runs): the night preset's two nets with buffers above glibc's
# largest mmap threshold (32 MiB): the ReLUNet's activations, Linear-2048's gradients
CASES = (("relunet 10×256, 128², R = 3", "relunet", {}, (3, 128, 128), 3),
         ("linear 5×2048, 64², R = 3", "linear", {"depth": 5, "width": 2048, "in_channels": 1}, (3, 64, 64), 3))


def _sample(case: tuple, steps: int, mode: str, threads: int) -> dict:
    env = {**os.environ, "SPECTRAL_LAB_MALLOC": "system" if mode == "system" else "keep", "OMP_NUM_THREADS": str(threads)}
    _, model, options, shape, runs = case
    p = subprocess.run([sys.executable, str(WORKER), model, json.dumps(options), json.dumps(shape), str(runs),
                        str(steps), str(threads)], env=env, capture_output=True, text=True, check=True)
    return json.loads(p.stdout.splitlines()[-1])


def allocator(quick: bool, threads: int) -> Table:
    steps, rounds = (3, 3) if quick else (6, 4)
    t = Table("Allocator: fit step with freed memory kept (what `record` does) ÷ glibc's defaults (child processes)",
              ["case", "steps / sample", "default: s / step", "kept: s / step", "ratio, wall [range]", "ratio, CPU",
               "page faults / step, default → kept", "peak RSS, default → kept"])
    for case in CASES:
        got: dict[str, list[dict]] = {"system": [], "kept": []}
        for i in range(rounds):
            for mode in (("system", "kept") if i % 2 == 0 else ("kept", "system")):
                got[mode].append(_sample(case, steps, mode, threads))
        wall = [k["wall"] / s["wall"] for k, s in zip(got["kept"], got["system"])]
        cpu = [k["cpu"] / s["cpu"] for k, s in zip(got["kept"], got["system"])]

        def med(mode: str, key: str) -> float:
            return statistics.median(x[key] for x in got[mode])

        t.add(case[0], steps, fmt_s(med("system", "wall")), fmt_s(med("kept", "wall")),
              ratio_cell((statistics.median(wall), min(wall), max(wall))), f"{statistics.median(cpu):.2f}",
              f"{med('system', 'faults'):,.0f} → {med('kept', 'faults'):,.0f}",
              f"{med('system', 'hwm_mb'):,.0f} → {med('kept', 'hwm_mb'):,.0f} MB")
    t.note("each child fits 2 warm-up steps first (the kept heap grows to its working set there); wall and CPU are "
           "the timed steps' own, start-up excluded; peak RSS is the child's VmHWM")
    return t
