"""Trajectory files: the recorder (a fit callback with a background writer) and the reader.

The only module that imports h5py. Layout and guarantees: docs/trajectory-format.md.

Writing follows HDF5's single-writer / multiple-reader (SWMR) rules: every group, dataset
and attribute a recording will ever need is created first, then SWMR starts and the writer
only appends frames along time and overwrites the status and checkpoint slots. A reader
(``open_trajectory``) can follow a live file; a killed writer leaves a file that opens and
holds every frame up to the last flush.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import fcntl
import functools
import json
import os
import queue
import struct
import subprocess
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import h5py
import numpy as np
import torch

from . import __version__
from . import schema as S
from .config import RunConfig
from .errors import SpectralLabError, TrajectoryError, WriteError
from .fit import Callback, FitResult, FitState

__all__ = ["Trajectory", "TrajectoryRecorder", "open_trajectory", "create_trajectory",
           "prepare_resume", "check_trajectory", "STORAGE_DTYPES", "COMPRESSIONS"]

STORAGE_DTYPES = ("float32", "float16")
COMPRESSIONS = ("none", "gzip", "lzf")
_CHUNK_BYTES = 1 << 20


# --------------------------------------------------------------------------- creation

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


def _locked_by_other(path: Path) -> bool:
    """True when another process holds the HDF5 file lock (a live writer)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def create_trajectory(path: str | os.PathLike, *, config: dict, kind: str, target: np.ndarray,
                      observed: np.ndarray, run_seeds: Sequence[dict], iterations: int,
                      dtype: str = "float32", compression: str = "none",
                      overwrite: bool = False) -> h5py.File:
    """Create the whole layout of a trajectory file and return it open in SWMR-write mode.

    Nothing is left behind if creation fails. An existing file is refused unless
    ``overwrite``; a file another process is writing is refused always.
    """
    path = Path(path)
    if dtype not in STORAGE_DTYPES:
        raise TrajectoryError(f"unknown storage dtype {dtype!r}; choose from {', '.join(STORAGE_DTYPES)}")
    if compression not in COMPRESSIONS:
        raise TrajectoryError(f"unknown compression {compression!r}; choose from {', '.join(COMPRESSIONS)}")
    if path.is_dir():
        raise TrajectoryError(f"{path} is a folder; give the trajectory a file name")
    if path.exists():
        if not overwrite:
            raise TrajectoryError(f"{path} exists; pass --overwrite to replace it")
        if _locked_by_other(path):
            raise TrajectoryError(f"{path} is being written by another process; not overwriting it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrajectoryError(f"cannot create the folder {path.parent}: {exc.strerror or exc}") from None
    shape = tuple(int(s) for s in target.shape)
    # The layout is written to a hidden sibling and renamed into place once complete, then
    # reopened straight into SWMR writing: a kill at any moment leaves at ``path`` either
    # nothing (the old file, with --overwrite) or a file that opens.
    tmp = path.with_name(f".{path.name}.creating-{os.getpid()}")
    try:
        f = h5py.File(tmp, "w", libver="latest")
    except OSError as exc:
        raise TrajectoryError(f"cannot create {path}: {exc}") from None
    try:
        try:
            _write_layout(f, config=config, kind=kind, target=target, observed=observed,
                          run_seeds=run_seeds, iterations=iterations, dtype=dtype,
                          compression=compression, shape=shape)
        finally:
            f.close()
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TrajectoryError(f"cannot create {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return _open_for_writing(path)


class _WriterFile(h5py.File):
    """A trajectory open for SWMR writing that holds a shared ``flock`` on the file until closed.

    HDF5 drops its own lock once SWMR writing starts, so without this another process could
    not tell a live writer from a killed one (and ``--resume`` would clear the flags of a
    live file). Readers do not lock (``locking=False``) and are unaffected.
    """

    _lock_fd: int | None = None

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None


def _open_for_writing(path: Path) -> h5py.File:
    """Open an existing trajectory directly in SWMR-write mode (no non-SWMR moment a kill
    could leave behind) and take the writer's lock."""
    try:
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
        fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR | h5py.h5f.ACC_SWMR_WRITE, fapl=fapl)
    except OSError as exc:
        raise TrajectoryError(f"cannot open {path} for writing: {exc}") from None
    f = _WriterFile(fid)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        f.close()
        raise TrajectoryError(f"cannot open {path} for writing: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        f.close()
        raise TrajectoryError(f"{path} is being written by another process") from None
    f._lock_fd = fd
    return f


def _write_layout(f, *, config, kind, target, observed, run_seeds, iterations, dtype, compression, shape):
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
    f.create_dataset(S.TARGET, data=np.asarray(target, dtype=np.float32))
    f.create_dataset(S.OBSERVED, data=np.asarray(observed, dtype=np.float32))
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
    f.create_dataset(S.STATUS_STATE, data=np.bytes_("running".ljust(16)), dtype="S16")
    f.create_dataset(S.STATUS_FRAMES, data=np.int64(0))
    f.create_dataset(S.STATUS_MESSAGE, data=np.bytes_(""), dtype=f"S{S.MESSAGE_BYTES}")
    for slot in S.CHECKPOINT_SLOTS:
        g = f.create_group(slot)
        g.create_dataset(S.SLOT_BLOB, shape=(0,), maxshape=(None,), dtype=np.uint8, chunks=(1 << 16,))
        g.create_dataset(S.SLOT_META, data=np.array([-1, 0, 0], dtype=np.int64))


# --------------------------------------------------------------------------- crash recovery

def _lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``: the checksum of HDF5's version 2/3 superblock."""
    m = 0xFFFFFFFF

    def rot(x, k):
        return ((x << k) | (x >> (32 - k))) & m

    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & m
    i = 0
    while n > 12:
        x, y, z = struct.unpack_from("<III", data, i)
        a, b, c = (a + x) & m, (b + y) & m, (c + z) & m
        a = (a - c) & m; a ^= rot(c, 4); c = (c + b) & m  # noqa: E702
        b = (b - a) & m; b ^= rot(a, 6); a = (a + c) & m  # noqa: E702
        c = (c - b) & m; c ^= rot(b, 8); b = (b + a) & m  # noqa: E702
        a = (a - c) & m; a ^= rot(c, 16); c = (c + b) & m  # noqa: E702
        b = (b - a) & m; b ^= rot(a, 19); a = (a + c) & m  # noqa: E702
        c = (c - b) & m; c ^= rot(b, 4); b = (b + a) & m  # noqa: E702
        n -= 12
        i += 12
    if n == 0:
        return c
    x, y, z = struct.unpack("<III", data[i:] + bytes(12 - n))
    a, b, c = (a + x) & m, (b + y) & m, (c + z) & m
    c ^= b; c = (c - rot(b, 14)) & m  # noqa: E702
    a ^= c; a = (a - rot(c, 11)) & m  # noqa: E702
    b ^= a; b = (b - rot(a, 25)) & m  # noqa: E702
    c ^= b; c = (c - rot(b, 16)) & m  # noqa: E702
    a ^= c; a = (a - rot(c, 4)) & m  # noqa: E702
    b ^= a; b = (b - rot(a, 14)) & m  # noqa: E702
    c ^= b; c = (c - rot(b, 24)) & m  # noqa: E702
    return c


def clear_write_flags(path: str | os.PathLike) -> bool:
    """Clear the 'open for writing' flags a killed writer leaves in the superblock (h5clear -s).

    Only for our own files (superblock version 2 or 3, no user block). Returns True when
    flags were set and have been cleared.
    """
    with open(path, "r+b") as fh:
        head = fh.read(64)
        if head[:8] != b"\x89HDF\r\n\x1a\n" or head[8] not in (2, 3):
            return False
        offsets = head[9]
        end = 12 + 4 * offsets
        if head[11] == 0:
            return False
        stored = struct.unpack_from("<I", head, end)[0]
        if _lookup3(head[:end]) != stored:
            raise TrajectoryError(f"{path}: superblock checksum mismatch; the file is corrupted")
        fixed = bytearray(head[:end])
        fixed[11] = 0
        fh.seek(0)
        fh.write(bytes(fixed) + struct.pack("<I", _lookup3(bytes(fixed))))
        fh.flush()
        os.fsync(fh.fileno())
    return True


# --------------------------------------------------------------------------- the writer

@dataclass
class _Frames:
    start: int
    outputs: list  # of CPU tensors (R, *signal_shape)
    losses: list  # of CPU tensors (R,)
    flush: bool


@dataclass
class _Checkpoint:
    iteration: int
    blob: bytes


@dataclass
class _Status:
    state: str
    message: str


class _Writer(threading.Thread):
    """Owns the open file; applies messages in order; flushes at least every ``flush_seconds``.

    Any exception is kept in ``error`` and later messages are dropped, so the training thread
    never blocks on a dead writer; it raises ``WriteError`` at its next hand-over.
    """

    def __init__(self, f: h5py.File, n_runs: int, frames: int, flush_seconds: float, max_blocks: int):
        super().__init__(name="spectral-lab-writer", daemon=True)
        self.f, self.n_runs, self.flush_seconds = f, n_runs, flush_seconds
        self.q: queue.Queue = queue.Queue(maxsize=max_blocks)
        self.error: BaseException | None = None
        self.written = frames  # frames written to datasets
        self.flushed = frames  # frames recorded in status/frames and flushed
        self._last_flush = time.monotonic()
        self._slot = 0
        self.outputs = [f[S.run_group(r)][S.OUTPUT] for r in range(n_runs)]
        self.losses = [f[S.run_group(r)][S.LOSS] for r in range(n_runs)]
        self._slot = self._next_slot()

    def put(self, msg) -> None:
        self.q.put(msg)

    def run(self) -> None:
        while True:
            msg = self.q.get()
            if msg is None:
                break
            if self.error is not None:
                if isinstance(msg, _Status):  # best effort: say why, in place (no new space needed)
                    self._mark_failed()
                continue
            try:
                self._apply(msg)
            except BaseException as exc:  # noqa: BLE001 - reported to the training thread
                self.error = exc
        try:
            self.f.close()
        except Exception as exc:  # noqa: BLE001
            self.error = self.error or exc

    # each message kind
    def _apply(self, msg) -> None:
        if isinstance(msg, _Frames):
            self.write_frames(msg.start, msg.outputs, msg.losses)
            if msg.flush or time.monotonic() - self._last_flush >= self.flush_seconds:
                self.flush()
        elif isinstance(msg, _Checkpoint):
            self.flush()
            self.write_checkpoint(msg.iteration, msg.blob)
        elif isinstance(msg, _Status):
            self.flush()
            self.f[S.STATUS_MESSAGE][()] = np.bytes_(msg.message.encode()[: S.MESSAGE_BYTES])
            self.f[S.STATUS_STATE][()] = np.bytes_(msg.state.ljust(16))
            self.f.flush()

    def _mark_failed(self) -> None:
        try:
            self.f[S.STATUS_MESSAGE][()] = np.bytes_(f"write error: {self.error}".encode()[: S.MESSAGE_BYTES])
            self.f[S.STATUS_STATE][()] = np.bytes_("failed".ljust(16))
            self.f.flush()
        except Exception:  # noqa: BLE001 - the first error is the one reported
            pass

    def write_frames(self, start: int, outputs: list, losses: list) -> None:
        if start != self.written:
            raise WriteError(f"frame {start} arrived but {self.written} frames are written (out of order)")
        block = torch.stack(outputs).numpy()  # (B, R, *shape)
        loss = torch.stack(losses).numpy().astype(np.float64)  # (B, R)
        end = start + block.shape[0]
        for r in range(self.n_runs):
            ds = self.outputs[r]
            with np.errstate(over="ignore"):
                frames = block[:, r].astype(ds.dtype, copy=False)
            if ds.dtype != block.dtype and not np.isfinite(frames).all():
                raise WriteError(f"run {r}'s frames {start}..{end - 1} exceed the range of {ds.dtype} "
                                 f"(±{np.finfo(ds.dtype).max:g}); record with --dtype float32")
            ds.resize(end, axis=0)
            ds[start:end] = frames
            ls = self.losses[r]
            ls.resize(end, axis=0)
            ls[start:end] = loss[:, r]
        self.written = end

    def flush(self) -> None:
        # Frames first, then the count that makes them visible: a kill between the two
        # flushes loses nothing that the count claims.
        self.f.flush()
        if self.flushed != self.written:
            self.f[S.STATUS_FRAMES][()] = np.int64(self.written)
            self.f.flush()
            self.flushed = self.written
        self._last_flush = time.monotonic()

    def _next_slot(self) -> int:
        metas = [self.f[slot][S.SLOT_META][0] for slot in S.CHECKPOINT_SLOTS]
        return int(np.argmin(metas))  # overwrite the older (or empty) slot

    def write_checkpoint(self, iteration: int, blob: bytes) -> None:
        g = self.f[S.CHECKPOINT_SLOTS[self._slot]]
        data = np.frombuffer(blob, dtype=np.uint8)
        meta = g[S.SLOT_META]
        meta[...] = np.array([-1, 0, 0], dtype=np.int64)  # invalidate before overwriting
        self.f.flush()
        ds = g[S.SLOT_BLOB]
        if ds.shape[0] < data.size:
            ds.resize(data.size, axis=0)
        ds[: data.size] = data
        self.f.flush()
        meta[...] = np.array([iteration, data.size, zlib.crc32(blob)], dtype=np.int64)
        self.f.flush()
        self._slot = 1 - self._slot


# --------------------------------------------------------------------------- the recorder

class TrajectoryRecorder(Callback):
    """Records every frame of a fit into an open trajectory file, off the training thread.

    Frames are handed to a background writer in blocks of one HDF5 chunk through a bounded
    queue (training waits only when ``max_blocks`` blocks are pending); the writer flushes at
    least every ``flush_seconds``. A checkpoint (model, optimiser and generator state) is
    written every ``checkpoint_seconds`` (0: at every flush) into one of two slots, so a
    kill while writing one leaves the other intact.
    """

    def __init__(self, f: h5py.File, *, frames: int = 0, flush_seconds: float = 2.0,
                 checkpoint_seconds: float = 30.0, max_blocks: int = 8) -> None:
        self.path = f.filename
        self.n_runs = int(f.attrs[S.ATTR_N_RUNS])
        self.signal_shape = tuple(int(s) for s in f.attrs[S.ATTR_SIGNAL_SHAPE])
        out0 = f[S.run_group(0)][S.OUTPUT]
        self.block = int(out0.chunks[0])
        self.flush_seconds, self.checkpoint_seconds = flush_seconds, checkpoint_seconds
        if not f.swmr_mode:
            f.swmr_mode = True
        self.writer = _Writer(f, self.n_runs, frames, flush_seconds, max_blocks)
        self.writer.start()
        self._pending_out: list = []
        self._pending_loss: list = []
        self._next = frames  # index of the next frame to arrive
        self._last_ship = self._last_ckpt = time.monotonic()
        self._ckpt_iteration = frames
        self._shipped_since_ckpt = False
        self._closed = False

    # fit hooks
    def on_step_begin(self, state: FitState) -> None:
        if state.iteration <= self._ckpt_iteration:
            return
        if self.checkpoint_seconds > 0:
            due = time.monotonic() - self._last_ckpt >= self.checkpoint_seconds
        else:  # at every hand-over of frames to the writer
            due = self._shipped_since_ckpt
        if due:
            self.checkpoint(state)

    def on_frame(self, iteration: int, output: torch.Tensor, loss: torch.Tensor) -> None:
        if iteration != self._next:
            raise WriteError(f"frame {iteration} arrived but frame {self._next} was expected")
        self._pending_out.append(output.reshape(self.n_runs, *self.signal_shape).to("cpu"))
        self._pending_loss.append(loss.to("cpu"))
        self._next += 1
        if len(self._pending_out) >= self.block or time.monotonic() - self._last_ship >= self.flush_seconds:
            self._ship(flush=False)

    def on_end(self, state: FitState, result: FitResult) -> None:
        if self._closed:
            return
        try:
            try:
                self._ship(flush=True)
                if result.status in ("interrupted", "failed") and state.iteration > self._ckpt_iteration:
                    self.checkpoint(state)
            finally:  # after a write error the writer marks the file 'failed' instead
                self.writer.put(_Status(result.status, result.message))
        finally:
            self.close()

    # helpers
    def checkpoint(self, state: FitState) -> None:
        self._ship(flush=True)
        self.writer.put(_Checkpoint(state.iteration, state.to_bytes()))
        self._ckpt_iteration = state.iteration
        self._last_ckpt = time.monotonic()
        self._shipped_since_ckpt = False

    def _ship(self, *, flush: bool) -> None:
        self._raise_if_failed()
        if self._pending_out:
            start = self._next - len(self._pending_out)
            self.writer.put(_Frames(start, self._pending_out, self._pending_loss, flush))
            self._pending_out, self._pending_loss = [], []
            self._shipped_since_ckpt = True
        self._last_ship = time.monotonic()

    def _raise_if_failed(self) -> None:
        err = self.writer.error
        if err is not None:
            raise WriteError(f"writing {self.path} failed: {err}; the file keeps the "
                             f"{self.writer.flushed} frames flushed before the failure") from None

    def close(self) -> None:
        """Finish writing and close the file; raises WriteError if any write failed."""
        if self._closed:
            return
        self._closed = True
        self.writer.put(None)
        self.writer.join()
        self._raise_if_failed()


# --------------------------------------------------------------------------- resume

@dataclass
class ResumePoint:
    config: dict
    frames: int  # frames kept; the fit resumes at this iteration
    blob: bytes | None  # checkpoint bytes (None: start again from iteration 0)


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
    if _locked_by_other(path):
        raise TrajectoryError(f"{path} is being written by another process")
    try:
        clear_write_flags(path)
    except OSError as exc:
        raise TrajectoryError(f"cannot open {path} for writing: {exc.strerror}") from None
    f = _open_for_writing(path)
    keep = iteration if blob is not None else 0
    try:
        with _h5_errors(path):
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
            f.flush()
    except BaseException:
        f.close()
        raise
    return ResumePoint(config=config, frames=keep, blob=blob), f


# --------------------------------------------------------------------------- the reader

def _reading(method):
    """Report h5py's errors while reading a file as one-line ``TrajectoryError``s."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with _h5_errors(self.path):
            return method(self, *args, **kwargs)
    return wrapper


def _parse_config(text, path: Path) -> dict:
    """The stored configuration, checked and completed with defaults (JSON types)."""
    try:
        raw = json.loads(_str(text))
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
        self.kind: str = _str(a[S.ATTR_KIND])
        self.signal_shape: tuple[int, ...] = tuple(int(s) for s in a[S.ATTR_SIGNAL_SHAPE])
        self.n_runs: int = int(a[S.ATTR_N_RUNS])
        self.iterations: int = int(a[S.ATTR_ITERATIONS])
        self.attrs = {k: (_str(v) if isinstance(v, (bytes, str)) else v) for k, v in a.items()}
        self._handles: dict[str, h5py.Dataset] = {}

    def _fresh(self, name: str) -> h5py.Dataset:
        """One cached handle per dataset, refreshed to see a live writer's latest flush.
        (HDF5 fails reads after two handles of one dataset are both refreshed.)"""
        ds = self._handles.get(name)
        if ds is None:
            ds = self._handles[name] = self._f[name]
        _refresh(ds)
        return ds

    def __enter__(self) -> "Trajectory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    @property
    @_reading
    def target(self) -> np.ndarray:
        return self._f[S.TARGET][()]

    @property
    @_reading
    def observed(self) -> np.ndarray:
        return self._f[S.OBSERVED][()]

    @property
    @_reading
    def status(self) -> str:
        return _str(self._fresh(S.STATUS_STATE)[()]).strip()

    @property
    def writer_alive(self) -> bool:
        """True while a process is writing the file. A 'running' file without a live writer
        was killed: it holds every frame up to its last flush and can be resumed."""
        return _locked_by_other(self.path)

    @property
    @_reading
    def message(self) -> str:
        return _str(self._fresh(S.STATUS_MESSAGE)[()])

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
            with _h5_errors(self.path):
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


def _str(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _refresh(ds) -> None:
    try:
        ds.refresh()
    except (AttributeError, RuntimeError, ValueError, OSError):
        pass  # not opened in SWMR mode


@contextmanager
def _h5_errors(path: Path):
    try:
        yield
    except TrajectoryError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise TrajectoryError(f"{path} is truncated, corrupted or of another layout ({exc})") from None


def _open_h5(path: Path) -> h5py.File:
    if not path.exists():
        raise TrajectoryError(f"{path}: no such file")
    if path.is_dir():
        raise TrajectoryError(f"{path} is a folder, not a trajectory file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(48)
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise TrajectoryError(f"cannot read {path}: {exc.strerror}") from None
    if head[:8] != b"\x89HDF\r\n\x1a\n":
        raise TrajectoryError(f"{path} is not an HDF5 file")
    # Superblock v2/3 (ours): flags set while a writer has the file open, or was killed with
    # it open; such a file only opens in SWMR-read mode, which skips HDF5's truncation check.
    flags, stored_eof = 0, 0
    if len(head) >= 12 and head[8] in (2, 3) and head[9] in (4, 8):
        offsets = head[9]
        flags = head[11]
        if len(head) >= 12 + 3 * offsets:
            stored_eof = int.from_bytes(head[12 + 2 * offsets: 12 + 3 * offsets], "little")
    live = bool(flags) and _locked_by_other(path)
    if not live and size < stored_eof:  # a live writer may have allocated what it has not written
        raise TrajectoryError(f"{path} is truncated: {size} of its {stored_eof} bytes are there")
    try:
        if not flags:
            return h5py.File(path, "r", locking=False)
        # A live writer may be mid-flush: let HDF5 retry torn metadata reads (its default).
        # A dead writer's file never changes: retrying a bad checksum would only sleep,
        # with exponential back-off, for hours.
        return _open_swmr_reader(path, retry=live)
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise TrajectoryError(f"{path} is truncated or corrupted and cannot be opened ({exc})") from None


def _open_swmr_reader(path: Path, *, retry: bool) -> h5py.File:
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_file_locking(False, True)
    if not retry:
        _set_metadata_read_attempts(fapl, 1)
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=fapl)
    return h5py.File(fid)


@functools.cache
def _hdf5_set_read_attempts():
    """``H5Pset_metadata_read_attempts`` of the HDF5 library h5py loaded (h5py does not wrap
    it), or None where it cannot be found."""
    try:
        with open("/proc/self/maps") as fh:
            libs = sorted({line.split()[-1] for line in fh
                           if "/libhdf5" in line and "hdf5_hl" not in line and line.split()[-1].startswith("/")})
        func = ctypes.CDLL(libs[0]).H5Pset_metadata_read_attempts
    except (OSError, IndexError, AttributeError):
        return None
    func.argtypes, func.restype = [ctypes.c_int64, ctypes.c_uint], ctypes.c_int
    return func


def _set_metadata_read_attempts(fapl, attempts: int) -> None:
    func = _hdf5_set_read_attempts()
    if func is not None:
        func(fapl.id, attempts)


def open_trajectory(path: str | os.PathLike) -> Trajectory:
    """Open a trajectory file for reading; works while another process is writing it.

    Raises ``TrajectoryError`` (one clear line) for a missing, non-HDF5, truncated or
    corrupted file, an HDF5 file of another layout, or a newer format version.
    """
    path = Path(path)
    f = _open_h5(path)
    try:
        with _h5_errors(path):
            fmt = _str(f.attrs.get(S.ATTR_FORMAT, ""))
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
    for name in (S.TARGET, S.OBSERVED, S.STATUS_STATE, S.STATUS_FRAMES, S.STATUS_MESSAGE):
        if name not in f:
            problems.append(f"missing dataset '/{name}'")
    shape = tuple(int(s) for s in f.attrs[S.ATTR_SIGNAL_SHAPE])
    kind = _str(f.attrs[S.ATTR_KIND])
    if kind not in S.KINDS:
        problems.append(f"kind is {kind!r}, not one of {S.KINDS}")
    for name in (S.TARGET, S.OBSERVED):
        if name in f and f[name].shape != shape:
            problems.append(f"'/{name}' has shape {f[name].shape}, not the signal shape {shape}")
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


def check_trajectory(path: str | os.PathLike) -> list[str]:
    """Every way a file departs from the documented schema (empty list: valid)."""
    path = Path(path)
    f = _open_h5(path)
    try:
        with _h5_errors(path):
            if _str(f.attrs.get(S.ATTR_FORMAT, "")) != S.FORMAT_NAME:
                return ["not a spectral_lab trajectory (root attribute 'format' missing or different)"]
            problems = _layout_problems(f)
            version = int(f.attrs.get(S.ATTR_VERSION, -1))
            if version > S.FORMAT_VERSION:
                problems.append(f"format version {version} is newer than {S.FORMAT_VERSION}")
            if problems:
                return problems
            state = _str(f[S.STATUS_STATE][()]).strip()
            if state not in S.STATES:
                problems.append(f"status {state!r} is not one of {S.STATES}")
            frames = int(f[S.STATUS_FRAMES][()])
            if state == "complete" and frames != int(f.attrs[S.ATTR_ITERATIONS]) + 1:
                problems.append(f"complete, but {frames} frames instead of iterations + 1")
            runs = []
            for r in range(int(f.attrs[S.ATTR_N_RUNS])):
                g = f[S.run_group(r)]
                out, loss = g[S.OUTPUT], g[S.LOSS]
                _refresh(out)  # a live writer has grown them since the file was opened
                _refresh(loss)
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
             (f"'/{S.TARGET}'", lambda: f[S.TARGET][()]), (f"'/{S.OBSERVED}'", lambda: f[S.OBSERVED][()])]
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
