"""GP inference with a kernel of `spectral_lab.kernels.gp` (Cheng et al., 000_..., Section 4):
the posterior mean and variance given noisy observations of some positions, the log marginal
likelihood, the kernel amplitude's maximum-likelihood estimate, inpainting over noise ratios,
and their stationary (FFT-diagonalised) forms for a fully observed signal.

Float64 numpy; the kernel's conventions (lags in FFT order, circular) are those of `gp`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from spectral_lab.errors import AnalysisError, ConfigError
from spectral_lab.kernels._checks import _check_inference, _check_lag_cov, _check_mask, _check_positive
from spectral_lab.kernels.gp import DENSE_LIMIT, covariance_matrix_from_lags

__all__ = ["GPInpainting", "GPPosterior", "gp_amplitude_mle", "gp_inpaint", "gp_log_marginal_likelihood",
           "gp_log_marginal_likelihood_stationary", "gp_posterior", "gp_posterior_stationary"]


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
