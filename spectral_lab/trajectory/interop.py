"""Trajectory files in other tools' hands: xarray (`open_xarray`) and plain HDF5 (`repair_trajectory`).

Every file carries HDF5 dimension scales (see `create`), so xarray, ncdump and the netCDF
libraries name its axes (iteration, channel, y, x; sample for 1D). A file a writer has open,
or left open when it was killed, carries HDF5's "open for SWMR writing" superblock flags:
plain ``h5py.File(path)``, h5dump and ``xarray.open_dataset(path)`` refuse it, while
``h5py.File(path, "r", swmr=True)`` reads it. `open_xarray` opens the file that way and hands
the handle to xarray; `repair_trajectory` clears a killed writer's flags for good (what
``h5clear -s`` does), after which every tool opens the file directly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import SpectralLabError, TrajectoryError
from . import schema as S
from ._h5 import clear_write_flags, locked_by_other, open_file, write_flags_set
from .reader import open_trajectory

__all__ = ["open_xarray", "repair_trajectory", "xarray_missing"]


def xarray_missing(what: str) -> str | None:
    """None when xarray and h5netcdf import, else the one-line reason naming the extra."""
    try:
        import h5netcdf  # noqa: F401
        import xarray  # noqa: F401
    except ImportError as exc:
        return f"{what} needs xarray and h5netcdf ({exc.name} is not installed): pip install 'spectral_lab[xarray]'"
    return None


def open_xarray(path: str | os.PathLike, group: str | None = None) -> Any:
    """A trajectory file as xarray objects, lazily read; works on live, killed and finished files.

    Parameters
    ----------
    path : str or os.PathLike
    group : str, optional
        None: the whole file as an ``xarray.DataTree`` (root: ``target``, ``observed``,
        ``iterations``; ``runs/<r>``: ``output`` (iteration, channel, y, x) or (iteration,
        sample) and ``loss`` (iteration); ``status``: ``state`` and ``message`` as stripped
        strings, ``frames``). A group path (e.g. ``"runs/0"``): that group as an
        ``xarray.Dataset``, with the root's coordinates.

    Every dataset along ``iteration`` is cut to the flushed frames (``/status/frames``; a live
    or killed writer may have written more, not yet valid), and ``iteration`` gets the stored
    iterations as its coordinate (with a frame stride: 0, K, 2K, ...). The file stays open
    until the returned object is closed (``close()``, or a ``with`` block).

    Raises
    ------
    TrajectoryError
        The file is not a readable trajectory (one line), or ``group`` is not in it.
    SpectralLabError
        xarray or h5netcdf is not installed (the ``xarray`` extra).
    """
    missing = xarray_missing("open_xarray")
    if missing:
        raise SpectralLabError(missing)
    import numpy as np
    import xarray as xr

    path = Path(path)
    with open_trajectory(path) as t:  # one-line errors for anything that is not a readable trajectory
        frames = min((t.n_frames(r) for r in range(t.n_runs)), default=0)
        iterations = t.frame_iterations(0)[:frames] if t.n_runs else np.zeros(0, dtype=np.int64)
    f = open_file(path)  # plain, or in SWMR-read mode when the superblock says a writer has it open
    tree = None
    try:
        tree = xr.open_datatree(f, engine="h5netcdf", phony_dims="sort")
        nodes = {}
        for node in tree.subtree:
            ds = node.to_dataset(inherit=False)
            if S.DIM_ITERATION in ds.dims:
                ds = ds.isel({S.DIM_ITERATION: slice(0, frames)})
            if node.path == "/":
                ds = ds.assign_coords({S.DIM_ITERATION: (S.DIM_ITERATION, iterations,
                                                         {S.ATTR_LONG_NAME: "iteration", S.ATTR_UNITS: "iteration"})})
            if node.path == f"/{S.STATUS}":
                ds = ds.assign({k: ds[k].copy(data=np.asarray(ds[k].values.item().decode().strip()))
                                for k in ("state", "message") if k in ds})
            nodes[node.path] = ds
        out = xr.DataTree.from_dict(nodes)
        if group is not None:
            key = "/" + group.strip("/")
            if key not in nodes:
                raise TrajectoryError(f"{path} has no group {group!r}; its groups are "
                                      f"{', '.join(p for p in nodes if p != '/')}")
            out = out[key].to_dataset(inherit=True)
    except BaseException:
        if tree is not None:
            tree.close()
        f.close()
        raise

    def close() -> None:
        tree.close()  # the h5netcdf store (it leaves a handed-in h5py file open)
        f.close()

    out.set_close(close)
    return out


def repair_trajectory(path: str | os.PathLike) -> bool:
    """Clear the superblock flags a killed writer left, so that every HDF5 tool opens the file.

    The frames, status and checkpoints are untouched (a killed recording stays resumable with
    ``record --resume``). Returns True when there were flags to clear, False for a file that
    was closed properly.

    Raises
    ------
    TrajectoryError
        Not a readable trajectory, or a live file (a process is writing it: its flags are
        the writer's, and clearing them would let readers see half-written metadata).
    """
    path = Path(path)
    if path.is_file() and locked_by_other(path):  # before HDF5 touches it
        raise TrajectoryError(f"{path} is being written by another process; it opens with "
                              f"h5py.File(path, 'r', swmr=True) or spectral_lab.open_xarray while it runs")
    with open_trajectory(path):
        pass  # one-line errors for anything that is not a readable trajectory
    if not write_flags_set(path):
        return False
    try:
        return clear_write_flags(path)
    except OSError as exc:
        raise TrajectoryError(f"cannot repair {path}: {exc.strerror or exc}") from None
