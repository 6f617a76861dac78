"""Peak signal-to-noise ratio (and SSIM) of recorded outputs against the clean target.

PSNR(x, ref) = 10 log10(data_range**2 / MSE(x, ref)), MSE the mean over every element
(all channels and pixels, or all samples of a 1D signal), computed in float64; with
``weights`` w (per sample, shared by the channels) MSE = Σ w (x − ref)² / (C Σ w).

Regions (inpainting files): ``all`` the whole signal, ``hole`` the unknown samples
(w = 1 − m), ``known`` the observed ones (w = m). ``scale`` S > 1 scores both images
after S × S average pooling, with the region's weights pooled alike (a cell counts by
the fraction of it in the region): the student study's ``psnr_coarse`` at S = 4. SSIM
is scikit-image's ``structural_similarity`` (Gaussian window, σ = 1.5, its default
constants), averaged over the region's SSIM map, at each run's best and final frame.
An exact reconstruction (MSE == 0) has PSNR = +inf; in JSON that value is written as
``null`` (JSON has no infinity), see `PsnrResult.to_json`.

`psnr` works on arrays; `psnr_file` is the streaming loop over a trajectory file that
calls it once per chunk of frames, so memory stays bounded by one chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from spectral_lab.analyze._io import Result, frame_iterations, json_float, map_blocks, open_reader
from spectral_lab.errors import AnalysisError

__all__ = ["psnr", "psnr_file", "default_data_range", "PsnrResult", "RunPsnr", "REGIONS", "region_weights",
           "ema_curve", "running_mean_curve",
           "average_pool", "ssim"]

REGIONS = ("all", "hole", "known")
#: the side of SSIM's Gaussian window (σ = 1.5, scikit-image's truncation at 3.5 σ: radius 5)
SSIM_WINDOW = 11


def psnr(frames: np.ndarray, reference: np.ndarray, data_range: float = 1.0,
         weights: np.ndarray | None = None) -> np.ndarray:
    """PSNR in dB of each frame against a reference.

    Parameters
    ----------
    frames : array, shape (T, *shape) or shape
        Frames to score; a single frame of the reference's shape counts as T = 1.
    reference : array, shape
        The clean signal.
    data_range : float
        Peak-to-peak range of the signal scale (1.0 for images in [0, 1]); must be > 0.
    weights : array, optional
        Per-sample weights broadcastable to ``reference`` (a region, see `region_weights`).

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
    if weights is None:
        mse = np.mean(diff.reshape(len(frames), -1) ** 2, axis=1)
    else:
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), reference.shape)
        if not w.sum() > 0:
            raise AnalysisError("the region holds no sample")
        mse = np.sum((diff**2 * w).reshape(len(frames), -1), axis=1) / w.sum()
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
    best_iteration: int  # the real iteration (with a frame stride, not the frame index)
    final_psnr: float
    ssim_at_best: float | None = None
    final_ssim: float | None = None
    iterations: np.ndarray | None = None  # (T,) the iteration of each entry of psnr; None: 0..T-1
    posterior_psnr: float | None = None  # the running posterior mean's PSNR (files with a burn-in)

    @property
    def best_frame(self) -> int:
        """The index of the best frame in ``psnr``."""
        if self.iterations is None:
            return self.best_iteration
        return int(np.searchsorted(self.iterations, self.best_iteration))


@dataclass(frozen=True)
class PsnrResult(Result):
    """`psnr_file` result: the observation's PSNR (NaN where it has another grid or no value
    in the region), one `RunPsnr` per run, the region and scale scored, and the task's
    classical baselines (`spectral_lab.analyze.baselines`) scored the same way."""

    observed_psnr: float
    data_range: float
    runs: tuple[RunPsnr, ...]
    region: str = "all"
    scale: int = 1
    baselines: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """A JSON-serialisable dict (``json.dumps(..., allow_nan=False)`` accepts it).

        Every non-finite PSNR (+inf for an exact fit, e.g. ``observed_psnr`` of a "fit"
        task where the observation is the target; NaN for NaN frames) is ``null``.
        """
        return {
            "observed_psnr": json_float(self.observed_psnr),
            "data_range": self.data_range,
            "region": self.region,
            "scale": self.scale,
            "baselines": {k: json_float(v) for k, v in self.baselines.items()},
            "runs": [
                {
                    "run": r.run,
                    "seeds": dict(r.seeds),
                    "best_psnr": json_float(r.best_psnr),
                    "best_iteration": r.best_iteration,
                    "final_psnr": json_float(r.final_psnr),
                    "ssim_at_best": None if r.ssim_at_best is None else json_float(r.ssim_at_best),
                    "final_ssim": None if r.final_ssim is None else json_float(r.final_ssim),
                    "psnr": [json_float(v) for v in r.psnr],
                    **({} if r.iterations is None else {"iterations": r.iterations.tolist()}),
                    **({} if r.posterior_psnr is None else {"posterior_psnr": json_float(r.posterior_psnr)}),
                }
                for r in self.runs
            ],
        }


def run_psnr_from_curve(run: int, seeds: dict, curve: np.ndarray, iterations: np.ndarray | None = None) -> RunPsnr:
    """Summarise a PSNR curve: best (first of ties, NaN ignored) and final value; ``iterations``
    the real iteration of each entry (a frame stride)."""
    if len(curve) == 0:
        raise AnalysisError(f"run {run} has no recorded frames")
    if np.all(np.isnan(curve)):
        raise AnalysisError(f"run {run}: every frame is NaN")
    best = int(np.nanargmax(curve))
    its = None if iterations is None else np.asarray(iterations[: len(curve)], dtype=np.int64)
    if its is not None and np.array_equal(its, np.arange(len(curve))):
        its = None  # no stride: index = iteration
    return RunPsnr(run, dict(seeds), curve, float(curve[best]), best if its is None else int(its[best]),
                   float(curve[-1]), iterations=its)


def ema_curve(traj: Any, r: int, ema: float, score, chunk: int | None = None) -> np.ndarray:
    """``score`` of the exponential moving average of run r's stored frames, per frame."""
    from spectral_lab.analyze._io import run_blocks

    m, out = None, []
    for _, block in run_blocks(traj, r, chunk):
        averaged = np.empty(block.shape, dtype=np.float64)
        for i, x in enumerate(block):
            m = np.asarray(x, dtype=np.float64) if m is None else ema * m + (1.0 - ema) * x
            averaged[i] = m
        out.append(score(averaged))
    if not out:
        raise AnalysisError(f"run {r} has no recorded frames")
    return np.concatenate(out)


def running_mean_curve(traj: Any, r: int, start: int, score, chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``score`` of the running mean of run r's stored frames from iteration ``start`` on: entry j
    is the mean of the stored frames of iterations ``start .. its[j]`` (000_... Fig. 2's "SGLD avg
    w.r.t. iterations"). With a frame stride it averages the stored frames only, whereas the
    file's posterior mean (`Trajectory.posterior`) averages every iteration.

    Returns ``(iterations (T',), scores (T',))`` of the frames at or after ``start``."""
    from spectral_lab.analyze._io import run_blocks

    its = np.asarray(frame_iterations(traj, r), dtype=np.int64)
    total, count, out = None, 0, []
    for first, block in run_blocks(traj, r, chunk):
        keep = its[first:first + len(block)] >= start
        if not keep.any():
            continue
        means = np.empty((int(keep.sum()), *block.shape[1:]), dtype=np.float64)
        for j, x in enumerate(block[keep]):
            total = np.asarray(x, dtype=np.float64) if total is None else total + x
            count += 1
            means[j] = total / count
        out.append(score(means))
    if not out:
        raise AnalysisError(f"run {r} has no stored frame at or after iteration {start}")
    return its[its >= start], np.concatenate(out)


def region_weights(traj: Any, region: str) -> np.ndarray | None:
    """The weights of a region of a trajectory: None for ``all``; 1 − m or m of its mask
    (``(1, *spatial)``) for ``hole`` and ``known``; AnalysisError for a file without a mask."""
    if region not in REGIONS:
        raise AnalysisError(f"unknown region {region!r}; choose from {', '.join(REGIONS)}")
    if region == "all":
        return None
    known = getattr(traj, "known", None)
    if known is None:
        op = (getattr(traj, "operator", None) or {"name": "identity"})["name"]
        raise AnalysisError(f"--region {region} needs an inpainting file (a mask operator); this file's "
                            f"operator is {op}: every sample is observed")
    w = 1.0 - known if region == "hole" else known
    if not w.sum() > 0:
        raise AnalysisError(f"the {region} region of this file holds no sample")
    return w if traj.kind == "image" else w.reshape(w.shape[1:])


def average_pool(x: np.ndarray, scale: int, *, spatial_dims: int) -> np.ndarray:
    """Mean over ``scale``-sized cells of the last ``spatial_dims`` axes (a remainder is cut)."""
    if scale == 1:
        return np.asarray(x, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    lead = x.shape[: x.ndim - spatial_dims]
    sides = x.shape[x.ndim - spatial_dims:]
    cells = [n // scale for n in sides]
    if min(cells) < 1:
        raise AnalysisError(f"scale {scale} is larger than the signal ({'x'.join(map(str, sides))})")
    x = x[(...,) + tuple(slice(0, c * scale) for c in cells)]
    shape = lead + tuple(v for c in cells for v in (c, scale))
    return x.reshape(shape).mean(axis=tuple(len(lead) + 2 * i + 1 for i in range(spatial_dims)))


def ssim(frame: np.ndarray, reference: np.ndarray, data_range: float = 1.0,
         weights: np.ndarray | None = None) -> float:
    """scikit-image's SSIM of one image ``(C, H, W)`` against the reference, averaged over
    the SSIM map (weighted by ``weights`` when given); NaN for 1D signals or images smaller
    than its window (11 × 11: the Gaussian of σ = 1.5 truncated at 3.5 σ)."""
    frame, reference = np.asarray(frame, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if reference.ndim != 3 or min(reference.shape[1:]) < SSIM_WINDOW:
        return float("nan")
    from skimage.metrics import structural_similarity

    _, smap = structural_similarity(frame, reference, data_range=data_range, channel_axis=0, full=True,
                                    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    if weights is None:
        return float(smap.mean())
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), smap.shape)
    return float((smap * w).sum() / w.sum())


def psnr_file(
    traj_or_path: Any, chunk: int | None = None, *, data_range: float | None = None, region: str = "all",
    scale: int = 1, with_ssim: bool = True, ema: float | None = None,
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
    region : {"all", "hole", "known"}
        Which samples count (``hole``/``known``: inpainting files).
    scale : int >= 1
        Score after ``scale`` × ``scale`` average pooling.
    with_ssim : bool
        Also SSIM at each run's best and final frame (images).
    ema : float in (0, 1) or None
        Score the exponential moving average of the outputs, m_t = ema · m_{t−1} + (1 − ema) x_t
        over the stored frames (000_…'s "+Avg" schemes), instead of the outputs.

    Returns
    -------
    PsnrResult
        ``observed_psnr``: PSNR of ``traj.observed`` against ``traj.target`` (+inf when
        they are equal, as in the "fit" task; NaN when the observation has another grid, as
        in super-resolution, or no value in the region, as in an inpainting hole). Per run:
        the PSNR curve (entry i is iteration i), the oracle best PSNR and its iteration
        (first of ties), the final PSNR, SSIM there. ``baselines``: the task's classical
        baselines scored alike.
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise AnalysisError(f"scale must be an integer >= 1, got {scale!r}")
    if ema is not None and not (isinstance(ema, (int, float)) and 0 < ema < 1):
        raise AnalysisError(f"the moving average's factor must be in (0, 1), got {ema!r}")
    with open_reader(traj_or_path) as traj:
        dims = 1 if traj.kind == "1d" else 2
        target = np.asarray(traj.target, dtype=np.float64)
        if data_range is None:
            data_range = default_data_range(traj.kind, target)
        w = region_weights(traj, region)
        w = None if w is None else average_pool(w, scale, spatial_dims=dims)
        ref = average_pool(target, scale, spatial_dims=dims)

        def score(block: np.ndarray) -> np.ndarray:
            return psnr(average_pool(block, scale, spatial_dims=dims), ref, data_range, w)

        observed = np.asarray(traj.observed)
        observed_psnr = float("nan")
        if observed.shape == target.shape and region != "hole":
            observed_psnr = float(score(observed[None])[0])
        baselines = {}
        from spectral_lab.analyze.baselines import task_baselines

        for name, out in task_baselines(traj).items():
            baselines[name] = float(score(out[None])[0])
        runs = []
        for r in range(traj.n_runs):
            curve = ema_curve(traj, r, ema, score, chunk) if ema else map_blocks(traj, r, score, chunk)
            run = run_psnr_from_curve(r, traj.run_seeds(r), curve, frame_iterations(traj, r))
            if with_ssim and traj.kind == "image" and not ema:
                frames = traj.frames(r)
                at = {i: average_pool(np.asarray(frames[i]), scale, spatial_dims=dims)
                      for i in {run.best_frame, len(run.psnr) - 1}}
                run = replace(run, ssim_at_best=ssim(at[run.best_frame], ref, data_range, w),
                              final_ssim=ssim(at[len(run.psnr) - 1], ref, data_range, w))
            if getattr(traj, "has_posterior", False):
                mean, _, count = traj.posterior(r)
                if count > 0:
                    run = replace(run, posterior_psnr=float(score(mean[None])[0]))
            runs.append(run)
    return PsnrResult(observed_psnr, float(data_range), tuple(runs), region, int(scale), baselines)
