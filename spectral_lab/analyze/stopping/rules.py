"""Stopping rules that read outputs only (and, where they need them, the observation and σ).

Every rule is an entry of `RULES` with metadata ``needs``, the inputs `stop_file` hands it
besides the frame stream(s):

- ``observed``: the observation y, as the keyword ``observed``;
- ``sigma``: the noise level in signal units (``sigma``; from the file or the caller);
- ``clip``: the range the observation was clipped to (``clip``: (0, 1) for images, None for 1D);
- ``pair``: the rule decides for two runs of one observation: it is called with two frame
  streams and its output is their average;
- ``twin``: the frames of a twin file and the twin's perturbation (``twin_frames``,
  ``delta``, ``epsilon``; see `spectral_lab.analyze.stopping.sure`).

``operators`` (metadata, default: any) lists the forward operators a rule was derived for:
the rules that compare outputs with the observation sample by sample assume A = I and
refuse an inpainting or super-resolution file in one line; ES-WMV and the pair divergence
read the outputs only and take any task.

A new rule is one decorated function: ``@RULES.register("name", needs=("sigma",))``; the
CLI's ``--rule`` choices, and which of ``--sigma`` / ``--twin`` a rule takes, follow.
"""

from __future__ import annotations

import collections
from typing import Any, Iterable, Iterator

import numpy as np

from spectral_lab.analyze.divergence import divergence
from spectral_lab.errors import AnalysisError
from spectral_lab.registry import Registry

__all__ = ["RULES", "NEEDS", "es_wmv", "wmv_variance", "pair_disagreement", "first_valley", "pair_divergence_rule",
           "clipped_noise_variance", "discrepancy_rule", "pair_discrepancy_rule", "check_int"]

NEEDS = ("observed", "sigma", "clip", "pair", "twin")
RULES: Registry = Registry("stopping rule", skip=("frames", "frames_a", "frames_b", "observed", "sigma", "clip",
                                                   "twin_frames", "delta", "epsilon"))


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
    check_int("window", window, minimum=2)
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


@RULES.register("es_wmv", help="ES-WMV (Wang et al. 2023): lowest windowed moving variance of the outputs", needs=())
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
    check_int("patience", patience, minimum=1)
    best_t, best_var = None, np.inf
    for t, variance in wmv_variance(frames, window):
        if variance < best_var:
            best_t, best_var = t, variance
        elif best_t is not None and t - best_t >= patience:
            break
    if best_t is None:
        raise AnalysisError(f"ES-WMV needs at least window={window} finite frames")
    return best_t



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
    check_int("smooth", smooth, minimum=1)
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


@RULES.register("pair_divergence", help="ours, experimental: first valley of two runs' disagreement; output their average", needs=("pair",))
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


@RULES.register("discrepancy", help="Morozov's discrepancy principle: first frame whose residual reaches the noise level", needs=("observed", "sigma", "clip"), operators=("identity",))
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


@RULES.register("pair_discrepancy", help="ours: the discrepancy principle on two runs' mean residual; output their average", needs=("observed", "sigma", "clip", "pair"), operators=("identity",))
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




def check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise AnalysisError(f"{name} must be an integer >= {minimum}, got {value!r}")

