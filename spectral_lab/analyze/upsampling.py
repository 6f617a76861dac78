"""Frequency response of the up-sampling layers of the DIP (paper section 3.2, appendix E).

Up-sampling by an integer stride L is zero insertion (one input sample every L output
samples) followed by a fixed smoothing kernel; the kernel's gain says how much of each
frequency the layer lets through. All responses here are gains (magnitudes): the
layer's kernels are not centred (nearest is causal), so only |H| compares.

Convention: k is in cycles per OUTPUT sample; |k| <= 1/2 is the whole output band and
the input's Nyquist frequency sits at k = 1/(2L). Every response is normalised to 1 at
k = 0 (a constant passes unchanged).

Two analytic forms:

``form="paper"`` — the continuous kernels of appendix E, normalised:
    nearest  (box of width L):               |sinc(L k)| = |sin(pi L k) / (pi L k)|
    bilinear (triangle 1 - |t|/L, |t| <= L):  sinc(L k)^2 = sin^2(pi L k) / (pi L k)^2
The appendix writes the bilinear response as sin^2(pi L k) / (L pi^2 k^2): that is the
un-normalised transform of a triangle of area L, worth L at k = 0, while its nearest
formula is already divided by the box's area L. Divided by L as here, both are 1 at DC
and the comparison "bilinear decays faster" is fair. (The appendix also states the
triangle as 1 - |t| on |t| <= L/2; the formula it gives is that of 1 - |t|/L on |t| <= L.)

``form="layer"`` — the exact response of `torch.nn.functional.interpolate` with an
integer ``scale_factor=L`` (``mode="nearest"``, or ``mode="linear"``,
``align_corners=False``), which lives on the discrete output grid:
    nearest:  out[j] = x[floor(j / L)], a causal box of L ones, gain
              |sin(pi L k) / (L sin(pi k))|                      (Dirichlet kernel / L)
    linear:   out[j] interpolates at source position (j + 1/2)/L - 1/2, i.e. exactly
              zero insertion + the triangle 1 - |t|/L (half-width L output samples =
              1 input sample), sampled at the output pixels. Pixel centres are aligned,
              so the input samples sit at output position n L + (L - 1)/2: on the
              output grid for odd L, half-way between two output samples for even L. Gain
              odd L:  sin^2(pi L k) / (L sin(pi k))^2            (Fejér kernel / L)
              even L: sin^2(pi L k) / (L sin(pi k))^2 * |cos(pi k)|
              (the even-L kernel is (1/L) box_L * box_L * [1/2, 1/2]; the extra
              two-tap average puts a zero at the output Nyquist k = 1/2).
Both are periodic in k with period 1, as any response on a sampled grid.

How the two forms differ, exactly: for |k| <= 1/2,
    paper_nearest  = layer_nearest  * |sinc(k)|
    paper_bilinear = layer_bilinear * sinc(k)^2              (odd L)
    paper_bilinear = layer_bilinear * sinc(k)^2 / |cos(pi k)|   (even L)
The factor sinc(k) is the hold of one output sample: the paper treats the output as a
continuous signal. The zeros (k = m/L) are the same; at low frequency the forms agree
to second order (sinc(k) = 1 - pi^2 k^2 / 6 + ...), at the output Nyquist the paper's
form is 2/pi (nearest) or 4/pi^2 (odd-L bilinear) of the layer's. For L = 1 the layer
is the identity (gain 1) while the paper's form is still sinc(k).

Other differences between torch's layer and "zero insertion + kernel": at the borders
torch clamps the source index (the first and last ~L/2 outputs copy the edge sample)
instead of seeing zeros; in 2D, ``mode="bilinear"`` is the separable product of the
1D linear kernel along each axis, so its response is the product of the 1D gains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from spectral_lab.analyze._io import Result
from spectral_lab.errors import AnalysisError

__all__ = ["MODES", "ResponseComparison", "analytic_response", "compare_responses", "measured_response"]

MODES = ("nearest", "bilinear")
_TORCH_MODE = {"nearest": "nearest", "bilinear": "linear"}  # 1D name of each layer


def analytic_response(
    freqs: np.ndarray,
    stride: int,
    mode: Literal["nearest", "bilinear"] = "nearest",
    *,
    form: Literal["paper", "layer"] = "paper",
) -> np.ndarray:
    """Gain of up-sampling by `stride` at each frequency, 1 at DC.

    Parameters
    ----------
    freqs : array (K,) or scalar
        Frequencies k in cycles per output sample (any real; |k| <= 1/2 is the band).
    stride : int
        Up-sampling factor L >= 1.
    mode : "nearest" or "bilinear"
    form : "paper" or "layer"
        "paper": the continuous kernels of appendix E, normalised to 1 at DC.
        "layer": the exact gain of torch's layer on the output grid (what
        `measured_response` measures). See the module docstring for both formulas
        and the exact factor between them.

    Returns
    -------
    array, shape of `freqs`, float64, values in [0, 1]
    """
    stride = _checked_stride(stride)
    _checked_mode(mode)
    k = np.asarray(freqs, dtype=np.float64)
    if not np.isfinite(k).all():
        raise AnalysisError("frequencies must be finite")
    power = 1 if mode == "nearest" else 2
    if form == "paper":
        return np.abs(np.sinc(stride * k)) ** power
    if form != "layer":
        raise AnalysisError(f"form must be 'paper' or 'layer', got {form!r}")
    # Reduce to |k| <= 1/2 (the gain has period 1), where sinc(k) >= 2/pi never vanishes:
    # sin(pi L k) / (L sin(pi k)) = sinc(L k) / sinc(k).
    k = k - np.round(k)
    gain = np.abs(np.sinc(stride * k) / np.sinc(k)) ** power
    if mode == "bilinear" and stride % 2 == 0:
        gain = gain * np.abs(np.cos(np.pi * k))
    return gain


def measured_response(
    freqs: np.ndarray,
    stride: int,
    mode: Literal["nearest", "bilinear"] = "nearest",
    *,
    length: int = 7,
) -> np.ndarray:
    """Gain of the actual torch layer, measured from its impulse response.

    A unit impulse in the middle of a 1D signal of `length` zeros (float64) is
    up-sampled with ``torch.nn.functional.interpolate(x, scale_factor=stride,
    mode="nearest" | "linear", align_corners=False for linear)``. Away from the
    borders the output is the layer's kernel itself, so its DTFT evaluated exactly at
    each k (not rounded to a DFT bin), divided by its value at k = 0, is the gain.

    Parameters
    ----------
    freqs : array (K,) or scalar
        Cycles per output sample.
    stride : int
        Up-sampling factor L >= 1.
    mode : "nearest" or "bilinear"
        "bilinear" measures torch's 1D "linear" (2D bilinear is its separable product).
    length : int
        Input samples, >= 3, so that the impulse is not on a border (torch clamps
        there) and the whole kernel fits in the output.

    Returns
    -------
    array, shape of `freqs`, float64
        Equal to ``analytic_response(freqs, stride, mode, form="layer")`` up to float64
        rounding.
    """
    stride = _checked_stride(stride)
    _checked_mode(mode)
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 3:
        raise AnalysisError(f"length must be an integer >= 3, got {length!r}")
    k = np.asarray(freqs, dtype=np.float64)
    if not np.isfinite(k).all():
        raise AnalysisError("frequencies must be finite")

    impulse = torch.zeros(1, 1, int(length), dtype=torch.float64)
    impulse[0, 0, length // 2] = 1.0
    options = {"align_corners": False} if mode == "bilinear" else {}
    kernel = F.interpolate(impulse, scale_factor=stride, mode=_TORCH_MODE[mode], **options)
    kernel = kernel[0, 0].numpy()

    positions = np.arange(kernel.size)
    dtft = np.exp(-2j * np.pi * np.multiply.outer(k, positions)) @ kernel
    return np.abs(dtft) / kernel.sum()


@dataclass(frozen=True, eq=False)
class ResponseComparison(Result):
    """The three gains of one mode and stride on a frequency grid (cycles per output sample):
    appendix E's formula (``paper``), the exact discrete gain (``layer``) and the gain
    measured from torch's layer (``measured``); `summary` says how far they agree."""

    freqs: np.ndarray
    stride: int
    mode: str
    paper: np.ndarray
    layer: np.ndarray
    measured: np.ndarray

    def summary(self) -> dict[str, float]:
        """``max_layer_vs_measured`` and ``max_paper_vs_measured`` (largest absolute gain
        differences on the grid); ``paper_at_input_nyquist`` and ``layer_at_input_nyquist``
        (gains at k = 1/(2L), the input's Nyquist frequency); ``half_gain_freq`` (first grid
        frequency where the layer's gain is <= 1/2, NaN if none); ``mean_gain_above_input_nyquist``
        (the layer's mean gain on the grid points k >= 1/(2L), where the output holds only
        images of the input spectrum)."""
        nyq = 1.0 / (2 * self.stride)
        half = np.flatnonzero(self.layer <= 0.5)
        return {
            "max_layer_vs_measured": float(np.max(np.abs(self.layer - self.measured))),
            "max_paper_vs_measured": float(np.max(np.abs(self.paper - self.measured))),
            "paper_at_input_nyquist": float(analytic_response(nyq, self.stride, self.mode, form="paper")),
            "layer_at_input_nyquist": float(analytic_response(nyq, self.stride, self.mode, form="layer")),
            "half_gain_freq": float(self.freqs[half[0]]) if half.size else float("nan"),
            "mean_gain_above_input_nyquist": float(np.mean(self.layer[self.freqs >= nyq])),
        }


def compare_responses(freqs: np.ndarray, stride: int, mode: Literal["nearest", "bilinear"] = "nearest"
                      ) -> ResponseComparison:
    """`analytic_response` in both forms and `measured_response` on ``freqs`` (K,)."""
    k = np.asarray(freqs, dtype=np.float64)
    if k.ndim != 1 or k.size == 0:
        raise AnalysisError(f"freqs must be a non-empty 1D array, got shape {k.shape}")
    return ResponseComparison(k, _checked_stride(stride), mode,
                              paper=analytic_response(k, stride, mode, form="paper"),
                              layer=analytic_response(k, stride, mode, form="layer"),
                              measured=measured_response(k, stride, mode))


def _checked_stride(stride: int) -> int:
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise AnalysisError(f"stride must be an integer >= 1, got {stride!r}")
    return int(stride)


def _checked_mode(mode: str) -> None:
    if mode not in MODES:
        raise AnalysisError(f"mode must be one of {MODES}, got {mode!r}")
