"""Classical baselines of each task, to set a network's restoration beside.

- super-resolution: the observation up-sampled by the factor with bicubic and with
  nearest-neighbour interpolation (PIL's resize, per channel, float);
- inpainting: every unknown pixel filled with the mean of the known pixels of its channel;
- denoising (on request, not part of `task_baselines`): (C)BM3D through the optional ``bm3d``
  package (`bm3d_denoise`), the reference row of Cheng et al.'s Table 1.

Arrays in, arrays out: images ``(C, H, W)`` (1D signals ``(N,)``), float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spectral_lab.errors import AnalysisError

__all__ = ["upsample", "mean_fill", "bm3d_denoise", "task_baselines", "UPSAMPLE_METHODS"]

UPSAMPLE_METHODS = ("bicubic", "nearest")


def upsample(y: np.ndarray, factor: int, method: str = "bicubic") -> np.ndarray:
    """``y`` ``(C, h, w)`` (or ``(n,)``) enlarged ``factor`` times per axis, ``(C, h·f, w·f)``.

    Bicubic: PIL's BICUBIC resize (Keys' a = −0.5) of each channel in float mode; 1D: the same
    filter through a one-row image. Nearest: every sample repeated ``factor`` times.
    """
    from PIL import Image

    if method not in UPSAMPLE_METHODS:
        raise AnalysisError(f"unknown up-sampling {method!r}; choose from {', '.join(UPSAMPLE_METHODS)}")
    y = np.asarray(y, dtype=np.float64)
    one_d = y.ndim == 1
    img = y[None, None] if one_d else y
    if method == "nearest":
        out = img.repeat(factor, axis=-1).repeat(1 if one_d else factor, axis=-2)
    else:
        resample = Image.Resampling.BICUBIC
        h, w = img.shape[-2:]
        out = np.stack([np.asarray(Image.fromarray(c.astype(np.float32), mode="F").resize(
            (w * factor, h if one_d else h * factor), resample), dtype=np.float64) for c in img])
    return out[0, 0] if one_d else out


def bm3d_denoise(y: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D (Dabov et al. 2007) of a grey image ``(1, H, W)``, CBM3D of a colour one ``(3, H, W)``,
    for white noise of standard deviation ``sigma`` (signal units, e.g. 25/255), through the
    optional ``bm3d`` package (its default profile); AnalysisError when it is not installed."""
    try:
        import bm3d
    except ImportError:
        raise AnalysisError("BM3D needs the optional package bm3d (pip install bm3d)") from None
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 3 or y.shape[0] not in (1, 3):
        raise AnalysisError(f"BM3D takes an image (1, H, W) or (3, H, W), got shape {y.shape}")
    if not (np.isfinite(sigma) and sigma > 0):
        raise AnalysisError(f"sigma must be a positive number, got {sigma!r}")
    if y.shape[0] == 3:
        return np.moveaxis(np.asarray(bm3d.bm3d_rgb(np.moveaxis(y, 0, -1), sigma), dtype=np.float64), -1, 0)
    return np.asarray(bm3d.bm3d(y[0], sigma), dtype=np.float64)[None]


def mean_fill(y: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The observation with every unknown sample set to the mean of its channel's known ones.

    ``known``: ``(1, *spatial)`` (or ``spatial``), nonzero = known."""
    y = np.asarray(y, dtype=np.float64)
    k = np.broadcast_to(np.asarray(known, dtype=bool).reshape((1,) * (y.ndim - np.ndim(known)) + np.shape(known)),
                        y.shape)
    if not k.any():
        raise AnalysisError("the mask keeps no sample: there is nothing to fill from")
    out = y.copy()
    channels = out if y.ndim > 1 else out[None]
    kk = k if y.ndim > 1 else k[None]
    for c in range(channels.shape[0]):
        channels[c][~kk[c]] = channels[c][kk[c]].mean()
    return out


def task_baselines(traj: Any) -> dict[str, np.ndarray]:
    """The baselines of a trajectory's task, name -> output of the target's shape (empty for
    tasks without one: fitting, denoising)."""
    op = getattr(traj, "operator", None) or {"name": "identity", "options": {}}
    y = np.asarray(traj.observed, dtype=np.float64)
    if op["name"] == "downsample":
        f = int(op["options"]["factor"])
        return {m: upsample(y, f, m) for m in UPSAMPLE_METHODS}
    if op["name"] == "mask":
        return {"mean fill": mean_fill(y, traj.known)}
    return {}
