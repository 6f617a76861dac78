"""One sample of bench_allocator: fit ``steps`` steps of a model after 2 warm-up steps, print
JSON {wall, cpu, faults} per step and the peak RSS. Argv: model options-json shape-json runs
steps threads. ``SPECTRAL_LAB_MALLOC=system`` keeps glibc's defaults."""

from __future__ import annotations

import json
import resource
import sys
import time

import torch

from spectral_lab.allocator import reuse_freed_memory
from spectral_lab.fit import fit, make_fit_state
from spectral_lab.models import build_model


def main() -> None:
    model, options, shape, runs, steps, threads = sys.argv[1:7]
    reuse_freed_memory()
    torch.set_num_threads(int(threads))
    shape, runs, steps = tuple(json.loads(shape)), int(runs), int(steps)
    net = build_model(model, signal_shape=shape, runs=runs, **json.loads(options))
    seeds = list(range(runs))
    z, y = net.make_input(seeds), torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    state = make_fit_state(net, lr=1e-3, noise_seeds=seeds)
    fit(state, z, y, iterations=2)
    r0, c0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.perf_counter()
    state.iteration = 0
    fit(state, z, y, iterations=steps)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0.ru_minflt
    with open("/proc/self/status") as f:
        hwm = int(f.read().split("VmHWM:")[1].split()[0]) / 1024
    print(json.dumps({"wall": wall / steps, "cpu": cpu / steps, "faults": faults / steps, "hwm_mb": hwm}))


if __name__ == "__main__":
    main()
