"""The recorder: a fit callback that hands frames to a background writer thread.

Writing follows HDF5's single-writer / multiple-reader (SWMR) rules: every dataset exists
before SWMR starts (`create`), and the writer only appends frames along time and
overwrites the status and checkpoint slots.
"""

from __future__ import annotations

import queue
import threading
import time
import zlib
from dataclasses import dataclass

import h5py
import numpy as np
import torch

from ..errors import WriteError
from ..fit import Callback, FitResult, FitState
from . import schema as S

__all__ = ["TrajectoryRecorder"]


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


