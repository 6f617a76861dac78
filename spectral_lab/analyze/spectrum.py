"""Power spectrum of image frames per radial frequency band, and when each band is fitted.

Appendix A of the paper shows the power spectrum of the DIP output filling in from low
to high frequencies; section 3.2 plots its error per frequency over iterations. Here
that is measured per radial band.

Fourier convention (every function): `np.fft.fft2` over the last two axes, unshifted;
frequencies from `np.fft.fftfreq`, in cycles per pixel, fy along H and fx along W, each
in [-1/2, 1/2). The radial frequency |f| = sqrt(fx^2 + fy^2) runs from 0 (DC) to
sqrt(1/2) ~ 0.707, reached in the corners fx = fy = -1/2 of even-sized images.

Power: P(f) = |X(f)|^2 / (H W)^2, so that Parseval reads sum_f P(f) = mean(x^2) over the
H x W pixels, and the DC term is mean(x)^2.

Bands (`radial_bands`): band 0 is DC alone; bands 1..B-1 are equal-width rings that tile
(0, sqrt(1/2)], corners included, ring k holding (k-1) w < |f| <= k w with
w = sqrt(1/2) / (B - 1). DC gets its own band because the mean brightness carries most
of an image's power and would hide every other low frequency of its band.
``band_edges = [0, 0, w, 2w, ..., sqrt(1/2)]``: band k covers (edges[k], edges[k+1]]
for k >= 1, and {0} for k = 0.

Channels: ``"luminance"`` (ITU-R BT.601 weights 0.299, 0.587, 0.114 for C = 3; a single
channel is its own luminance), ``"all"`` (the power spectra of the C channels averaged),
or a channel index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from spectral_lab.analyze._io import (Result, at_iterations, frame_iterations, json_numbers, map_blocks, open_reader,
                                     require_operator)
from spectral_lab.analyze.convergence import settle_iteration_per_column
from spectral_lab.errors import AnalysisError
from spectral_lab.fourier import frequency_radius

__all__ = [
    "LUMA_WEIGHTS",
    "SpectrumResult",
    "band_fit_times",
    "band_power",
    "fitted_front",
    "late_error",
    "luminance",
    "magnitude_ratio",
    "power_spectrum",
    "radial_bands",
    "spectrum_error",
    "spectrum_file",
]

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, R G B
MAX_RADIUS = math.sqrt(0.5)  # cycles per pixel, the corner fx = fy = 1/2
# Reference power below this fraction of its total counts as this fraction: a band that
# is empty in the reference gives a large finite relative error, not a division by zero.
RELATIVE_POWER_FLOOR = 1e-12
# Target magnitudes below this fraction of their maximum are left out of `magnitude_ratio`.
_MAGNITUDE_FLOOR = 1e-12

Channel = Literal["luminance", "all"] | int


def luminance(images: np.ndarray) -> np.ndarray:
    """BT.601 luminance of images with a channel axis.

    Parameters
    ----------
    images : array (..., C, H, W) with C = 1 or 3

    Returns
    -------
    array (..., H, W) float64
        0.299 R + 0.587 G + 0.114 B for C = 3; the channel itself for C = 1.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim < 3 or x.shape[-3] not in (1, 3):
        raise AnalysisError(f"luminance needs images (..., C, H, W) with C = 1 or 3, got shape {x.shape}")
    if x.shape[-3] == 1:
        return x[..., 0, :, :]
    return np.tensordot(np.asarray(LUMA_WEIGHTS), x, axes=([0], [-3]))


def power_spectrum(images: np.ndarray) -> np.ndarray:
    """P(f) = |FFT2(x)|^2 / (H W)^2 over the last two axes, unshifted (fft2 order).

    Parameters
    ----------
    images : array (..., H, W)
        Real images; every leading axis (iterations, channels) is kept. For the
        luminance spectrum pass ``luminance(images)``.

    Returns
    -------
    array (..., H, W) float64
        Sums to mean(x^2) over each H x W plane (Parseval); P[..., 0, 0] = mean(x)^2.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim < 2 or min(x.shape[-2:]) < 1:
        raise AnalysisError(f"power_spectrum needs arrays (..., H, W), got shape {x.shape}")
    spectrum = np.fft.fft2(x)
    height, width = x.shape[-2:]
    return (spectrum.real**2 + spectrum.imag**2) / float(height * width) ** 2


def radial_bands(shape: tuple[int, int], n_bands: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Radial band of every frequency sample of an H x W spectrum (fft2 order).

    Parameters
    ----------
    shape : (H, W)
        Image size, both >= 2.
    n_bands : int, optional
        B >= 2 bands: DC plus B - 1 rings over (0, sqrt(1/2)]. Default
        ``1 + max(1, min(H, W) // 4)``, rings about 3 frequency samples wide.

    Returns
    -------
    band_index : array (H, W) int64
        Band of each sample, 0 (DC only) to B - 1 (the corners).
    band_edges : array (B + 1,) float64
        ``[0, 0, w, 2w, ..., sqrt(1/2)]`` cycles per pixel, w = sqrt(1/2)/(B - 1); band
        k >= 1 holds edges[k] < |f| <= edges[k+1].

    Raises
    ------
    AnalysisError
        A bad shape or count, or so many bands for the image that one holds no sample.
    """
    if len(shape) != 2 or min(shape) < 2:
        raise AnalysisError(f"shape must be (H, W) with H, W >= 2, got {tuple(shape)}")
    height, width = (int(n) for n in shape)
    if n_bands is None:
        n_bands = 1 + max(1, min(height, width) // 4)
    if isinstance(n_bands, bool) or not isinstance(n_bands, (int, np.integer)) or n_bands < 2:
        raise AnalysisError(f"n_bands must be an integer >= 2 (DC and at least one ring), got {n_bands!r}")

    radius = frequency_radius((height, width))
    ring_edges = np.linspace(0.0, MAX_RADIUS, int(n_bands))  # [0, w, ..., sqrt(1/2)]
    # side="left": r = 0 -> 0 (DC), (k-1) w < r <= k w -> k. The clip guards a corner
    # rounded one ulp past sqrt(1/2).
    band_index = np.minimum(np.searchsorted(ring_edges, radius, side="left"), n_bands - 1)
    empty = np.flatnonzero(np.bincount(band_index.ravel(), minlength=n_bands) == 0)
    if empty.size:
        raise AnalysisError(
            f"{n_bands} bands are too many for a {height}x{width} image: {empty.size} band(s) "
            f"({', '.join(map(str, empty[:5].tolist()))}{', ...' if empty.size > 5 else ''}) hold no frequency "
            f"sample; use fewer (the default for this size is {1 + max(1, min(height, width) // 4)})"
        )
    return band_index.astype(np.int64), np.concatenate([[0.0], ring_edges])


def band_power(images: np.ndarray, n_bands: int | None = None, channel: Channel = "luminance") -> np.ndarray:
    """Mean power P(f) over each radial band, per frame.

    Parameters
    ----------
    images : array (T, C, H, W)
    n_bands : int, optional
        See `radial_bands`.
    channel : "luminance", "all" or int
        See the module docstring; "all" averages the channels' spectra.

    Returns
    -------
    array (T, B) float64
        Mean (not sum) of P over the band's frequency samples, so bands of different
        sizes compare; times the band's sample count it sums back to mean(x^2).
    """
    x = _channel_view(images, channel)
    band_index, _ = radial_bands(x.shape[-2:], n_bands)
    return _frame_band_power(x, band_index)


def spectrum_error(
    frames: np.ndarray, reference: np.ndarray, n_bands: int | None = None, channel: Channel = "luminance"
) -> np.ndarray:
    """Relative error of each band's power against a reference image, per frame.

        error[t, b] = |P_out[t, b] - P_ref[b]| / max(P_ref[b], 1e-12 * sum_f P_ref(f))

    with P the band means of `band_power`. The floor (relative to the reference's
    total power, mean(x^2)) only matters for bands where the reference has (almost) no
    power: there the error is large and finite instead of a division by zero.

    Parameters
    ----------
    frames : array (T, C, H, W)
    reference : array (C, H, W)
        The target (clean image) or the observed (noisy) image.
    n_bands, channel
        See `band_power`.

    Returns
    -------
    array (T, B) float64
    """
    x, ref, band_index = _views_and_bands(frames, reference, n_bands, channel)
    return _relative_error(_frame_band_power(x, band_index), _reference_band_power(ref, band_index))


def band_fit_times(rel_err: np.ndarray, threshold: float = 0.1) -> list[int | None]:
    """First iteration from which each band's relative error stays <= `threshold`.

    Parameters
    ----------
    rel_err : array (T, B)
        From `spectrum_error`; row i is iteration i.
    threshold : float

    Returns
    -------
    list of B int or None
        None: the band is above the threshold at the last iteration (never fitted).
        NaN counts as above. Same rule as
        `spectral_lab.analyze.convergence.settle_iteration`.
    """
    if not (np.isfinite(threshold) and threshold >= 0):
        raise AnalysisError(f"threshold must be a finite number >= 0, got {threshold!r}")
    return settle_iteration_per_column(rel_err, threshold)


def fitted_front(errors: np.ndarray, band_edges: np.ndarray, threshold: float) -> np.ndarray:
    """Per iteration, how far up in frequency the output is fitted without a gap.

    Parameters
    ----------
    errors : array (T, B)
        Relative band errors of one run (`spectrum_error`), band 0 = DC.
    band_edges : array (B + 1,)
        From `radial_bands`: ``[0, 0, w, ..., sqrt(1/2)]``.
    threshold : float
        Relative error that counts as fitted.

    Returns
    -------
    array (T,) float64
        The upper edge (cycles/pixel) of the last band b such that every band 0..b is
        within ``threshold`` at that iteration; 0 when not even DC is (or only DC is:
        DC's upper edge is 0). NaN errors count as not fitted.
    """
    errors = np.asarray(errors, dtype=np.float64)
    edges = np.asarray(band_edges, dtype=np.float64)
    if errors.ndim != 2 or edges.shape != (errors.shape[1] + 1,):
        raise AnalysisError(f"expected errors (T, B) and band edges (B + 1,), got {errors.shape} and {edges.shape}")
    ok = np.cumprod(errors <= threshold, axis=1)  # 1 while every band so far is fitted
    # edges[f] is the upper edge of band f - 1 (and 0 for f = 0 or 1: DC)
    return edges[ok.sum(axis=1)]


def late_error(errors, fraction: float) -> np.ndarray:
    """Per band, where each run ended up: the median relative error over the last
    ``fraction`` of its iterations (at least one), averaged over runs.

    Parameters
    ----------
    errors : sequence of arrays (T_r, B)
        One per run (`SpectrumResult.errors`); runs may differ in length.
    fraction : float in (0, 1]

    Returns
    -------
    array (B,) float64
        The median is insensitive to the iteration-to-iteration flicker of a band's power.
    """
    if not 0 < fraction <= 1:
        raise AnalysisError(f"fraction must be in (0, 1], got {fraction!r}")
    late = [np.median(np.asarray(e, dtype=np.float64)[-max(1, int(round(fraction * len(e)))):], axis=0)
            for e in errors]
    if not late:
        raise AnalysisError("no runs")
    return np.mean(late, axis=0)


def magnitude_ratio(
    frames: np.ndarray,
    target: np.ndarray,
    n_bands: int | None = None,
    channel: Channel = "luminance",
    *,
    clip: bool = True,
) -> np.ndarray:
    """Frequency-band correspondence of Shi et al. (IJCV 2022): mean of |F(out)| / |F(target)|.

    Per band and frame, the mean over the band's frequency samples (and over channels
    for ``channel="all"``) of the ratio of Fourier magnitudes, with `radial_bands`
    bands. 1 means the band is reproduced at the target's magnitude.

    Differences from the authors' released code, which (luminance, ratio clipped to
    [0, 1]) uses 5 rings of equal width up to the inscribed circle |f| <= 1/2 and
    adds 1e-8 to the denominator: here the bands reach the corners, and samples where
    |F(target)| <= 1e-12 max |F(target)| are left out of the mean rather than
    regularised; a band where every sample is left out gives NaN.

    Parameters
    ----------
    frames : array (T, C, H, W)
    target : array (C, H, W)
    n_bands, channel
        See `band_power`.
    clip : bool
        Clip each ratio to [0, 1] before averaging, as Shi et al. do.

    Returns
    -------
    array (T, B) float64
    """
    x, ref, band_index = _views_and_bands(frames, target, n_bands, channel)
    out_mag = np.abs(np.fft.fft2(x))
    ref_mag = np.abs(np.fft.fft2(ref[0]))  # (C', H, W)
    valid = ref_mag > _MAGNITUDE_FLOOR * ref_mag.max()
    ratio = np.divide(out_mag, ref_mag, out=np.zeros_like(out_mag), where=valid)
    if clip:
        ratio = np.minimum(ratio, 1.0)
    # Sum over channels and band samples, divided by the number of valid samples.
    sums = _band_sum(ratio.sum(axis=1), band_index)
    counts = _band_sum(valid.sum(axis=0)[None].astype(np.float64), band_index)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


@dataclass(frozen=True, eq=False)
class SpectrumResult(Result):
    """Band-power error over iterations of every run of a trajectory file.

    Attributes
    ----------
    band_edges : array (B + 1,)
        Cycles per pixel, see `radial_bands`.
    errors : tuple of arrays (T_r, B)
        `spectrum_error` of each run, row i = iteration i.
    time_to_fit : tuple of lists of B int or None
        `band_fit_times` of each run.
    reference : "target" or "observed"
    channel : "luminance", "all" or int
    threshold : float
    seeds : tuple of dict
        ``traj.run_seeds(r)`` of each run.
    """

    band_edges: np.ndarray
    errors: tuple[np.ndarray, ...]
    time_to_fit: tuple[list[int | None], ...]
    reference: str
    channel: Channel
    threshold: float
    seeds: tuple[dict, ...]

    def to_json(self) -> dict:
        """Plain dicts, lists and numbers (``json.dumps(..., allow_nan=False)`` accepts it).

        ``{"reference", "channel", "threshold", "band_edges": [B + 1], "seeds": [per run],
        "error": [per run: [T_r][B]], "time_to_fit": [per run: [B] int or null]}``;
        NaN errors (a diverged run) are null.
        """
        return {
            "reference": self.reference,
            "channel": self.channel,
            "threshold": self.threshold,
            "band_edges": self.band_edges.tolist(),
            "seeds": [dict(s) for s in self.seeds],
            "error": [json_numbers(e) for e in self.errors],
            "time_to_fit": [list(t) for t in self.time_to_fit],
        }


def spectrum_file(
    traj_or_path,
    *,
    n_bands: int | None = None,
    threshold: float = 0.1,
    reference: Literal["target", "observed", "final"] = "target",
    channel: Channel = "luminance",
    chunk: int | None = None,
) -> SpectrumResult:
    """`spectrum_error` and `band_fit_times` of every run of a trajectory file, streamed.

    Frames are read with ``traj.iter_frames(r, chunk=chunk)``; only the (T, B) errors
    of each run are kept, never its frames.

    Parameters
    ----------
    traj_or_path : str, os.PathLike or an open trajectory (see `spectral_lab.trajectory`)
    n_bands, channel
        See `band_power`.
    threshold : float
        Relative-error threshold of `band_fit_times`.
    reference : "target", "observed" or "final"
        Compare with the clean image (``traj.target``), with what was fitted
        (``traj.observed``, the noisy image when denoising), or with each run's own last
        frame (when each band settles to its final value: files without a clean image, a
        blend).
    chunk : int, optional
        Frames per read, passed to ``traj.iter_frames``.

    Raises
    ------
    AnalysisError
        A 1D trajectory, a bad parameter, a run without frames.
    """
    if reference not in ("target", "observed", "final"):
        raise AnalysisError(f"reference must be 'target', 'observed' or 'final', got {reference!r}")
    if not (np.isfinite(threshold) and threshold >= 0):
        raise AnalysisError(f"threshold must be a finite number >= 0, got {threshold!r}")
    with open_reader(traj_or_path) as traj:
        if traj.kind != "image":
            raise AnalysisError("spectrum analysis needs image trajectories; this file holds a 1D signal")
        if reference == "observed":
            require_operator(traj, ("identity",), "the spectrum against the observation")

        def reference_power(run: int):
            if reference == "final":
                image = traj.frames(run)[traj.n_frames(run) - 1] if traj.n_frames(run) else None
                if image is None:
                    raise AnalysisError(f"run {run} has no recorded frames")
            else:
                image = traj.target if reference == "target" else traj.observed
            ref = _channel_view(_reference_frame(image, (1, *traj.signal_shape)), channel)
            band_index, band_edges = radial_bands(ref.shape[-2:], n_bands)
            return band_index, band_edges, _reference_band_power(ref, band_index)  # once for every frame

        errors = []
        for run in range(traj.n_runs):
            band_index, band_edges, ref_power = reference_power(run)
            errors.append(map_blocks(traj, run, lambda block: _relative_error(
                _frame_band_power(_channel_view(block, channel), band_index), ref_power), chunk))
        seeds = tuple(dict(traj.run_seeds(r)) for r in range(traj.n_runs))
        its = [frame_iterations(traj, r) for r in range(traj.n_runs)]
    return SpectrumResult(
        band_edges=band_edges,
        errors=tuple(errors),
        time_to_fit=tuple(at_iterations(i, band_fit_times(e, threshold)) for e, i in zip(errors, its)),
        reference=reference,
        channel=channel,
        threshold=float(threshold),
        seeds=seeds,
    )


def _channel_view(frames: np.ndarray, channel: Channel) -> np.ndarray:
    """(T, C, H, W) -> (T, C', H, W) float64: C' = 1 for luminance or one channel, C for "all"."""
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim != 4:
        raise AnalysisError(f"frames must have shape (T, C, H, W), got shape {x.shape}")
    if channel == "luminance":
        return luminance(x)[:, None]
    if channel == "all":
        return x
    if isinstance(channel, (int, np.integer)) and not isinstance(channel, bool) and 0 <= channel < x.shape[1]:
        return x[:, [int(channel)]]
    raise AnalysisError(f"channel must be 'luminance', 'all' or an index in 0..{x.shape[1] - 1}, got {channel!r}")


def _views_and_bands(frames, reference, n_bands, channel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Channel views of the frames (T, C', H, W) and of the reference (1, C', H, W), and the band index."""
    x = _channel_view(frames, channel)
    ref = _channel_view(_reference_frame(reference, np.shape(frames)), channel)
    band_index, _ = radial_bands(x.shape[-2:], n_bands)
    return x, ref, band_index


def _reference_frame(reference: np.ndarray, frames_shape: tuple) -> np.ndarray:
    """The reference image (C, H, W) as a one-frame batch, checked against the frames."""
    ref = np.asarray(reference, dtype=np.float64)
    if ref.shape != tuple(frames_shape[1:]):
        raise AnalysisError(f"reference of shape {ref.shape} does not match frames of shape {tuple(frames_shape)}")
    return ref[None]


def _reference_band_power(ref: np.ndarray, band_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Band means (B,) of a one-frame view (1, C', H, W), and the floored denominators (B,)."""
    # Parseval: the total power is mean(x^2), averaged over the view's channels.
    total = float(np.mean(ref**2))
    if total == 0:
        raise AnalysisError("the reference image is zero everywhere: its spectrum has no power to compare with")
    ref_power = _frame_band_power(ref, band_index)[0]
    return ref_power, np.maximum(ref_power, RELATIVE_POWER_FLOOR * total)


def _relative_error(power: np.ndarray, reference: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    ref_power, denominator = reference
    return np.abs(power - ref_power) / denominator


def _frame_band_power(view: np.ndarray, band_index: np.ndarray) -> np.ndarray:
    """(T, C', H, W) -> (T, B): band means of the power spectrum averaged over channels."""
    return _band_mean(power_spectrum(view).mean(axis=1), band_index)


def _band_sum(values: np.ndarray, band_index: np.ndarray) -> np.ndarray:
    """(T, H, W) -> (T, B): sum of the values of each band (every band non-empty)."""
    order = np.argsort(band_index, axis=None, kind="stable")
    starts = np.searchsorted(band_index.ravel()[order], np.arange(band_index.max() + 1))
    return np.add.reduceat(values.reshape(len(values), -1)[:, order], starts, axis=1)


def _band_mean(values: np.ndarray, band_index: np.ndarray) -> np.ndarray:
    """(T, H, W) -> (T, B): mean of the values of each band."""
    return _band_sum(values, band_index) / np.bincount(band_index.ravel())



def magnitude_ratio_file(traj_or_path, *, n_bands: int | None = None, channel: Channel = "luminance",
                         chunk: int | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Streaming `magnitude_ratio` (Shi et al.'s band view) of every run of an image file.

    Returns ``(band_edges, ratios)`` with one ``(T_r, B)`` array per run; memory is one
    block of frames at a time.
    """
    with open_reader(traj_or_path) as traj:
        if traj.kind != "image":
            raise AnalysisError("spectrum analysis needs image trajectories; this file holds a 1D signal")
        target = np.asarray(traj.target, dtype=np.float64)
        _, edges = radial_bands(target.shape[-2:], n_bands)
        ratios = [map_blocks(traj, r, lambda b: magnitude_ratio(b, target, n_bands, channel), chunk)
                  for r in range(traj.n_runs)]
    return edges, ratios
