"""Signals the experiments fit: sinusoids, images, a synthetic pattern image, and noise.

Image files (the photographs, masks, 16-bit PNGs) are read by `spectral_lab.image_files`;
its `load_image`, `load_mask`, `sample_image_path`, `image_size` and `image_channels` are
importable from here too, where the rest of the lab has always found them.

Every function is pure and, where random, seeded: the same arguments give the same array.
Signals are float32 (1D signals of shape ``(N,)``, images of shape ``(C, H, W)`` with values
in [0, 1]); noise fields are float64 so that their statistics are exact; spectral
computations run in float64.

Fourier convention: frequencies are in cycles per sample (cycles per pixel for images), as
returned by ``np.fft.fftfreq`` (unshifted, in [-0.5, 0.5)); the radius of a 2D frequency is
``sqrt(f_y**2 + f_x**2)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from spectral_lab.errors import SignalError
from spectral_lab.fourier import frequency_radius
from spectral_lab.image_files import (  # noqa: F401  (re-exported: the lab's and users' import path)
    image_channels, image_size, load_image, load_mask, sample_image_path)

__all__ = [
    "sines",
    "amplitude_profile",
    "random_phases",
    "sample_image_path",
    "load_image",
    "triangle_image",
    "white_noise",
    "add_white_noise",
    "lowfreq_noise",
    "add_lowfreq_noise",
    "degrade",
    "NOISE_KINDS",
    "probe_perturbation",
    "load_mask",
    "image_size",
]

NOISE_KINDS = ("none", "white", "lowfreq")



# ----------------------------------------------------------------------------- checks


def _is_real_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_sigma(sigma: object) -> float:
    if not _is_real_number(sigma) or not math.isfinite(sigma):
        raise SignalError(f"sigma must be a finite number, got {sigma!r}")
    if sigma < 0:
        raise SignalError(f"sigma must be >= 0 (in units of 1/255), got {sigma}")
    return float(sigma)


def _check_seed(seed: object) -> int:
    if not _is_integer(seed) or seed < 0:
        raise SignalError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_shape(shape: object) -> tuple[int, ...]:
    if _is_integer(shape):
        shape = (shape,)
    if not isinstance(shape, Sequence) or len(shape) == 0:
        raise SignalError(f"shape must be a non-empty tuple of positive integers, got {shape!r}")
    if not all(_is_integer(n) and n >= 1 for n in shape):
        raise SignalError(f"shape must be a non-empty tuple of positive integers, got {shape!r}")
    return tuple(int(n) for n in shape)


def _number_list(name: str, values: object) -> list[float]:
    """A list of real numbers from a sequence or 1D array, else SignalError."""
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = values.tolist()
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise SignalError(f"{name} must be a sequence of numbers, got {values!r}")
    if not all(_is_real_number(v) for v in values):
        raise SignalError(f"{name} must contain only real numbers, got {list(values)!r}")
    return list(values)


def _as_signal(x: object) -> np.ndarray:
    """Float64 copy of a finite, non-empty array-like signal."""
    try:
        array = np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SignalError(f"signal must be a numeric array, got {type(x).__name__}") from exc
    if array.size == 0:
        raise SignalError("signal must not be empty")
    if not np.all(np.isfinite(array)):
        raise SignalError("signal contains NaN or inf")
    return array


# ----------------------------------------------------------------------------- 1D signals


def sines(
    freqs: Sequence[float] = (5, 50),
    amps: Sequence[float] = (1.0, 1.0),
    phases: Sequence[float] | None = None,
    length: int = 200,
) -> np.ndarray:
    r"""Sum of sinusoids sampled on ``length`` points of [0, 1).

    .. math:: x[n] = \sum_i A_i \sin(2 \pi k_i t_n + \phi_i), \qquad t_n = n / N

    so a frequency ``k`` (cycles per signal length) sits at ``k / N`` cycles per sample,
    i.e. in bin ``k`` of ``np.fft.fft(x)`` when ``k`` is an integer.

    Parameters
    ----------
    freqs : sequence of float
        Frequencies ``k_i`` in cycles per signal length, each with ``0 < k_i < length / 2``
        (strictly below the Nyquist limit).
    amps : sequence of float
        Finite amplitudes ``A_i``, one per frequency.
    phases : sequence of float, optional
        Finite phases ``phi_i`` in radians, one per frequency; zeros if omitted.
    length : int
        Number of samples ``N >= 2``.

    Returns
    -------
    np.ndarray
        Shape ``(length,)``, float32 (computed in float64).

    Raises
    ------
    SignalError
        On mismatched lengths, a frequency outside ``(0, length / 2)``, a non-finite
        amplitude or phase, or ``length < 2``.
    """
    if not _is_integer(length) or length < 2:
        raise SignalError(f"length must be an integer >= 2, got {length!r}")
    freqs = _number_list("freqs", freqs)
    amps = _number_list("amps", amps)
    phases = [0.0] * len(freqs) if phases is None else _number_list("phases", phases)
    if len(freqs) == 0:
        raise SignalError("freqs must contain at least one frequency")
    if not len(freqs) == len(amps) == len(phases):
        raise SignalError(
            f"freqs, amps and phases must have the same length, "
            f"got {len(freqs)}, {len(amps)} and {len(phases)}"
        )
    nyquist = length / 2
    for k in freqs:
        if not math.isfinite(k) or not 0 < k < nyquist:
            raise SignalError(
                f"frequency {k} is outside (0, {nyquist:g}): it must be positive and below "
                f"the Nyquist limit length/2 = {nyquist:g}"
            )
    if not all(math.isfinite(a) for a in amps):
        raise SignalError(f"amplitudes must be finite, got {list(amps)!r}")
    if not all(math.isfinite(p) for p in phases):
        raise SignalError(f"phases must be finite, got {list(phases)!r}")

    t = np.arange(length, dtype=np.float64) / length
    signal = np.zeros(length, dtype=np.float64)
    for k, a, p in zip(freqs, amps, phases):
        signal += a * np.sin(2 * np.pi * k * t + p)
    return signal.astype(np.float32)


AMPLITUDE_PROFILES = ("equal", "increasing")


def amplitude_profile(profile: str, freqs: Sequence[float], power: float = 1.0) -> tuple[float, ...]:
    """Amplitudes A_k of a sum of sines with a given shape over k and a fixed power.

    ``"equal"``: all A_k alike; ``"increasing"``: A_k ∝ k (the lowest is k_min/k_max of the
    highest: the opposite of a natural image's spectrum). Scaled so that the signal's mean
    square Σ A_k²/2 is ``power`` (1: the paper's sin(2π5t) + sin(2π50t)); a fixed power, not a
    fixed A_k, keeps ten sines as strong as two.
    """
    if profile == "equal":
        shape = np.ones(len(freqs))
    elif profile == "increasing":
        shape = np.asarray(freqs, dtype=float) / max(freqs)
    else:
        raise SignalError(f"unknown amplitude profile {profile!r}; choose from {', '.join(AMPLITUDE_PROFILES)}")
    if not (_is_real_number(power) and power > 0 and math.isfinite(power)):
        raise SignalError(f"power must be a positive number, got {power!r}")
    scale = np.sqrt(2.0 * power / np.sum(shape ** 2))
    return tuple(float(a) for a in scale * shape)


def random_phases(n: int, *, seed: int, draw: int = 0) -> tuple[float, ...]:
    """``n`` phases φ_k ~ U[0, 2π), one set per (``seed``, ``draw``): reproducible, and
    independent of anything else drawn from ``seed``."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(draw)]))
    return tuple(float(p) for p in rng.uniform(0.0, 2 * np.pi, size=n))


# ----------------------------------------------------------------------------- images


def _triangle_coverage(height: int, width: int) -> np.ndarray:
    """(H, W) fraction of each pixel inside the triangle, with a one-pixel linear edge ramp."""
    # Vertices (x, y) as fractions of (W, H), placed as in the reference triangle images.
    vertices = np.array([[0.50, 0.35], [0.61, 0.59], [0.39, 0.59]]) * [width, height]
    y, x = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    distance = np.full((height, width), np.inf)
    for (x0, y0), (x1, y1) in zip(vertices, np.roll(vertices, -1, axis=0)):
        # Signed distance to the edge line, positive on the inner side (vertices run clockwise
        # on screen, where y points down).
        edge = np.hypot(x1 - x0, y1 - y0)
        inside = ((x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)) / edge
        distance = np.minimum(distance, inside)
    return np.clip(distance + 0.5, 0.0, 1.0)


def triangle_image(
    size: tuple[int, int] = (256, 256),
    pattern_fraction: float = 0.6,
    *,
    pattern_period: float = 4.0,
    stripe_period: float = 64.0,
) -> np.ndarray:
    r"""Synthetic grey image: a triangle over broad stripes, with a fine line pattern top-left.

    The image is the product of four factors, each in [2/3, 1] (so values lie in [8/27, 1]):

    - a white background, 1;
    - broad diagonal stripes running bottom-left to top-right,
      :math:`1 - \tfrac13 \cdot \tfrac12 (1 + \cos(2\pi (x + y) / (\sqrt2\, P_s)))`,
      a single spatial frequency of radius ``1 / stripe_period`` cycles per pixel;
    - a uniform triangle darkening by 2/3, with a one-pixel anti-aliased edge;
    - fine horizontal lines :math:`1 - \tfrac13 \cdot \tfrac12 (1 + \cos(2\pi y / P_p))`,
      vertical frequency ``1 / pattern_period`` cycles per pixel, restricted to a top-left
      rectangle of ``round(sqrt(pattern_fraction) * H)`` rows by
      ``round(sqrt(pattern_fraction) * W)`` columns (a square when H = W).

    ``x`` and ``y`` are column and row indices. This is the family of the spectral-bias
    paper's ``triangle-0.2.png`` ... ``triangle-1.0.png`` (smooth stripes here, where the
    files have hard-edged stripes and one-pixel lines; ``pattern_period=2`` gives
    alternate-row lines like the files).

    Parameters
    ----------
    size : (int, int)
        ``(H, W)``, each >= 2.
    pattern_fraction : float
        Fraction of the image AREA covered by the line pattern, in [0, 1]. The files' suffix
        is the fraction of the SIDE, so ``triangle-s.png`` corresponds to
        ``pattern_fraction = s ** 2`` (``triangle-0.2`` covers 4 % of the area).
    pattern_period : float
        Period of the fine lines in pixels, >= 2 (2 is the Nyquist limit).
    stripe_period : float
        Period of the broad stripes in pixels, measured perpendicular to them, >= 2.

    Returns
    -------
    np.ndarray
        Shape ``(1, H, W)``, float32, values in [0, 1]. Deterministic.

    Raises
    ------
    SignalError
        On a bad size, a fraction outside [0, 1] or a period below 2 pixels.
    """
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(_is_integer(n) and n >= 2 for n in size)
    ):
        raise SignalError(f"size must be (H, W) with integers >= 2, got {size!r}")
    if not _is_real_number(pattern_fraction) or not 0 <= pattern_fraction <= 1:
        raise SignalError(f"pattern_fraction must be in [0, 1], got {pattern_fraction!r}")
    for name, period in (("pattern_period", pattern_period), ("stripe_period", stripe_period)):
        if not _is_real_number(period) or not math.isfinite(period) or period < 2:
            raise SignalError(f"{name} must be a finite number of pixels >= 2, got {period!r}")

    height, width = int(size[0]), int(size[1])
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    darkening = 1.0 / 3.0

    stripe_phase = 2 * np.pi * (x + y) / (math.sqrt(2) * stripe_period)
    stripes = 1 - darkening * 0.5 * (1 + np.cos(stripe_phase))
    triangle = 1 - darkening * _triangle_coverage(height, width)

    side = math.sqrt(pattern_fraction)
    rows, cols = math.floor(side * height + 0.5), math.floor(side * width + 0.5)
    pattern = np.ones((height, width))
    lines = 1 - darkening * 0.5 * (1 + np.cos(2 * np.pi * y / pattern_period))
    pattern[:rows, :cols] = lines[:rows, :cols]

    image = stripes * triangle * pattern
    return image[None].astype(np.float32)


# ----------------------------------------------------------------------------- noise


def white_noise(shape: int | tuple[int, ...], sigma: float = 25.0, *, seed: int) -> np.ndarray:
    """Independent Gaussian noise with standard deviation ``sigma / 255``.

    Parameters
    ----------
    shape : int or tuple of int
        Output shape, e.g. ``(N,)`` or ``(C, H, W)``.
    sigma : float
        Standard deviation in units of 1/255 (image grey levels), finite and >= 0.
    seed : int
        Seed of ``np.random.default_rng``.

    Returns
    -------
    np.ndarray
        Shape ``shape``, float64, mean 0.
    """
    shape = _check_shape(shape)
    sigma = _check_sigma(sigma)
    rng = np.random.default_rng(_check_seed(seed))
    return rng.standard_normal(shape) * (sigma / 255.0)


def add_white_noise(x: np.ndarray, sigma: float = 25.0, *, seed: int) -> np.ndarray:
    """``clip(x + white_noise(x.shape, sigma, seed=seed), 0, 1)``.

    Parameters
    ----------
    x : np.ndarray
        Clean signal, any shape, finite.
    sigma, seed
        As in `white_noise`.

    Returns
    -------
    np.ndarray
        Shape of ``x``, float32, values in [0, 1].
    """
    signal = _as_signal(x)
    return _noisy(signal, white_noise(signal.shape, sigma, seed=seed)).astype(np.float32)


def _filtered_axes(shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) == 1:
        return (-1,)
    if len(shape) == 3:
        return (-2, -1)
    raise SignalError(f"shape must be (N,) or (C, H, W), got {shape!r}")


def lowfreq_noise(
    shape: int | tuple[int, ...],
    sigma: float = 25.0,
    cutoff: float = 0.05,
    *,
    seed: int,
) -> np.ndarray:
    """Smooth stationary Gaussian field: white noise with every frequency above ``cutoff`` removed.

    White Gaussian noise is transformed with ``np.fft.rfftn`` over the last axis (shape
    ``(N,)``) or the last two axes (shape ``(C, H, W)``, each channel independent); every bin
    with radius ``|f| > cutoff`` and the zero-frequency bin are set to 0 (frequencies in
    cycles per sample from ``np.fft.fftfreq``); the inverse transform is then scaled so that
    each channel has population standard deviation (``ddof=0``) exactly ``sigma / 255``.
    The noise thus carries the same energy as `white_noise` of the same ``sigma``, all of
    it at frequencies ``0 < |f| <= cutoff``.

    Parameters
    ----------
    shape : int or tuple of int
        ``(N,)`` or ``(C, H, W)``.
    sigma : float
        Standard deviation in units of 1/255, finite and >= 0.
    cutoff : float
        Highest kept frequency radius in cycles per sample, ``0 < cutoff <= 0.5 * sqrt(d)``
        with ``d`` the number of filtered axes; it must keep at least one nonzero frequency
        (at least ``1 / N`` along some axis).
    seed : int
        Seed of ``np.random.default_rng``.

    Returns
    -------
    np.ndarray
        Shape ``shape``, float64 (so the spectrum is zero above the cut-off to rounding in
        float64), mean 0 per channel.
    """
    shape = _check_shape(shape)
    axes = _filtered_axes(shape)
    sigma = _check_sigma(sigma)
    max_radius = 0.5 * math.sqrt(len(axes))
    if not _is_real_number(cutoff) or not 0 < cutoff <= max_radius:
        raise SignalError(
            f"cutoff must be in (0, {max_radius:.4g}] cycles per sample, got {cutoff!r}"
        )
    radius = frequency_radius([shape[a] for a in axes], real=True)
    keep = (radius <= cutoff) & (radius > 0)
    if not keep.any():
        if not (radius > 0).any():
            raise SignalError(f"shape {shape} has no nonzero frequency to keep")
        raise SignalError(
            f"cutoff {cutoff} keeps no nonzero frequency for shape {shape}: "
            f"the lowest is {radius[radius > 0].min():.4g} cycles per sample"
        )
    seed = _check_seed(seed)

    white = np.random.default_rng(seed).standard_normal(shape)
    spectrum = np.fft.rfftn(white, axes=axes) * keep
    field = np.fft.irfftn(spectrum, s=[shape[a] for a in axes], axes=axes)
    std = field.std(axis=axes, keepdims=True)
    return field / std * (sigma / 255.0)


def add_lowfreq_noise(
    x: np.ndarray,
    sigma: float = 25.0,
    cutoff: float = 0.05,
    *,
    seed: int,
) -> np.ndarray:
    """``clip(x + lowfreq_noise(x.shape, sigma, cutoff, seed=seed), 0, 1)``.

    Parameters
    ----------
    x : np.ndarray
        Clean signal of shape ``(N,)`` or ``(C, H, W)``, finite.
    sigma, cutoff, seed
        As in `lowfreq_noise`.

    Returns
    -------
    np.ndarray
        Shape of ``x``, float32, values in [0, 1].
    """
    signal = _as_signal(x)
    return _noisy(signal, lowfreq_noise(signal.shape, sigma, cutoff, seed=seed)).astype(np.float32)


def degrade(
    x: np.ndarray,
    *,
    noise: str = "white",
    sigma: float = 25.0,
    cutoff: float = 0.05,
    seed: int = 0,
    clip: bool = True,
    probe: float = 0.0,
) -> np.ndarray:
    """The observation of a clean signal: ``x`` plus the chosen noise, clipped to [0, 1].

    Parameters
    ----------
    x : np.ndarray
        Clean signal, ``(N,)`` or ``(C, H, W)``.
    noise : {"white", "lowfreq", "none"}
        ``"white"``: `white_noise`; ``"lowfreq"``: `lowfreq_noise`; ``"none"``: ``x``
        unchanged (not clipped).
    sigma, cutoff, seed
        Passed on; ``cutoff`` is used by ``"lowfreq"`` only, none are used by ``"none"``.
    clip : bool
        Clip to [0, 1] (images). Signed 1D signals pass ``clip=False``.
    probe : float
        SURE twin (0–255 scale; 0: none): adds ``probe_perturbation(x.shape, probe,
        seed=seed)`` after clipping, unclipped, so that the twin's observation is exactly
        y + ε·b with y the observation without probe.

    Returns
    -------
    np.ndarray
        Shape ``x``, float32.
    """
    if noise not in NOISE_KINDS:
        raise SignalError(f"unknown noise {noise!r}; choose one of {', '.join(NOISE_KINDS)}")
    signal = _as_signal(x)
    if noise == "none":
        observed = signal
    else:
        field = (white_noise(signal.shape, sigma, seed=seed) if noise == "white"
                 else lowfreq_noise(signal.shape, sigma, cutoff, seed=seed))
        observed = _noisy(signal, field, clip)
    if probe:
        observed = observed + probe_perturbation(signal.shape, probe, seed=seed)
    return observed.astype(np.float32)


def _noisy(signal: np.ndarray, noise: np.ndarray, clip: bool = True) -> np.ndarray:
    """signal + noise, clipped to [0, 1] when ``clip`` (float64)."""
    noisy = signal + noise
    return np.clip(noisy, 0.0, 1.0) if clip else noisy


def probe_perturbation(shape: int | tuple[int, ...], probe: float, *, seed: int) -> np.ndarray:
    """ε·b, the perturbation of a SURE twin's observation: b ~ N(0, I) from the ``probe``
    stream of the noise seed (independent of the noise itself), ε = ``probe / 255``."""
    from spectral_lab.seeding import stream_seed

    return white_noise(shape, probe, seed=stream_seed(_check_seed(seed), "probe"))
