"""Unit Fourier directions of a signal's space and the Fourier content of a vector.

Conventions follow the analyzers. 1D (`spectral_lab.analyze.amplitudes`): N samples
x_n, n = 0..N-1, frequency k in cycles per frame, 0 < k < N/2. 2D
(`spectral_lab.analyze.spectrum`): `np.fft.fft2` over (H, W), unshifted, frequencies from
`np.fft.fftfreq` in cycles per pixel, bands from `radial_bands` (band 0 = DC alone).

Every direction is a real array of unit Euclidean norm over the whole output of one run,
``(C, N)`` or ``(C, H, W)``. Channels are independent coordinates of that space: a mode
"of a band" lives on one channel at a time, so a band of d frequency samples spans a
subspace of dimension d·C (the C channels of an RGB image are three copies of it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from spectral_lab.analyze.spectrum import radial_bands
from spectral_lab.errors import AnalysisError

__all__ = ["FourierAlignment", "band_directions", "band_modes", "fourier_alignment", "fourier_modes_1d"]


def fourier_modes_1d(n_samples: int, freqs: Sequence[float]) -> np.ndarray:
    """The unit cosine and sine of each integer frequency on N samples.

    ``modes[i, 0] = sqrt(2/N) cos(2 pi k_i n / N)`` and ``modes[i, 1] = sqrt(2/N) sin(...)``:
    orthonormal, and together they span every sinusoid of frequency k_i whatever its phase.

    Parameters
    ----------
    n_samples : int
        N >= 3.
    freqs : sequence of K integers
        Cycles per frame, 0 < k < N/2 (at 0 and N/2 the sine vanishes).

    Returns
    -------
    array (K, 2, N) float64
    """
    n = int(n_samples)
    if n < 3:
        raise AnalysisError(f"need at least 3 samples for a Fourier mode, got {n_samples}")
    k = np.asarray(freqs, dtype=np.float64).reshape(-1)
    bad = [float(v) for v in k if not (np.isfinite(v) and v == np.round(v) and 0 < v < n / 2)]
    if bad or k.size == 0:
        raise AnalysisError(f"frequencies must be integers with 0 < k < N/2 = {n / 2:g}, got {list(freqs)}")
    phase = 2.0 * np.pi * np.outer(k, np.arange(n)) / n
    return np.sqrt(2.0 / n) * np.stack([np.cos(phase), np.sin(phase)], axis=1)


def band_modes(shape: tuple[int, int], band: int, n_bands: int | None = None) -> np.ndarray:
    """An orthonormal basis of the real images whose spectrum lies in one radial band.

    For every frequency sample f of the band, taken once per conjugate pair (f, -f): the
    cosine and the sine of 2 pi (f_y y + f_x x), each scaled to unit norm; a sample that is
    its own conjugate (DC, the Nyquist rows and columns of even sides) has a cosine only.
    The count equals the band's number of frequency samples.

    Parameters
    ----------
    shape : (H, W)
    band : int
        0 <= band < B, see `spectral_lab.analyze.spectrum.radial_bands`.
    n_bands : int, optional
        B; the `radial_bands` default when None.

    Returns
    -------
    array (d, H, W) float64, d = number of frequency samples in the band
    """
    height, width = _checked_shape(shape)
    band_index, _ = radial_bands((height, width), n_bands)
    _check_band(band, band_index)
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    modes = []
    for i, j in zip(*np.nonzero(band_index == band)):
        ci, cj = (-i) % height, (-j) % width
        if (i, j) > (ci, cj):
            continue  # its conjugate already gave the cosine and the sine
        phase = 2.0 * np.pi * (i * rows / height + j * cols / width)
        if (i, j) == (ci, cj):
            modes.append(np.cos(phase) / np.sqrt(height * width))
        else:
            modes.append(np.cos(phase) * np.sqrt(2.0 / (height * width)))
            modes.append(np.sin(phase) * np.sqrt(2.0 / (height * width)))
    return np.stack(modes)


def band_directions(shape: tuple[int, int], band: int, *, channels: int = 1, n_bands: int | None = None,
                    max_directions: int = 32, seed: int = 0) -> tuple[np.ndarray, bool]:
    """Orthonormal directions of one radial band over C channels, exact or sampled.

    The band's subspace (`band_modes` on each channel) has dimension d·C. When that is at
    most ``max_directions``, all of its basis vectors are returned (``exact = True``), and the
    mean Rayleigh quotient over them is the band's mean energy tr(P Θ P) / (d C) exactly.
    Otherwise ``max_directions`` random orthonormal vectors of the subspace are returned
    (Gaussian noise, band-passed per channel by the band's mask in the fft2 domain, then
    orthonormalised): each is uniformly distributed on the subspace's unit sphere, so their
    mean Rayleigh quotient is an unbiased estimate of the same mean, and every direction
    already averages over all of the band's modes (lower variance than a random subset of
    the modes themselves).

    Parameters
    ----------
    shape : (H, W)
    band : int
    channels : int
        C, the channels of the output.
    n_bands : int, optional
        See `radial_bands`.
    max_directions : int
        At most this many directions.
    seed : int
        Seeds the sampled directions (unused when exact).

    Returns
    -------
    directions : array (D, C, H, W) float64
    exact : bool
    """
    height, width = _checked_shape(shape)
    if channels < 1 or max_directions < 1:
        raise AnalysisError(f"channels and max_directions must be >= 1, got {channels} and {max_directions}")
    band_index, _ = radial_bands((height, width), n_bands)
    _check_band(band, band_index)
    dim = int((band_index == band).sum()) * channels
    if dim <= max_directions:
        modes = band_modes((height, width), band, n_bands)
        out = np.zeros((modes.shape[0] * channels, channels, height, width))
        for c in range(channels):
            out[c::channels, c] = modes
        return out, True
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((max_directions, channels, height, width))
    passed = np.fft.ifft2(np.fft.fft2(noise) * (band_index == band)).real  # real: the mask is symmetric
    q, _ = np.linalg.qr(passed.reshape(max_directions, -1).T)
    return q.T.reshape(max_directions, channels, height, width), False


@dataclass(frozen=True, eq=False)
class FourierAlignment:
    """How much of each vector's energy sits in one frequency (1D) or radial band (2D).

    Attributes
    ----------
    dominant : array (k,) int64
        The frequency k (cycles per frame, 0..N/2) or band index holding most energy.
    fraction : array (k,) float64
        Its share of the vector's squared norm, in (0, 1].
    spectrum : array (k, F) float64
        Share of every frequency 0..N//2 (1D) or band 0..B-1 (2D); rows sum to 1.
    band_edges : array (B + 1,) float64 or None
        The bands' edges in cycles per pixel (2D), None in 1D.
    """

    dominant: np.ndarray
    fraction: np.ndarray
    spectrum: np.ndarray
    band_edges: np.ndarray | None = None


def fourier_alignment(eigvecs: np.ndarray, shape: Sequence[int], n_bands: int | None = None) -> FourierAlignment:
    """The Fourier content of vectors of a signal's space, e.g. the kernel's eigenvectors.

    1D: the energy at frequency k is that of the vector's projection onto the span of the
    cosine and sine at k (``2 |X(k)|^2 / N`` for 0 < k < N/2, ``|X(k)|^2 / N`` at 0 and
    N/2), summed over channels. 2D: ``|X(f)|^2 / (H W)`` summed over a radial band's
    samples and the channels. Both sum to the squared norm (Parseval). A band holds many
    frequencies, so 2D fractions are larger than 1D ones for the same spread.

    Parameters
    ----------
    eigvecs : array (k, C, *spatial) or (k, prod(shape))
    shape : (C, N) or (C, H, W)
        The output shape of one run.
    n_bands : int, optional
        2D only, see `radial_bands`.

    Returns
    -------
    FourierAlignment
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3):
        raise AnalysisError(f"shape must be (C, N) or (C, H, W), got {shape}")
    v = np.asarray(eigvecs, dtype=np.float64)
    if v.ndim < 1 or v.size != v.shape[0] * int(np.prod(shape)):
        raise AnalysisError(f"eigenvectors of shape {v.shape} do not hold vectors of shape {shape}")
    v = v.reshape(v.shape[0], *shape)
    edges = None
    if len(shape) == 2:
        n = shape[1]
        weight = np.full(n // 2 + 1, 2.0)
        weight[0] = 1.0
        if n % 2 == 0:
            weight[-1] = 1.0
        spectrum = (np.abs(np.fft.rfft(v, axis=-1)) ** 2 * weight / n).sum(axis=1)
    else:
        band_index, edges = radial_bands(shape[1:], n_bands)
        per_sample = (np.abs(np.fft.fft2(v)) ** 2 / (shape[1] * shape[2])).sum(axis=1)
        n_b = int(band_index.max()) + 1
        spectrum = np.stack([np.bincount(band_index.ravel(), weights=p.ravel(), minlength=n_b)
                             for p in per_sample])
    total = spectrum.sum(axis=1, keepdims=True)
    if not np.all(total > 0):
        raise AnalysisError("a vector of zero norm has no Fourier alignment")
    share = spectrum / total
    dominant = np.argmax(share, axis=1)
    return FourierAlignment(dominant.astype(np.int64), share[np.arange(len(share)), dominant], share, edges)


def _checked_shape(shape) -> tuple[int, int]:
    if len(shape) != 2:
        raise AnalysisError(f"shape must be (H, W), got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def _check_band(band: int, band_index: np.ndarray) -> None:
    n_b = int(band_index.max()) + 1
    if isinstance(band, bool) or not isinstance(band, (int, np.integer)) or not 0 <= band < n_b:
        raise AnalysisError(f"band must be an integer in [0, {n_b - 1}], got {band!r}")
