"""Peak signal-to-noise ratio of recorded outputs against the clean target.

PSNR(x, ref) = 10 log10(data_range**2 / MSE(x, ref)), MSE the mean over every element
(all channels and pixels, or all samples of a 1D signal), computed in float64.
An exact reconstruction (MSE == 0) has PSNR = +inf; in JSON that value is written as
``null`` (JSON has no infinity), see `PsnrResult.to_json`.

`psnr` works on arrays; `psnr_file` is the streaming loop over a trajectory file that
calls it once per chunk of frames, so memory stays bounded by one chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spectral_lab.analyze._io import Result, json_float, map_blocks, open_reader
from spectral_lab.errors import AnalysisError

__all__ = ["psnr", "psnr_file", "default_data_range", "PsnrResult", "RunPsnr"]


def psnr(frames: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """PSNR in dB of each frame against a reference.

    Parameters
    ----------
    frames : array, shape (T, *shape) or shape
        Frames to score; a single frame of the reference's shape counts as T = 1.
    reference : array, shape
        The clean signal.
    data_range : float
        Peak-to-peak range of the signal scale (1.0 for images in [0, 1]); must be > 0.

    Returns
    -------
    np.ndarray, shape (T,), float64
        10 log10(data_range**2 / MSE) per frame; +inf where the frame equals the
        reference exactly (MSE == 0); NaN where a frame holds NaN.

    Raises
    ------
    AnalysisError
        If the frame shape is not the reference shape, or data_range is not a positive
        finite number.
    """
    frames = np.asarray(frames)
    reference = np.asarray(reference, dtype=np.float64)
    if not (np.isfinite(data_range) and data_range > 0):
        raise AnalysisError(f"data_range must be a positive finite number, got {data_range!r}")
    if frames.shape == reference.shape:
        frames = frames[np.newaxis]
    if frames.shape[1:] != reference.shape:
        raise AnalysisError(
            f"frames of shape {frames.shape} do not match the reference shape {reference.shape}; "
            "expected (T, *reference.shape) or reference.shape"
        )
    diff = frames.astype(np.float64) - reference
    mse = np.mean(diff.reshape(len(frames), -1) ** 2, axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(float(data_range) ** 2 / mse)


def default_data_range(kind: str, target: np.ndarray) -> float:
    """The PSNR range used for a trajectory when none is given.

    Images: 1.0, the nominal range of images stored as floats in [0, 1] (the usual
    image-PSNR convention, so numbers compare with the literature). 1D signals have no
    nominal range: the clean target's peak-to-peak value (max - min) is used.
    """
    if kind == "image":
        return 1.0
    if kind == "1d":
        peak_to_peak = float(np.ptp(np.asarray(target, dtype=np.float64)))
        if peak_to_peak <= 0:
            raise AnalysisError("the 1D target is constant: give data_range explicitly")
        return peak_to_peak
    raise AnalysisError(f"unknown trajectory kind {kind!r}; expected '1d' or 'image'")


@dataclass(frozen=True)
class RunPsnr(Result):
    """PSNR curve of one run against the clean target, and its oracle best."""

    run: int
    seeds: dict
    psnr: np.ndarray  # (T,) float64, entry i is iteration i
    best_psnr: float
    best_iteration: int
    final_psnr: float


@dataclass(frozen=True)
class PsnrResult(Result):
    """`psnr_file` result: the observation's PSNR and one `RunPsnr` per run."""

    observed_psnr: float
    data_range: float
    runs: tuple[RunPsnr, ...]

    def to_json(self) -> dict:
        """A JSON-serialisable dict (``json.dumps(..., allow_nan=False)`` accepts it).

        Every non-finite PSNR (+inf for an exact fit, e.g. ``observed_psnr`` of a "fit"
        task where the observation is the target; NaN for NaN frames) is ``null``.
        """
        return {
            "observed_psnr": json_float(self.observed_psnr),
            "data_range": self.data_range,
            "runs": [
                {
                    "run": r.run,
                    "seeds": dict(r.seeds),
                    "best_psnr": json_float(r.best_psnr),
                    "best_iteration": r.best_iteration,
                    "final_psnr": json_float(r.final_psnr),
                    "psnr": [json_float(v) for v in r.psnr],
                }
                for r in self.runs
            ],
        }


def run_psnr_from_curve(run: int, seeds: dict, curve: np.ndarray) -> RunPsnr:
    """Summarise a PSNR curve: best (first of ties, NaN ignored) and final value."""
    if len(curve) == 0:
        raise AnalysisError(f"run {run} has no recorded frames")
    if np.all(np.isnan(curve)):
        raise AnalysisError(f"run {run}: every frame is NaN")
    best = int(np.nanargmax(curve))
    return RunPsnr(run, dict(seeds), curve, float(curve[best]), best, float(curve[-1]))


def psnr_file(
    traj_or_path: Any, chunk: int | None = None, *, data_range: float | None = None
) -> PsnrResult:
    """Stream every run of a trajectory and score each frame against the clean target.

    Parameters
    ----------
    traj_or_path : str, os.PathLike or open trajectory
        A path is opened with `spectral_lab.trajectory.open_trajectory` and closed after.
    chunk : int or None
        Frames read at a time (passed to ``traj.iter_frames``); memory is O(chunk * frame).
    data_range : float or None
        PSNR range; None uses `default_data_range` (1.0 for images, the target's
        peak-to-peak value for 1D signals).

    Returns
    -------
    PsnrResult
        ``observed_psnr``: PSNR of ``traj.observed`` against ``traj.target`` (+inf when
        they are equal, as in the "fit" task). Per run: the PSNR curve (entry i is
        iteration i), the oracle best PSNR and its iteration (first of ties), the final
        PSNR.
    """
    with open_reader(traj_or_path) as traj:
        target = np.asarray(traj.target, dtype=np.float64)
        if data_range is None:
            data_range = default_data_range(traj.kind, target)
        observed_psnr = float(psnr(traj.observed, target, data_range)[0])
        runs = [run_psnr_from_curve(r, traj.run_seeds(r), map_blocks(traj, r, lambda b: psnr(b, target, data_range),
                                                                      chunk))
                for r in range(traj.n_runs)]
    return PsnrResult(observed_psnr, float(data_range), tuple(runs))
