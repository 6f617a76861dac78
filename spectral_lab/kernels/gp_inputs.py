"""Stationary input covariances for the GP kernel of `spectral_lab.kernels.gp`: white noise,
white noise smoothed by a Gaussian filter, and the RBF kernel (a baseline GP), as lag arrays in
FFT order on a ring (the convention of `gp`)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from spectral_lab.errors import ConfigError
from spectral_lab.kernels._checks import _check_positive, _check_spatial

__all__ = ["white_input_covariance", "gaussian_input_covariance", "rbf_covariance"]



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
