"""Run one analyzer over one trajectory file and print its wall time and peak RSS as JSON.

``python _analyzer_worker.py ANALYZER FILE``; ANALYZER ``none`` only imports and opens the
file (the baseline). Runs in a fresh process so that ``ru_maxrss`` is this analyzer's peak.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np

from spectral_lab.analyze.amplitudes import analyze_amplitudes_file
from spectral_lab.analyze.divergence import divergence_file
from spectral_lab.analyze.psnr import psnr_file
from spectral_lab.analyze.spectrum import spectrum_file
from spectral_lab.analyze.stopping import stop_file
from spectral_lab.trajectory import open_trajectory


def run(analyzer: str, path: str) -> None:
    with open_trajectory(path) as traj:
        if analyzer == "none":
            traj.n_frames(0)
        elif analyzer == "amplitudes":
            analyze_amplitudes_file(traj)
        elif analyzer == "divergence":
            divergence_file(traj)
        elif analyzer == "psnr":
            psnr_file(traj)
        elif analyzer == "spectrum":
            spectrum_file(traj)
        elif analyzer == "stop es_wmv":
            stop_file(traj, "es_wmv")
        elif analyzer == "stop sure":
            # SURE's divergence term comes from training, not from the file: zeros stand in
            stop_file(traj, "sure", dof=[np.zeros(traj.n_frames(r)) for r in range(traj.n_runs)])
        elif analyzer == "stop pair_divergence":
            stop_file(traj, "pair_divergence")
        else:
            raise SystemExit(f"unknown analyzer {analyzer!r}")


def main() -> None:
    analyzer, path = sys.argv[1], sys.argv[2]
    t0 = time.perf_counter()
    run(analyzer, path)
    seconds = time.perf_counter() - t0
    print(json.dumps({"analyzer": analyzer, "seconds": seconds, "maxrss": peak_rss()}))


def peak_rss() -> int:
    """Peak resident set size of this process, bytes.

    VmHWM of /proc/self/status where available: ``ru_maxrss`` of a child started by
    fork + exec also holds the parent's resident size at the fork (Linux folds the old
    address space's high-water mark into it at exec), so it would report the benchmark
    process's size, not the analyzer's.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


if __name__ == "__main__":
    main()
