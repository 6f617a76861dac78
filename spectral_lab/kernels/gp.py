"""The Gaussian process of wide random conv nets (Cheng et al., 000_..., Section 3) and GP inference.

A conv net with random weights, fed a stationary random input, tends to a zero-mean
Gaussian process over its output positions as every layer's channel count grows. Its
covariance follows layer by layer (000_..., Theorem 1, Lemma 1, Section 3.3):

    K_1     = sigma_w1^2 * W(K_x) + sigma_b1^2                          (first conv, linear)
    K_{l+1} = sigma_w^2 * W(pool(V(K_l))) + sigma_b^2                   (ReLU or erf, then conv)

with K_x the input's covariance, V the non-linearity's map of a Gaussian covariance to the
second moment of its image (``relu_expectation``, ``erf_expectation``), W the average over
the conv window of the covariance shifted along the diagonal (the weights are i.i.d. with
variance sigma_w^2 / fan_in, so terms at different window offsets do not mix), and pool an
optional average pooling. K_l is the covariance of layer l's *pre-activations* (the output
of its conv, before the non-linearity); the last layer is linear.

**The window drops out for a stationary input.** W averages K(t1 + j, t2 + j) over the
window offsets j; if K depends only on t2 - t1, every term is the same, so W(K) = K: the
lag-r output covariance depends only on the lag-r input covariance and K(0) (000_...,
after Lemma 1). The window size matters only at the boundary. Two representations:

* ``conv_gp_covariance``: stationary, as a function of the lag (a 1D array of lags, or a 2D
  array of offsets), **circular** (periodic boundary, lags in FFT order: index r is the
  offset r, equivalently r - L). Chosen because it is exact for a stationary process on a
  ring, keeps every layer stationary, and makes the covariance matrix circulant, so the
  FFT diagonalises it (``prior_power_spectrum``, ``gp_posterior_stationary``). The window
  does not appear.
* ``conv_gp_covariance_matrix``: position x position, with the lab's zero 'same' padding
  (or circular padding), for any input covariance matrix (a stationary one, or the
  empirical x x^T / C of one fixed input, which is what neural-tangents computes). The
  zero-padded network is stationary only at least ``depth * (window // 2)`` samples from
  the edges; the two representations agree exactly there.

Boundary and convention for lags longer than the signal: a lag array of length L used on a
signal of N <= L samples (``covariance_matrix_from_lags``) is circular when L = N and the
covariance of a window of an infinite (L-periodic) process when L >= 2N - 1.

Fourier convention: ``np.fft.fftn`` over the spatial axes, unshifted, frequencies in
cycles per sample (``np.fft.fftfreq``). Power P(f) = |X(f)|^2 / P^2 with P the number of
samples, as in ``spectral_lab.analyze.spectrum`` (Parseval: sum_f P(f) = mean(x^2)).

Everything is float64 numpy; nothing here imports torch (``spectral_lab.kernels.sampled``
draws random networks from the model registry).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from spectral_lab.errors import AnalysisError, ConfigError

__all__ = [
    "NONLINEARITIES",
    "GPInpainting",
    "GPPosterior",
    "average_pool_covariance",
    "box_filter_covariance",
    "centred_lags",
    "conv_gp_covariance",
    "conv_gp_covariance_matrix",
    "conv_gp_layer_covariances",
    "correlation_matrix",
    "covariance_matrix_from_lags",
    "erf_expectation",
    "expected_power_spectrum",
    "gaussian_input_covariance",
    "gp_amplitude_mle",
    "gp_inpaint",
    "gp_log_marginal_likelihood",
    "gp_log_marginal_likelihood_stationary",
    "gp_posterior",
    "gp_posterior_stationary",
    "normalised_covariance",
    "prior_power_spectrum",
    "rbf_covariance",
    "relu_expectation",
    "white_input_covariance",
]

# Largest number of pixels for which a dense P x P solve is done (64 x 64: 128 MB a matrix).
DENSE_LIMIT = 4096


# ------------------------------------------------------------------------- non-linearities


def relu_expectation(k12: np.ndarray, k11: np.ndarray, k22: np.ndarray) -> np.ndarray:
    """E[relu(u) relu(v)] for zero-mean jointly Gaussian (u, v): the arc-cosine kernel of degree 1.

    Cho & Saul (2009), normalised as in 000_... eq. (3) and (7):

        E = sqrt(k11 k22) / (2 pi) * (sin theta + (pi - theta) cos theta),
        cos theta = k12 / sqrt(k11 k22).

    At theta = 0 this is k11 / 2; at k12 = 0 it is sqrt(k11 k22) / (2 pi).

    Parameters
    ----------
    k12, k11, k22 : arrays (broadcastable)
        Cov(u, v), Var(u), Var(v); variances >= 0. Correlations are clipped to [-1, 1]
        (round-off); a zero variance gives 0.

    Returns
    -------
    np.ndarray float64, the broadcast shape
    """
    k12, k11, k22 = _gaussian_moments(k12, k11, k22)
    scale = np.sqrt(k11 * k22)
    cos = np.divide(k12, scale, out=np.zeros_like(scale), where=scale > 0)
    theta = np.arccos(np.clip(cos, -1.0, 1.0))
    return scale / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * np.cos(theta))


def erf_expectation(k12: np.ndarray, k11: np.ndarray, k22: np.ndarray) -> np.ndarray:
    """E[erf(u) erf(v)] for zero-mean jointly Gaussian (u, v): Williams' (1997) arcsin formula.

        E = (2 / pi) * arcsin(2 k12 / sqrt((1 + 2 k11) (1 + 2 k22))).

    000_... eq. (2) and Theorem 1 write (2/pi) arcsin(k12 / sqrt(k11 k22)), the limit of
    large variances (erf -> sign); the formula here is exact at every variance.

    Parameters
    ----------
    k12, k11, k22 : arrays (broadcastable)
        Cov(u, v), Var(u), Var(v); variances >= 0.

    Returns
    -------
    np.ndarray float64, the broadcast shape
    """
    k12, k11, k22 = _gaussian_moments(k12, k11, k22)
    arg = 2 * k12 / np.sqrt((1 + 2 * k11) * (1 + 2 * k22))
    return 2 / np.pi * np.arcsin(np.clip(arg, -1.0, 1.0))


NONLINEARITIES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "relu": relu_expectation,
    "erf": erf_expectation,
}


def _gaussian_moments(k12, k11, k22) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k12, k11, k22 = (np.asarray(a, dtype=np.float64) for a in (k12, k11, k22))
    if np.any(k11 < 0) or np.any(k22 < 0):
        raise AnalysisError("variances k11 and k22 must be >= 0")
    return np.broadcast_arrays(k12, k11, k22)


def _nonlinearity(name: str):
    try:
        return NONLINEARITIES[name]
    except KeyError:
        raise ConfigError(f"unknown non-linearity {name!r}; choose from {', '.join(NONLINEARITIES)}") from None


# ---------------------------------------------------------------------- stationary inputs


def white_input_covariance(shape: int | Sequence[int], variance: float = 1.0) -> np.ndarray:
    """The delta kernel of white noise: K(0) = variance, K(r) = 0 for r != 0.

    Parameters
    ----------
    shape : int or (N,) or (H, W)
        Spatial shape of the lag array.
    variance : float
        Per-sample variance (> 0).

    Returns
    -------
    np.ndarray (N,) or (H, W) float64, lags in FFT order
    """
    shape = _check_spatial(shape)
    _check_positive("variance", variance)
    cov = np.zeros(shape)
    cov[(0,) * len(shape)] = variance
    return cov


def gaussian_input_covariance(shape: int | Sequence[int], length_scale: float,
                              variance: float = 1.0) -> np.ndarray:
    """Covariance of white noise circularly filtered by a Gaussian of std ``length_scale``.

    The input of 000_... Fig. 3: channels of white noise smoothed by a Gaussian filter
    g(t) = exp(-t^2 / (2 s^2)), s = ``length_scale``. The covariance is the filter's
    circular autocorrelation, ~ exp(-r^2 / (4 s^2)) (a Gaussian of std sqrt(2) s; this is
    the convention of the authors' code, ZezhouCheng/GP-DIP, whose text says the filter has
    std sqrt(2) sigma), rescaled to K(0) = ``variance``. In 2D the filter is separable and
    the covariance the product of the two axes'. ``length_scale = 0`` gives white noise.

    Parameters
    ----------
    shape : int or (N,) or (H, W)
    length_scale : float >= 0, in samples
    variance : float > 0

    Returns
    -------
    np.ndarray (N,) or (H, W) float64, lags in FFT order, positive semi-definite
    (its FFT is >= 0) by construction.
    """
    shape = _check_spatial(shape)
    _check_positive("variance", variance)
    if not (math.isfinite(length_scale) and length_scale >= 0):
        raise ConfigError(f"length_scale must be a finite number >= 0, got {length_scale!r}")
    if length_scale == 0:
        return white_input_covariance(shape, variance)
    cov = np.ones(())
    for n in shape:
        g = np.exp(-0.5 * (_signed_lags(n) / length_scale) ** 2)
        axis = np.fft.ifft(np.abs(np.fft.fft(g)) ** 2).real
        cov = np.multiply.outer(cov, axis / axis[0])
    return variance * cov


def rbf_covariance(shape: int | Sequence[int], length_scale: float, variance: float = 1.0) -> np.ndarray:
    """Squared-exponential (RBF) kernel k(d) = variance * exp(-|d|^2 / (2 l^2)), periodised.

    Summed over the periods of the grid, so that the circulant matrix is positive
    semi-definite; for l well below the grid size this is the plain RBF at the offset d in
    (-L/2, L/2]. Use a grid of size >= 2N - 1 for the RBF on a non-periodic signal of N
    samples (``covariance_matrix_from_lags``).

    Parameters
    ----------
    shape : int or (L,) or (H, W)
    length_scale : float > 0, in samples
    variance : float > 0

    Returns
    -------
    np.ndarray (L,) or (H, W) float64, lags in FFT order
    """
    shape = _check_spatial(shape)
    _check_positive("length_scale", length_scale)
    _check_positive("variance", variance)
    cov = np.ones(())
    for n in shape:
        wraps = int(math.ceil(8 * length_scale / n)) + 1
        d = _signed_lags(n)[None, :] + n * np.arange(-wraps, wraps + 1)[:, None]
        cov = np.multiply.outer(cov, np.exp(-0.5 * (d / length_scale) ** 2).sum(axis=0))
    return variance * cov


def _signed_lags(n: int) -> np.ndarray:
    """Offsets 0, 1, ..., -2, -1 (FFT order) of a ring of n samples."""
    r = np.arange(n)
    return np.where(r <= n // 2, r, r - n).astype(np.float64)


# ----------------------------------------------------------------- filters on lag kernels


def box_filter_covariance(cov: np.ndarray, window: int) -> np.ndarray:
    """Covariance after a moving average of ``window`` samples (stride 1) along each axis.

    y(t) = (1/w) sum_{i<w} x(t + i) has K_y(r) = sum_{|d|<w} (w - |d|) / w^2 K_x(r + d): the
    input covariance filtered by the box's autocorrelation (a triangle), circularly. White
    input gives the triangle itself, (w - |r|) / w^2 for |r| < w.

    Parameters
    ----------
    cov : array (N,) or (H, W)
        Stationary lag covariance, FFT order.
    window : int >= 1, smaller than every side

    Returns
    -------
    np.ndarray, the shape of ``cov``, float64
    """
    cov = _check_lag_cov(cov)
    if not (isinstance(window, (int, np.integer)) and 1 <= window <= min(cov.shape)):
        raise ConfigError(f"window must be an integer in [1, {min(cov.shape)}], got {window!r}")
    box_power = np.ones(())
    for n in cov.shape:
        box = np.zeros(n)
        box[:window] = 1.0 / window
        box_power = np.multiply.outer(box_power, np.abs(np.fft.fft(box)) ** 2)
    return np.fft.ifftn(np.fft.fftn(cov) * box_power).real


def average_pool_covariance(cov: np.ndarray, factor: int) -> np.ndarray:
    """Covariance after average pooling by ``factor`` along each axis (000_..., Section 3.3).

    Pooling is a box filter of ``factor`` samples followed by keeping every factor-th
    sample: K_pool(m) = K_box(factor * m). Stationarity is preserved.

    Parameters
    ----------
    cov : array (N,) or (H, W), every side a multiple of ``factor``
    factor : int >= 1

    Returns
    -------
    np.ndarray (N / factor,) or (H / factor, W / factor) float64
    """
    cov = _check_lag_cov(cov)
    if not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ConfigError(f"pooling factor must be an integer >= 1, got {factor!r}")
    if factor == 1:
        return cov.copy()
    if any(n % factor for n in cov.shape):
        raise ConfigError(f"average pooling by {factor} needs sides that are multiples of it, got {cov.shape}")
    return box_filter_covariance(cov, factor)[tuple(slice(None, None, factor) for _ in cov.shape)]


# ------------------------------------------------------------------- the conv recursion


def conv_gp_layer_covariances(input_cov: np.ndarray, depth: int, *, nonlinearity: str = "relu",
                              weight_var: float | Sequence[float] = 1.0,
                              bias_var: float | Sequence[float] = 0.0,
                              pool: int | Sequence[int] = 1) -> list[np.ndarray]:
    """Stationary pre-activation covariance of every layer of a wide random conv net.

    The network: ``depth`` conv layers with the non-linearity between them (the lab's
    ``conv`` model: depth = number of convs = number of non-linearities + 1; 000_...'s
    "d" counts non-linearities, d = depth - 1). Layer l's weights have variance
    ``weight_var[l] / fan_in`` and its biases variance ``bias_var[l]``:

        K_1 = weight_var[0] * K_x + bias_var[0]
        K_{l+1} = weight_var[l] * pool_l(V(K_l)) + bias_var[l]

    with V the non-linearity's expectation applied at every lag with k11 = k22 = K_l(0).
    Circular boundary; the window size drops out (module docstring).

    Parameters
    ----------
    input_cov : array (N,) or (H, W)
        The input channels' stationary covariance K_x, lags in FFT order
        (``white_input_covariance``, ``gaussian_input_covariance``).
    depth : int >= 1
    nonlinearity : 'relu' or 'erf'
    weight_var, bias_var : float or sequence of ``depth`` floats (>= 0)
        sigma_w^2 (fan-in normalised) and sigma_b^2 per layer.
    pool : int or sequence of ``depth - 1`` ints
        Average-pooling factor after each hidden non-linearity (1: none).

    Returns
    -------
    list of ``depth`` float64 arrays
        K_1 .. K_depth; K_l has the input's shape divided by the pooling before layer l.
    """
    cov = _check_lag_cov(input_cov)
    expectation, weight_var, bias_var, pools = _check_recursion(depth, nonlinearity, weight_var, bias_var, pool)
    layers = [weight_var[0] * cov + bias_var[0]]
    for l in range(1, depth):
        k = layers[-1]
        k0 = k[(0,) * k.ndim]
        post = expectation(k, k0, k0)
        layers.append(weight_var[l] * average_pool_covariance(post, pools[l - 1]) + bias_var[l])
    return layers


def conv_gp_covariance(input_cov: np.ndarray, depth: int, *, nonlinearity: str = "relu",
                       weight_var: float | Sequence[float] = 1.0,
                       bias_var: float | Sequence[float] = 0.0,
                       pool: int | Sequence[int] = 1) -> np.ndarray:
    """The output (last pre-activation) covariance of ``conv_gp_layer_covariances``.

    Returns
    -------
    np.ndarray (N,) or (H, W) (divided by the pooling) float64, lags in FFT order
    """
    return conv_gp_layer_covariances(input_cov, depth, nonlinearity=nonlinearity, weight_var=weight_var,
                                     bias_var=bias_var, pool=pool)[-1]


def conv_gp_covariance_matrix(input_cov: np.ndarray, depth: int, *, window: int = 3,
                              padding: str = "zeros", nonlinearity: str = "relu",
                              weight_var: float | Sequence[float] = 1.0,
                              bias_var: float | Sequence[float] = 0.0,
                              pool: int | Sequence[int] = 1) -> np.ndarray:
    """Position x position output covariance of a wide random conv net, boundary included.

    Same recursion as ``conv_gp_layer_covariances`` on full matrices,

        K_{l+1}(a, b) = weight_var * (1 / w^n) sum_j M(a + j, b + j) + bias_var,

    where j runs over the w^n window offsets (centred, odd w), M is the previous layer's
    post-activation second moment (the input's covariance for the first layer) and
    positions outside the signal contribute zero (``padding='zeros'``, the lab's 'same'
    zero padding: padded values are zeros *after* the non-linearity) or wrap around
    (``padding='circular'``). Pooling averages blocks of ``pool`` samples on both indices.

    Parameters
    ----------
    input_cov : array (N, N) or (H, W, H, W)
        E[x(a) x(b)] averaged over input channels: a stationary model's matrix
        (``covariance_matrix_from_lags``) or a fixed input's x x^T / C.
    depth, nonlinearity, weight_var, bias_var, pool
        As in ``conv_gp_layer_covariances``.
    window : odd int >= 1
        The conv kernel size (every layer).
    padding : 'zeros' or 'circular'

    Returns
    -------
    np.ndarray, the shape of ``input_cov`` (divided by the pooling), float64
    """
    k = np.asarray(input_cov, dtype=np.float64)
    if k.ndim not in (2, 4) or k.shape[: k.ndim // 2] != k.shape[k.ndim // 2:]:
        raise AnalysisError(f"input_cov must be (N, N) or (H, W, H, W), got shape {k.shape}")
    if not np.all(np.isfinite(k)):
        raise AnalysisError("input_cov holds NaN or inf")
    if not isinstance(window, (int, np.integer)) or window < 1 or window % 2 == 0:
        raise ConfigError(f"window must be an odd integer >= 1 (centred 'same' padding), got {window!r}")
    if padding not in ("zeros", "circular"):
        raise ConfigError(f"padding must be 'zeros' or 'circular', got {padding!r}")
    expectation, weight_var, bias_var, pools = _check_recursion(depth, nonlinearity, weight_var, bias_var, pool)
    ndim = k.ndim // 2
    k = weight_var[0] * _window_average(k, window, padding, ndim) + bias_var[0]
    for l in range(1, depth):
        diag = _diagonal(k, ndim)
        post = expectation(k, diag.reshape(diag.shape + (1,) * ndim), diag.reshape((1,) * ndim + diag.shape))
        post = _pool_matrix(post, pools[l - 1], ndim)
        k = weight_var[l] * _window_average(post, window, padding, ndim) + bias_var[l]
    return k


def _window_average(k: np.ndarray, window: int, padding: str, ndim: int) -> np.ndarray:
    half = window // 2
    if half == 0:
        return k.copy()
    spatial = k.shape[:ndim]
    out = np.zeros_like(k)
    if padding == "circular":
        for j in itertools.product(range(-half, half + 1), repeat=ndim):
            out += np.roll(k, shift=tuple(-s for s in j) * 2, axis=tuple(range(2 * ndim)))
    else:
        padded = np.pad(k, [(half, half)] * (2 * ndim))
        for j in itertools.product(range(-half, half + 1), repeat=ndim):
            index = tuple(slice(half + s, half + s + n) for s, n in zip(j, spatial)) * 2
            out += padded[index]
    return out / window**ndim


def _diagonal(k: np.ndarray, ndim: int) -> np.ndarray:
    spatial = k.shape[:ndim]
    size = int(np.prod(spatial))
    return np.diagonal(k.reshape(size, size)).reshape(spatial)


def _pool_matrix(k: np.ndarray, factor: int, ndim: int) -> np.ndarray:
    if not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ConfigError(f"pooling factor must be an integer >= 1, got {factor!r}")
    if factor == 1:
        return k
    spatial = k.shape[:ndim]
    if any(n % factor for n in spatial):
        raise ConfigError(f"average pooling by {factor} needs sides that are multiples of it, got {spatial}")
    split = [d for n in spatial for d in (n // factor, factor)] * 2
    axes = tuple(range(1, 4 * ndim, 2))
    return k.reshape(split).mean(axis=axes)


def _check_recursion(depth, nonlinearity, weight_var, bias_var, pool):
    """The non-linearity's expectation and per-layer weight variances, bias variances, pools."""
    if not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ConfigError(f"depth must be an integer >= 1, got {depth!r}")
    pools = [pool] * (depth - 1) if isinstance(pool, (int, np.integer)) else list(pool)
    if len(pools) != depth - 1:
        raise ConfigError(f"pool needs depth - 1 = {depth - 1} factors, got {len(pools)}")
    return (_nonlinearity(nonlinearity), _per_layer("weight_var", weight_var, depth),
            _per_layer("bias_var", bias_var, depth), pools)


def _per_layer(name: str, value, depth: int) -> list[float]:
    values = [value] * depth if np.isscalar(value) else list(value)
    if len(values) != depth:
        raise ConfigError(f"{name} needs one value or {depth} (one per layer), got {len(values)}")
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise ConfigError(f"{name} must be finite and >= 0, got {values}")
    return [float(v) for v in values]


# ----------------------------------------------------------- normalised, matrices, lags


def normalised_covariance(cov: np.ndarray) -> np.ndarray:
    """K(r) / K(0): the correlation at each lag, 000_... Fig. 3's cos theta_{t1,t2}.

    Parameters
    ----------
    cov : array (N,) or (H, W), lags in FFT order (lag 0 at index 0)

    Returns
    -------
    np.ndarray, the shape of ``cov``, float64; 1 at lag 0
    """
    cov = _check_lag_cov(cov)
    return cov / cov[(0,) * cov.ndim]


def correlation_matrix(cov_matrix: np.ndarray) -> np.ndarray:
    """K(a, b) / sqrt(K(a, a) K(b, b)) of a (P, P) covariance matrix.

    Returns
    -------
    np.ndarray (P, P) float64; zero where a variance is zero
    """
    k = np.asarray(cov_matrix, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise AnalysisError(f"a covariance matrix must be (P, P), got shape {k.shape}")
    d = np.sqrt(np.clip(np.diagonal(k), 0, None))
    scale = np.outer(d, d)
    return np.divide(k, scale, out=np.zeros_like(k), where=scale > 0)


def covariance_matrix_from_lags(cov: np.ndarray, shape: int | Sequence[int] | None = None) -> np.ndarray:
    """Dense (P, P) covariance of a stationary process on a grid, K[a, b] = cov[(b - a) mod L].

    Positions are flattened in C order. With the grid equal to the lag array's shape the
    matrix is circulant (block circulant in 2D); with a lag array of size >= 2N - 1 per axis
    it is the covariance of N consecutive samples of an infinite (L-periodic) process.

    Parameters
    ----------
    cov : array (L,) or (Lh, Lw), lags in FFT order
    shape : (N,) or (H, W), each side <= the lag array's; default the lag array's shape

    Returns
    -------
    np.ndarray (P, P) float64, P = prod(shape)
    """
    cov = _check_lag_cov(cov)
    shape = cov.shape if shape is None else _check_spatial(shape)
    if len(shape) != cov.ndim or any(n > l for n, l in zip(shape, cov.shape)):
        raise AnalysisError(f"grid {shape} must have the lag array's dimensions and fit in it {cov.shape}")
    if int(np.prod(shape)) > DENSE_LIMIT:
        raise AnalysisError(f"a dense matrix for {shape} has {int(np.prod(shape))}^2 entries; use the FFT")
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    pos = [g.ravel() for g in grids]
    index = tuple((p[None, :] - p[:, None]) % l for p, l in zip(pos, cov.shape))
    return cov[index]


def centred_lags(cov: np.ndarray, half_width: int | Sequence[int]) -> np.ndarray:
    """The lags -h..h of an FFT-order lag array, centred (index h is lag 0).

    For plotting a kernel as a function of the offset t1 - t2 and for comparing with
    ``SampledCovariance.lag``, which uses this layout.

    Returns
    -------
    np.ndarray (2h+1,) or (2h_y+1, 2h_x+1) float64
    """
    cov = _check_lag_cov(cov)
    halves = [half_width] * cov.ndim if np.isscalar(half_width) else list(half_width)
    if len(halves) != cov.ndim:
        raise AnalysisError(f"half_width needs {cov.ndim} values, got {len(halves)}")
    index = np.ix_(*[np.arange(-h, h + 1) % n for h, n in zip(halves, cov.shape)])
    return cov[index]


def prior_power_spectrum(cov: np.ndarray) -> np.ndarray:
    """The prior's expected power spectrum (Wiener–Khinchin): E P(f) = FFT(K)(f) / P.

    For a stationary process on a ring with lag covariance K, E|X(f)|^2 = P * S(f) with
    S = FFT(K); in the lab's power convention P(f) = |X(f)|^2 / P^2 this is S(f) / P, and
    sum_f E P(f) = K(0) = E[mean(x^2)] (Parseval). The spectral bias of the prior at
    iteration 0: how much power the untrained network puts at each frequency.

    Parameters
    ----------
    cov : array (N,) or (H, W), lags in FFT order

    Returns
    -------
    np.ndarray, the shape of ``cov``, float64, FFT order (``np.fft.fftfreq``)
    """
    cov = _check_lag_cov(cov)
    return np.fft.fftn(cov).real / cov.size


def expected_power_spectrum(cov_matrix: np.ndarray, shape: int | Sequence[int]) -> np.ndarray:
    """E P(f) of a process with any (P, P) covariance matrix, stationary or not.

    E |X(f)|^2 = (F K F^H)_{ff} with F the DFT matrix over the grid, so that
    E P(f) = (F K F^H)_{ff} / P^2. For a circulant K this is ``prior_power_spectrum`` of its
    lags; for the zero-padded network (``conv_gp_covariance_matrix``) it includes the
    boundary.

    Parameters
    ----------
    cov_matrix : array (P, P), positions in C order
    shape : (N,) or (H, W) with prod(shape) = P

    Returns
    -------
    np.ndarray of ``shape`` float64, FFT order
    """
    shape = _check_spatial(shape)
    k = np.asarray(cov_matrix, dtype=np.float64)
    size = int(np.prod(shape))
    if k.shape != (size, size):
        raise AnalysisError(f"cov_matrix must be ({size}, {size}) for the grid {shape}, got {k.shape}")
    axes = tuple(range(len(shape)))
    left = np.fft.fftn(k.reshape(shape + (size,)), axes=axes).reshape(size, size)   # F K
    both = np.fft.ifftn(left.reshape((size,) + shape), axes=tuple(a + 1 for a in axes)).reshape(size, size) * size
    return np.diagonal(both).real.reshape(shape) / size**2


# ------------------------------------------------------------------------- GP inference


@dataclass(frozen=True)
class GPPosterior:
    """GP posterior of the noise-free signal f at every position.

    mean, var : arrays of the observation's shape; var is None when not computed.
    """

    mean: np.ndarray
    var: np.ndarray | None


def gp_posterior(kernel_matrix: np.ndarray, y: np.ndarray, observed_mask: np.ndarray | None = None,
                 noise_var: float = 0.0, *, jitter: float = 1e-10) -> GPPosterior:
    """Posterior mean and variance of f ~ GP(0, K) from y_o = f_o + noise, by a dense solve.

    With o the observed positions (all of them for denoising, the mask's for inpainting)
    and A = K_oo + noise_var I:

        mean = K_{:,o} A^{-1} y_o,    var = diag(K) - diag(K_{:,o} A^{-1} K_{o,:}).

    The prior mean is zero: subtract a constant (e.g. the observed mean) first and add it
    back. A Cholesky factor of A is used; ``jitter * mean(diag K)`` is added to A's
    diagonal so that noise-free inpainting (noise_var = 0) stays solvable.

    Parameters
    ----------
    kernel_matrix : array (P, P)
        Prior covariance of the P positions (flattened in C order).
    y : array (N,) or (H, W) with P entries
        Observations; values at unobserved positions are ignored.
    observed_mask : bool array of y's shape, optional
        True where observed; default all (denoising).
    noise_var : float >= 0
        Variance of the observation noise.

    Returns
    -------
    GPPosterior with mean and var of y's shape, float64
    """
    import scipy.linalg

    k, y, o = _check_inference(kernel_matrix, y, observed_mask, noise_var)
    a = k[np.ix_(o, o)] + (noise_var + jitter * np.mean(np.diagonal(k))) * np.eye(o.size)
    try:
        chol = scipy.linalg.cholesky(a, lower=True)
    except np.linalg.LinAlgError:
        raise AnalysisError("the kernel matrix is not positive definite on the observed positions; "
                            "use noise_var > 0 or a larger jitter") from None
    alpha = scipy.linalg.cho_solve((chol, True), y.ravel()[o])
    mean = k[:, o] @ alpha
    v = scipy.linalg.solve_triangular(chol, k[o, :], lower=True)
    var = np.clip(np.diagonal(k) - np.einsum("ij,ij->j", v, v), 0.0, None)
    return GPPosterior(mean.reshape(y.shape), var.reshape(y.shape))


def gp_log_marginal_likelihood(kernel_matrix: np.ndarray, y: np.ndarray,
                               observed_mask: np.ndarray | None = None, noise_var: float = 0.0,
                               *, jitter: float = 1e-10) -> float:
    """log p(y_o) = -1/2 y_o^T A^{-1} y_o - 1/2 log det A - n/2 log 2 pi, A = K_oo + noise_var I.

    For choosing a kernel's hyper-parameters from the observations alone. Arguments as in
    ``gp_posterior``.
    """
    import scipy.linalg

    k, y, o = _check_inference(kernel_matrix, y, observed_mask, noise_var)
    a = k[np.ix_(o, o)] + (noise_var + jitter * np.mean(np.diagonal(k))) * np.eye(o.size)
    try:
        chol = scipy.linalg.cholesky(a, lower=True)
    except np.linalg.LinAlgError:
        raise AnalysisError("the kernel matrix is not positive definite on the observed positions") from None
    w = scipy.linalg.solve_triangular(chol, y.ravel()[o], lower=True)
    return float(-0.5 * w @ w - np.log(np.diagonal(chol)).sum() - 0.5 * o.size * math.log(2 * math.pi))


def gp_amplitude_mle(kernel_matrix: np.ndarray, y: np.ndarray, observed_mask: np.ndarray | None = None,
                     noise_ratio: float = 1e-4) -> tuple[float, float]:
    """Maximum-likelihood amplitude a of the prior a * C with noise variance a * noise_ratio.

    With A = C_oo + noise_ratio I and n observed positions the likelihood of a is maximal
    at a = y_o^T A^{-1} y_o / n, where

        log p(y_o) = -n/2 (log a + 1 + log 2 pi) - 1/2 log det A

    (one Cholesky factor for the whole amplitude axis). For noise-free inpainting, where a
    small noise_ratio is a nugget for conditioning.

    Parameters
    ----------
    kernel_matrix : array (P, P)
        The kernel's shape C (e.g. a normalised covariance).
    y, observed_mask
        As in ``gp_posterior``.
    noise_ratio : float > 0
        Noise variance over amplitude.

    Returns
    -------
    amplitude, log_marginal_likelihood : float
    """
    import scipy.linalg

    k, y, o = _check_inference(kernel_matrix, y, observed_mask, noise_ratio)
    _check_positive("noise_ratio", noise_ratio)
    try:
        chol = scipy.linalg.cholesky(k[np.ix_(o, o)] + noise_ratio * np.eye(o.size), lower=True)
    except np.linalg.LinAlgError:
        raise AnalysisError("the kernel matrix is not positive definite on the observed positions; "
                            "raise noise_ratio") from None
    w = scipy.linalg.solve_triangular(chol, y.ravel()[o], lower=True)
    amplitude = float(w @ w / o.size)
    ll = -0.5 * o.size * (math.log(amplitude) + 1 + math.log(2 * math.pi)) - np.log(np.diagonal(chol)).sum()
    return amplitude, float(ll)


@dataclass(frozen=True)
class GPInpainting:
    """`gp_inpaint`'s result: the posterior (mean with the observed mean added back), the
    maximum-likelihood amplitude a, the noise ratio chosen (noise variance a * noise_ratio)
    and the log marginal likelihood there."""

    posterior: GPPosterior
    amplitude: float
    noise_ratio: float
    log_ml: float


def gp_inpaint(kernel_shape: np.ndarray, y: np.ndarray, observed_mask: np.ndarray,
               noise_ratios: Sequence[float] = (1e-4, 1e-3, 1e-2)) -> GPInpainting:
    """Fill the unobserved positions of ``y`` with a GP whose prior is a * C, C = ``kernel_shape``.

    The observed values are centred on their mean (the prior's mean is zero), the amplitude a
    is the maximum-likelihood one for each noise ratio (``gp_amplitude_mle``) and the ratio
    with the highest marginal likelihood is kept: every choice is made from the observed
    values alone. The posterior (``gp_posterior``) gets the mean back.

    Parameters
    ----------
    kernel_shape : array (P, P)
        The prior's covariance up to its amplitude (e.g. a normalised covariance matrix).
    y : array (N,) or (H, W) with P entries
        Values at the observed positions (others ignored).
    observed_mask : bool array of y's shape
    noise_ratios : sequence of float > 0
        Candidate noise variances over amplitude (a nugget for noise-free data).

    Returns
    -------
    GPInpainting
    """
    y = np.asarray(y, dtype=np.float64)
    mask = _check_mask(observed_mask, y.shape)
    if not mask.any():
        raise AnalysisError("observed_mask observes no position")
    if len(noise_ratios) == 0:
        raise ConfigError("noise_ratios is empty: give at least one noise ratio")
    mu = float(y[mask].mean())
    centred = np.where(mask, y - mu, 0.0)
    fits = [(gp_amplitude_mle(kernel_shape, centred, mask, r), float(r)) for r in noise_ratios]
    (amplitude, ll), ratio = max(fits, key=lambda fit: fit[0][1])
    post = gp_posterior(amplitude * np.asarray(kernel_shape, dtype=np.float64), centred, mask, amplitude * ratio)
    return GPInpainting(GPPosterior(post.mean + mu, post.var), amplitude, ratio, ll)


def gp_posterior_stationary(cov: np.ndarray, y: np.ndarray, observed_mask: np.ndarray | None = None,
                            noise_var: float = 0.0, *, variance: bool = True, tol: float = 1e-10,
                            max_iter: int | None = None) -> GPPosterior:
    """GP posterior with a circulant prior covariance, through the FFT.

    Denoising (all observed): the FFT diagonalises K, with eigenvalues S = FFT(K) >= 0, so

        mean = IFFT( S / (S + noise_var) * FFT(y) ),
        var  = (1/P) sum_f S noise_var / (S + noise_var)   (the same at every position).

    Inpainting (a mask): conjugate gradients on (K_oo + noise_var I) alpha = y_o, with K
    applied by FFT (O(P log P) a step), mean = K_{:,o} alpha; the variance, if asked for,
    by the dense ``gp_posterior`` (P <= 4096).

    Parameters
    ----------
    cov : array (N,) or (H, W)
        Lag covariance in FFT order, of y's shape (the boundary is periodic).
    y, observed_mask, noise_var
        As in ``gp_posterior``; denoising needs noise_var > 0.
    variance : bool
        Also compute the posterior variance.
    tol, max_iter
        Relative residual and iteration cap of CG (default 10 P).

    Returns
    -------
    GPPosterior (var None when ``variance`` is False)

    Raises
    ------
    AnalysisError
        Shapes disagree, CG does not converge, or a masked variance is asked for P > 4096.
    """
    import scipy.sparse.linalg

    cov = _check_lag_cov(cov)
    y = np.asarray(y, dtype=np.float64)
    if y.shape != cov.shape:
        raise AnalysisError(f"y of shape {y.shape} must have the lag covariance's shape {cov.shape}")
    if not (math.isfinite(noise_var) and noise_var >= 0):
        raise ConfigError(f"noise_var must be a finite number >= 0, got {noise_var!r}")
    spectrum = np.clip(np.fft.fftn(cov).real, 0.0, None)
    if observed_mask is None or np.all(observed_mask):
        if noise_var <= 0:
            raise ConfigError("denoising with every position observed needs noise_var > 0")
        mean = np.fft.ifftn(spectrum / (spectrum + noise_var) * np.fft.fftn(y)).real
        var = None
        if variance:
            var = np.full(y.shape, float(np.mean(spectrum * noise_var / (spectrum + noise_var))))
        return GPPosterior(mean, var)
    mask = _check_mask(observed_mask, y.shape)
    o = np.flatnonzero(mask.ravel())
    if o.size == 0:
        raise AnalysisError("observed_mask observes no position")
    if variance and y.size > DENSE_LIMIT:
        raise AnalysisError(f"the inpainting variance needs a dense solve, limited to {DENSE_LIMIT} "
                            f"positions; got {y.size} (use variance=False)")
    if variance:
        return gp_posterior(covariance_matrix_from_lags(cov), y, mask, noise_var)

    def apply_k(v_full: np.ndarray) -> np.ndarray:
        return np.fft.ifftn(spectrum * np.fft.fftn(v_full.reshape(y.shape))).real.ravel()

    def matvec(v: np.ndarray) -> np.ndarray:
        full = np.zeros(y.size)
        full[o] = v.ravel()
        return apply_k(full)[o] + noise_var * v.ravel()

    operator = scipy.sparse.linalg.LinearOperator((o.size, o.size), matvec=matvec, dtype=np.float64)
    alpha, info = scipy.sparse.linalg.cg(operator, y.ravel()[o], rtol=tol, atol=0.0,
                                         maxiter=max_iter or 10 * y.size)
    if info != 0:
        raise AnalysisError(f"conjugate gradients did not converge in {max_iter or 10 * y.size} iterations "
                            f"(noise_var {noise_var:g} too small for this kernel?)")
    full = np.zeros(y.size)
    full[o] = alpha
    return GPPosterior(apply_k(full).reshape(y.shape), None)


def gp_log_marginal_likelihood_stationary(cov: np.ndarray, y: np.ndarray, noise_var: float) -> float:
    """log p(y) of fully observed y under a circulant covariance, via the FFT.

        log p(y) = -1/(2P) sum_f |Y(f)|^2 / (S(f) + s) - 1/2 sum_f log(S(f) + s) - P/2 log 2 pi

    with S = FFT(K), s = noise_var > 0, Y = FFT(y).
    """
    cov = _check_lag_cov(cov)
    y = np.asarray(y, dtype=np.float64)
    if y.shape != cov.shape:
        raise AnalysisError(f"y of shape {y.shape} must have the lag covariance's shape {cov.shape}")
    if not (math.isfinite(noise_var) and noise_var > 0):
        raise ConfigError(f"noise_var must be a finite number > 0, got {noise_var!r}")
    total = np.clip(np.fft.fftn(cov).real, 0.0, None) + noise_var
    power = np.abs(np.fft.fftn(y)) ** 2
    return float(-0.5 * np.sum(power / total) / y.size - 0.5 * np.sum(np.log(total))
                 - 0.5 * y.size * math.log(2 * math.pi))


# -------------------------------------------------------------------------------- checks


def _check_spatial(shape) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if len(shape) not in (1, 2) or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape):
        raise ConfigError(f"a spatial shape must be (N,) or (H, W) of positive integers, got {shape}")
    return tuple(int(n) for n in shape)


def _check_positive(name: str, value) -> None:
    if not (isinstance(value, (int, float, np.number)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


def _check_lag_cov(cov) -> np.ndarray:
    cov = np.asarray(cov, dtype=np.float64)
    if cov.ndim not in (1, 2) or cov.size == 0:
        raise AnalysisError(f"a lag covariance must be (N,) or (H, W), got shape {cov.shape}")
    if not np.all(np.isfinite(cov)):
        raise AnalysisError("the lag covariance holds NaN or inf")
    if cov[(0,) * cov.ndim] <= 0:
        raise AnalysisError(f"the lag-0 covariance (the variance) must be > 0, got {cov[(0,) * cov.ndim]}")
    return cov


def _check_mask(mask, shape) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != shape or mask.dtype != bool:
        raise AnalysisError(f"observed_mask must be a bool array of shape {shape}, got {mask.dtype} {mask.shape}")
    return mask


def _check_inference(kernel_matrix, y, observed_mask, noise_var):
    k = np.asarray(kernel_matrix, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if k.ndim != 2 or k.shape != (y.size, y.size):
        raise AnalysisError(f"kernel_matrix must be (P, P) with P = y.size = {y.size}, got {k.shape}")
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(y))):
        raise AnalysisError("kernel_matrix and y must be finite")
    if not (isinstance(noise_var, (int, float, np.number)) and math.isfinite(noise_var) and noise_var >= 0):
        raise ConfigError(f"noise_var must be a finite number >= 0, got {noise_var!r}")
    mask = np.ones(y.shape, bool) if observed_mask is None else _check_mask(observed_mask, y.shape)
    o = np.flatnonzero(mask.ravel())
    if o.size == 0:
        raise AnalysisError("observed_mask observes no position")
    return k, y, o
