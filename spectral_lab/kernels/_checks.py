"""Argument checks shared by the GP kernel modules (one-line errors of the lab's own types)."""

from __future__ import annotations

import math

import numpy as np

from spectral_lab.errors import AnalysisError, ConfigError



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
