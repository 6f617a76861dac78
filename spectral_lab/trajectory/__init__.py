"""Trajectory files (HDF5): creation, the recorder, the reader, checks, resume.

The only package that imports h5py. Layout and guarantees: docs/trajectory-format.md;
names and version: `schema`.

- `create`: `create_trajectory` writes the whole layout, then opens the file for SWMR writing;
- `writer`: `TrajectoryRecorder`, the fit callback with a background writer thread;
- `reader`: `open_trajectory` / `Trajectory`, lazy reads of a live or finished file;
- `check`: `check_trajectory` against the schema;
- `resume`: `prepare_resume`, cut back to the last checkpoint and reopen;
- `_h5`: libhdf5 details (SWMR-read opening, the writer's lock, clearing a killed writer's flags).
"""

from .check import check_trajectory
from .create import COMPRESSIONS, STORAGE_DTYPES, chunk_frames, create_trajectory
from .reader import Trajectory, open_trajectory
from .resume import ResumePoint, prepare_resume
from .writer import TrajectoryRecorder

__all__ = ["Trajectory", "TrajectoryRecorder", "open_trajectory", "create_trajectory", "prepare_resume",
           "ResumePoint", "check_trajectory", "chunk_frames", "STORAGE_DTYPES", "COMPRESSIONS"]
