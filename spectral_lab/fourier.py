"""The lab's one Fourier-grid convention: frequencies in cycles per sample (per pixel).

Unshifted, as ``np.fft.fftfreq`` returns them (in [-0.5, 0.5)); the radius of a 2D
frequency is sqrt(f_y² + f_x²); with ``real=True`` the last axis is the half plane of
``np.fft.rfftn`` (``np.fft.rfftfreq``). Signals (the low-frequency noise), the spectrum
analyzer's radial bands and the noise-fit analyzer's high-pass all use this grid.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["frequency_radius"]


def frequency_radius(sizes: Sequence[int], *, real: bool = False) -> np.ndarray:
    """Radius in cycles per sample of every bin of an ``len(sizes)``-D FFT of that shape.

    Parameters
    ----------
    sizes : sequence of int
        Lengths of the transformed axes, e.g. ``(N,)`` or ``(H, W)``.
    real : bool
        The last axis as ``np.fft.rfftn`` stores it (``sizes[-1] // 2 + 1`` bins).

    Returns
    -------
    np.ndarray, float64
        Shape ``sizes`` (or with the last axis halved for ``real``).
    """
    sizes = [int(n) for n in sizes]
    grids = [np.fft.fftfreq(n) for n in sizes[:-1]]
    grids.append(np.fft.rfftfreq(sizes[-1]) if real else np.fft.fftfreq(sizes[-1]))
    mesh = np.meshgrid(*grids, indexing="ij")
    return np.sqrt(sum(g**2 for g in mesh))
