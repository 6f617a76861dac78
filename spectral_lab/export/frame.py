"""One frame of a trajectory: which (`choose_frame`) and how it is written (`write_frame`, `png_bytes`)."""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import AnalysisError, ExportError, NoReferenceError
from ..outputs import atomic, check_output

__all__ = ["FRAME_SUFFIXES", "FrameChoice", "parse_frame", "choose_frame", "write_frame", "png_bytes"]

# what one frame can be written as, per signal kind
FRAME_SUFFIXES = {"image": (".png", ".npy"), "1d": (".npy", ".csv")}


def parse_frame(text: str) -> tuple[str, Any]:
    """``best`` | ``last`` | ``N`` (an iteration) | ``stop:RULE`` as ``(kind, value)``;
    ValueError (one line) otherwise."""
    t = text.strip()
    if t in ("best", "last"):
        return t, None
    if t.startswith("stop:") and t[5:]:
        return "stop", t[5:]
    if t.isdigit():
        return "iteration", int(t)
    raise ValueError(f"expected best, last, an iteration or stop:RULE, got {text!r}")


@dataclass(frozen=True)
class FrameChoice:
    """The chosen output: the run (or the pair of runs a pair rule averages), its iteration,
    the frame (``signal_shape``, float32) and why it was chosen, in words."""

    runs: tuple[int, ...]
    iteration: int
    frame: np.ndarray
    why: str


def choose_frame(traj, frame: tuple[str, Any], *, run: int = 0, rule_params: dict | None = None) -> FrameChoice:
    """The frame of run ``run`` that ``frame`` (from `parse_frame`) names.

    Raises AnalysisError (one line): no such run or no frame yet, an iteration that is not
    stored (naming the nearest stored ones), ``best`` on a file without a clean target.
    """
    from ..analyze._io import frame_iterations

    kind, value = frame
    if not 0 <= run < traj.n_runs:
        raise AnalysisError(f"{traj.path} has runs 0..{traj.n_runs - 1}; there is no run {run}")
    n = traj.n_frames(run)
    if n == 0:
        raise AnalysisError(f"run {run} of {traj.path} has no frame yet")
    its = frame_iterations(traj, run)[:n]
    if kind == "last":
        return FrameChoice((run,), int(its[-1]), _frame(traj, run, n - 1), "the last stored frame")
    if kind == "iteration":
        index = int(np.searchsorted(its, value))
        if index < n and its[index] == value:
            return FrameChoice((run,), int(value), _frame(traj, run, index), "as asked")
        raise AnalysisError(_not_stored(value, its, traj.config))
    if kind == "best":
        from ..analyze.psnr import default_data_range, psnr, run_psnr_from_curve
        from ..analyze._io import map_blocks

        try:
            target = np.asarray(traj.target, dtype=np.float64)
        except NoReferenceError:
            raise AnalysisError(f"--frame best needs the clean target, and {traj.path} has none (recorded from a "
                                f"degraded image alone); use last, an iteration or stop:RULE") from None
        data_range = default_data_range(traj.kind, target)
        curve = map_blocks(traj, run, lambda block: psnr(block, target, data_range))[:n]
        best = run_psnr_from_curve(run, {}, curve, its)
        return FrameChoice((run,), best.best_iteration, _frame(traj, run, best.best_frame),
                           f"the best PSNR against the clean target ({best.best_psnr:.2f} dB)")
    if kind == "stop":
        from ..analyze.stopping import stop_choice

        choice = stop_choice(traj, value, run=run, **(rule_params or {}))
        frames = [_frame(traj, r, choice.frame) for r in choice.runs]
        if len(frames) == 1:
            return FrameChoice(choice.runs, choice.iteration, frames[0], f"where the {value} rule stops")
        average = (0.5 * (frames[0].astype(np.float64) + frames[1])).astype(np.float32)
        return FrameChoice(choice.runs, choice.iteration, average,
                           f"where the {value} rule stops the pair, the average of runs "
                           f"{choice.runs[0]} and {choice.runs[1]} (the rule's output)")
    raise AnalysisError(f"unknown frame {kind!r}")


def _frame(traj, run: int, index: int) -> np.ndarray:
    return np.asarray(traj.frames(run)[index], dtype=np.float32)


def _not_stored(iteration: int, its: np.ndarray, config: dict) -> str:
    every = int((config.get("record") or {}).get("every", 1))
    stride = f" (a frame every {every} iterations)" if every > 1 else ""
    if iteration > its[-1]:
        return f"iteration {iteration} is not stored: the stored iterations end at {int(its[-1])}{stride}"
    i = int(np.searchsorted(its, iteration))
    nearest = sorted({int(its[max(i - 1, 0)]), int(its[min(i, len(its) - 1)])})
    return (f"iteration {iteration} is not stored{stride}; the nearest stored are "
            f"{' and '.join(map(str, nearest))}")


def png_bytes(pixels: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """A PNG of ``(H, W)`` (grey) or ``(H, W, 3)`` (RGB) pixels, uint8 (8 bits) or uint16
    (16 bits), unfiltered and zlib-compressed, with ``text`` as tEXt chunks (Latin-1).

    Written here because Pillow cannot write 16-bit RGB."""
    pixels = np.asarray(pixels)
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ExportError(f"PNG pixels must be uint8 or uint16, got {pixels.dtype}")
    if pixels.ndim == 2:
        colour = 0
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        colour = 2
    else:
        raise ExportError(f"a PNG holds (H, W) or (H, W, 3) pixels, got {pixels.shape}")
    h, w = pixels.shape[:2]
    depth = 8 * pixels.dtype.itemsize
    rows = np.ascontiguousarray(pixels.astype(pixels.dtype.newbyteorder(">"))).view(np.uint8).reshape(h, -1)
    raw = np.hstack([np.zeros((h, 1), dtype=np.uint8), rows]).tobytes()  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0))
    for key, value in (text or {}).items():
        out += chunk(b"tEXt", key.encode("latin-1", "replace")[:79] + b"\0" + value.encode("latin-1", "replace"))
    return out + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def write_frame(choice: FrameChoice, path: str | os.PathLike, *, kind: str, bits: int = 16,
                overwrite: bool = False, source: str | os.PathLike | None = None) -> tuple[Path, str]:
    """Write a chosen frame; returns the path and a few words on what was written.

    Images (C = 1 or 3, values in [0, 1]; outside values are clipped and counted): ``.png``
    with ``bits`` 16 or 8 per sample, or ``.npy`` (float32 ``(C, H, W)``, as stored). 1D signals:
    ``.npy`` (float32 ``(N,)``) or ``.csv`` (columns sample, t = sample / N, value)."""
    path = check_output(path, FRAME_SUFFIXES[kind], overwrite=overwrite, source=source)
    frame = np.asarray(choice.frame, dtype=np.float32)
    suffix = path.suffix.lower()
    if suffix == ".png":
        if bits not in (8, 16):
            raise ExportError(f"a PNG has 8 or 16 bits per sample, not {bits}")
        if frame.shape[0] not in (1, 3):
            raise ExportError(f"a PNG holds 1 (grey) or 3 (RGB) channels; this image has {frame.shape[0]}: "
                              f"write .npy instead")
        finite = np.nan_to_num(frame, nan=0.0)
        outside = int(np.count_nonzero((finite < 0) | (finite > 1)) + np.count_nonzero(np.isnan(frame)))
        top = (1 << bits) - 1
        levels = np.rint(np.clip(finite, 0.0, 1.0).astype(np.float64) * top)
        pixels = np.moveaxis(levels.astype(np.uint8 if bits == 8 else np.uint16), 0, -1)
        pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
        runs = " and ".join(map(str, choice.runs))
        text = {"Software": f"spectral_lab {__version__}",
                "Source": str(source or ""), "Description": f"run {runs}, iteration {choice.iteration}: {choice.why}"}
        data = png_bytes(pixels, text)
        with atomic(path, overwrite=overwrite, source=source) as tmp:
            tmp.write_bytes(data)
        what = f"{bits}-bit {'grey' if frame.shape[0] == 1 else 'RGB'} PNG {frame.shape[2]}×{frame.shape[1]}"
        if outside:
            what += f"; {outside} value(s) outside [0, 1] clipped"
        return path, what
    with atomic(path, overwrite=overwrite, source=source) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, frame)
            what = f"float32 array {tuple(frame.shape)}"
        else:  # .csv, 1D
            n = frame.shape[0]
            table = np.column_stack([np.arange(n), np.arange(n) / n, frame.astype(np.float64)])
            np.savetxt(tmp, table, delimiter=",", header="sample,t,value", comments="", fmt=["%d", "%.9g", "%.9g"])
            what = f"CSV of {n} samples (sample, t = sample / N, value)"
    return path, what
