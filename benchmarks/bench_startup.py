"""Start-up: ``spectral-lab record --iterations 1`` ÷ ``python -c "import torch"`` as whole
processes (interleaved, wall and CPU time of the child), and where the record path's import
time goes (``python -X importtime``)."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import Table, fmt_s, goal_cell, ratio_cell

# Imports the record path must not pay for (the optimiser's torch._dynamo, plotting, SciPy).
UNWANTED = ("torch._dynamo", "scipy", "matplotlib", "sympy")


def _timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def interleaved_processes(cmds: dict[str, list[str]], env: dict, rounds: int
                          ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU seconds of each command, ``rounds`` times, in an order that flips every
    round, after one untimed run of each (the page cache; a command that fails stops here)."""
    for cmd in cmds.values():
        _timed(cmd, env)
    wall: dict[str, list[float]] = {k: [] for k in cmds}
    cpu: dict[str, list[float]] = {k: [] for k in cmds}
    for i in range(rounds):
        for k in (list(cmds) if i % 2 == 0 else list(cmds)[::-1]):
            w, c = _timed(cmds[k], env)
            wall[k].append(w)
            cpu[k].append(c)
    return wall, cpu


def import_times(code: str, env: dict) -> tuple[int, dict[str, int]]:
    """``python -X importtime -c code``: the total import time (the sum of the outermost
    imports' cumulative times) and each imported module's own (self) time, in microseconds."""
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True,
                       check=True)
    total, own = 0, {}
    for line in p.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            self_us, cum, name = line.split(":", 1)[1].split("|")  # "import time: self | cumulative | name"
            own[name.strip()] = int(self_us)
            if len(name) - len(name.lstrip()) == 1:  # outermost: one space after the bar
                total += int(cum)
    return total, own


def beyond_torch(record_code: str, env: dict) -> tuple[int, int, dict[str, int], set[str]]:
    """Import time of ``import torch`` and of the record path, and the record path's own
    time per top-level package of the modules ``import torch`` does not import, and those modules."""
    torch_total, torch_own = import_times("import torch", env)
    total, own = import_times(record_code, env)
    new = {m for m in own if m not in torch_own}
    extra: dict[str, int] = {}
    for module in new:
        extra[module.split(".")[0]] = extra.get(module.split(".")[0], 0) + own[module]
    return torch_total, total, extra, new


def startup(b, threads: int | None) -> Table:
    exe = Path(sys.executable).with_name("spectral-lab")
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    rounds = 3 if b.quick else 7
    t = Table("Start-up: `spectral-lab record --iterations 1` ÷ `python -c \"import torch\"` (whole processes)",
              ["command", "wall (median)", "CPU (median)", "÷ import torch, wall [range]", "÷ import torch, CPU",
               "goal"])
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        cmds = {"import torch": [sys.executable, "-c", "import torch"],
                "record --iterations 1": [str(exe), "record", "--iterations", "1", "--quiet", "--overwrite",
                                          "--out", str(Path(tmp) / "a.h5")]}
        wall, cpu = interleaved_processes(cmds, env, rounds)
        for k in cmds:
            rw = [a / b_ for a, b_ in zip(wall[k], wall["import torch"])]
            rc = [a / b_ for a, b_ in zip(cpu[k], cpu["import torch"])]
            base = k == "import torch"
            t.add(f"`{k}`", fmt_s(statistics.median(wall[k])), fmt_s(statistics.median(cpu[k])),
                  "1" if base else ratio_cell((statistics.median(rw), min(rw), max(rw))),
                  "1" if base else f"{statistics.median(rc):.2f}",
                  "" if base else goal_cell(statistics.median(rw), 1.3))
        code = ("from spectral_lab.cli import main; "
                f"main(['record', '--iterations', '1', '--quiet', '--overwrite', '--out', {str(Path(tmp) / 'b.h5')!r}])")
        torch_total, total, extra, new = beyond_torch(code, env)
    top = sorted(((v, k) for k, v in extra.items()), reverse=True)[:6]
    t.note(f"-X importtime: `import torch` {torch_total / 1e6:.2f} s of imports, the record path {total / 1e6:.2f} s; "
           f"the modules torch does not import take {sum(extra.values()) / 1e6:.2f} s (self time; largest: "
           + ", ".join(f"{k} {v / 1e3:.0f} ms" for v, k in top) + "); of " + ", ".join(UNWANTED) + " it imports: "
           + (", ".join(u for u in UNWANTED if any(m == u or m.startswith(u + ".") for m in new)) or "none"))
    return t
