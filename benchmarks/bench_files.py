"""File-side benchmarks: analyzers over large trajectories (throughput and peak memory, each
in its own process) and storage cost per frame for each dtype and compression."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from spectral_lab.trajectory import schema as S
from spectral_lab import signals
from spectral_lab.config import DegradeConfig, FitConfig, RunConfig, SignalConfig, run_seeds
from spectral_lab.fit import Callback, fit, make_fit_state
from spectral_lab.trajectory import COMPRESSIONS, STORAGE_DTYPES, create_trajectory

import _nets as N
from _harness import Table, fmt_s

WORKER = Path(__file__).with_name("_analyzer_worker.py")
GIB = 1 << 30


# --------------------------------------------------------------------------- synthetic files

def _signal_1d() -> tuple[np.ndarray, RunConfig]:
    cfg = RunConfig(signal=SignalConfig(kind="sines", freqs=(5, 50), amps=(1.0, 1.0), length=200),
                    degrade=DegradeConfig(noise="none"))
    return signals.sines((5, 50), (1.0, 1.0), None, 200).astype(np.float32), cfg


def _signal_image(side: int) -> tuple[np.ndarray, RunConfig]:
    img = signals.load_image(signals.sample_image_path(), downsample=4, crop_multiple=32)[:, :side, :side]
    cfg = RunConfig(task="denoise", signal=SignalConfig(kind="image", downsample=4),
                    degrade=DegradeConfig(noise="white", sigma=25.0))
    return np.ascontiguousarray(img, dtype=np.float32), cfg


def synthetic_trajectory(path: Path, kind: str, runs: int, frames: int, *, side: int = 128,
                         seed: int = 0) -> int:
    """Write a complete trajectory of synthetic frames straight through h5py; returns frame bytes.

    Frame t of run r = target + e^(-t/τ₁)·d_r + (1 - e^(-t/τ₂))·n + a small varying field:
    the run's initial error decays, the observation's noise n is fitted later — the shape of a
    DIP trajectory, at the cost of a few numpy operations per block instead of training.
    """
    target, cfg = _signal_1d() if kind == "1d" else _signal_image(side)
    rng = np.random.default_rng(seed)
    noise = (25 / 255 if kind != "1d" else 0.1) * rng.standard_normal(target.shape).astype(np.float32)
    observed = target + noise
    cfg = cfg.replace(fit=FitConfig(runs=runs, iterations=frames - 1))
    f = create_trajectory(path, config=cfg.to_dict(), kind=kind, target=target, observed=observed,
                          run_seeds=run_seeds(cfg.fit), iterations=frames - 1, overwrite=True)
    wiggle = 1e-3 * rng.standard_normal((16, *target.shape)).astype(np.float32)
    block = 256 if kind == "1d" else 32
    try:
        for r in range(runs):
            g = f[S.run_group(r)]
            out, loss = g[S.OUTPUT], g[S.LOSS]
            out.resize(frames, axis=0)
            loss.resize(frames, axis=0)
            d = rng.standard_normal(target.shape).astype(np.float32)
            for a in range(0, frames, block):
                t = np.arange(a, min(a + block, frames), dtype=np.float32)
                shape = (-1,) + (1,) * target.ndim
                early = np.exp(-t / (0.05 * frames)).reshape(shape)
                late = (1 - np.exp(-t / (0.5 * frames))).reshape(shape)
                x = target + early * d + late * noise + wiggle[(t.astype(int) % 16)]
                out[a:a + len(t)] = x
                loss[a:a + len(t)] = ((x - observed) ** 2).reshape(len(t), -1).mean(axis=1)
        if S.ITERATIONS in f:  # format 2: the iteration of every stored frame (no stride here)
            f[S.ITERATIONS].resize(frames, axis=0)
            f[S.ITERATIONS][:] = np.arange(frames, dtype=np.int64)
        f[S.STATUS_FRAMES][()] = np.int64(frames)
        f[S.STATUS_STATE][()] = np.bytes_("complete".ljust(16))
    finally:
        f.close()
    return runs * frames * target.size * 4


ANALYZERS = {
    "1d": ["amplitudes", "divergence", "psnr"],
    "image": ["spectrum", "psnr", "divergence", "stop es_wmv", "stop sure", "stop pair_divergence"],
}


def _worker(analyzer: str, path: Path, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, str(WORKER), analyzer, str(path)], check=True,
                         capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def analyzers(quick: bool, threads: int) -> Table:
    """Throughput (MB/s of float32 frames) and peak RSS of each analyzer, each in a fresh process."""
    sizes = {"1d": [(10, 2000)] if quick else [(10, 2000), (10, 20000)],
             "image": [(2, 300)] if quick else [(2, 300), (2, 3000)]}
    t = Table("Analyzers over synthetic trajectories (each in its own process)",
              ["file", "analyzer", "frame data", "time", "MB/s", "peak RSS", "RSS above imports", "≤ 1 GiB"])
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-ana-") as tmp:
        for kind, shapes in sizes.items():
            for runs, frames in shapes:
                path = Path(tmp) / f"{kind}-{runs}x{frames}.h5"
                t0 = time.perf_counter()
                nbytes = synthetic_trajectory(path, kind, runs, frames)
                made = time.perf_counter() - t0
                frame = "200" if kind == "1d" else "3×128×128"
                label = f"{kind} {runs} runs × {frames} × {frame}"
                base = _worker("none", path, threads)
                notes.append(f"{label}: {nbytes / 1e6:.0f} MB written in {made:.1f} s; "
                             f"imports + open alone peak at {base['maxrss'] / 2**20:.0f} MiB")
                for name in ANALYZERS[kind]:
                    m = _worker(name, path, threads)
                    t.add(label, name, f"{nbytes / 1e6:.0f} MB", fmt_s(m["seconds"]),
                          f"{nbytes / 1e6 / m['seconds']:.0f}", f"{m['maxrss'] / 2**20:.0f} MiB",
                          f"{(m['maxrss'] - base['maxrss']) / 2**20:.0f} MiB",
                          "yes" if m["maxrss"] < GIB else "NO")
                path.unlink()
    for text in notes:  # after the table, which a note inside would split
        t.note(text)
    return t


# --------------------------------------------------------------------------- storage

class _Collect(Callback):
    def __init__(self) -> None:
        self.frames: list[torch.Tensor] = []

    def on_frame(self, iteration, output, loss) -> None:
        self.frames.append(output.clone())


def real_frames(case: N.Case, iterations: int) -> np.ndarray:
    """Frames ``(T, *stored shape)`` of one real run of ``case`` (R = 1)."""
    net, z, y = N.package_net(case, 1)
    state = make_fit_state(net, lr=N.LR[case.model])
    col = _Collect()
    fit(state, z, y, iterations=iterations, reg_noise_std=1 / 30 if case.model == "dip" else 0.0, callbacks=[col])
    frames = torch.cat(col.frames).numpy()  # (T, C, *s)
    return frames if case.model == "dip" else frames.reshape(len(frames), -1)


def storage(quick: bool) -> Table:
    """Bytes per frame on disk for each storage dtype and compression, on real frames."""
    t = Table("Storage per frame on real trajectories (HDF5 chunked dataset, as the recorder writes it)",
              ["trajectory", "dtype", "compression", "bytes / frame", "vs raw float32", "write µs / frame"])
    # frame counts fill whole chunks of both dtypes (1D: 256 frames a chunk; 3×64²: 21 float32, 42 float16)
    trajs = [("conv w256 1D, 200 samples", N.CONV256, 255 if quick else 1023),
             ("dip 64² ch128, 3×64×64", N.DIP_DEFAULT, 41 if quick else 83)]
    with tempfile.TemporaryDirectory(prefix="bench-sto-") as tmp:
        for label, case, iterations in trajs:
            frames = real_frames(case, iterations)
            raw = frames[0].size * 4
            kind = "image" if case.model == "dip" else "1d"
            for dtype, comp in itertools.product(STORAGE_DTYPES, COMPRESSIONS):
                path = Path(tmp) / f"{dtype}-{comp}.h5"
                f = create_trajectory(path, config=RunConfig().to_dict(), kind=kind, target=frames[-1],
                                      observed=frames[-1], run_seeds=run_seeds(FitConfig(runs=1)),
                                      iterations=len(frames) - 1, dtype=dtype, compression=comp, overwrite=True)
                ds = f[S.run_group(0)][S.OUTPUT]
                block = ds.chunks[0]
                t0 = time.perf_counter()
                for a in range(0, len(frames), block):  # as the recorder's writer: resize, then write a block
                    b = min(a + block, len(frames))
                    ds.resize(b, axis=0)
                    ds[a:b] = frames[a:b].astype(dtype, copy=False)
                f.flush()
                write = time.perf_counter() - t0
                per_frame = ds.id.get_storage_size() / len(frames)
                f.close()
                t.add(f"{label}, {len(frames)} frames", dtype, comp, f"{per_frame:.0f}", f"{per_frame / raw:.2f}",
                      f"{1e6 * write / len(frames):.0f}")
    t.note("bytes / frame = the output dataset's allocated storage ÷ frames; whole chunks are allocated, "
           "so a partly filled last chunk counts in full")
    return t
