"""Sweep-side benchmarks: a sweep of 8 small points on 2 local workers ÷ the same points one
after another, and the catalogue's time over 1 000 files (cold, cached, after a few changes).

Also a check usable on its own: ``python benchmarks/bench_sweep.py --compare A B`` says whether
the trajectory files of two folders hold the same configurations, frames and losses (bitwise).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Table, fmt_s, interleave, ratio_cell  # noqa: E402
from spectral_lab.config import FitConfig, ModelConfig, RunConfig, SignalConfig  # noqa: E402
from spectral_lab.executors import InlineExecutor, WorkerSettings, local_pool, run_sweep  # noqa: E402
from spectral_lab.sweep import Job, record_job  # noqa: E402
from spectral_lab.sweep_spec import spec_jobs  # noqa: E402
from spectral_lab.trajectory import open_trajectory  # noqa: E402
from spectral_lab.trajectory_index import catalogue_rows  # noqa: E402


def compare_folders(a: str | Path, b: str | Path) -> tuple[int, int, list[str]]:
    """(files equal, files in A, names that differ or are missing in B): equal means the same
    stored configuration, status, and bitwise the same frames and losses of every run."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():  # HDF5 fails reads of one file open twice in a process
        raise SystemExit(f"--compare needs two different folders, got {a} twice")
    names = sorted(p.relative_to(a) for p in a.rglob("*.h5") if not any(s.startswith(".") for s in p.parts))
    differ = []
    for name in names:
        if not (b / name).is_file():
            differ.append(f"{name} (missing)")
            continue
        with open_trajectory(a / name) as x, open_trajectory(b / name) as y:
            same = (x.config == y.config and x.status == y.status and x.n_runs == y.n_runs
                    and all(x.n_frames(r) == y.n_frames(r)
                            and np.array_equal(x.frames(r)[: x.n_frames(r)], y.frames(r)[: y.n_frames(r)])
                            and np.array_equal(x.losses(r), y.losses(r)) for r in range(x.n_runs)))
        if not same:
            differ.append(str(name))
    return len(names) - len(differ), len(names), differ


def _sweep_spec(quick: bool) -> dict:
    """8 small 1D points: conv depth 4/6 x width 32/64 x two seeds, 3 runs a file."""
    return {"base": {"task": "fit", "signal": {"kind": "sines", "freqs": [5, 50], "length": 200},
                     "model": {"name": "conv", "options": {}},
                     "fit": {"iterations": 150 if quick else 400, "lr": 3e-4, "runs": 3, "device": "cpu"}},
            "grid": {"model.options.depth": [4, 6], "model.options.width": [32, 64], "fit.seed": [0, 1]}}


def sweep(quick: bool) -> None:
    """Wall time of the whole sweep as a user waits for it: sequential in this process, on a
    2-worker pool started for the sweep (start-up of two Pythons with torch included), and on
    an already running pool."""
    rounds = 2 if quick else 3
    work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    spec = _sweep_spec(quick)
    folders = {"sequential": work / "seq", "2 workers (pool started per sweep)": work / "cold",
               "2 workers (running pool)": work / "warm"}
    settings = WorkerSettings(threads=1, staging=str(work / "stage"))
    warm = local_pool(2, threads=1)
    quiet = {"progress": False, "log": lambda m: None}

    def fresh(name):
        return lambda: shutil.rmtree(folders[name], ignore_errors=True)

    def run(name):
        jobs = spec_jobs(spec, folders[name])
        if name == "sequential":
            return lambda: run_sweep(jobs, InlineExecutor(), **quiet)

        def on_pool():
            if "started" in name:
                with local_pool(2, threads=1) as pool:
                    run_sweep(jobs, pool, settings=settings, **quiet)
            else:
                run_sweep(jobs, warm, settings=settings, **quiet)
        return on_pool

    import torch

    torch.set_num_threads(1)
    try:
        samples = interleave({n: run(n) for n in folders}, rounds, warmup=1, setup={n: fresh(n) for n in folders})
    finally:
        warm.shutdown()
    c = spec["base"]["fit"]
    t = Table(f"Sweep: 8 points (1D conv depth 4/6 x width 32/64 x 2 seeds, {c['runs']} runs x {c['iterations']} "
              f"it each, 1 torch thread per process) ÷ sequential", ["variant", "wall, median", "÷ sequential [range]",
                                                                    "files identical to sequential"])
    for name in folders:
        if name == "sequential":
            t.add(name, fmt_s(samples.median(name)), "1", "(the reference)")
            continue
        same, total, _ = compare_folders(folders["sequential"], folders[name])
        t.add(name, fmt_s(samples.median(name)), ratio_cell(samples.ratio(name, "sequential")), f"{same}/{total}")
    t.note("ideal on 2 idle cores: 0.5 (running pool); the pool started per sweep adds two Python + torch start-ups")
    shutil.rmtree(work, ignore_errors=True)


def _templates(folder: Path) -> list[Path]:
    """Three small trajectories to copy: a 1D fit (2 runs x 301 frames), a 1D fit of 5 runs,
    and a 32 x 32 grey denoising file (2 runs x 101 frames)."""
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(folder / "img.png")
    oned = RunConfig(signal=SignalConfig(kind="sines", freqs=(5, 50), length=200),
                     model=ModelConfig(name="conv", options={"depth": 4, "width": 16}),
                     fit=FitConfig(iterations=300, lr=1e-3, runs=2, device="cpu"))
    image = RunConfig(task="denoise", signal=SignalConfig(kind="image", image=str(folder / "img.png"), grey=True),
                      model=ModelConfig(name="dip", options={"levels": 2, "down": 8, "up": 8, "skip": 2}),
                      fit=FitConfig(iterations=100, lr=1e-2, runs=2, device="cpu"))
    paths = [folder / "oned.h5", folder / "oned5.h5", folder / "image.h5"]
    for path, cfg in zip(paths, [oned, oned.replace(fit=FitConfig(iterations=300, lr=1e-3, runs=5, device="cpu")),
                                 image]):
        record_job(Job(path, cfg))
    return paths


def catalogue(quick: bool) -> None:
    """The catalogue of 1 000 copies of small trajectories (in folders of 100): without the
    analyses, built from nothing, again with every file cached, and after 1 % of the files
    changed (``quick`` changes nothing here: the size is the question)."""
    n = 1000
    work = Path(tempfile.mkdtemp(prefix="bench-catalogue-"))
    templates = _templates(work / "templates")
    root = work / "files"
    for i in range(n):
        dest = root / f"group{i // 100:02d}" / f"file{i:04d}.h5"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(templates[i % 3 if i % 10 else 2], dest)  # every 10th an image file
    size = sum(p.stat().st_size for p in root.rglob("*.h5"))
    catalogue_rows(templates[0].parent, cache=False)  # imports and caches of the analyzers, untimed
    t = Table(f"Catalogue of {n} files ({size / 1e6:.0f} MB: 1D fits of 2 and 5 runs x 301 frames, every 10th a "
              "32² denoising file of 2 runs x 101 frames)", ["pass", "files read", "time", "per file"])

    def timed(label, **kw):
        stats = {}
        t0 = time.perf_counter()
        catalogue_rows(root, stats=stats, **kw)
        s = time.perf_counter() - t0
        t.add(label, stats["read"], fmt_s(s), fmt_s(s / n))

    timed("metadata and configuration only (--no-analyses, no cache)", cache=False, analyses=False)
    timed("everything, no cache yet")
    timed("again: every file unchanged (cache)")
    for p in sorted(root.rglob("*.h5"))[:: 100]:  # 1 % of the files touched
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    timed("after 1 % of the files changed")
    shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), type=Path,
                   help="compare the trajectory files of two folders and exit (0: all equal)")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    if a.compare:
        same, total, differ = compare_folders(*a.compare)
        print(f"{same} of {total} files of {a.compare[0]} equal (configuration, status, frames and losses bitwise) "
              f"in {a.compare[1]}" + (f"; differ: {', '.join(differ)}" if differ else ""))
        return 0 if same == total and total else 1
    sweep(a.quick)
    catalogue(a.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
