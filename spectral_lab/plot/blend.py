"""Figures of the blending experiment (003_…, Section 5.3): the A4 metrics along the
trajectory next to the baselines, and when each frequency band of a region settles.

Every function takes finished numbers and returns a Figure; none recomputes an analysis.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .denoise import _band, _wrap

__all__ = ["blend_curves_figure", "settle_times_figure"]

_METRIC_LABELS = {"gff": "GFF in Ω_T (higher: the stronger source's gradients kept)",
                  "gfp": "GFP over the image (G_F / max(G_A, G_B))",
                  "bsi": "BSI in Ω_T (higher: smoother gradient magnitude)",
                  "ssim": "SSIM_T against the background in Ω_T"}


def blend_curves_figure(curves: Mapping[str, Mapping[str, np.ndarray]], baselines: Mapping[str, Mapping[str, float]],
                        *, marks: Mapping[str, Mapping[str, Sequence[int]]] | None = None, title: str) -> Figure:
    """The four metrics along the trajectory, one panel each.

    ``curves[label]``: ``{"iterations": (T,), "gff", "gfp", "bsi", "ssim": (R, T)}`` (R runs;
    mean line, min–max band); ``baselines[method][metric]``: horizontal dashed lines;
    ``marks[label]``: ``{name: [iteration per run]}`` drawn as markers on the mean curve (e.g. the
    ES-WMV stop and the best-SSIM iteration). Iterations on a log axis (iteration + 1).
    """
    metrics = list(_METRIC_LABELS)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 4.2))
    styles = [("k", "--"), ("0.35", "-."), ("0.55", ":")]
    for ax, metric in zip(axes, metrics):
        for label, c in curves.items():
            x = np.asarray(c["iterations"]) + 1
            values = np.atleast_2d(c[metric])
            color = _band(ax, x, values, label)
            mean = values.mean(axis=0)
            for k, (name, its) in enumerate((marks or {}).get(label, {}).items()):
                for j, it in enumerate(its):
                    i = int(np.searchsorted(c["iterations"], it))
                    ax.plot([x[i]], [mean[i]], "v^sD"[k % 4], color=color, markersize=5,
                            label=f"{label}: {name}" if j == 0 else None)
        for j, (method, scores) in enumerate(baselines.items()):
            color, style = styles[j % len(styles)]
            ax.axhline(scores[metric], color=color, linestyle=style, linewidth=1.2, label=method)
        ax.set_xscale("log")
        ax.set_xlabel("iteration + 1 (log scale)")
        ax.set_ylabel(metric.upper() if metric != "ssim" else "SSIM_T")
        ax.set_title(_METRIC_LABELS[metric], fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=6, loc="best")
    fig.suptitle(_wrap(title, 170), fontsize=9)
    fig.tight_layout()
    return fig


def settle_times_figure(settle: Mapping[str, np.ndarray], band_edges: np.ndarray, *, iterations: int,
                        threshold: float, title: str) -> Figure:
    """When each radial band settles, per region or setting.

    ``settle[label]``: ``(R, B)`` settle iterations of R runs (NaN: never), against the band's
    upper edge (cycles/pixel); mean over runs as a line, min–max as error bars. A dotted line
    marks the last iteration.
    """
    fig, ax = plt.subplots(figsize=(8, 4.6))
    edges = np.asarray(band_edges)[1:]
    for label, times in settle.items():
        t = np.atleast_2d(np.asarray(times, dtype=np.float64))
        mean = np.nanmean(t, axis=0)
        lo, hi = np.nanmin(t, axis=0), np.nanmax(t, axis=0)
        ax.errorbar(edges, mean, yerr=[mean - lo, hi - mean], fmt="o-", markersize=3, capsize=2, label=label)
    ax.axhline(iterations, color="k", linestyle=":", linewidth=1, label="last iteration")
    ax.set_xlabel("band upper edge (cycles/pixel; the first point is DC)")
    ax.set_ylabel(f"settle iteration (E_b ≤ {threshold:g} from then on)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(_wrap(title, 110), fontsize=9)
    fig.tight_layout()
    return fig
