"""Where a posterior is uncertain: its per-pixel spread against the holes, the edges and the error.

A sampler's file (``record --burn-in N``) holds each run's posterior mean m and per-pixel
variance v of the outputs after the burn-in (`spectral_lab.trajectory.Trajectory.posterior`).
Cheng et al. (000_..., Fig. 1 d) show v as a heat map of an inpainting run: high where the
image has edges and in the holes, low in holes surrounded by uniform areas. These functions
put numbers on that picture, per pixel, with the channels averaged (s = sqrt(mean_c v_c),
e = sqrt(mean_c (m_c − x*_c)²)):

- the mean posterior standard deviation in the holes and on the known pixels, and their ratio;
- the correlation of s with the error e of the posterior mean (Pearson and Spearman, over all
  pixels and over the holes): is the spread where the mistakes are?
- the correlation of s with the edge strength of the clean image (the gradient magnitude of its
  luminance, `edge_strength`), and s on the strongest edges against s in the flattest areas;
- calibration: the fraction of hole pixels whose error lies within one and two standard
  deviations (a Gaussian posterior that is right about its error: 0.68 and 0.95).

Arrays in, numbers out; float64; no file access (`uncertainty_file` is the short loop that
reads a file's posterior and calls `uncertainty_summary`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spectral_lab.analyze._io import open_reader
from spectral_lab.errors import AnalysisError

__all__ = ["edge_strength", "uncertainty_summary", "uncertainty_file"]


def edge_strength(image: np.ndarray) -> np.ndarray:
    """Gradient magnitude of an image's channel mean, central differences (`np.gradient`).

    Parameters
    ----------
    image : array (C, H, W)

    Returns
    -------
    array (H, W) float64, in image units per pixel
    """
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 3 or min(x.shape[1:]) < 2:
        raise AnalysisError(f"edge strength needs an image (C, H, W) with H, W >= 2, got shape {x.shape}")
    gy, gx = np.gradient(x.mean(axis=0))
    return np.hypot(gy, gx)


def _correlations(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman correlation of two flat arrays (NaN when either is constant)."""
    from scipy.stats import pearsonr, spearmanr

    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return {"pearson": float("nan"), "spearman": float("nan")}
    return {"pearson": float(pearsonr(a, b)[0]), "spearman": float(spearmanr(a, b)[0])}


def uncertainty_summary(mean: np.ndarray, variance: np.ndarray, clean: np.ndarray,
                        known: np.ndarray | None = None, *, edge_fraction: float = 0.2,
                        flat_fraction: float = 0.5) -> dict[str, Any]:
    """Numbers on a posterior's uncertainty map (see the module docstring).

    Parameters
    ----------
    mean, variance : arrays (C, H, W)
        The posterior mean and per-pixel variance of the outputs.
    clean : array (C, H, W)
        The clean image x*.
    known : array (1, H, W) or (H, W), optional
        1 where the pixel was observed (an inpainting mask), 0 in the holes; None: every
        pixel was observed (the hole statistics are then None).
    edge_fraction, flat_fraction : float in (0, 1)
        The share of pixels with the strongest edges, and with the weakest, compared.

    Returns
    -------
    dict
        ``std_all``, ``std_hole``, ``std_known``, ``hole_over_known`` (mean s; None without
        holes), ``std_edges``, ``std_flat``, ``edges_over_flat``; ``corr_error`` and
        ``corr_error_hole`` (Pearson/Spearman of s with e), ``corr_edges`` (of s with the edge
        strength); ``within_1std_hole``, ``within_2std_hole`` (fraction of hole pixels with
        e <= s, e <= 2 s); ``rmse_hole``, ``rmse_known`` of the mean; ``pixels_hole``,
        ``pixels_known``.
    """
    m, v, x = (np.asarray(a, dtype=np.float64) for a in (mean, variance, clean))
    if m.ndim != 3 or m.shape != v.shape or m.shape != x.shape:
        raise AnalysisError(f"mean, variance and clean image must share one shape (C, H, W), got "
                            f"{m.shape}, {v.shape}, {x.shape}")
    if not np.all(np.isfinite(v)) or v.min() < 0:
        raise AnalysisError("the variance must be finite and >= 0 everywhere (a posterior with no sample yet?)")
    for name, value in (("edge_fraction", edge_fraction), ("flat_fraction", flat_fraction)):
        if not 0 < value < 1:
            raise AnalysisError(f"{name} must be in (0, 1), got {value!r}")
    std = np.sqrt(v.mean(axis=0))
    err = np.sqrt(((m - x) ** 2).mean(axis=0))
    hole = None
    if known is not None:
        k = np.asarray(known, dtype=np.float64)
        k = k.reshape(k.shape[-2:]) if k.ndim == 3 else k
        if k.shape != std.shape:
            raise AnalysisError(f"the mask has shape {k.shape}, the image {std.shape}")
        hole = k == 0
        if hole.all() or not hole.any():
            hole = None if not hole.any() else hole
    edges = edge_strength(x)
    order = np.argsort(edges, axis=None)
    n_edge, n_flat = max(1, int(round(edge_fraction * order.size))), max(1, int(round(flat_fraction * order.size)))
    std_flat_px, std_edge_px = std.ravel()[order[:n_flat]], std.ravel()[order[-n_edge:]]
    out: dict[str, Any] = {
        "std_all": float(std.mean()),
        "std_edges": float(std_edge_px.mean()), "std_flat": float(std_flat_px.mean()),
        "edges_over_flat": float(std_edge_px.mean() / std_flat_px.mean()) if std_flat_px.mean() > 0 else None,
        "corr_error": _correlations(std.ravel(), err.ravel()),
        "corr_edges": _correlations(std.ravel(), edges.ravel()),
        "std_hole": None, "std_known": None, "hole_over_known": None, "corr_error_hole": None,
        "within_1std_hole": None, "within_2std_hole": None, "rmse_hole": None,
        "rmse_known": float(np.sqrt(np.mean(err**2))), "pixels_hole": 0, "pixels_known": int(std.size),
    }
    if hole is not None:
        s_h, s_k, e_h = std[hole], std[~hole], err[hole]
        out.update({
            "std_hole": float(s_h.mean()), "std_known": float(s_k.mean()),
            "hole_over_known": float(s_h.mean() / s_k.mean()) if s_k.mean() > 0 else None,
            "corr_error_hole": _correlations(s_h, e_h),
            "within_1std_hole": float(np.mean(e_h <= s_h)), "within_2std_hole": float(np.mean(e_h <= 2 * s_h)),
            "rmse_hole": float(np.sqrt(np.mean(e_h**2))), "rmse_known": float(np.sqrt(np.mean(err[~hole] ** 2))),
            "pixels_hole": int(hole.sum()), "pixels_known": int((~hole).sum()),
        })
    return out


def uncertainty_file(traj_or_path: Any, run: int = 0, **options) -> dict[str, Any]:
    """`uncertainty_summary` of run ``run``'s posterior in a trajectory file (its mask, if
    any, gives the holes); AnalysisError for a file without posterior samples."""
    with open_reader(traj_or_path) as traj:
        if traj.kind != "image":
            raise AnalysisError("the uncertainty map needs an image trajectory; this file holds a 1D signal")
        if not getattr(traj, "has_posterior", False):
            raise AnalysisError("this file holds no posterior statistics (record with --burn-in N)")
        mean, var, count = traj.posterior(run)
        if count < 2:
            raise AnalysisError(f"run {run} has {count} posterior sample(s); a variance needs at least 2")
        return {**uncertainty_summary(mean, var, traj.target, getattr(traj, "known", None), **options),
                "samples": int(count)}
