"""Reading trajectory files, live or finished: `open_trajectory` and the `Trajectory` reader."""

from __future__ import annotations

import functools
import json
import os
import zlib
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from .. import __version__
from ..config import RunConfig
from ..errors import NoReferenceError, SpectralLabError, TrajectoryError
from . import schema as S
from ._h5 import as_str, h5_errors, locked_by_other, open_file, refresh, write_flags_set

__all__ = ["Trajectory", "open_trajectory"]


def _reading(method):
    """Report h5py's errors while reading a file as one-line ``TrajectoryError``s."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with h5_errors(self.path):
            return method(self, *args, **kwargs)
    return wrapper


def _parse_config(text, path: Path) -> dict:
    """The stored configuration, checked and completed with defaults (JSON types)."""
    try:
        raw = json.loads(as_str(text))
        return json.loads(json.dumps(RunConfig.from_dict(raw).to_dict()))
    except (ValueError, TypeError, SpectralLabError) as exc:
        raise TrajectoryError(f"{path}: root attribute 'config' is not a valid configuration ({exc})") from None


class Trajectory:
    """Lazy read access to a trajectory file (live or finished). Use ``open_trajectory``."""

    def __init__(self, f: h5py.File, path: Path) -> None:
        self._f, self.path = f, path
        a = f.attrs
        self.format_version = int(a[S.ATTR_VERSION])
        self.config: dict = _parse_config(a[S.ATTR_CONFIG], path)
        self.kind: str = as_str(a[S.ATTR_KIND])
        self.signal_shape: tuple[int, ...] = tuple(int(s) for s in a[S.ATTR_SIGNAL_SHAPE])
        self.n_runs: int = int(a[S.ATTR_N_RUNS])
        self.iterations: int = int(a[S.ATTR_ITERATIONS])
        self.attrs = {k: (as_str(v) if isinstance(v, (bytes, str)) else v) for k, v in a.items()}
        self._handles: dict[str, h5py.Dataset] = {}

    def _fresh(self, name: str) -> h5py.Dataset:
        """One cached handle per dataset, refreshed to see a live writer's latest flush.
        (HDF5 fails reads after two handles of one dataset are both refreshed.)"""
        ds = self._handles.get(name)
        if ds is None:
            ds = self._handles[name] = self._f[name]
        refresh(ds)
        return ds

    def __enter__(self) -> "Trajectory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    @property
    def has_target(self) -> bool:
        """False for a file recorded from a degraded image without a clean reference."""
        return S.TARGET in self._f

    @property
    @_reading
    def target(self) -> np.ndarray:
        """The clean signal; NoReferenceError (one line) when the file has none."""
        if S.TARGET not in self._f:
            what = ("a blend has no clean reference" if self.config.get("task") == "blend" else
                    "recorded from a degraded image alone (record --observed without --image)")
            raise NoReferenceError(f"{self.path} has no clean signal ({what}): this needs one")
        return self._f[S.TARGET][()]

    @property
    def operator(self) -> dict:
        """``{"name", "options"}`` of the forward operator (format 1 files: the identity)."""
        return operator_of(self._f)

    @_reading
    def operator_arrays(self) -> dict[str, np.ndarray]:
        """The operator's arrays (the inpainting ``mask``, ``(1, *spatial)``, 1 = known)."""
        g = self._f.get(S.OPERATOR)
        return {} if g is None else {k: g[k][()] for k in g}

    @property
    def known(self) -> np.ndarray | None:
        """Where the observation constrains the output, ``(1, *spatial)`` float (the
        inpainting mask), or None when every sample is observed."""
        mask = self.operator_arrays().get("mask")
        return None if mask is None else np.asarray(mask, dtype=np.float64)

    @property
    @_reading
    def observed(self) -> np.ndarray:
        return self._f[S.OBSERVED][()]

    @property
    @_reading
    def status(self) -> str:
        return as_str(self._fresh(S.STATUS_STATE)[()]).strip()

    @property
    def writer_alive(self) -> bool:
        """True while a process is writing the file. A 'running' file without a live writer
        was killed: it holds every frame up to its last flush and can be resumed."""
        return locked_by_other(self.path)

    @property
    def needs_repair(self) -> bool:
        """True when a killed writer left HDF5's 'open for writing' flags in the file: plain
        ``h5py.File(path)``, h5dump and xarray refuse it until `repair_trajectory` (``spectral-lab
        repair``) or a resume clears them. False while a writer is alive (its flags are real)."""
        return write_flags_set(self.path) and not self.writer_alive

    @property
    @_reading
    def message(self) -> str:
        return as_str(self._fresh(S.STATUS_MESSAGE)[()])

    @_reading
    def run_seeds(self, r: int) -> dict:
        g = self._run(r)
        return {k: int(g.attrs[k]) for k in S.RUN_ATTRS}

    @_reading
    def frames(self, r: int) -> h5py.Dataset:
        """The run's output dataset ``(T, *signal_shape)``; slice it, only the first
        ``n_frames(r)`` frames are valid."""
        self._run(r)
        return self._fresh(f"{S.run_group(r)}/{S.OUTPUT}")

    @_reading
    def n_frames(self, r: int) -> int:
        """Frames of run r that are flushed and complete (a live file grows)."""
        self._run(r)
        flushed = int(self._fresh(S.STATUS_FRAMES)[()])
        out = self._fresh(f"{S.run_group(r)}/{S.OUTPUT}")
        loss = self._fresh(f"{S.run_group(r)}/{S.LOSS}")
        return int(min(flushed, out.shape[0], loss.shape[0]))

    @_reading
    def frame_iterations(self, r: int) -> np.ndarray:
        """The iteration of each of run r's stored frames, ``(n_frames(r),)`` int64 (with a frame
        stride ``record.every`` K: 0, K, 2K, ... and the last; format 1: 0, 1, 2, ...)."""
        n = self.n_frames(r)
        if S.ITERATIONS not in self._f:
            return np.arange(n, dtype=np.int64)
        its = np.asarray(self._fresh(S.ITERATIONS)[:n], dtype=np.int64)
        if len(its) < n:  # the writer stores a block's iterations before it counts its frames
            raise TrajectoryError(f"{self.path}: '/{S.ITERATIONS}' holds {len(its)} entries for {n} frames "
                                  f"(written by something other than the recorder? spectral-lab check FILE)")
        return its

    @property
    def has_posterior(self) -> bool:
        return S.POSTERIOR_MEAN in self._f[S.run_group(0)] if self.n_runs else False

    @_reading
    def posterior(self, r: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Run r's running posterior ``(mean, variance, count)`` over the iterations after the
        burn-in (float64 ``signal_shape``; NaN while count is 0). TrajectoryError for a file
        recorded without a burn-in."""
        g = self._run(r)
        if S.POSTERIOR_MEAN not in g:
            raise TrajectoryError(f"{self.path} holds no posterior statistics (record with --burn-in N)")
        count = int(self._fresh(f"{S.run_group(r)}/{S.POSTERIOR_COUNT}")[()])
        mean = self._fresh(f"{S.run_group(r)}/{S.POSTERIOR_MEAN}")[()]
        var = self._fresh(f"{S.run_group(r)}/{S.POSTERIOR_VAR}")[()]
        return mean, var, count

    @_reading
    def snapshots(self) -> tuple[np.ndarray, np.ndarray]:
        """``(iterations (S,), parameters (S, R, P) float32)`` of the snapshots reached so far."""
        if S.SNAPSHOT_ITERATIONS not in self._f:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.n_runs, 0), dtype=np.float32)
        its = np.asarray(self._fresh(S.SNAPSHOT_ITERATIONS)[()], dtype=np.int64)
        done = np.flatnonzero(its >= 0)
        params = self._fresh(S.SNAPSHOT_PARAMS)
        return its[done], np.stack([params[i] for i in done]) if done.size else np.zeros((0, *params.shape[1:]),
                                                                                         dtype=np.float32)

    @_reading
    def losses(self, r: int) -> np.ndarray:
        n = self.n_frames(r)
        return self._fresh(f"{S.run_group(r)}/{S.LOSS}")[:n]

    def iter_frames(self, r: int, chunk: int | None = None, start: int = 0,
                    stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_iteration, block)`` with ``block`` float32 ``(B, *signal_shape)``,
        reading one chunk-aligned block at a time (bounded memory)."""
        n = self.n_frames(r) if stop is None else min(stop, self.n_frames(r))
        ds = self._handles[f"{S.run_group(r)}/{S.OUTPUT}"]
        if chunk is None:  # whole HDF5 chunks, up to ~64 MiB a block
            c = ds.chunks[0] if ds.chunks else 1
            frame_bytes = 4 * int(np.prod(self.signal_shape))
            chunk = c * max(1, min(256 // c, (64 << 20) // (frame_bytes * c)))
        step = max(1, int(chunk))
        for a in range(start, n, step):
            b = min(a + step, n)
            with h5_errors(self.path):
                block = ds[a:b].astype(np.float32, copy=False)
            yield a, block

    @_reading
    def latest_checkpoint(self) -> tuple[bytes | None, int]:
        """The newest intact checkpoint: ``(bytes, iteration)``, or ``(None, 0)``."""
        best: tuple[bytes | None, int] = (None, 0)
        for slot in S.CHECKPOINT_SLOTS:
            meta_ds = self._fresh(f"{slot}/{S.SLOT_META}")
            blob_ds = self._fresh(f"{slot}/{S.SLOT_BLOB}")
            it, nbytes, crc = (int(v) for v in meta_ds[()])
            if it < 0 or nbytes > blob_ds.shape[0] or it <= best[1] and best[0] is not None:
                continue
            blob = blob_ds[:nbytes].tobytes()
            if zlib.crc32(blob) == crc:
                best = (blob, it)
        return best

    def _run(self, r: int) -> h5py.Group:
        if not 0 <= r < self.n_runs:
            raise TrajectoryError(f"{self.path} has runs 0..{self.n_runs - 1}; there is no run {r}")
        return self._f[S.run_group(r)]



def open_trajectory(path: str | os.PathLike) -> Trajectory:
    """Open a trajectory file for reading; works while another process is writing it.

    Raises ``TrajectoryError`` (one clear line) for a missing, non-HDF5, truncated or
    corrupted file, an HDF5 file of another layout, or a newer format version.
    """
    path = Path(path)
    f = open_file(path)
    try:
        with h5_errors(path):
            fmt = as_str(f.attrs.get(S.ATTR_FORMAT, ""))
            if fmt != S.FORMAT_NAME:
                raise TrajectoryError(f"{path} is an HDF5 file but not a spectral_lab trajectory")
            version = int(f.attrs.get(S.ATTR_VERSION, -1))
            if version > S.FORMAT_VERSION:
                raise TrajectoryError(f"{path} has format version {version}, newer than this spectral_lab "
                                      f"({__version__}) reads (up to {S.FORMAT_VERSION}); upgrade spectral_lab")
            problems = _layout_problems(f)
            if problems:
                raise TrajectoryError(f"{path} does not follow the trajectory layout: {problems[0]}")
            return Trajectory(f, path)
    except BaseException:
        f.close()
        raise


def _layout_problems(f: h5py.File) -> list[str]:
    problems = [f"missing root attribute '{k}'" for k in S.ROOT_ATTRS if k not in f.attrs]
    if problems:
        return problems
    problems = _attribute_problems(f)
    if problems:  # the layout checks below read these attributes
        return problems
    version = int(f.attrs.get(S.ATTR_VERSION, 1))
    required = (S.OBSERVED, S.STATUS_STATE, S.STATUS_FRAMES, S.STATUS_MESSAGE) + ((S.TARGET,) if version < 2 else ())
    for name in required:
        if name not in f:
            problems.append(f"missing dataset '/{name}'")
    if version >= 2 and S.OPERATOR not in f:
        problems.append(f"missing group '/{S.OPERATOR}'")
    shape = tuple(int(s) for s in f.attrs[S.ATTR_SIGNAL_SHAPE])
    kind = as_str(f.attrs[S.ATTR_KIND])
    if kind not in S.KINDS:
        problems.append(f"kind is {kind!r}, not one of {S.KINDS}")
    if S.TARGET in f and f[S.TARGET].shape != shape:
        problems.append(f"'/{S.TARGET}' has shape {f[S.TARGET].shape}, not the signal shape {shape}")
    try:
        expected = observed_shape(operator_of(f), shape)
    except (TrajectoryError, ValueError, TypeError, KeyError) as exc:
        problems.append(f"'/{S.OPERATOR}' is not a valid operator ({exc})")
        expected = None
    if expected is not None and S.OBSERVED in f and f[S.OBSERVED].shape != expected:
        problems.append(f"'/{S.OBSERVED}' has shape {f[S.OBSERVED].shape}, not {expected} (the operator's output)")
    for r in range(int(f.attrs[S.ATTR_N_RUNS])):
        g = S.run_group(r)
        if g not in f:
            problems.append(f"missing group '/{g}'")
            continue
        for key in S.RUN_ATTRS:
            if key not in f[g].attrs:
                problems.append(f"'/{g}' lacks attribute '{key}'")
        for ds in (S.OUTPUT, S.LOSS):
            if ds not in f[g]:
                problems.append(f"missing dataset '/{g}/{ds}'")
        if S.OUTPUT in f[g] and f[g][S.OUTPUT].shape[1:] != shape:
            problems.append(f"'/{g}/{S.OUTPUT}' frames have shape {f[g][S.OUTPUT].shape[1:]}, not {shape}")
    for slot in S.CHECKPOINT_SLOTS:
        for ds in (S.SLOT_BLOB, S.SLOT_META):
            if f"{slot}/{ds}" not in f:
                problems.append(f"missing dataset '/{slot}/{ds}'")
    return problems




def operator_of(f: h5py.File) -> dict:
    """``{"name", "options"}`` of a file's operator; format 1 files have the identity."""
    g = f.get(S.OPERATOR)
    if g is None:
        return {"name": "identity", "options": {}}
    return {"name": as_str(g.attrs[S.OPERATOR_NAME]), "options": json.loads(as_str(g.attrs[S.OPERATOR_OPTIONS]))}


def observed_shape(operator: dict, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of ``/observed`` for a signal of ``shape`` (``(N,)`` or ``(C, H, W)``)."""
    if operator["name"] != "downsample":
        return tuple(shape)
    factor = int(operator["options"]["factor"])
    spatial = shape if len(shape) == 1 else shape[1:]
    low = tuple(s // factor for s in spatial)
    return low if len(shape) == 1 else (shape[0], *low)


def _integer(value) -> int | None:
    """An HDF5 attribute as an int when it is an integer scalar, else None."""
    a = np.asarray(value)
    if a.shape != () or a.dtype.kind not in "iu":
        return None
    return int(a)


def _attribute_problems(f: h5py.File) -> list[str]:
    """The root and run attributes against the schema: types, ranges, and agreement with the
    stored configuration and the data."""
    a, problems = f.attrs, []
    version = _integer(a[S.ATTR_VERSION])
    if version is None or not 1 <= version <= S.FORMAT_VERSION:
        problems.append(f"format_version is {a[S.ATTR_VERSION]!r}, not an integer in 1..{S.FORMAT_VERSION}")
    n_runs, iterations = _integer(a[S.ATTR_N_RUNS]), _integer(a[S.ATTR_ITERATIONS])
    if n_runs is None or n_runs < 1:
        problems.append(f"n_runs is {a[S.ATTR_N_RUNS]!r}, not an integer >= 1")
    if iterations is None or iterations < 0:
        problems.append(f"iterations is {a[S.ATTR_ITERATIONS]!r}, not an integer >= 0")
    kind = as_str(a[S.ATTR_KIND])
    shape = np.asarray(a[S.ATTR_SIGNAL_SHAPE])
    if shape.ndim != 1 or shape.dtype.kind not in "iu" or not (shape > 0).all():
        problems.append(f"signal_shape is {a[S.ATTR_SIGNAL_SHAPE]!r}, not a list of positive integers")
    elif kind in S.KINDS and len(shape) != (1 if kind == "1d" else 3):
        problems.append(f"signal_shape {tuple(int(v) for v in shape)} does not fit kind {kind!r} "
                        f"({'(N,)' if kind == '1d' else '(C, H, W)'})")
    if problems:
        return problems
    try:
        cfg = json.loads(as_str(a[S.ATTR_CONFIG]))
        fit, signal = cfg.get("fit"), cfg.get("signal")
    except (ValueError, TypeError, AttributeError):
        return problems  # the configuration's own check reports it
    fit = fit if isinstance(fit, dict) else {}
    signal = signal if isinstance(signal, dict) else {}
    if fit.get("runs") not in (None, n_runs):
        problems.append(f"the configuration has {fit.get('runs')!r} runs, the file {n_runs}")
    if fit.get("iterations") not in (None, iterations):
        problems.append(f"the configuration has {fit.get('iterations')!r} iterations, the file {iterations}")
    lr = fit.get("lr")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not np.isfinite(lr) or lr <= 0):
        problems.append(f"the configuration's learning rate {lr!r} is not a positive number")
    expected_kind = {"sines": "1d", "image": "image", "triangle": "image"}.get(signal.get("kind"))
    if expected_kind is not None and kind != expected_kind:
        problems.append(f"the configuration's signal is {signal.get('kind')!r} but the file's kind is {kind!r}")
    for r in range(n_runs):
        g = f.get(S.run_group(r))
        if g is None:
            continue
        for key in S.RUN_ATTRS:
            if key in g.attrs:
                value = _integer(g.attrs[key])
                if value is None or value < 0:
                    problems.append(f"run {r}'s {key} is {g.attrs[key]!r}, not an integer >= 0")
    if S.TARGET in f and f[S.TARGET].dtype.kind == "f" and f[S.TARGET].size and not np.isfinite(f[S.TARGET][()]).any():
        problems.append("the target holds no finite value")
    return problems
