"""Resuming an unfinished recording: cut back to the last checkpoint, reopen for writing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..errors import TrajectoryError
from . import schema as S
from ._h5 import check_space, clear_write_flags, h5_errors, locked_by_other, open_for_writing
from .reader import open_trajectory

__all__ = ["ResumePoint", "prepare_resume"]


@dataclass
class ResumePoint:
    config: dict
    frames: int  # stored frames kept
    blob: bytes | None  # checkpoint bytes (None: start again from iteration 0)
    iteration: int = 0  # the fit resumes at this iteration (= frames without a frame stride)


def prepare_resume(path: str | os.PathLike) -> tuple[ResumePoint, h5py.File]:
    """Open an unfinished trajectory for appending, cut back to its last checkpoint.

    Returns the resume point and the file, open in SWMR-write mode.
    """
    path = Path(path)
    with open_trajectory(path) as traj:
        state = traj.status
        if state == "complete":
            raise TrajectoryError(f"{path} is complete; nothing to resume")
        if state == "diverged":
            raise TrajectoryError(f"{path} stopped because the optimisation diverged; resuming would "
                                  f"diverge again (lower the learning rate and record anew)")
        if state not in S.RESUMABLE_STATES:
            raise TrajectoryError(f"{path} has status {state!r}, which cannot be resumed")
        config = traj.config
        blob, iteration = traj.latest_checkpoint()
        for r in range(traj.n_runs):  # read all that will be written: a damaged file stays untouched
            traj.n_frames(r)
        iteration = iteration if blob is not None else 0
        # stored frames of the iterations before the checkpoint (all of them without a stride)
        keep = int(np.searchsorted(traj.frame_iterations(0), iteration, side="left")) if traj.n_runs else 0
        out = traj.frames(0)
        block = (out.chunks[0] if out.chunks else 1) * int(np.prod(out.shape[1:])) * out.dtype.itemsize * traj.n_runs
        needed = block + 2 * (len(blob) if blob is not None else 0)
    try:
        check_space(path, needed, "resuming (a block of frames and a checkpoint)")
    except OSError as exc:
        raise TrajectoryError(f"cannot resume {path}: {exc.strerror}; the file is left as it was") from None
    if locked_by_other(path):
        raise TrajectoryError(f"{path} is being written by another process")
    try:
        clear_write_flags(path)
    except OSError as exc:
        raise TrajectoryError(f"cannot open {path} for writing: {exc.strerror}") from None
    f = open_for_writing(path)
    try:
        with h5_errors(path):
            # the count first: a kill during the cut-back leaves a file that claims no
            # frame it does not hold
            f[S.STATUS_FRAMES][()] = np.int64(keep)
            f[S.STATUS_STATE][()] = np.bytes_("running".ljust(16))
            f[S.STATUS_MESSAGE][()] = np.bytes_(b"")
            f.flush()
            for r in range(int(f.attrs[S.ATTR_N_RUNS])):
                g = f[S.run_group(r)]
                g[S.OUTPUT].resize(keep, axis=0)
                g[S.LOSS].resize(keep, axis=0)
            if S.ITERATIONS in f:
                f[S.ITERATIONS].resize(keep, axis=0)
            f.flush()
    except BaseException:
        f.close()
        raise
    return ResumePoint(config=config, frames=keep, blob=blob, iteration=iteration), f


