"""Trajectory files: the recorder (a fit callback with a background writer) and the reader.

The only module that imports h5py. Layout and guarantees: docs/trajectory-format.md.

Writing follows HDF5's single-writer / multiple-reader (SWMR) rules: every group, dataset
and attribute a recording will ever need is created first, then SWMR starts and the writer
only appends frames along time and overwrites the status and checkpoint slots. A reader
(``open_trajectory``) can follow a live file; a killed writer leaves a file that opens and
holds every frame up to the last flush.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
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
from .errors import TrajectoryError, WriteError
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
    """Create the whole layout of a trajectory file and return it open, not yet in SWMR mode.

    Nothing is left behind if creation fails. An existing file is refused unless
    ``overwrite``; a file another process is writing is refused always.
    """
    path = Path(path)
    if dtype not in STORAGE_DTYPES:
        raise TrajectoryError(f"unknown storage dtype {dtype!r}; choose from {', '.join(STORAGE_DTYPES)}")
    if compression not in COMPRESSIONS:
        raise TrajectoryError(f"unknown compression {compression!r}; choose from {', '.join(COMPRESSIONS)}")
    if path.exists():
        if not overwrite:
            raise TrajectoryError(f"{path} exists; pass --overwrite to replace it")
        if _locked_by_other(path):
            raise TrajectoryError(f"{path} is being written by another process; not overwriting it")
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    shape = tuple(int(s) for s in target.shape)
    try:
        f = h5py.File(path, "w", libver="latest")
    except OSError as exc:
        raise TrajectoryError(f"cannot create {path}: {exc}") from None
    try:
        _write_layout(f, config=config, kind=kind, target=target, observed=observed, run_seeds=run_seeds,
                      iterations=iterations, dtype=dtype, compression=compression, shape=shape)
        f.flush()
    except BaseException:
        f.close()
        path.unlink(missing_ok=True)
        raise
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

    def write_frames(self, start: int, outputs: list, losses: list) -> None:
        if start != self.written:
            raise WriteError(f"frame {start} arrived but {self.written} frames are written (out of order)")
        block = torch.stack(outputs).numpy()  # (B, R, *shape)
        loss = torch.stack(losses).numpy().astype(np.float64)  # (B, R)
        end = start + block.shape[0]
        for r in range(self.n_runs):
            ds = self.outputs[r]
            ds.resize(end, axis=0)
            ds[start:end] = block[:, r].astype(ds.dtype, copy=False)
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
            self._ship(flush=True)
            if result.status in ("interrupted", "failed") and state.iteration > self._ckpt_iteration:
                self.checkpoint(state)
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

    Returns the resume point and the file, open for writing (not yet in SWMR mode).
    """
    path = Path(path)
    with open_trajectory(path) as traj:
        state = traj.status
        if state == "complete":
            raise TrajectoryError(f"{path} is complete; nothing to resume")
        if state == "diverged":
            raise TrajectoryError(f"{path} stopped because the optimisation diverged; resuming would "
                                  f"diverge again (lower the learning rate and record anew)")
        config = traj.config
        blob, iteration = traj.latest_checkpoint()
    if _locked_by_other(path):
        raise TrajectoryError(f"{path} is being written by another process")
    try:
        clear_write_flags(path)
        f = h5py.File(path, "r+", libver="latest")
    except OSError as exc:
        raise TrajectoryError(f"cannot open {path} for writing: {exc}") from None
    keep = iteration if blob is not None else 0
    for r in range(int(f.attrs[S.ATTR_N_RUNS])):
        g = f[S.run_group(r)]
        g[S.OUTPUT].resize(keep, axis=0)
        g[S.LOSS].resize(keep, axis=0)
    f[S.STATUS_FRAMES][()] = np.int64(keep)
    f[S.STATUS_STATE][()] = np.bytes_("running".ljust(16))
    f[S.STATUS_MESSAGE][()] = np.bytes_(b"")
    f.flush()
    return ResumePoint(config=config, frames=keep, blob=blob), f


# --------------------------------------------------------------------------- the reader

class Trajectory:
    """Lazy read access to a trajectory file (live or finished). Use ``open_trajectory``."""

    def __init__(self, f: h5py.File, path: Path) -> None:
        self._f, self.path = f, path
        a = f.attrs
        self.format_version = int(a[S.ATTR_VERSION])
        self.config: dict = json.loads(_str(a[S.ATTR_CONFIG]))
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
    def target(self) -> np.ndarray:
        return self._f[S.TARGET][()]

    @property
    def observed(self) -> np.ndarray:
        return self._f[S.OBSERVED][()]

    @property
    def status(self) -> str:
        return _str(self._fresh(S.STATUS_STATE)[()]).strip()

    @property
    def message(self) -> str:
        return _str(self._fresh(S.STATUS_MESSAGE)[()])

    def run_seeds(self, r: int) -> dict:
        g = self._run(r)
        return {k: int(g.attrs[k]) for k in S.RUN_ATTRS}

    def frames(self, r: int) -> h5py.Dataset:
        """The run's output dataset ``(T, *signal_shape)``; slice it, only the first
        ``n_frames(r)`` frames are valid."""
        self._run(r)
        return self._fresh(f"{S.run_group(r)}/{S.OUTPUT}")

    def n_frames(self, r: int) -> int:
        """Frames of run r that are flushed and complete (a live file grows)."""
        self._run(r)
        flushed = int(self._fresh(S.STATUS_FRAMES)[()])
        out = self._fresh(f"{S.run_group(r)}/{S.OUTPUT}")
        loss = self._fresh(f"{S.run_group(r)}/{S.LOSS}")
        return int(min(flushed, out.shape[0], loss.shape[0]))

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
            yield a, ds[a:b].astype(np.float32, copy=False)

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
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise TrajectoryError(f"{path} is truncated, corrupted or of another layout ({exc})") from None


def _open_h5(path: Path) -> h5py.File:
    if not path.exists():
        raise TrajectoryError(f"{path}: no such file")
    if path.is_dir():
        raise TrajectoryError(f"{path} is a folder, not a trajectory file")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(8)
    except OSError as exc:
        raise TrajectoryError(f"cannot read {path}: {exc.strerror}") from None
    if magic != b"\x89HDF\r\n\x1a\n":
        raise TrajectoryError(f"{path} is not an HDF5 file")
    for swmr in (True, False):
        try:
            return h5py.File(path, "r", swmr=swmr, locking=False)
        except OSError as exc:
            last = exc
    raise TrajectoryError(f"{path} is truncated or corrupted and cannot be opened ({last})")


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
            for r in range(int(f.attrs[S.ATTR_N_RUNS])):
                g = f[S.run_group(r)]
                if g[S.OUTPUT].shape[0] < frames or g[S.LOSS].shape[0] < frames:
                    problems.append(f"run {r} holds fewer frames than the {frames} the status claims")
                if state == "complete" and frames != int(f.attrs[S.ATTR_ITERATIONS]) + 1:
                    problems.append(f"complete, but {frames} frames instead of iterations + 1")
                    break
            try:
                json.loads(_str(f.attrs[S.ATTR_CONFIG]))
            except ValueError:
                problems.append("root attribute 'config' is not valid JSON")
            return problems
    finally:
        f.close()
