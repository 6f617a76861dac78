"""The Gaussian process of wide random conv nets (Cheng et al., 000_..., Section 3): its kernel.

GP inference with these kernels (posterior, marginal likelihood, inpainting) is in
`spectral_lab.kernels.gp_inference`.

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
from typing import Callable, Sequence

import numpy as np

from spectral_lab.errors import AnalysisError, ConfigError
from spectral_lab.kernels._checks import _check_lag_cov, _check_spatial

__all__ = [
    "NONLINEARITIES",
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
    "normalised_covariance",
    "prior_power_spectrum",
    "relu_expectation",
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
