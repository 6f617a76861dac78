"""What gradient descent on the linearised network predicts for each frequency's amplitude.

Plain gradient descent with step η on L(θ) = mean((f_θ - y)²) over M output values moves
the linearised residual r = f - y as r ← (I - 2ηΘ/M) r (Θ the tangent kernel, see
`spectral_lab.kernels.ntk`). Taking Θ diagonal in the Fourier basis (the approximation
the prediction rests on; `top_eigenpairs` + `fourier_alignment` say how good it is), the
residual along the unit cosine of frequency k shrinks by ρ_cos = 1 - 2ηλ_cos/M a step and
along the unit sine by ρ_sin = 1 - 2ηλ_sin/M.

The measured quantity is that of `spectral_lab.analyze.amplitudes`: the one-sided amplitude
Ã_k = 2|X(k)|/N of the output and SE(k) = (Ã_k - A_k)² against the target's amplitude
A_k. Here signals are described by their complex amplitude c_k = 2X(k)/N (so |c_k| = Ã_k;
a cosine of amplitude A is c = A, a sine is c = -iA). Re c is the output's coordinate along
the unit cosine and -Im c along the unit sine (both times sqrt(N/2)), so

    Re c(t) = Re c_y + (Re c_0 - Re c_y) ρ_cos^t,   Im c(t) = Im c_y + (Im c_0 - Im c_y) ρ_sin^t,
    SE(k, t) = (|c(t)| - |c_y|)².

Without the Fourier-diagonal approximation (`predict_full_kernel`, small 1D outputs): the
residual is expanded on Θ's own eigenvectors v_j, r(t) = Σ_j ρ_j^t (v_jᵀ r_0) v_j with
ρ_j = 1 - 2ηλ_j/M, and c(t) = c_y + Σ_j ρ_j^t (v_jᵀ r_0) c_k(v_j): a frequency whose mode is
spread over slow eigenvectors converges later than its Rayleigh quotient λ_k says.

Images (`predict_band_fit`): with Θ taken as λ_b times the identity on each radial band b
(its mean energy, `spectral_lab.kernels.ntk.band_energies`), the output's component in band
b moves as y_b + ρ_b^t (f_0 - y)_b, so the band's mean power is, in closed form,

    P_b(t) = P_b(y) + ρ_b^t [P_b(f_0) - P_b(y) - P_b(f_0 - y)] + ρ_b^{2t} P_b(f_0 - y),

and its relative error and time to fit follow `spectral_lab.analyze.spectrum` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from spectral_lab.analyze.amplitudes import AmplitudeResult, squared_error
from spectral_lab.analyze.convergence import first_crossing_per_column, settle_iteration_per_column
from spectral_lab.analyze.spectrum import RELATIVE_POWER_FLOOR, band_fit_times, band_power, radial_bands
from spectral_lab.errors import AnalysisError

__all__ = ["BandFitPrediction", "ConvergencePrediction", "FullKernelPrediction", "complex_amplitudes",
           "predict_band_fit", "predict_convergence", "predict_from_net", "predict_full_kernel", "stable_lr"]


def stable_lr(lambda_max: float, n_samples: int) -> float:
    """The largest step plain gradient descent on mean((f - y)²) takes stably: M / λ_max.

    Every factor |1 - 2ηλ/M| is below 1 for η < M/λ_max; at η = M/(2λ_max) the top mode
    is removed in one step. ``n_samples`` M counts every output value (C·prod(spatial)).
    """
    if not (np.isfinite(lambda_max) and lambda_max > 0):
        raise AnalysisError(f"lambda_max must be a positive number, got {lambda_max}")
    if n_samples < 1:
        raise AnalysisError(f"n_samples must be >= 1, got {n_samples}")
    return float(n_samples) / float(lambda_max)


def complex_amplitudes(signal, freqs: Sequence[int]) -> np.ndarray:
    """c_k = 2 X(k) / N of a real 1D signal at integer frequencies, |c_k| = Ã_k of `amplitudes`.

    Parameters
    ----------
    signal : array (N,) or (1, N)
    freqs : sequence of K integers, 0 < k < N/2

    Returns
    -------
    array (K,) complex128
    """
    arr = np.asarray(signal, dtype=np.float64)
    if not (arr.ndim == 1 or (arr.ndim == 2 and arr.shape[0] == 1)):
        raise AnalysisError(f"signal must have shape (N,) or (1, N), got {arr.shape}")
    x = arr.reshape(-1)
    n = x.size
    k = np.asarray(freqs, dtype=np.float64).reshape(-1)
    if k.size == 0 or not np.all((k == np.round(k)) & (k > 0) & (k < n / 2)):
        raise AnalysisError(f"frequencies must be integers with 0 < k < N/2 = {n / 2:g}, got {list(freqs)}")
    return np.fft.rfft(x)[k.astype(np.int64)] * (2.0 / n)


@dataclass(frozen=True, eq=False)
class ConvergencePrediction:
    """Predicted amplitudes and SE(k) of K frequencies over iterations 0..T.

    Attributes
    ----------
    energies : array (K, 2) float64
        λ along the unit cosine and sine of each frequency.
    factors : array (K, 2) float64
        Per-step residual factors ρ = 1 - 2ηλ/M, cosine and sine.
    curves : AmplitudeResult
        The predicted Ã_k(t) (row t = frame t: the output after t updates), SE(k, t) and
        convergence iterations, in the type `analyze_amplitudes` gives for a measured run,
        so the two compare field by field. ``converged_at`` is None for a mode whose
        residual grows or never shrinks (|ρ| >= 1), unless that residual is zero.
    """

    energies: np.ndarray
    factors: np.ndarray
    curves: AmplitudeResult


def predict_convergence(energies, target_amplitudes, *, lr: float, n_samples: int, iterations_max: int,
                        delta: float = 0.01, initial_amplitudes=None,
                        freqs: Sequence[float] | None = None) -> ConvergencePrediction:
    """The SE(k) curve and convergence iteration of each frequency under plain gradient descent.

    Parameters
    ----------
    energies : array (K,) or (K, 2)
        λ_k per frequency (the same for cosine and sine), or λ along the unit cosine and
        sine (`FrequencyEnergies.cos`, `.sin`), from the kernel of the network as trained.
    target_amplitudes : array (K,), real or complex
        The target's complex amplitudes c_y (`complex_amplitudes`); real values are
        amplitudes of cosines (phase 0).
    lr : float
        Step η of gradient descent on mean((f - y)²).
    n_samples : int
        M, the number of values the loss averages over.
    iterations_max : int
        T: the curve covers frames 0..T.
    delta : float
        Threshold on SE (the analyzer's default 0.01).
    initial_amplitudes : array (K,), real or complex, optional
        c_0 of the untrained network's output (`complex_amplitudes` of it); zero if None,
        i.e. the whole target is the initial residual.
    freqs : sequence of K floats, optional
        Only labels the result (``curves.freqs``); 1..K if None.

    Returns
    -------
    ConvergencePrediction
    """
    lam = np.asarray(energies, dtype=np.float64)
    if lam.ndim == 1:
        lam = np.stack([lam, lam], axis=1)
    if lam.ndim != 2 or lam.shape[1] != 2 or lam.shape[0] == 0:
        raise AnalysisError(f"energies must have shape (K,) or (K, 2), got {np.shape(energies)}")
    k = lam.shape[0]
    target = _complex(target_amplitudes, k, "target_amplitudes")
    start = np.zeros(k, dtype=np.complex128) if initial_amplitudes is None else _complex(
        initial_amplitudes, k, "initial_amplitudes")
    if not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise AnalysisError("energies must be finite and >= 0 (the kernel is positive semi-definite)")
    _check_step(lr, n_samples, iterations_max, delta)

    factors = 1.0 - 2.0 * lr * lam / n_samples  # (K, 2)
    t = np.arange(iterations_max + 1, dtype=np.float64)[:, None]
    residual = start - target
    with np.errstate(over="ignore", invalid="ignore"):
        # a zero residual stays zero whatever its factor (no 0 * inf)
        re = target.real + np.where(residual.real == 0, 0.0, residual.real * factors[:, 0] ** t)  # (T + 1, K)
        im = target.imag + np.where(residual.imag == 0, 0.0, residual.imag * factors[:, 1] ** t)
        amps = np.hypot(re, im)
        se = squared_error(amps, np.abs(target))
    settle = settle_iteration_per_column(se, delta)
    unstable = ((np.abs(factors[:, 0]) >= 1) & (residual.real != 0)) | (
        (np.abs(factors[:, 1]) >= 1) & (residual.imag != 0))
    labels = np.arange(1.0, k + 1) if freqs is None else np.asarray(freqs, dtype=np.float64).reshape(-1)
    if labels.shape != (k,):
        raise AnalysisError(f"freqs must hold {k} frequencies, one per energy, got {labels.shape[0]}")
    curves = AmplitudeResult(freqs=labels, target_amps=np.abs(target), amplitudes=amps, se=se, delta=float(delta),
                             converged_at=[None if bad else i for i, bad in zip(settle, unstable)],
                             first_crossing=first_crossing_per_column(se, delta))
    return ConvergencePrediction(lam, factors, curves)


def predict_from_net(net: torch.nn.Module, z: torch.Tensor, target, freqs: Sequence[int], *, lr: float,
                     iterations_max: int, delta: float = 0.01, run: int = 0, per_phase: bool = False,
                     chunk_size: int | None = None) -> ConvergencePrediction:
    """`predict_convergence` for a 1D network at its current parameters fitting ``target``.

    Energies from `frequency_energies`: by default the phase-averaged λ_k (mean of the
    cosine and sine energies) for both components; ``per_phase=True`` decays the cosine
    and sine components at their own rates. The initial amplitudes come from the network's
    current output (train mode, as the fit loop's frame 0); M = the output's size.

    Which to use: on the `conv` family at its defaults (zero padding, so Θ is not
    stationary and λ_cos ≠ λ_sin at low k) the phase-averaged energy predicted the measured
    ratio t(37)/t(3) better; the kernel also moves during training (it grows tenfold and
    more), so neither is exact.

    Parameters
    ----------
    net : RunNet, 1D, one output channel
    z : Tensor ``(R, C_in, N)``
    target : array (N,) or (1, N)
        What the run fits (the clean signal of a fit).
    freqs : sequence of K integers
    lr, iterations_max, delta
        See `predict_convergence`.
    run, chunk_size
        See `spectral_lab.kernels.ntk.kernel_energy`.
    """
    from spectral_lab.kernels.ntk import frequency_energies

    if getattr(net, "ndim", None) != 1 or getattr(net, "out_channels", None) != 1:
        raise AnalysisError("predict_from_net needs a 1D network with one output channel")
    energies = frequency_energies(net, z, freqs, run=run, chunk_size=chunk_size)
    was_training = net.training
    net.train()
    try:
        with torch.no_grad():
            out = net(z)[run, 0].double().cpu().numpy()
    finally:
        net.train(was_training)
    lam = np.stack([energies.cos, energies.sin], axis=1) if per_phase else energies.energy
    return predict_convergence(lam, complex_amplitudes(target, freqs),
                               lr=lr, n_samples=out.size, iterations_max=iterations_max, delta=delta,
                               initial_amplitudes=complex_amplitudes(out, freqs), freqs=freqs)


@dataclass(frozen=True, eq=False)
class FullKernelPrediction:
    """Predicted amplitudes and SE(k) under gradient descent on the full linearised kernel.

    Attributes
    ----------
    eigenvalues : array (M,) float64
        Θ's eigenvalues, ascending, clipped at 0 (the kernel is PSD; float rounding is not).
    factors : array (M,) float64
        ρ_j = 1 - 2ηλ_j/M per eigenvector.
    weights : array (K, M) float64
        Share of frequency k's mode (cosine and sine, averaged) on each eigenvector:
        ``(|v_jᵀ cos_k|² + |v_jᵀ sin_k|²) / 2``, rows sum to 1.
    curves : AmplitudeResult
        As `ConvergencePrediction.curves`; ``converged_at`` is None for a frequency that a
        mode with |ρ| > 1 reaches (that mode grows without bound).
    """

    eigenvalues: np.ndarray
    factors: np.ndarray
    weights: np.ndarray
    curves: AmplitudeResult


# products ρ^t of this many iterations at a time: (chunk, M) floats in memory
_CHUNK = 2048


def predict_full_kernel(theta, target, *, lr: float, iterations_max: int, delta: float = 0.01,
                        initial=None, freqs: Sequence[int]) -> FullKernelPrediction:
    """SE(k) and convergence iteration of each frequency under gradient descent on the full kernel.

    The linearised residual r = f - y moves as r ← (I - 2ηΘ/M) r exactly (no Fourier
    approximation): r(t) = V diag(ρ^t) Vᵀ r_0 with Θ = V diag(λ) Vᵀ.

    Parameters
    ----------
    theta : array (M, M)
        The kernel of a 1D network with one output channel (`spectral_lab.kernels.ntk.full_kernel`).
    target : array (M,) or (1, M)
        What gradient descent fits.
    lr, iterations_max, delta
        See `predict_convergence`.
    initial : array (M,) or (1, M), optional
        The untrained network's output f_0; zero if None.
    freqs : sequence of K integers, 0 < k < M/2

    Returns
    -------
    FullKernelPrediction
    """
    th = np.asarray(theta, dtype=np.float64)
    if th.ndim != 2 or th.shape[0] != th.shape[1] or th.shape[0] < 3:
        raise AnalysisError(f"theta must be a square (M, M) matrix with M >= 3, got shape {th.shape}")
    m = th.shape[0]
    if not np.all(np.isfinite(th)):
        raise AnalysisError("theta must be finite")
    y = _signal(target, m, "target")
    f0 = np.zeros(m) if initial is None else _signal(initial, m, "initial")
    _check_step(lr, m, iterations_max, delta)
    c_y = complex_amplitudes(y, freqs)
    k = np.asarray(freqs, dtype=np.int64).reshape(-1)
    lam, vectors = np.linalg.eigh(0.5 * (th + th.T))
    lam = np.clip(lam, 0.0, None)
    factors = 1.0 - 2.0 * lr * lam / m
    spectra = np.fft.rfft(vectors, axis=0)[k] * (2.0 / m)  # (K, M): c_k of each unit eigenvector
    weights = np.abs(spectra) ** 2 * (m / 4.0)  # |c_k(v)|² N/4 = share of the unit cos/sin pair, halved
    weights /= weights.sum(axis=1, keepdims=True)
    contrib = spectra * (vectors.T @ (f0 - y))[None, :]  # (K, M): eigenvector j's part of c_k(r_0)
    amps = np.empty((iterations_max + 1, k.size))
    with np.errstate(over="ignore", invalid="ignore"):
        for a in range(0, iterations_max + 1, _CHUNK):
            t = np.arange(a, min(a + _CHUNK, iterations_max + 1), dtype=np.float64)
            powers = factors[None, :] ** t[:, None]  # (T_c, M)
            amps[a:a + t.size] = np.abs(c_y[None, :] + powers @ contrib.T)
        se = squared_error(amps, np.abs(c_y))
    tiny = 1e-9 * np.abs(contrib).max(initial=0.0)
    unstable = ((np.abs(factors)[None, :] > 1.0) & (np.abs(contrib) > tiny)).any(axis=1)
    settle = settle_iteration_per_column(se, delta)
    curves = AmplitudeResult(freqs=k.astype(np.float64), target_amps=np.abs(c_y), amplitudes=amps, se=se,
                             delta=float(delta), converged_at=[None if bad else i for i, bad in zip(settle, unstable)],
                             first_crossing=first_crossing_per_column(se, delta))
    return FullKernelPrediction(lam, factors, weights, curves)


@dataclass(frozen=True, eq=False)
class BandFitPrediction:
    """Predicted relative band-power error of an image output over iterations 0..T.

    Attributes
    ----------
    energies : array (B,) float64
        λ_b, the kernel's mean energy per radial band.
    factors : array (B,) float64
        ρ_b = 1 - 2ηλ_b/M.
    band_edges : array (B + 1,)
        Cycles per pixel, as `radial_bands`.
    errors : array (T + 1, B) float64
        |P_b(t) - P_b(reference)| / P_b(reference) (floored as `spectrum_error`).
    time_to_fit : list of B int or None
        `band_fit_times` of ``errors``; None also where |ρ_b| > 1 and the band's residual is not 0.
    """

    energies: np.ndarray
    factors: np.ndarray
    band_edges: np.ndarray
    errors: np.ndarray
    time_to_fit: list[int | None]


def predict_band_fit(energies, observed, reference, *, lr: float, iterations_max: int, threshold: float = 0.1,
                     initial=None, n_bands: int | None = None, channel="luminance") -> BandFitPrediction:
    """Time to fit of each radial band of an image under gradient descent, Θ = λ_b I on band b.

    Parameters
    ----------
    energies : array (B,)
        Mean kernel energy per band (`band_energies(...).energy`), B = the bands of ``n_bands``.
    observed : array (C, H, W)
        What gradient descent fits (the noisy image when denoising).
    reference : array (C, H, W)
        What the band power is compared with (the clean target, as `spectrum_file` by default).
    lr, iterations_max
        See `predict_convergence`; M = C·H·W.
    threshold : float
        Relative band-power error that counts as fitted (`band_fit_times`).
    initial : array (C, H, W), optional
        The untrained network's output; zero if None.
    n_bands, channel
        See `spectral_lab.analyze.spectrum.band_power`.

    Returns
    -------
    BandFitPrediction
    """
    y = np.asarray(observed, dtype=np.float64)
    if y.ndim != 3:
        raise AnalysisError(f"observed must be an image (C, H, W), got shape {y.shape}")
    ref = np.asarray(reference, dtype=np.float64)
    f0 = np.zeros_like(y) if initial is None else np.asarray(initial, dtype=np.float64)
    if ref.shape != y.shape or f0.shape != y.shape:
        raise AnalysisError(f"observed {y.shape}, reference {ref.shape} and initial {f0.shape} must have one shape")
    band_index, edges = radial_bands(y.shape[1:], n_bands)
    n_b = int(band_index.max()) + 1
    lam = np.asarray(energies, dtype=np.float64).reshape(-1)
    if lam.shape != (n_b,) or not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise AnalysisError(f"energies must be {n_b} finite values >= 0, one per band, got shape {np.shape(energies)}")
    _check_step(lr, y.size, iterations_max, threshold)

    def power(img):
        return band_power(img[None], n_bands, channel)[0]

    p_y, p_d = power(y), power(f0 - y)
    cross = power(f0) - p_y - p_d  # 2 Re<Y, D> per band
    p_ref = power(ref)
    counts = np.bincount(band_index.ravel(), minlength=n_b)
    total = float((p_ref * counts).sum())  # Parseval: band means times counts sum to mean(x²)
    if total == 0:
        raise AnalysisError("the reference image is zero everywhere: its spectrum has no power to compare with")
    factors = 1.0 - 2.0 * lr * lam / y.size
    t = np.arange(iterations_max + 1, dtype=np.float64)[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        rho_t = factors[None, :] ** t
        p_t = p_y + rho_t * cross + rho_t ** 2 * p_d
    errors = np.abs(p_t - p_ref) / np.maximum(p_ref, RELATIVE_POWER_FLOOR * total)
    unstable = (np.abs(factors) > 1.0) & (p_d > 0)
    fit = band_fit_times(np.where(np.isfinite(errors), errors, np.nan), threshold)
    return BandFitPrediction(lam, factors, edges, errors, [None if bad else i for i, bad in zip(fit, unstable)])


def _signal(values, m: int, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.size != m or not (x.ndim == 1 or (x.ndim == 2 and x.shape[0] == 1)):
        raise AnalysisError(f"{name} must have shape ({m},) or (1, {m}), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise AnalysisError(f"{name} must be finite")
    return x.reshape(-1)


def _check_step(lr, n_samples, iterations_max, delta) -> None:
    if not (np.isfinite(lr) and lr > 0) or n_samples < 1:
        raise AnalysisError(f"need lr > 0 and n_samples >= 1, got lr={lr}, n_samples={n_samples}")
    if isinstance(iterations_max, bool) or not isinstance(iterations_max, (int, np.integer)) or iterations_max < 0:
        raise AnalysisError(f"iterations_max must be an integer >= 0, got {iterations_max!r}")
    if not (np.isfinite(delta) and delta >= 0):
        raise AnalysisError(f"delta must be a finite number >= 0, got {delta}")


def _complex(values, k: int, name: str) -> np.ndarray:
    c = np.asarray(values)
    if c.shape != (k,):
        raise AnalysisError(f"{name} must have shape ({k},), one per frequency, got {c.shape}")
    c = c.astype(np.complex128)
    if not np.all(np.isfinite(c)):
        raise AnalysisError(f"{name} must be finite")
    return c
