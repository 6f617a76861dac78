"""The plumbing every analyzer shares: a typed reader, open-or-accept, per-run blocks, JSON numbers.

Analyzers are pure functions over arrays plus a short streaming loop over a trajectory.
The loop is written against `TrajectoryReader` — what `spectral_lab.trajectory.Trajectory`
offers and what tests fake with arrays — and gets its reader from `open_reader`, which
opens a path (and closes it after) or passes an open reader through. Results are frozen
dataclasses deriving from `Result`, whose ``to_json()`` gives plain dicts, lists and
numbers (non-finite values as ``null``: JSON has no NaN or infinity).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol, runtime_checkable

import numpy as np

from spectral_lab.errors import AnalysisError

__all__ = ["TrajectoryReader", "open_reader", "operator_name", "require_operator", "frame_iterations",
           "at_iterations", "run_blocks", "run_frames", "map_blocks", "json_float",
           "json_numbers", "json_safe", "Result"]


@runtime_checkable
class TrajectoryReader(Protocol):
    """What an analyzer may read of a trajectory (the reader API of `spectral_lab.trajectory`).

    ``kind`` is ``"1d"`` or ``"image"``; ``target`` and ``observed`` are the clean and the
    fitted signal; frames of run r are ``(T_r, *signal_shape)``, frame i = iteration i.
    """

    kind: str
    config: dict
    n_runs: int
    signal_shape: tuple[int, ...]

    @property
    def target(self) -> np.ndarray: ...

    @property
    def observed(self) -> np.ndarray: ...

    def run_seeds(self, r: int) -> dict: ...

    def n_frames(self, r: int) -> int: ...

    def frames(self, r: int) -> Any: ...

    def iter_frames(self, r: int, chunk: int | None = None, start: int = 0,
                    stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]: ...


@contextlib.contextmanager
def open_reader(traj_or_path: Any) -> Iterator[TrajectoryReader]:
    """Yield an open reader: a path is opened with `spectral_lab.trajectory.open_trajectory`
    and closed on exit; a reader is passed through (and left open)."""
    if isinstance(traj_or_path, (str, os.PathLike)):
        # imported here: the array functions of the analyzers must not need h5py
        from spectral_lab.trajectory import open_trajectory

        with open_trajectory(traj_or_path) as traj:
            yield traj
    else:
        yield traj_or_path


def run_blocks(traj: TrajectoryReader, r: int, chunk: int | None = None, *, start: int = 0,
               stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(first_iteration, block)`` of run r in order, checking that the blocks are contiguous."""
    expected = start
    window = {} if (start, stop) == (0, None) else {"start": start, "stop": stop}
    for first, block in traj.iter_frames(r, chunk=chunk, **window):
        if first != expected:
            raise AnalysisError(f"run {r}: expected frames from iteration {expected}, got a block from {first}")
        expected += len(block)
        yield first, block


def run_frames(traj: TrajectoryReader, r: int, chunk: int | None = None) -> Iterator[np.ndarray]:
    """Run r's frames one by one (read a block at a time)."""
    return itertools.chain.from_iterable(block for _, block in run_blocks(traj, r, chunk))


def map_blocks(traj: TrajectoryReader, r: int, fn: Callable[[np.ndarray], np.ndarray],
               chunk: int | None = None) -> np.ndarray:
    """``fn`` of every block of run r, concatenated along iterations: a (T, ...) array of
    per-frame values without holding more than one block of frames. AnalysisError for a run
    without frames."""
    parts = [np.asarray(fn(block)) for _, block in run_blocks(traj, r, chunk)]
    if not parts:
        raise AnalysisError(f"run {r} has no recorded frames")
    return np.concatenate(parts)


def operator_name(traj: TrajectoryReader) -> str:
    """The forward operator of a trajectory (``identity`` for readers that do not say)."""
    return (getattr(traj, "operator", None) or {"name": "identity"})["name"]


def require_operator(traj: TrajectoryReader, allowed: tuple[str, ...], what: str) -> None:
    """AnalysisError (one line) when the file's operator is not one ``what`` was derived for."""
    name = operator_name(traj)
    if name not in allowed:
        raise AnalysisError(f"{what} assumes {' or '.join(allowed)} as the forward operator; this file's "
                            f"operator is {name} (task {traj.config.get('task', '?')})")


def frame_iterations(traj: TrajectoryReader, r: int) -> np.ndarray:
    """The real iteration of each stored frame of run r: with a frame stride (``record.every``)
    frame i is not iteration i. Readers without the notion: 0, 1, 2, ..."""
    get = getattr(traj, "frame_iterations", None)
    return np.asarray(get(r), dtype=np.int64) if get is not None else np.arange(traj.n_frames(r), dtype=np.int64)


def at_iterations(iterations: np.ndarray, indices):
    """Frame indices (an int, None, or a list of them) as the iterations of those frames."""
    if indices is None:
        return None
    if isinstance(indices, (list, tuple)):
        return type(indices)(at_iterations(iterations, i) for i in indices)
    return int(iterations[int(indices)])


def json_float(value: Any) -> float | None:
    """A float that JSON can hold: ±inf and NaN become None (``null``)."""
    value = float(value)
    return value if math.isfinite(value) else None


def json_numbers(values: Any) -> list:
    """An array (any shape) as nested lists of floats, non-finite values as None."""
    a = np.asarray(values, dtype=np.float64)
    out = a.astype(object)
    out[~np.isfinite(a)] = None
    return out.tolist()


def json_safe(obj: Any) -> Any:
    """Dicts, sequences, numpy scalars and arrays, paths and dataclasses as JSON values,
    non-finite floats as None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return json_safe(obj.to_json() if isinstance(obj, Result) else dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return json_numbers(obj) if obj.dtype.kind in "fc" else obj.tolist()
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return json_float(obj)
    return obj


class Result:
    """Base of every analyzer's result (a frozen dataclass): ``to_json()`` gives what
    ``json.dumps(..., allow_nan=False)`` accepts. The default converts every field with
    `json_safe`; results with a documented JSON layout override it."""

    def to_json(self) -> dict:
        return {f.name: json_safe(getattr(self, f.name)) for f in dataclasses.fields(self)}
