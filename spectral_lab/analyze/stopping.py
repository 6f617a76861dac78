"""Stopping rules that need no ground truth: each picks an iteration from recorded outputs.

A rule is a function of frame streams (any iterable of arrays of one shape: a
(T, *shape) array, an h5py dataset, a generator over file chunks) returning the chosen
iteration (frame index, frame 0 = the untrained network). `RULES` maps names to rules;
`stop_file` runs one over every run of a trajectory and scores the choice against the
clean target, which the rules never see.

Rules
-----
es_wmv
    ES-WMV of Wang et al., "Early Stopping for Deep Image Prior" (TMLR 2023): the
    windowed moving variance of the outputs, stopped by patience. Streaming, O(W * frame).
sure
    Stein's unbiased risk estimate (Jo, Chun, Choi, "Rethinking Deep Image Prior for
    Denoising", ICCV 2021), white noise of known sigma. Needs the divergence of the map
    y -> f_t, which one file's outputs cannot give: it comes from a *twin* file, the same
    runs fitted to y + eps*b (``record --probe``), via `probe_divergence`.
discrepancy
    Morozov's discrepancy principle: the first frame whose residual reaches the noise
    level (sigma^2, or the clipped Gaussian's variance `clipped_noise_variance`).
pair_divergence
    Experimental, ours: the first valley of the disagreement between two runs fitted to
    the same observation; the output is the pair's average.
pair_discrepancy
    Experimental, ours: the discrepancy principle on two runs' mean residual, output the
    pair's average.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from spectral_lab.analyze.divergence import divergence
from spectral_lab.analyze.psnr import (
    default_data_range,
    json_float,
    psnr,
    run_psnr_from_curve,
    trajectory_context,
)
from spectral_lab.errors import AnalysisError

__all__ = [
    "RULES",
    "es_wmv",
    "wmv_variance",
    "sure",
    "sure_curve",
    "sure_score",
    "probe_divergence",
    "pair_divergence_rule",
    "pair_disagreement",
    "pair_discrepancy_rule",
    "discrepancy_rule",
    "clipped_noise_variance",
    "first_valley",
    "stop_file",
    "StopEntry",
    "StopResult",
]


# --------------------------------------------------------------------------- ES-WMV


def wmv_variance(frames: Iterable[np.ndarray], window: int) -> Iterator[tuple[int, float]]:
    """Windowed moving variance of a frame stream.

    VAR(t) = (1/W) sum_{w=0}^{W-1} ||x_{t-w} - m_t||^2 / n,  m_t = (1/W) sum_w x_{t-w},
    n the number of elements of a frame: the mean squared deviation per element over the
    last W frames (Wang et al. 2023 use the squared Frobenius norm without 1/n; the
    argmin is the same, the per-element scale is comparable across image sizes).

    Yields
    ------
    (t, VAR(t)) for every t >= W - 1, t the iteration of the window's newest frame.

    Memory is one ring buffer of W frames (kept in the frames' dtype, at least float32)
    and each step costs O(n): running sums of the deviations from a shift frame, which is
    refreshed (and the sums recomputed) every W steps so that rounding cannot drift and
    the subtraction in the variance works at the scale of the variance itself.
    """
    _check_int("window", window, minimum=2)
    buffer = None
    for t, frame in enumerate(frames):
        x = np.asarray(frame)
        if buffer is None:
            shape = x.shape
            buffer = np.empty((window, x.size), dtype=np.result_type(x.dtype, np.float32))
            shift = x.astype(np.float64).ravel()
            dev_sum = np.zeros(x.size)  # sum of (x - shift) over the window
            dev_sq = np.zeros(window)  # ||x - shift||^2 per slot
        elif x.shape != shape:
            raise AnalysisError(f"frame {t} has shape {x.shape}, earlier frames {shape}")
        slot = t % window
        if t >= window:
            dev_sum -= buffer[slot] - shift
        buffer[slot] = x.ravel()
        d = buffer[slot] - shift
        dev_sum += d
        dev_sq[slot] = d @ d
        if slot == window - 1:  # refresh the shift to the newest frame, recompute the sums
            shift = buffer[slot].astype(np.float64)
            dev_sum[:] = 0.0
            for i, row in enumerate(buffer):  # row by row: no (W, n) float64 temporary
                d = row - shift
                dev_sum += d
                dev_sq[i] = d @ d
        if t >= window - 1:
            mean_dev = dev_sum / window
            variance = (dev_sq.sum() / window - mean_dev @ mean_dev) / x.size
            yield t, max(float(variance), 0.0)


def es_wmv(frames: Iterable[np.ndarray], *, window: int = 100, patience: int = 1000) -> int:
    """ES-WMV (Wang et al. 2023): the iteration of the lowest windowed moving variance.

    The variance VAR(t) of the last `window` outputs (`wmv_variance`) is followed while
    the stream is read; when `patience` iterations pass without a new minimum, reading
    stops and the iteration of the minimum is returned. If the stream ends first, the
    argmin of VAR over the whole stream is returned.

    Convention: VAR(t) is attributed to the window's newest frame t, as in the authors'
    reference code (it keeps the current output when the variance reaches a new minimum),
    so the returned iteration is the end of the lowest-variance window. Patience counts
    like theirs: stop at the first t with t - t_min >= patience.

    Parameters
    ----------
    frames : iterable of arrays, all of one shape
        Outputs in iteration order (frame i = iteration i).
    window : int >= 2
        W, frames per variance window (paper default 100).
    patience : int >= 1
        P, iterations without a new minimum before stopping (paper default 1000).

    Returns
    -------
    int
        The chosen iteration.

    Raises
    ------
    AnalysisError
        Fewer than `window` frames, or frames of different shapes.
    """
    _check_int("patience", patience, minimum=1)
    best_t, best_var = None, np.inf
    for t, variance in wmv_variance(frames, window):
        if variance < best_var:
            best_t, best_var = t, variance
        elif best_t is not None and t - best_t >= patience:
            break
    if best_t is None:
        raise AnalysisError(f"ES-WMV needs at least window={window} finite frames")
    return best_t


# --------------------------------------------------------------------------- SURE

_SURE_NEEDS_DIVERGENCE = (
    "SURE needs the divergence div_t = sum_i d f_t,i / d y_i of the map from the observation to "
    "the output, which one file's outputs cannot give: record a twin of the same configuration "
    "with the observation perturbed (spectral-lab record ... --probe 5) and pass it "
    "(analyze stop FILE --rule sure --twin TWIN; in Python twin=..., or divergence=, one value "
    "per frame)"
)


def probe_divergence(
    frames: Iterable[np.ndarray],
    twin_frames: Iterable[np.ndarray],
    delta: np.ndarray,
    *,
    epsilon: float,
) -> Iterator[float]:
    """Monte-Carlo divergence of y -> f_t from a twin run, one value per frame pair.

    The twin has the same seeds (weights, input, input perturbations) and was fitted to
    y + delta, delta = epsilon * b with b ~ N(0, I). Then

        div_t ~= b . (f'_t - f_t) / epsilon = delta . (f'_t - f_t) / epsilon^2,

    whose expectation over b is the trace of the Jacobian of y -> f_t, up to the
    finite-difference error of a step epsilon (the estimator of Ramani, Blu and Unser,
    2008, with the whole optimisation as the map). Small epsilon is noisy (float32 frames,
    and optimisation trajectories separate), large epsilon biased; the stopping
    experiment measures the choice (experiments/results/denoise.md).

    Parameters
    ----------
    frames, twin_frames : iterables of arrays of one shape, read in lockstep
    delta : array
        y' - y, the twin's observation minus the file's.
    epsilon : float > 0
        The perturbation's standard deviation, signal units.
    """
    if not (np.isfinite(epsilon) and epsilon > 0):
        raise AnalysisError(f"epsilon must be a positive finite number, got {epsilon!r}")
    d = np.asarray(delta, dtype=np.float64)
    for t, (a, b) in enumerate(zip(frames, twin_frames)):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != d.shape or b.shape != d.shape:
            raise AnalysisError(f"frame {t} has shapes {a.shape}, {b.shape}; the perturbation {d.shape}")
        yield float(np.vdot(d, b - a)) / epsilon**2


def sure_score(
    residual_sq_mean: np.ndarray | float, divergence: np.ndarray | float, sigma: float, n: int
) -> np.ndarray:
    """Per-element SURE: ||y - f||^2 / n - sigma^2 + 2 sigma^2 div / n.

    For y = x + white Gaussian noise of standard deviation sigma and a weakly
    differentiable estimate f(y), its expectation is the per-element MSE E||f - x||^2 / n.

    Parameters
    ----------
    residual_sq_mean : float or array (T,)
        ||y - f_t||^2 / n, mean squared residual per element.
    divergence : float or array (T,)
        sum_i d f_i / d y_i (not divided by n).
    sigma : float
        Noise standard deviation, in the signal's units.
    n : int
        Elements per signal.
    """
    residual_sq_mean = np.asarray(residual_sq_mean, dtype=np.float64)
    divergence = np.asarray(divergence, dtype=np.float64)
    return residual_sq_mean - sigma**2 + 2.0 * sigma**2 * divergence / n


def sure_curve(
    frames: Iterable[np.ndarray],
    observed: np.ndarray,
    *,
    sigma: float,
    divergence: np.ndarray | Sequence[float] | None,
) -> np.ndarray:
    """SURE(t) for every frame of a stream (see `sure_score`), shape (T,), float64.

    Raises
    ------
    AnalysisError
        `divergence` missing (None), not one finite value per frame, sigma not > 0, or a
        frame not of the observation's shape.
    """
    if divergence is None:
        raise AnalysisError(_SURE_NEEDS_DIVERGENCE)
    if not (np.isfinite(sigma) and sigma > 0):
        raise AnalysisError(f"sigma must be a positive finite number, got {sigma!r}")
    divergence = np.asarray(divergence, dtype=np.float64)
    if divergence.ndim != 1 or not np.all(np.isfinite(divergence)):
        raise AnalysisError("divergence must be a 1D array of finite values, one per frame")
    observed = np.asarray(observed, dtype=np.float64)
    residuals = []
    for t, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.shape != observed.shape:
            raise AnalysisError(f"frame {t} has shape {frame.shape}, observed {observed.shape}")
        residuals.append(np.mean((frame.astype(np.float64) - observed) ** 2))
    if len(residuals) != len(divergence):
        raise AnalysisError(f"{len(residuals)} frames but {len(divergence)} divergence values")
    return sure_score(np.array(residuals), divergence, sigma, observed.size)


def sure(
    frames: Iterable[np.ndarray],
    observed: np.ndarray,
    *,
    sigma: float,
    divergence: np.ndarray | Sequence[float] | None = None,
) -> int:
    """The iteration minimising SURE (Jo, Chun, Choi 2021), an unbiased estimate of the MSE.

    SURE(t) = ||y - f_t||^2 / n - sigma^2 + 2 sigma^2 div_t / n, with y the observation
    and f_t frame t. Valid for denoising (identity forward operator) with white Gaussian
    noise of known standard deviation sigma, in the signal's units (e.g. 25/255 for
    images in [0, 1] degraded by sigma = 25 on the 0..255 scale). Observations clipped
    to [0, 1] after adding the noise (`spectral_lab.signals.add_white_noise`) break the
    Gaussian model near 0 and 1, which biases SURE slightly.

    Design: the divergence div_t of y -> f_t is the degrees-of-freedom term that keeps
    SURE from favouring the frames that fit the noise; one file's outputs hold no
    information about it (it is a derivative with respect to y), and dropping it would
    make SURE the data-fit loss, minimised by the last frame. So it is an input, one value
    per recorded frame. `stop_file` computes it from a twin file (the same runs fitted to
    y + eps*b, `probe_divergence`): the derivative of the whole optimisation map, which is
    what the frame at iteration t is a function of (Jo et al. monitor the same degrees of
    freedom with their own estimator). Without a divergence the rule raises instead of
    guessing.

    Parameters
    ----------
    frames : iterable of arrays of the observation's shape
    observed : array
        y, the noisy observation that was fitted.
    sigma : float
        Noise standard deviation (> 0), signal units.
    divergence : array (T,) or None
        div_t per frame. None raises AnalysisError.

    Returns
    -------
    int
        argmin_t SURE(t) (first of ties).
    """
    return int(np.argmin(sure_curve(frames, observed, sigma=sigma, divergence=divergence)))


# --------------------------------------------------------------------------- pair rule


def pair_disagreement(
    frames_a: Iterable[np.ndarray], frames_b: Iterable[np.ndarray]
) -> Iterator[float]:
    """epsilon(t) = sum of (a_t - b_t)^2 over all elements, for two streams read in lockstep.

    The streaming form of `spectral_lab.analyze.divergence.divergence`, frame by frame
    (float64). Stops at the end of the shorter stream.
    """
    for a, b in zip(frames_a, frames_b):
        yield float(divergence(np.asarray(a)[np.newaxis], np.asarray(b)[np.newaxis])[0])


def first_valley(values: Iterable[float], *, rise: float = 2.0, smooth: int = 1) -> int:
    """Index of the first valley of a stream: a minimum confirmed by a rise on both sides.

    A point is a valley when the (smoothed) stream fell to it by at least a factor `rise`
    from the highest value before it, and then rose again to `rise` times it without
    going lower first. This is the first dip that
    `spectral_lab.analyze.divergence.convergence_points` would report with a prominence
    of log10(rise) decades (rise = 2 is about its default 0.3), found while streaming:
    the stream is read only until the confirming rise, memory O(smooth).

    If no valley is confirmed, the minimum after the highest value is returned (the last
    index when the values only fall, or only rise).

    Parameters
    ----------
    values : iterable of float, >= 0
    rise : float > 1
        Hysteresis factor of the fall and the rise; smaller wiggles are ignored.
    smooth : int >= 1
        Trailing moving median over this many values (robust to single-iteration spikes);
        a smoothed minimum is refined to the raw argmin inside its window.
    """
    if not (np.isfinite(rise) and rise > 1):
        raise AnalysisError(f"rise must be a finite number > 1, got {rise!r}")
    _check_int("smooth", smooth, minimum=1)
    recent: collections.deque[float] = collections.deque(maxlen=smooth)
    peak = valley = None
    valley_t = -1
    for t, value in enumerate(values):
        recent.append(float(value))
        if len(recent) < smooth:
            continue
        v = float(np.median(recent))
        # `> valley` too, so that a stream stuck at 0 never confirms a valley.
        if peak is not None and peak >= rise * valley and v >= rise * valley and v > valley:
            return valley_t
        if peak is None or v > peak:
            peak = valley = v
        elif v >= valley:
            continue
        valley = v
        valley_t = t - smooth + 1 + int(np.argmin(recent))
    if peak is None:
        raise AnalysisError(f"first_valley needs at least smooth={smooth} values")
    return valley_t


def pair_divergence_rule(
    frames_a: Iterable[np.ndarray],
    frames_b: Iterable[np.ndarray],
    *,
    rise: float = 2.0,
    smooth: int = 1,
) -> int:
    """EXPERIMENTAL. Stop two runs fitted to the same observation where they agree best.

    epsilon(t) = sum (a_t - b_t)^2 (`pair_disagreement`) for two runs that differ only
    in their seeds. The reasoning, to be tested on real trajectories, not established:
    early, the runs differ by their random initialisations, and epsilon falls as both
    fit the content that the observation pins down; when they start fitting the noise,
    they do so at different iterations and frequencies, and epsilon rises again (late,
    as both interpolate the same noisy observation, it falls towards 0 once more). The
    stop is the valley between the first two phases: `first_valley` of epsilon. The
    recommended output is the average of the two runs at that iteration, which halves
    the variance of their run-specific (seed-dependent) errors; the noise both have
    fitted is shared and does not average out.

    Known failure: runs that fit the noise in step show no rise, and the rule then picks
    the minimum after the highest epsilon, up to the last frame (overfitted).

    Measured on DIP denoising trajectories (experiments/results/denoise.md): with white
    noise, epsilon's first valley comes within the first ~15 iterations or not at all,
    a gap of 5 dB on average to the pair average's best; `pair_discrepancy_rule` stops
    within 0.3 dB of it.

    Returns
    -------
    int
        The chosen iteration.
    """
    return first_valley(pair_disagreement(frames_a, frames_b), rise=rise, smooth=smooth)


def clipped_noise_variance(
    x: np.ndarray, sigma: float, *, lo: float = 0.0, hi: float = 1.0
) -> float:
    """Mean over elements of E[(clip(x + n, lo, hi) - x)^2], n ~ N(0, sigma^2): the variance
    of Gaussian noise once the observation is clipped to the signal range, at signal x.

    Per element, with a = (lo - x) / sigma, b = (hi - x) / sigma, Phi and phi the standard
    normal CDF and density:

        sigma^2 [Phi(b) - Phi(a) - (b phi(b) - a phi(a))] + (x - lo)^2 Phi(a) + (hi - x)^2 (1 - Phi(b))

    (the truncated second moment inside the range, plus the clipped tails). Equals sigma^2
    far from the bounds and less near them (images with saturated regions: up to ~15 %
    less for sigma = 25/255 on a photograph). ``x`` is clipped to [lo, hi] first.
    """
    from scipy.special import ndtr

    if not (np.isfinite(sigma) and sigma > 0):
        raise AnalysisError(f"sigma must be a positive number (signal units), got {sigma!r}")
    if not hi > lo:
        raise AnalysisError(f"the range must have hi > lo, got [{lo}, {hi}]")
    v = np.clip(np.asarray(x, dtype=np.float64), lo, hi)
    a, b = (lo - v) / sigma, (hi - v) / sigma
    pdf_a, pdf_b = np.exp(-0.5 * a * a) / np.sqrt(2 * np.pi), np.exp(-0.5 * b * b) / np.sqrt(2 * np.pi)
    cdf_a, cdf_b = ndtr(a), ndtr(b)
    inside = sigma**2 * ((cdf_b - cdf_a) - (b * pdf_b - a * pdf_a))
    return float(np.mean(inside + (v - lo) ** 2 * cdf_a + (hi - v) ** 2 * (1.0 - cdf_b)))


def _noise_level(estimate: np.ndarray, sigma: float, clip: tuple[float, float] | None) -> float:
    return sigma**2 if clip is None else clipped_noise_variance(estimate, sigma, lo=clip[0], hi=clip[1])


def discrepancy_rule(
    frames: Iterable[np.ndarray],
    observed: np.ndarray,
    *,
    sigma: float,
    clip: tuple[float, float] | None = (0.0, 1.0),
) -> int:
    """Morozov's discrepancy principle: the first t whose residual reaches the noise level,
    mean((f_t - y)^2) <= s^2(f_t); the last frame if it never does.

    An estimate closer to the observation than the noise is, on average, must have fitted
    some of the noise. s^2 is sigma^2, or with ``clip`` (the observation was clipped to
    that range, as `spectral_lab.signals.degrade` does for images) the clipped noise's
    variance `clipped_noise_variance` at the current output f_t, which stands in for the
    unknown clean signal. Needs sigma (in the signal's units), like SURE; valid for any
    noise of that energy, white or not.

    Parameters
    ----------
    frames : iterable of arrays of the observation's shape
    observed : array
        y, the fitted observation.
    sigma : float > 0
    clip : (lo, hi) or None
        The range the observation was clipped to; None: not clipped (1D signals).

    Returns
    -------
    int
        The chosen iteration.
    """
    if not (np.isfinite(sigma) and sigma > 0):
        raise AnalysisError(f"sigma must be a positive number (signal units), got {sigma!r}")
    y = np.asarray(observed, dtype=np.float64)
    t = -1
    for t, frame in enumerate(frames):
        f = np.asarray(frame, dtype=np.float64)
        if f.shape != y.shape:
            raise AnalysisError(f"frame {t} has shape {f.shape}, the observation {y.shape}")
        if np.mean((f - y) ** 2) <= _noise_level(f, sigma, clip):
            return t
    if t < 0:
        raise AnalysisError("the discrepancy rule needs at least one frame")
    return t


def pair_discrepancy_rule(
    frames_a: Iterable[np.ndarray],
    frames_b: Iterable[np.ndarray],
    observed: np.ndarray,
    *,
    sigma: float,
    clip: tuple[float, float] | None = (0.0, 1.0),
) -> int:
    """EXPERIMENTAL, ours. The discrepancy principle on two runs of one observation, whose
    average is the output: the first t with (||a_t - y||^2 + ||b_t - y||^2) / (2 n) <= s^2
    (s^2 as in `discrepancy_rule`, at the average m_t = (a_t + b_t) / 2).

    The runs' mean residual equals ||m_t - y||^2 / n + epsilon(t) / (4 n): the pair
    average's residual plus a quarter of the pair's disagreement per element. Averaging
    removes about half of the seed-specific error (the part of epsilon), so the average at
    the stop is better than either run; the stop itself is where the runs, on average,
    reach the noise level. (The residual of the average alone, or the residuals' inner
    product ||m_t - y||^2 / n - epsilon(t) / (4 n), reach it earlier, before the best
    iteration, on DIP trajectories: experiments/results/denoise.md.)

    Returns
    -------
    int
        The chosen iteration (the last frame if the level is never reached).
    """
    if not (np.isfinite(sigma) and sigma > 0):
        raise AnalysisError(f"sigma must be a positive number (signal units), got {sigma!r}")
    y = np.asarray(observed, dtype=np.float64)
    t = -1
    for t, (a, b) in enumerate(zip(frames_a, frames_b)):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != y.shape or b.shape != y.shape:
            raise AnalysisError(f"frame {t} has shapes {a.shape}, {b.shape}; the observation {y.shape}")
        residual = 0.5 * (np.mean((a - y) ** 2) + np.mean((b - y) ** 2))
        if residual <= _noise_level(0.5 * (a + b), sigma, clip):
            return t
    if t < 0:
        raise AnalysisError("the pair discrepancy rule needs at least one frame per run")
    return t


RULES: dict[str, Callable[..., int]] = {
    "es_wmv": es_wmv,
    "sure": sure,
    "discrepancy": discrepancy_rule,
    "pair_divergence": pair_divergence_rule,
    "pair_discrepancy": pair_discrepancy_rule,
}
_PAIRED_RULES = {"pair_divergence", "pair_discrepancy"}
_NEEDS_SIGMA = {"sure", "discrepancy", "pair_discrepancy"}


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class StopEntry:
    """One rule decision: a run (or a pair of runs) and how good the chosen output is.

    ``psnr`` and ``best_psnr`` score the same output, the run's frame or, for a pair, the
    average of its two frames, so ``gap = best_psnr - psnr >= 0`` is the loss in dB of
    the rule against the oracle that knows the clean target.
    """

    runs: tuple[int, ...]
    seeds: tuple[dict, ...]
    iteration: int
    psnr: float
    run_psnr: tuple[float, ...]
    best_psnr: float
    best_iteration: int

    @property
    def gap(self) -> float:
        return self.best_psnr - self.psnr

    def to_json(self) -> dict:
        return {
            "runs": list(self.runs),
            "seeds": [dict(s) for s in self.seeds],
            "iteration": self.iteration,
            "psnr": json_float(self.psnr),
            "run_psnr": [json_float(p) for p in self.run_psnr],
            "best_psnr": json_float(self.best_psnr),
            "best_iteration": self.best_iteration,
            "gap": json_float(self.gap),
        }


@dataclass(frozen=True)
class StopResult:
    """`stop_file` result: the rule, its scalar parameters and one `StopEntry` each."""

    rule: str
    params: dict
    data_range: float
    entries: tuple[StopEntry, ...]

    def to_json(self) -> dict:
        """JSON-serialisable dict; non-finite PSNRs (exact fits) are ``null``."""
        return {
            "rule": self.rule,
            "params": dict(self.params),
            "data_range": self.data_range,
            "results": [e.to_json() for e in self.entries],
        }


def stop_file(
    traj_or_path: Any,
    rule: str,
    *,
    chunk: int | None = None,
    data_range: float | None = None,
    **params: Any,
) -> StopResult:
    """Run a stopping rule over every run of a trajectory and score its choices.

    One pass over the file: each frame is read once, fed to the rule and scored against
    the clean target (``traj.target``, for evaluation only; the rules see outputs, and
    those that need it the observation and sigma). After the rule has decided, the rest
    of the run is still read to complete the oracle (best PSNR over all iterations).

    Parameters
    ----------
    traj_or_path : str, os.PathLike or open trajectory
    rule : str
        A key of `RULES`.
    chunk : int or None
        Frames per read (``traj.iter_frames``); memory O(chunk * frame) plus the rule's.
    data_range : float or None
        PSNR range; None uses `spectral_lab.analyze.psnr.default_data_range`.
    **params
        Keyword arguments of the rule, e.g. ``window=100, patience=1000`` for es_wmv.
        ``sure``, ``discrepancy`` and ``pair_discrepancy`` take ``sigma`` in signal units
        (default: the file's ``config["degrade"]["sigma"] / 255``, the convention of
        `spectral_lab.signals`); the discrepancy rules take ``clip`` (default (0, 1) for
        images, which `spectral_lab.signals.degrade` clips, None for 1D signals). ``sure``
        needs ``twin`` (path or open trajectory of the file's twin, recorded with
        ``degrade.probe > 0``, see `probe_divergence`) or ``divergence``, indexable by
        run: ``divergence[r]`` is run r's array (T,). The pair rules take ``pairs``, a
        list of (run_a, run_b), by default (0, 1), (2, 3), ... (an odd last run is left
        out); ``pair_divergence`` also ``rise`` and ``smooth``.

    Returns
    -------
    StopResult
        ``params`` keeps the scalar (JSON) parameters only (sigma as used); arrays and the
        twin are not copied into it (the twin's path is, under ``twin``).

    Raises
    ------
    AnalysisError
        Unknown rule, bad parameters, a pair rule on fewer than two runs, SURE on a file
        whose recorded noise is not white, a twin that is not this file's twin.
    """
    if rule not in RULES:
        raise AnalysisError(f"unknown stopping rule {rule!r}; known: {sorted(RULES)}")
    params = dict(params)
    twin = params.pop("twin", None)
    if twin is not None and rule != "sure":
        raise AnalysisError(f"a twin file is used by the sure rule only, not by {rule!r}")
    json_params = {k: v for k, v in params.items() if isinstance(v, (bool, int, float, str))}
    with contextlib.ExitStack() as stack:
        traj = stack.enter_context(trajectory_context(traj_or_path))
        target = np.asarray(traj.target, dtype=np.float64)
        if data_range is None:
            data_range = default_data_range(traj.kind, target)
        if rule == "sure":
            _check_white_noise(traj)
        if rule in _NEEDS_SIGMA and params.get("sigma") is None:
            params["sigma"] = _recorded_sigma(traj)
        if rule in _NEEDS_SIGMA:
            json_params["sigma"] = float(params["sigma"])
        if rule in ("discrepancy", "pair_discrepancy") and "clip" not in params:
            params["clip"] = (0.0, 1.0) if traj.kind == "image" else None
        if twin is not None:
            if isinstance(twin, (str, os.PathLike)):
                json_params["twin"] = str(twin)
            twin = stack.enter_context(trajectory_context(twin))
            params["twin"] = twin
            params["delta"], params["epsilon"] = _check_twin(traj, twin)
        if rule in _PAIRED_RULES:
            entries = _stop_pairs(traj, rule, params, chunk, target, data_range)
        else:
            entries = [
                _stop_run(traj, r, rule, params, chunk, target, data_range)
                for r in range(traj.n_runs)
            ]
    return StopResult(rule, json_params, float(data_range), tuple(entries))


def _stop_run(traj, r, rule, params, chunk, target, data_range) -> StopEntry:
    curve: list[np.ndarray] = []

    def scored_frames() -> Iterator[np.ndarray]:
        for _, block in traj.iter_frames(r, chunk=chunk):
            curve.append(psnr(block, target, data_range))
            yield from block

    frames = scored_frames()
    kwargs = dict(params)
    if rule == "sure":
        iteration = _sure_run(traj, r, frames, kwargs, chunk)
    elif rule == "discrepancy":
        iteration = discrepancy_rule(frames, traj.observed, **kwargs)
    else:
        iteration = RULES[rule](frames, **kwargs)
    for _ in frames:  # finish the oracle curve
        pass
    oracle = run_psnr_from_curve(r, traj.run_seeds(r), np.concatenate(curve))
    chosen = float(oracle.psnr[iteration])
    return StopEntry(
        runs=(r,), seeds=(oracle.seeds,), iteration=iteration, psnr=chosen, run_psnr=(chosen,),
        best_psnr=oracle.best_psnr, best_iteration=oracle.best_iteration,
    )


def _sure_run(traj, r, frames, kwargs, chunk) -> int:
    twin = kwargs.pop("twin", None)
    if twin is None:
        per_run = kwargs.pop("divergence", None)
        return sure(frames, traj.observed, divergence=None if per_run is None else per_run[r], **kwargs)
    if kwargs.get("divergence") is not None:
        raise AnalysisError("give SURE either a twin file or a divergence, not both")
    sigma = kwargs["sigma"]
    if not (np.isfinite(sigma) and sigma > 0):
        raise AnalysisError(f"sigma must be a positive finite number, got {sigma!r}")
    y = np.asarray(traj.observed, dtype=np.float64)
    residuals: list[float] = []

    def own_frames() -> Iterator[np.ndarray]:
        for f in frames:
            residuals.append(float(np.mean((np.asarray(f, dtype=np.float64) - y) ** 2)))
            yield f

    # the twin may hold fewer frames (still running): SURE covers the common prefix
    div = np.array(list(probe_divergence(own_frames(), _frame_stream(twin, r, chunk), kwargs["delta"],
                                         epsilon=kwargs["epsilon"])))
    if div.size == 0:
        raise AnalysisError("the twin file holds no frames")
    return int(np.argmin(sure_score(np.array(residuals[: div.size]), div, sigma, y.size)))


def _check_twin(traj, twin) -> tuple[np.ndarray, float]:
    """The twin's perturbation delta = y' - y and epsilon, after checking that ``twin`` is
    ``traj`` fitted again to a probed observation: the same configuration but for
    ``degrade.probe`` (0 in the file, > 0 in the twin), and the same runs."""
    def probe_of(cfg) -> float:
        return float((cfg.get("degrade") or {}).get("probe", 0.0) or 0.0)

    def without_probe(cfg) -> dict:
        out = {k: v for k, v in cfg.items() if k != "record"}
        out["degrade"] = {k: v for k, v in (cfg.get("degrade") or {}).items() if k != "probe"}
        return out

    if probe_of(traj.config) != 0.0:
        raise AnalysisError("this file was itself recorded with a probe: pass the file without one, "
                            "and this one as its twin")
    eps = probe_of(twin.config) / 255.0
    if not eps > 0:
        raise AnalysisError("the twin was recorded without a probe (record it with --probe EPS)")
    if without_probe(traj.config) != without_probe(twin.config):
        diff = sorted(k for k in (set(traj.config) | set(twin.config)) - {"record"}
                      if without_probe(traj.config).get(k) != without_probe(twin.config).get(k))
        raise AnalysisError(f"the twin's configuration differs from the file's in {', '.join(diff)} "
                            "(only degrade.probe may differ)")
    if twin.n_runs != traj.n_runs or any(twin.run_seeds(r) != traj.run_seeds(r) for r in range(traj.n_runs)):
        raise AnalysisError("the twin's runs (seeds) differ from the file's")
    for r in range(traj.n_runs):
        # same seeds, same network: the untrained outputs (frame 0) must agree. They do not
        # when the two files were recorded by different versions of a model family.
        if traj.n_frames(r) and twin.n_frames(r):
            a, b = (np.asarray(t.frames(r)[0], dtype=np.float64) for t in (traj, twin))
            if not np.allclose(a, b, rtol=0, atol=1e-5):
                raise AnalysisError(f"run {r}: the twin's untrained output (frame 0) differs from the file's "
                                    f"(max {np.max(np.abs(a - b)):.3g}): not the same network; re-record the twin "
                                    "with the code that recorded the file")
    delta = np.asarray(twin.observed, dtype=np.float64) - np.asarray(traj.observed, dtype=np.float64)
    return delta, eps


def _stop_pairs(traj, rule, params, chunk, target, data_range) -> list[StopEntry]:
    kwargs = dict(params)
    pairs = kwargs.pop("pairs", None)
    if pairs is None:
        if traj.n_runs < 2:
            raise AnalysisError(f"the {rule} rule needs at least two runs of the same observation")
        pairs = [(a, a + 1) for a in range(0, traj.n_runs - 1, 2)]
    entries = []
    for a, b in pairs:
        if not (0 <= a < traj.n_runs and 0 <= b < traj.n_runs and a != b):
            raise AnalysisError(f"bad pair ({a}, {b}) for a file of {traj.n_runs} runs")
        scores: list[np.ndarray] = []  # per iteration: psnr of a, of b, of their average

        def scored_pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for fa, fb in zip(_frame_stream(traj, a, chunk), _frame_stream(traj, b, chunk)):
                fa, fb = fa.astype(np.float64), fb.astype(np.float64)
                scores.append(psnr(np.stack([fa, fb, 0.5 * (fa + fb)]), target, data_range))
                yield fa, fb

        stream = scored_pairs()
        if rule == "pair_divergence":
            iteration = first_valley((float(np.sum((fa - fb) ** 2)) for fa, fb in stream), **kwargs)
        else:
            # the rule zips the two streams: tee keeps one pair in memory at a time
            left, right = itertools.tee(stream)
            iteration = pair_discrepancy_rule((fa for fa, _ in left), (fb for _, fb in right), traj.observed,
                                              **kwargs)
        for _ in stream:  # finish the oracle curve
            pass
        table = np.array(scores)
        oracle = run_psnr_from_curve(a, {}, table[:, 2])  # the oracle of the average
        entries.append(
            StopEntry(
                runs=(a, b), seeds=(dict(traj.run_seeds(a)), dict(traj.run_seeds(b))),
                iteration=iteration, psnr=float(table[iteration, 2]),
                run_psnr=(float(table[iteration, 0]), float(table[iteration, 1])),
                best_psnr=oracle.best_psnr, best_iteration=oracle.best_iteration,
            )
        )
    return entries


def _frame_stream(traj, r, chunk) -> Iterator[np.ndarray]:
    return itertools.chain.from_iterable(block for _, block in traj.iter_frames(r, chunk=chunk))


def _recorded_sigma(traj) -> float:
    """The file's noise level in signal units: config degrade.sigma is in 1/255 units."""
    if traj.config.get("task", "denoise") != "denoise":
        raise AnalysisError("this file fits a clean signal (task 'fit'): a rule that needs the noise "
                            "level has none to read; give it (--sigma, 0-255 scale)")
    sigma = (traj.config.get("degrade") or {}).get("sigma")
    if sigma is None:
        raise AnalysisError("no degrade.sigma in the file's config: pass sigma (signal units)")
    return float(sigma) / 255.0


def _check_white_noise(traj) -> None:
    noise = (traj.config.get("degrade") or {}).get("noise")
    if noise is not None and noise != "white":
        raise AnalysisError(f"SURE assumes white Gaussian noise; this file's noise is {noise!r}")


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise AnalysisError(f"{name} must be an integer >= {minimum}, got {value!r}")
