"""The covariance of random networks of the registry, estimated by drawing many of them.

Each network n has its own weights (weight seed ``first_seed + n``) and its own input
(input seed ``first_seed + n``: N(0, input_scale^2) white noise from ``RunNet.make_input``,
optionally made Gaussian-correlated by ``correlated_input``); R of them are drawn at once
as the R runs of one model. The output is taken before any output non-linearity
(``output='linear'`` is forced). The output's mean is zero by the symmetry of the last
layer's weights, so second moments E[y(a) y(b)] are the covariance; standard errors are
the spread of the per-network values over sqrt(n_nets).

Stationarity is measured, not assumed: ``SampledCovariance.moment`` is the covariance as a
function of both positions, ``lag`` its average over the pairs of the interior (``margin``
samples from each edge dropped) at each offset, ``phase_lag`` that average split by the
phase of the first position (t mod a period), and ``stationarity_deviation`` how far the
phases are from their average, in units of the sampling noise.

Statistics are float64 numpy; the networks run in float32 on the CPU as built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch

from spectral_lab.errors import AnalysisError, ConfigError
from spectral_lab.kernels.gp import centred_lags, conv_gp_covariance, normalised_covariance
from spectral_lab.kernels.gp_inputs import gaussian_input_covariance
from spectral_lab.models import build_model
from spectral_lab.models._layers import RunConv
from spectral_lab.models.conv import ConvNet

__all__ = [
    "SampledCovariance",
    "StationarityDeviation",
    "analytic_vs_sampled",
    "conv_layer_variances",
    "correlated_input",
    "sampled_covariance",
    "sampled_power_spectrum",
    "stationarity_deviation",
]


# --------------------------------------------------------------------------- inputs, init


def correlated_input(z: torch.Tensor, input_cov: np.ndarray) -> torch.Tensor:
    """Filter white noise so that each channel has the stationary covariance ``input_cov``.

    x = IFFT( sqrt(S / K(0)) * FFT(z) ) over the spatial axes, S = FFT(K) >= 0: if z is
    white with variance s^2, x has exactly the circular covariance s^2 K / K(0).

    Parameters
    ----------
    z : tensor (R, C, *spatial)
        White noise (e.g. ``net.make_input(seeds, dist='normal', scale=s)``).
    input_cov : array of shape ``spatial``
        Lag covariance in FFT order (``gaussian_input_covariance``).

    Returns
    -------
    tensor of z's shape, dtype and device
    """
    cov = np.asarray(input_cov, dtype=np.float64)
    ndim = cov.ndim
    if tuple(z.shape[-ndim:]) != cov.shape or z.dim() != ndim + 2:
        raise AnalysisError(f"input of shape {tuple(z.shape)} does not end in the covariance's shape {cov.shape}")
    amplitude = np.sqrt(np.clip(np.fft.fftn(cov).real, 0.0, None) / cov[(0,) * ndim])
    dims = tuple(range(-ndim, 0))
    spectrum = torch.fft.fftn(z.double(), dim=dims) * torch.from_numpy(amplitude).to(z.device)
    return torch.fft.ifftn(spectrum, dim=dims).real.to(z.dtype)


def conv_layer_variances(net: ConvNet) -> tuple[list[float], list[float]]:
    """(sigma_w^2, sigma_b^2) of every conv of a ``conv`` model, from its initialisation rule.

    sigma_w^2 is fan-in normalised (weight variance = sigma_w^2 / fan_in, fan_in =
    C_in * k^ndim). 'xavier': uniform with bound sqrt(6 / (fan_in + fan_out)), so
    sigma_w^2 = 2 fan_in / (fan_in + fan_out), biases zero. 'default' (PyTorch): uniform
    with bound 1 / sqrt(fan_in) for weights and biases, sigma_w^2 = 1/3, sigma_b^2 =
    1 / (3 fan_in).

    Returns
    -------
    weight_var, bias_var : lists of ``depth`` floats, first layer first
    """
    if not isinstance(net, ConvNet):
        raise AnalysisError(f"layer variances are defined for the 'conv' model, got {type(net).__name__}")
    weight_var, bias_var = [], []
    for layer in net.layers:
        if not isinstance(layer, RunConv):  # pragma: no cover - ConvNet holds only RunConv
            raise AnalysisError(f"unexpected layer {type(layer).__name__}")
        fan_in = layer.in_channels * layer.kernel_size**layer.ndim
        fan_out = layer.out_channels * layer.kernel_size**layer.ndim
        if layer.init == "xavier":
            weight_var.append(2.0 * fan_in / (fan_in + fan_out))
            bias_var.append(0.0)
        else:
            weight_var.append(1.0 / 3.0)
            bias_var.append(1.0 / (3.0 * fan_in) if layer.bias is not None else 0.0)
    return weight_var, bias_var


def _output_batches(model_name: str, options: Mapping[str, object], shape: Sequence[int], n_nets: int, *,
                    runs: int, length_scale: float, input_scale: float, first_seed: int,
                    channel: int) -> Iterator[np.ndarray]:
    """Outputs of ``n_nets`` random networks, R at a time, as float64 arrays (r, *spatial)."""
    if not isinstance(n_nets, (int, np.integer)) or n_nets < 2:
        raise ConfigError(f"n_nets must be an integer >= 2 (a standard error needs two), got {n_nets!r}")
    if not isinstance(runs, (int, np.integer)) or runs < 1:
        raise ConfigError(f"runs must be an integer >= 1, got {runs!r}")
    if not (math.isfinite(input_scale) and input_scale > 0):
        raise ConfigError(f"input_scale must be a finite number > 0, got {input_scale!r}")
    options = {**dict(options), "output": "linear"}
    spatial = tuple(int(s) for s in shape[1:])
    input_cov = gaussian_input_covariance(spatial, length_scale) if length_scale > 0 else None
    if not 0 <= channel < shape[0]:
        raise ConfigError(f"channel must be in [0, {shape[0]}), got {channel}")
    for start in range(0, n_nets, runs):
        seeds = list(range(first_seed + start, first_seed + min(start + runs, n_nets)))
        net = build_model(model_name, signal_shape=shape, runs=len(seeds), weight_seeds=seeds, **options)
        z = net.make_input(seeds, dist="normal", scale=input_scale)
        if input_cov is not None:
            z = correlated_input(z, input_cov)
        with torch.no_grad():
            y = net(z)
        yield y[:, channel].double().numpy()


# ------------------------------------------------------------------------- covariance


@dataclass(frozen=True)
class SampledCovariance:
    """Covariance of random-network outputs estimated from ``n_nets`` networks.

    Attributes
    ----------
    spatial : (N,) or (H, W)
    n_nets : int
    margin : int
        Samples dropped at each edge (every axis) for the lag estimates; M = N - 2 margin.
    moment, moment_se : arrays (P, P) or None
        E[y(a) y(b)] over all P positions (C order) and its standard error; None when
        not asked for.
    lag, lag_se : arrays (2M-1,) or (2M_y-1, 2M_x-1)
        E[y(t) y(t + d)] averaged over the interior pairs at offset d, centred (index M-1
        is d = 0; ``gp.centred_lags`` gives an analytic kernel in this layout).
    correlation, correlation_se : arrays like ``lag``
        lag / lag at d = 0 (the normalised covariance of 000_... Fig. 3), standard error by
        the delta method.
    period : int or None
        Phases of the phase-resolved estimate (positions t with the same t mod period, per
        axis, counted from the signal's first sample); None when not asked for.
    phase_lag : array (period,) * ndim + lag's shape, or None
        E[y(t) y(t + d)] averaged over the interior pairs whose first position has each
        phase: a covariance that depends on position only through the phase (up-sampling
        by 2 repeated L times has period 2^L) shows here. NaN where no pair exists.
    phase_deviation, phase_deviation_se : arrays like ``phase_lag``, or None
        phase_lag minus lag, computed network by network (so that each network's overall
        gain cancels), and its standard error: zero in expectation for a stationary
        covariance.
    """

    spatial: tuple[int, ...]
    n_nets: int
    margin: int
    moment: np.ndarray | None
    moment_se: np.ndarray | None
    lag: np.ndarray
    lag_se: np.ndarray
    correlation: np.ndarray
    correlation_se: np.ndarray
    period: int | None = None
    phase_lag: np.ndarray | None = None
    phase_deviation: np.ndarray | None = None
    phase_deviation_se: np.ndarray | None = None


def sampled_covariance(model_name: str, options: Mapping[str, object], shape: Sequence[int], n_nets: int, *,
                       runs: int = 16, length_scale: float = 0.0, input_scale: float = 1.0,
                       first_seed: int = 0, margin: int = 0, full_matrix: bool = True,
                       period: int | None = None, channel: int = 0) -> SampledCovariance:
    """Estimate the output covariance of random networks ``model_name`` at initialisation.

    Parameters
    ----------
    model_name, options
        A registry model and its options (``build_model``); ``output`` is set to 'linear'.
    shape : (C, N) or (C, H, W)
        The signal shape the model is built for.
    n_nets : int >= 2
        Number of independent networks (each with its own input).
    runs : int
        Networks drawn at once (the R of one model).
    length_scale : float >= 0
        Std of the Gaussian filter making the input correlated (0: white input), as in
        ``gaussian_input_covariance``.
    input_scale : float > 0
        Std of the white input before filtering.
    first_seed : int
        Network n uses weight and input seed first_seed + n.
    margin : int >= 0
        Edge samples left out of the lag estimates (a zero-padded conv of depth D and
        kernel k is stationary from D * (k // 2) samples in).
    full_matrix : bool
        Also accumulate the P x P matrix (P^2 floats: keep P small).
    period : int >= 1, optional
        Also estimate the phase-resolved covariance (``SampledCovariance.phase_lag``);
        a period of at least the interior size resolves every position pair.
    channel : int
        Output channel.

    Returns
    -------
    SampledCovariance
    """
    spatial = tuple(int(s) for s in shape[1:])
    inner = tuple(n - 2 * margin for n in spatial)
    if not isinstance(margin, (int, np.integer)) or margin < 0 or min(inner) < 1:
        raise ConfigError(f"margin must be an integer in [0, {(min(spatial) - 1) // 2}], got {margin!r}")
    if period is not None and (not isinstance(period, (int, np.integer)) or period < 1):
        raise ConfigError(f"period must be an integer >= 1, got {period!r}")
    size = int(np.prod(spatial))
    crop = (slice(None),) + tuple(slice(margin, n - margin) for n in spatial)
    counts = np.ones(())
    for m in inner:
        counts = np.multiply.outer(counts, m - np.abs(np.arange(-(m - 1), m)))
    centred = np.ix_(*[np.arange(-(m - 1), m) % (2 * m) for m in inner])
    lag_shape = tuple(2 * m - 1 for m in inner)
    if period is not None:
        bins, bin_counts, bin_lag = _phase_bins(inner, margin, period)
    sums: dict[str, np.ndarray | float] = {}

    def add(name: str, value) -> None:
        sums[name] = sums.get(name, 0.0) + value

    n = 0
    for y in _output_batches(model_name, options, shape, n_nets, runs=runs, length_scale=length_scale,
                             input_scale=input_scale, first_seed=first_seed, channel=channel):
        n += len(y)
        c = y[crop]
        axes = tuple(range(1, c.ndim))
        f = np.fft.fftn(c, s=tuple(2 * m for m in inner), axes=axes)
        a = np.fft.ifftn(np.abs(f) ** 2, axes=axes).real[(slice(None),) + centred] / counts
        b = a[(slice(None),) + tuple(m - 1 for m in inner)]
        add("a", a.sum(0))
        add("aa", (a * a).sum(0))
        add("ab", (a * b.reshape((-1,) + (1,) * len(inner))).sum(0))
        add("b", b.sum())
        add("bb", (b * b).sum())
        if full_matrix:
            flat = y.reshape(len(y), size)
            add("m", flat.T @ flat)
            add("mm", (flat * flat).T @ (flat * flat))
        if period is not None:
            for c_n, a_n in zip(c.reshape(len(c), -1), a):  # one net at a time: P_i^2 products
                phase = np.bincount(bins, weights=np.multiply.outer(c_n, c_n).ravel(),
                                    minlength=bin_counts.size) / np.maximum(bin_counts, 1)
                dev = phase - a_n.ravel()[bin_lag]
                add("p", phase)
                add("d", dev)
                add("dd", dev * dev)
    a_mean, b_mean = sums["a"] / n, sums["b"] / n
    var_a = (sums["aa"] / n - a_mean**2) * n / (n - 1)
    var_b = (sums["bb"] / n - b_mean**2) * n / (n - 1)
    cov_ab = (sums["ab"] / n - a_mean * b_mean) * n / (n - 1)
    ratio_var = (var_a / b_mean**2 - 2 * a_mean * cov_ab / b_mean**3 + a_mean**2 * var_b / b_mean**4) / n
    moment = moment_se = phase_lag = deviation = deviation_se = None
    if full_matrix:
        moment, moment_se = _mean_and_se(sums["m"], sums["mm"], n)
    if period is not None:
        phase_shape = (period,) * len(inner) + lag_shape
        empty = (bin_counts == 0).reshape(phase_shape)
        phase_lag = np.where(empty, np.nan, (sums["p"] / n).reshape(phase_shape))
        deviation, deviation_se = (np.where(empty, np.nan, v.reshape(phase_shape))
                                   for v in _mean_and_se(sums["d"], sums["dd"], n))
    return SampledCovariance(spatial, n, int(margin), moment, moment_se, a_mean,
                             np.sqrt(np.clip(var_a, 0, None) / n), a_mean / b_mean,
                             np.sqrt(np.clip(ratio_var, 0, None)), period, phase_lag, deviation, deviation_se)


def _phase_bins(inner: tuple[int, ...], margin: int, period: int):
    """For every interior pair (a, b): its (phase of a, offset b - a) bin, the bins' pair counts,
    and each bin's index into the flattened centred lag array."""
    pos = [g.ravel() for g in np.meshgrid(*[np.arange(m) for m in inner], indexing="ij")]
    lag_shape = tuple(2 * m - 1 for m in inner)
    phases = [np.broadcast_to(((p + margin) % period)[:, None], (p.size, p.size)) for p in pos]
    offsets = [(p[None, :] - p[:, None]) + (m - 1) for p, m in zip(pos, inner)]
    bins = np.ravel_multi_index(tuple(phases) + tuple(offsets), (period,) * len(inner) + lag_shape).ravel()
    n_bins = period ** len(inner) * int(np.prod(lag_shape))
    bin_lag = np.arange(n_bins) % int(np.prod(lag_shape))
    return bins, np.bincount(bins, minlength=n_bins), bin_lag


def _mean_and_se(total, total_sq, n: int) -> tuple[np.ndarray, np.ndarray]:
    mean = total / n
    return mean, np.sqrt(np.clip(total_sq / n - mean**2, 0, None) / (n - 1))


@dataclass(frozen=True)
class StationarityDeviation:
    """How far a sampled covariance is from a function of the offset alone.

    Over the (phase, offset) bins of ``SampledCovariance.phase_lag`` that hold some but
    not all of their offset's interior pairs (a bin holding all of them is the offset's
    average itself).

    Attributes
    ----------
    max_abs : float
        max |phase_lag - lag| / lag(0): the largest deviation, in correlation units
        (sampling noise included; compare ``max_abs_se``).
    max_abs_se : float
        The standard error at that bin, in the same units.
    rms_z, max_z : float
        Root mean square and maximum of |phase_lag - lag| / standard error over the bins.
        For a stationary covariance (pure sampling noise) rms_z is about 1 or a little less
        (the per-network products are heavy-tailed, which makes a self-normalised z
        conservative: 0.84 for the stationary ``conv`` model with 2000 networks) and max_z
        about 2-4; larger values measure the non-stationarity in units of the noise.
    variance_min, variance_max : float
        Smallest and largest phase variance (offset 0) divided by lag(0).
    bins : int
        Number of bins used.
    """

    max_abs: float
    max_abs_se: float
    rms_z: float
    max_z: float
    variance_min: float
    variance_max: float
    bins: int


def stationarity_deviation(sampled: SampledCovariance, *, max_offset: int | None = None) -> StationarityDeviation:
    """Summarise ``sampled.phase_deviation``: each phase's covariance against the average.

    Parameters
    ----------
    sampled : SampledCovariance
        Estimated with a ``period``.
    max_offset : int, optional
        Only offsets with every |d_i| <= max_offset (default: all).

    Raises
    ------
    AnalysisError
        If the estimate was made without a period.
    """
    if sampled.phase_deviation is None:
        raise AnalysisError("stationarity needs the phase-resolved estimate: sample with period=...")
    inner = tuple(n - 2 * sampled.margin for n in sampled.spatial)
    ndim = len(inner)
    var0 = float(sampled.lag[tuple(k - 1 for k in inner)])
    _, counts, _ = _phase_bins(inner, sampled.margin, sampled.period)
    counts = counts.reshape(sampled.phase_deviation.shape)
    offsets = np.meshgrid(*[np.arange(-(m - 1), m) for m in inner], indexing="ij")
    near = np.ones(offsets[0].shape, bool)
    if max_offset is not None:
        near = np.all([np.abs(o) <= max_offset for o in offsets], axis=0)
    per_offset = counts.sum(axis=tuple(range(ndim)), keepdims=True)
    keep = (counts > 0) & (counts < per_offset) & near[(None,) * ndim]
    dev, se = sampled.phase_deviation[keep], sampled.phase_deviation_se[keep]
    if dev.size == 0:
        raise AnalysisError("no (phase, offset) bin splits its offset's pairs; use a period >= 2")
    z = np.abs(dev) / np.where(se > 0, se, np.inf)
    worst = int(np.argmax(np.abs(dev)))
    zero = tuple(k - 1 for k in inner)
    variances = sampled.phase_lag[(slice(None),) * ndim + zero] / var0
    return StationarityDeviation(
        max_abs=float(np.abs(dev[worst]) / var0),
        max_abs_se=float(se[worst] / var0),
        rms_z=float(np.sqrt(np.mean(z**2))),
        max_z=float(z.max()),
        variance_min=float(np.nanmin(variances)),
        variance_max=float(np.nanmax(variances)),
        bins=int(dev.size),
    )


# ------------------------------------------------------------------------ power spectrum


def sampled_power_spectrum(model_name: str, options: Mapping[str, object], shape: Sequence[int], n_nets: int, *,
                           runs: int = 16, length_scale: float = 0.0, input_scale: float = 1.0,
                           first_seed: int = 0, channel: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean power spectrum of untrained network outputs: the spectral bias at iteration 0.

    P(f) = |FFT(y)(f)|^2 / P^2 over the spatial axes (unshifted, the convention of
    ``spectral_lab.analyze.spectrum`` and ``gp.prior_power_spectrum``), averaged over
    ``n_nets`` networks drawn as in ``sampled_covariance``.

    Returns
    -------
    mean, se : arrays of shape ``spatial`` float64, FFT order
    """
    total = total_sq = 0.0
    n = 0
    for y in _output_batches(model_name, options, shape, n_nets, runs=runs, length_scale=length_scale,
                             input_scale=input_scale, first_seed=first_seed, channel=channel):
        axes = tuple(range(1, y.ndim))
        power = np.abs(np.fft.fftn(y, axes=axes)) ** 2 / float(np.prod(y.shape[1:])) ** 2
        total = total + power.sum(0)
        total_sq = total_sq + (power**2).sum(0)
        n += len(y)
    mean = total / n
    return mean, np.sqrt(np.clip(total_sq / n - mean**2, 0, None) / (n - 1))


# ---------------------------------------------------------- analytic against sampled


def analytic_vs_sampled(widths: Sequence[int], *, length: int, depth: int, n_nets: int,
                        length_scale: float = 0.0, kernel: int = 3, in_channels: int = 64,
                        init: str = "xavier", bias: bool = False, max_lag: int | None = None,
                        runs: int = 16, first_seed: int = 0) -> list[dict[str, float]]:
    """Largest gap between the analytic and the sampled normalised covariance, per width.

    The ``conv`` model (1D, ``length`` samples, zero padding) at each width; the analytic
    kernel uses the model's own layer variances (``conv_layer_variances``) and the input
    covariance the sampler draws from; the sampled one drops ``depth * (kernel // 2)``
    edge samples, where the zero padding would otherwise show.

    Returns
    -------
    list of dicts, one per width: ``width``, ``max_abs`` (max |sampled - analytic| over
    offsets |d| <= max_lag), ``max_se`` (largest standard error there), ``max_z`` (max
    |sampled - analytic| / se).
    """
    margin = depth * (kernel // 2)
    inner = length - 2 * margin
    max_lag = inner - 1 if max_lag is None else min(int(max_lag), inner - 1)
    rows = []
    for width in widths:
        options = {"depth": depth, "width": int(width), "kernel": kernel, "in_channels": in_channels,
                   "init": init, "bias": bias}
        net = build_model("conv", signal_shape=(1, length), runs=1, **options)
        weight_var, bias_var = conv_layer_variances(net)
        analytic = normalised_covariance(conv_gp_covariance(
            gaussian_input_covariance(length, length_scale), depth, weight_var=weight_var, bias_var=bias_var))
        sampled = sampled_covariance("conv", options, (1, length), n_nets, runs=runs, length_scale=length_scale,
                                     first_seed=first_seed, margin=margin, full_matrix=False)
        window = slice(inner - 1 - max_lag, inner + max_lag)
        gap = sampled.correlation[window] - centred_lags(analytic, max_lag)
        se = sampled.correlation_se[window]
        z = np.divide(np.abs(gap), se, out=np.zeros_like(gap), where=se > 0)
        rows.append({"width": int(width), "max_abs": float(np.abs(gap).max()), "max_se": float(se.max()),
                     "max_z": float(z.max())})
    return rows
