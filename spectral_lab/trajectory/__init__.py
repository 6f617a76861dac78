"""Trajectory files (HDF5): creation, the recorder, the reader, checks, resume.

The only package that imports h5py. Layout and guarantees: docs/trajectory-format.md;
names and version: `schema`.

- `create`: `create_trajectory` writes the whole layout, then opens the file for SWMR writing;
- `writer`: `TrajectoryRecorder`, the fit callback with a background writer thread;
- `reader`: `open_trajectory` / `Trajectory`, lazy reads of a live or finished file;
- `check`: `check_trajectory` against the schema;
- `resume`: `prepare_resume`, cut back to the last checkpoint and reopen;
- `interop`: `open_xarray` (xarray view of a live, killed or finished file) and
  `repair_trajectory` (clear a killed writer's flags so that every HDF5 tool opens it);
- `_h5`: libhdf5 details (SWMR-read opening, the writer's lock, clearing a killed writer's flags).

The names below are imported on first use, so that ``schema`` (constants only) can be
read without importing h5py (the CLI builds its choices from it at start-up).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "check_trajectory": "check", "COMPRESSIONS": "schema", "STORAGE_DTYPES": "schema", "chunk_frames": "create",
    "create_trajectory": "create", "Trajectory": "reader", "open_trajectory": "reader", "ResumePoint": "resume",
    "prepare_resume": "resume", "TrajectoryRecorder": "writer", "open_xarray": "interop",
    "repair_trajectory": "interop",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
