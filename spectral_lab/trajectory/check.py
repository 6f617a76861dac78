"""`check_trajectory`: every way a file departs from docs/trajectory-format.md."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from ..errors import TrajectoryError
from . import schema as S
from ._h5 import as_str, h5_errors, open_file, refresh
from .reader import _layout_problems, _parse_config

__all__ = ["check_trajectory"]


def check_trajectory(path: str | os.PathLike) -> list[str]:
    """Every way a file departs from the documented schema (empty list: valid)."""
    path = Path(path)
    f = open_file(path)
    try:
        with h5_errors(path):
            if as_str(f.attrs.get(S.ATTR_FORMAT, "")) != S.FORMAT_NAME:
                return ["not a spectral_lab trajectory (root attribute 'format' missing or different)"]
            problems = _layout_problems(f)
            version = int(f.attrs.get(S.ATTR_VERSION, -1))
            if version > S.FORMAT_VERSION:
                problems.append(f"format version {version} is newer than {S.FORMAT_VERSION}")
            if problems:
                return problems
            state = as_str(f[S.STATUS_STATE][()]).strip()
            if state not in S.STATES:
                problems.append(f"status {state!r} is not one of {S.STATES}")
            frames = int(f[S.STATUS_FRAMES][()])
            iterations = int(f.attrs[S.ATTR_ITERATIONS])
            every = stored_every(f)
            expected = stored_frames(iterations, every)
            if state == "complete" and frames != expected:
                problems.append(f"complete, but {frames} frames instead of {expected} (iterations {iterations}, "
                                f"a frame every {every})")
            if S.ITERATIONS in f:
                its = f[S.ITERATIONS]
                refresh(its)
                if its.shape[0] < frames:
                    problems.append(f"'/{S.ITERATIONS}' holds fewer entries than the {frames} frames")
                elif frames and not np.all(np.diff(its[:frames]) > 0):
                    problems.append(f"'/{S.ITERATIONS}' is not increasing")
            runs = []
            for r in range(int(f.attrs[S.ATTR_N_RUNS])):
                g = f[S.run_group(r)]
                out, loss = g[S.OUTPUT], g[S.LOSS]
                refresh(out)  # a live writer has grown them since the file was opened
                refresh(loss)
                if out.shape[0] < frames or loss.shape[0] < frames:
                    problems.append(f"run {r} holds fewer frames than the {frames} the status claims")
                runs.append((out, loss))
            try:
                _parse_config(f.attrs[S.ATTR_CONFIG], path)
            except TrajectoryError as exc:
                problems.append(str(exc).removeprefix(f"{path}: "))
            problems += _unreadable(f, runs, frames)
            return problems
    finally:
        f.close()


def _unreadable(f: h5py.File, runs: list, frames: int) -> list[str]:
    """Read what a reader needs (every attribute, the signals, each run's losses and its first
    and last frame, the checkpoint slots): HDF5 reports damaged metadata only when read."""
    problems = []
    parts = [("root attributes", lambda: dict(f.attrs.items())),
             (f"'/{S.OBSERVED}'", lambda: f[S.OBSERVED][()])]
    if S.TARGET in f:
        parts.append((f"'/{S.TARGET}'", lambda: f[S.TARGET][()]))
    if S.OPERATOR in f:
        parts.append((f"'/{S.OPERATOR}'", lambda: {k: f[S.OPERATOR][k][()] for k in f[S.OPERATOR]}))
    for r, (out, loss) in enumerate(runs):
        n = min(frames, out.shape[0], loss.shape[0])
        parts.append((f"run {r}'s losses", lambda loss=loss, n=n: loss[:n]))
        if n:
            parts.append((f"run {r}'s frames", lambda out=out, n=n: (out[0], out[n - 1])))
    for slot in S.CHECKPOINT_SLOTS:
        parts.append((f"'/{slot}'", lambda slot=slot: f[slot][S.SLOT_META][()]))
    for what, read in parts:
        try:
            read()
        except (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
            problems.append(f"{what} cannot be read ({exc})")
    return problems



def stored_every(f: h5py.File) -> int:
    """The frame stride of a file (its config's ``record.every``; 1 when absent)."""
    try:
        return max(1, int((json.loads(as_str(f.attrs[S.ATTR_CONFIG])).get("record") or {}).get("every", 1)))
    except (ValueError, TypeError, AttributeError):
        return 1


def stored_frames(iterations: int, every: int) -> int:
    """Frames a complete recording stores: iterations 0, K, 2K, ... and the last."""
    return iterations // every + 1 + (1 if iterations % every else 0)
