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
from ._h5 import check_space, one_line, poke, quarantine

__all__ = ["TrajectoryRecorder"]


@dataclass
class _Frames:
    start: int  # index of the first stored frame of the block
    outputs: list  # of CPU tensors (R, *signal_shape)
    losses: list  # of CPU tensors (R,)
    iterations: list  # of int, the real iteration of each frame
    flush: bool


@dataclass
class _Posterior:
    count: int
    mean: np.ndarray  # (R, *signal_shape) float64
    var: np.ndarray


@dataclass
class _Snapshot:
    index: int
    iteration: int
    params: np.ndarray  # (R, P) float32


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
        self.iterations = f[S.ITERATIONS] if S.ITERATIONS in f else None  # format 1: none
        self._slot = self._next_slot()
        self.path = f.filename
        # where the status lives on the device: a quarantined writer marks the file there
        self._status_at = {name: f[name].id.get_offset() for name in (S.STATUS_STATE, S.STATUS_MESSAGE)}

    def put(self, msg) -> None:
        self.q.put(msg)

    def run(self) -> None:
        while True:
            msg = self.q.get()
            if msg is None:
                break
            if self.error is not None:
                continue  # the first error stops all writing; the file was marked then
            try:
                self._apply(msg)
            except BaseException as exc:  # noqa: BLE001 - reported to the training thread
                self.error = exc
                self._fail()
        try:
            self.f.close()
        except Exception as exc:  # noqa: BLE001
            if self.error is None:
                self.error = exc
                self._fail(closed=True)

    # each message kind
    def _apply(self, msg) -> None:
        if isinstance(msg, _Frames):
            self._check_space(sum(o.numel() * o.element_size() for o in msg.outputs) + 16 * len(msg.outputs),
                              f"frames {msg.start}..{msg.start + len(msg.outputs) - 1}")
            self.write_frames(msg.start, msg.outputs, msg.losses, msg.iterations)
            if msg.flush or time.monotonic() - self._last_flush >= self.flush_seconds:
                self.flush()
        elif isinstance(msg, _Posterior):
            # overwritten in place (SWMR allows it); the count last, as with the frames
            for r in range(self.n_runs):
                g = self.f[S.run_group(r)]
                g[S.POSTERIOR_MEAN][...] = msg.mean[r]
                g[S.POSTERIOR_VAR][...] = msg.var[r]
            self.f.flush()
            for r in range(self.n_runs):
                self.f[S.run_group(r)][S.POSTERIOR_COUNT][()] = np.int64(msg.count)
            self.f.flush()
        elif isinstance(msg, _Snapshot):
            self.f[S.SNAPSHOT_PARAMS][msg.index] = msg.params
            self.f.flush()
            self.f[S.SNAPSHOT_ITERATIONS][msg.index] = np.int64(msg.iteration)
            self.f.flush()
        elif isinstance(msg, _Checkpoint):
            self.flush()
            self._check_space(len(msg.blob), f"the checkpoint of iteration {msg.iteration}")
            self.write_checkpoint(msg.iteration, msg.blob)
        elif isinstance(msg, _Status):
            self.flush()
            self.f[S.STATUS_MESSAGE][()] = np.bytes_(msg.message.encode()[: S.MESSAGE_BYTES])
            self.f[S.STATUS_STATE][()] = np.bytes_(msg.state.ljust(16))
            self.f.flush()

    def _fail(self, closed: bool = False) -> None:
        """After a write error: cut HDF5 off the device (`quarantine`: its later flushes and its
        close at exit would retry the failed writes, which crashes the process on a full disk),
        then mark the file ``failed`` in place, bytes overwritten where the status lives."""
        if not closed:
            quarantine(self.f)
        message = f"write error: {one_line(self.error)}".encode()[: S.MESSAGE_BYTES]
        try:
            poke(self.path, self._status_at[S.STATUS_MESSAGE], message.ljust(S.MESSAGE_BYTES, b"\0"))
            poke(self.path, self._status_at[S.STATUS_STATE], b"failed".ljust(16))
        except OSError:
            pass  # the device refuses even that: the file still reads as it was at the last flush

    def _check_space(self, nbytes: int, what: str) -> None:
        check_space(self.path, nbytes, what)

    def write_frames(self, start: int, outputs: list, losses: list, iterations: list | None = None) -> None:
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
        if self.iterations is not None:
            its = np.arange(start, end) if iterations is None else np.asarray(iterations, dtype=np.int64)
            self.iterations.resize(end, axis=0)
            self.iterations[start:end] = its
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
    """Records the frames of a fit into an open trajectory file, off the training thread.

    Frames are handed to a background writer in blocks of one HDF5 chunk through a bounded
    queue (training waits only when ``max_blocks`` blocks are pending); the writer flushes at
    least every ``flush_seconds``. A checkpoint (model, optimiser and generator state, and
    the recorder's own running statistics) is written every ``checkpoint_seconds`` (0: at
    every flush) into one of two slots, so a kill while writing one leaves the other intact.

    ``every`` K: only iterations 0, K, 2K, ... and ``last`` are stored (``iterations`` holds
    each stored frame's iteration). ``burn_in``: from that iteration on, the running mean
    and variance of every run's outputs (Welford, float64, on the outputs' device, over every
    iteration) are kept and written at each flush. ``snapshots``: iterations at which every
    run's parameters are stored, flattened.
    """

    def __init__(self, f: h5py.File, *, frames: int = 0, iteration: int | None = None, flush_seconds: float = 2.0,
                 checkpoint_seconds: float = 30.0, max_blocks: int = 8, every: int = 1, burn_in: int | None = None,
                 snapshots=(), state: dict | None = None) -> None:
        self.path = f.filename
        self.n_runs = int(f.attrs[S.ATTR_N_RUNS])
        self.signal_shape = tuple(int(s) for s in f.attrs[S.ATTR_SIGNAL_SHAPE])
        self.last = int(f.attrs[S.ATTR_ITERATIONS])
        out0 = f[S.run_group(0)][S.OUTPUT]
        self.block = int(out0.chunks[0])
        self.flush_seconds, self.checkpoint_seconds = flush_seconds, checkpoint_seconds
        self.every, self.burn_in = int(every), burn_in
        self.snapshots = {int(it): k for k, it in enumerate(snapshots)}
        if self.burn_in is not None and S.POSTERIOR_MEAN not in f[S.run_group(0)]:
            raise WriteError(f"{self.path} has no posterior datasets (it was created without a burn-in)")
        if not f.swmr_mode:
            f.swmr_mode = True
        self.writer = _Writer(f, self.n_runs, frames, flush_seconds, max_blocks)
        self.writer.start()
        self._pending_out: list = []
        self._pending_loss: list = []
        self._pending_it: list = []
        self._stored = frames  # frames stored (shipped or pending)
        self._next = frames if iteration is None else iteration  # the iteration of the next frame to arrive
        self._last_ship = self._last_ckpt = time.monotonic()
        self._ckpt_iteration = self._next
        self._shipped_since_ckpt = False
        self._closed = False
        self._post_count, self._post_mean, self._post_m2 = 0, None, None
        if state and "posterior" in state:
            p = state["posterior"]
            self._post_count, self._post_mean, self._post_m2 = int(p["count"]), p["mean"], p["m2"]

    # fit hooks
    def on_step_begin(self, state: FitState) -> None:
        k = self.snapshots.get(state.iteration)
        if k is not None:
            params = torch.cat([p.detach().reshape(self.n_runs, -1) for p in state.net.parameters()], dim=1)
            self._raise_if_failed()
            self.writer.put(_Snapshot(k, state.iteration, params.to("cpu", torch.float32).numpy()))
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
        self._next += 1
        if self.burn_in is not None and iteration >= self.burn_in:
            self._accumulate(output)
        if iteration % self.every and iteration != self.last:
            return
        self._pending_out.append(output.reshape(self.n_runs, *self.signal_shape).to("cpu"))
        self._pending_loss.append(loss.to("cpu"))
        self._pending_it.append(iteration)
        self._stored += 1
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
    def _accumulate(self, output: torch.Tensor) -> None:
        """Welford's update of the running mean and sum of squared deviations, float64."""
        x = output.reshape(self.n_runs, *self.signal_shape).to(torch.float64)
        if self._post_mean is None:
            self._post_mean, self._post_m2 = torch.zeros_like(x), torch.zeros_like(x)
        elif self._post_mean.device != x.device:
            self._post_mean, self._post_m2 = self._post_mean.to(x.device), self._post_m2.to(x.device)
        self._post_count += 1
        delta = x - self._post_mean
        self._post_mean += delta / self._post_count
        self._post_m2 += delta * (x - self._post_mean)

    def _ship_posterior(self) -> None:
        if self.burn_in is None or self._post_mean is None:
            return
        mean = self._post_mean.to("cpu").numpy().copy()
        var = (self._post_m2 / self._post_count).to("cpu").numpy()  # population variance of the samples
        self.writer.put(_Posterior(self._post_count, mean, var))

    def state(self) -> dict:
        """The recorder's running statistics, for a checkpoint (bitwise resume)."""
        if self._post_mean is None:
            return {}
        return {"posterior": {"count": self._post_count, "mean": self._post_mean.to("cpu").clone(),
                              "m2": self._post_m2.to("cpu").clone()}}

    def checkpoint(self, state: FitState) -> None:
        self._ship(flush=True)
        self.writer.put(_Checkpoint(state.iteration, state.to_bytes(extra=self.state())))
        self._ckpt_iteration = state.iteration
        self._last_ckpt = time.monotonic()
        self._shipped_since_ckpt = False

    def _ship(self, *, flush: bool) -> None:
        self._raise_if_failed()
        if self._pending_out:
            start = self._stored - len(self._pending_out)
            self.writer.put(_Frames(start, self._pending_out, self._pending_loss, self._pending_it, flush))
            self._pending_out, self._pending_loss, self._pending_it = [], [], []
            self._shipped_since_ckpt = True
        if flush or self._shipped_since_ckpt:
            self._ship_posterior()
        self._last_ship = time.monotonic()

    def _raise_if_failed(self) -> None:
        err = self.writer.error
        if err is not None:
            raise WriteError(f"writing {self.path} failed: {one_line(err)}; the file keeps the "
                             f"{self.writer.flushed} frames flushed before the failure") from None

    def close(self) -> None:
        """Finish writing and close the file; raises WriteError if any write failed."""
        if self._closed:
            return
        self._closed = True
        self.writer.put(None)
        self.writer.join()
        self._raise_if_failed()
