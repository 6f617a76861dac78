"""Creating a trajectory file: the whole layout first, then SWMR writing (docs/trajectory-format.md)."""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import json
import os
import secrets
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np
import torch

from .. import __version__
from ..errors import TrajectoryError
from . import schema as S
from .schema import COMPRESSIONS, STORAGE_DTYPES
from ._h5 import check_space, locked_by_other, one_line, open_for_writing, quarantine

__all__ = ["create_trajectory", "chunk_frames", "STORAGE_DTYPES", "COMPRESSIONS"]

_CHUNK_BYTES = 1 << 20


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def chunk_frames(signal_shape: Sequence[int], itemsize: int) -> int:
    """Frames per HDF5 chunk (and per write block): about 1 MiB, at most 256."""
    frame = int(np.prod(signal_shape)) * itemsize
    return int(max(1, min(256, _CHUNK_BYTES // max(frame, 1))))



def create_trajectory(path: str | os.PathLike, *, config: dict, kind: str, target: np.ndarray | None,
                      observed: np.ndarray, run_seeds: Sequence[dict], iterations: int,
                      dtype: str = "float32", compression: str = "none",
                      overwrite: bool = False, operator: Mapping[str, Any] | None = None,
                      signal_shape: Sequence[int] | None = None, posterior: bool = False,
                      snapshots: Sequence[int] = (), n_params: int = 0) -> h5py.File:
    """Create the whole layout of a trajectory file and return it open in SWMR-write mode.

    ``target`` may be None (no clean reference); then ``signal_shape`` gives the output's
    shape. ``operator``: ``{"name", "options", "arrays"}`` of the forward operator (default:
    the identity), written to ``/operator``. ``posterior``: create each run's posterior
    mean, variance and count; ``snapshots``: iterations whose parameters (``n_params`` per
    run) will be stored. Nothing is left behind if creation fails. An
    existing file is refused unless ``overwrite``; a file another process is writing is
    refused always.
    """
    path = Path(path)
    if dtype not in STORAGE_DTYPES:
        raise TrajectoryError(f"unknown storage dtype {dtype!r}; choose from {', '.join(STORAGE_DTYPES)}")
    if compression not in COMPRESSIONS:
        raise TrajectoryError(f"unknown compression {compression!r}; choose from {', '.join(COMPRESSIONS)}")
    if len(os.fsencode(path.name)) > NAME_MAX:
        raise TrajectoryError(f"the file name is {len(os.fsencode(path.name))} bytes long; file systems allow "
                              f"{NAME_MAX}")
    if path.is_dir():
        raise TrajectoryError(f"{path} is a folder; give the trajectory a file name")
    if target is None and signal_shape is None:
        raise TrajectoryError("a trajectory without a clean target needs its signal_shape")
    shape = tuple(int(s) for s in (target.shape if signal_shape is None else signal_shape))
    if target is not None and tuple(target.shape) != shape:
        raise TrajectoryError(f"the target's shape {tuple(target.shape)} is not the signal shape {shape}")
    operator = dict(operator or {"name": "identity", "options": {}, "arrays": {}})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrajectoryError(f"cannot create the folder {path.parent}: {exc.strerror or exc}") from None
    with _creating(path):
        _refuse_existing(path, overwrite)
        layout = _layout_bytes(target, observed, operator, shape, len(run_seeds), posterior, len(snapshots),
                               int(n_params))
        try:
            check_space(path.parent, layout, "creating the file")
        except OSError as exc:
            raise TrajectoryError(f"cannot create {path}: {exc.strerror}") from None
        # The layout is written to a hidden sibling (a short name: the output's may be as long as
        # the file system allows), then put into place: linked (which fails if another process
        # made the path meanwhile) or, with --overwrite, renamed over the old file; then reopened
        # straight into SWMR writing. A kill at any moment leaves at ``path`` nothing (or the
        # old file) or a file that opens.
        tmp = path.with_name(f".sl-{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            f = h5py.File(tmp, "w", libver="latest")
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise TrajectoryError(f"cannot create {path}: {one_line(exc)}") from None
        try:
            try:
                _write_layout(f, config=config, kind=kind, target=target, observed=observed,
                              run_seeds=run_seeds, iterations=iterations, dtype=dtype,
                              compression=compression, shape=shape, operator=operator, posterior=posterior,
                              snapshots=list(snapshots), n_params=int(n_params))
            except BaseException:
                quarantine(f)  # a half-written layout: let HDF5 close it without retrying its writes
                raise
            finally:
                f.close()
            if overwrite:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    raise TrajectoryError(f"{path} was created by another process meanwhile; not replacing it "
                                          "(pass --overwrite to replace it)") from None
                finally:
                    tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise TrajectoryError(f"cannot create {path}: {one_line(exc)}") from None
        finally:
            tmp.unlink(missing_ok=True)
        return open_for_writing(path)


NAME_MAX = 255


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise TrajectoryError(f"{path} exists; pass --overwrite to replace it")
        if locked_by_other(path):
            raise TrajectoryError(f"{path} is being written by another process; not overwriting it")


@contextmanager
def _creating(path: Path):
    """Only one process creates ``path`` at a time: an exclusive ``flock`` on a hidden lock file
    of the folder (named after the path's hash, so any name fits), held until the new file is
    open for writing (and holds its own writer's lock); the lock file is removed after."""
    digest = hashlib.sha1(os.fsencode(path.name)).hexdigest()[:16]
    lock = path.with_name(f".sl-{digest}.lock")
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o644)
    except OSError as exc:
        raise TrajectoryError(f"cannot create {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise TrajectoryError(f"{path} is being created by another process") from None
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _layout_bytes(target, observed, operator, shape, runs, posterior, snapshots, n_params) -> int:
    """What the layout will occupy, roughly: the signals, the operator's arrays, the posterior
    and snapshot storage (allocated at creation), and HDF5's metadata."""
    n = 0
    for a in (target, observed, *(operator.get("arrays") or {}).values()):
        if a is not None:
            n += np.asarray(a).nbytes
    size = int(np.prod(shape))
    if posterior:
        n += 2 * 8 * size * runs
    n += 4 * snapshots * runs * n_params
    return n + (64 << 10) * (runs + 4)


def _write_layout(f, *, config, kind, target, observed, run_seeds, iterations, dtype, compression, shape,
                  operator, posterior=False, snapshots=(), n_params=0):
    a = f.attrs
    a[S.ATTR_FORMAT] = S.FORMAT_NAME
    a[S.ATTR_VERSION] = S.FORMAT_VERSION
    a[S.ATTR_LAB_VERSION] = __version__
    a[S.ATTR_TORCH_VERSION] = str(torch.__version__)
    a[S.ATTR_CREATED] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    a[S.ATTR_GIT] = _git_commit()
    a[S.ATTR_CONFIG] = json.dumps(config, sort_keys=True)
    a[S.ATTR_KIND] = kind
    a[S.ATTR_SIGNAL_SHAPE] = np.asarray(shape, dtype=np.int64)
    a[S.ATTR_N_RUNS] = len(run_seeds)
    a[S.ATTR_ITERATIONS] = int(iterations)
    if target is not None:
        f.create_dataset(S.TARGET, data=np.asarray(target, dtype=np.float32))
    f.create_dataset(S.OBSERVED, data=np.asarray(observed, dtype=np.float32))
    op = f.create_group(S.OPERATOR)
    op.attrs[S.OPERATOR_NAME] = str(operator["name"])
    op.attrs[S.OPERATOR_OPTIONS] = json.dumps(dict(operator.get("options") or {}), sort_keys=True)
    for name, array in (operator.get("arrays") or {}).items():
        op.create_dataset(name, data=np.asarray(array))
    np_dtype = np.dtype(dtype)
    block = chunk_frames(shape, np_dtype.itemsize)
    comp = {} if compression == "none" else {"compression": compression}
    if compression == "gzip":
        comp["compression_opts"] = 4
    for r, seeds in enumerate(run_seeds):
        g = f.create_group(S.run_group(r))
        for key in S.RUN_ATTRS:
            g.attrs[key] = int(seeds[key])
        g.create_dataset(S.OUTPUT, shape=(0, *shape), maxshape=(None, *shape), dtype=np_dtype,
                         chunks=(block, *shape), **comp)
        g.create_dataset(S.LOSS, shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(4096,))
        if posterior:  # written now, so that their space is taken before the run starts
            g.create_dataset(S.POSTERIOR_MEAN, data=np.full(shape, np.nan))
            g.create_dataset(S.POSTERIOR_VAR, data=np.full(shape, np.nan))
            g.create_dataset(S.POSTERIOR_COUNT, data=np.int64(0))
    f.create_dataset(S.ITERATIONS, shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
    if snapshots:
        f.create_dataset(S.SNAPSHOT_PARAMS, data=np.zeros((len(snapshots), len(run_seeds), n_params), np.float32))
        f.create_dataset(S.SNAPSHOT_ITERATIONS, data=np.full(len(snapshots), -1, dtype=np.int64))
    f.create_dataset(S.STATUS_STATE, data=np.bytes_("running".ljust(16)), dtype="S16")
    f.create_dataset(S.STATUS_FRAMES, data=np.int64(0))
    f.create_dataset(S.STATUS_MESSAGE, data=np.bytes_(""), dtype=f"S{S.MESSAGE_BYTES}")
    for slot in S.CHECKPOINT_SLOTS:
        g = f.create_group(slot)
        g.create_dataset(S.SLOT_BLOB, shape=(0,), maxshape=(None,), dtype=np.uint8, chunks=(1 << 16,))
        g.create_dataset(S.SLOT_META, data=np.array([-1, 0, 0], dtype=np.int64))
    _label_dimensions(f, shape, n_runs=len(run_seeds), loss=str((config.get("loss") or {}).get("name", "mse")))


# netCDF-4's mark of a dimension scale that is a dimension only (netCDF-C writes the length after it)
_NOT_A_VARIABLE = "This is a netCDF dimension but not a netCDF variable."


def _label_dimensions(f, shape: tuple[int, ...], *, n_runs: int, loss: str) -> None:
    """Name the axes of every signal dataset for other tools (xarray, ncdump, Panoply): HDF5
    dimension scales as netCDF-4 lays them out, and ``long_name`` / ``units`` attributes.

    Attributes may not be added once SWMR writing has started, so this is part of the layout.
    ``iteration`` is a dimension without values (unlimited; its length is that of the longest
    dataset on it), whose values are ``/iterations``; the spatial axes are coordinate
    variables 0, 1, 2, ... The operator's arrays, the checkpoints and the snapshots stay
    unlabelled (tools show them with made-up axis names).
    """
    def described(ds, long_name: str, units: str):
        ds.attrs[S.ATTR_LONG_NAME] = long_name
        ds.attrs[S.ATTR_UNITS] = units
        return ds

    def coordinate(name: str, n: int, long_name: str, units: str):
        ds = described(f.create_dataset(name, data=np.arange(n, dtype=np.int64)), long_name, units)
        ds.make_scale(name)
        return ds

    def axes_of(values_shape: tuple[int, ...], prefix: str = "", whose: str = "") -> list:
        if len(values_shape) == 1:
            return [coordinate(prefix + S.DIM_SAMPLE, values_shape[0], f"sample index n{whose} (t = n / N)", "sample")]
        c, h, w = values_shape
        return [coordinate(prefix + S.DIM_CHANNEL, c, "colour channel (R, G, B; or grey)", "1"),
                coordinate(prefix + S.DIM_Y, h, f"row{whose} (top to bottom)", "pixel"),
                coordinate(prefix + S.DIM_X, w, f"column{whose} (left to right)", "pixel")]

    def attach(ds, scales) -> None:
        for axis, scale in enumerate(scales):
            ds.dims[axis].attach_scale(scale)

    iteration = f.create_dataset(S.DIM_ITERATION, shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1024,))
    iteration.make_scale(f"{_NOT_A_VARIABLE}{0:10d}")
    spatial = axes_of(shape)
    attach(described(f[S.ITERATIONS], "iteration of each stored frame", "iteration"), [iteration])
    if S.TARGET in f:
        attach(described(f[S.TARGET], "clean signal x", "1"), spatial)
    observed = f[S.OBSERVED]
    same = tuple(observed.shape) == tuple(shape)
    attach(described(observed, "observation y, the data fitted", "1"),
           spatial if same else axes_of(tuple(observed.shape), S.DIM_OBSERVED_PREFIX, " of the observation"))
    for r in range(n_runs):
        g = f[S.run_group(r)]
        attach(described(g[S.OUTPUT], "network output at each stored iteration", "1"), [iteration, *spatial])
        attach(described(g[S.LOSS], f"data term minimised ({loss})", "1"), [iteration])
        for name, long_name in ((S.POSTERIOR_MEAN, "posterior mean of the outputs after the burn-in"),
                                (S.POSTERIOR_VAR, "posterior variance of the outputs after the burn-in")):
            if name in g:
                attach(described(g[name], long_name, "1"), spatial)


