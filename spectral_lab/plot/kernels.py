"""Figures of the tangent-kernel experiment: predicted against measured convergence, the kernel
along a trajectory, and the kernel's energy per radial band next to the bands' fitting times.

Every function takes numbers already computed (`spectral_lab.kernels.configured`, the
analyzers) and returns a Figure; nothing here recomputes an analysis.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = ["image_bands_figure", "kernel_trajectory_figure", "predicted_vs_measured_figure"]


def predicted_vs_measured_figure(points: Sequence[Mapping], *, title: str, agreement: float = 0.25) -> Figure:
    """Predicted against measured convergence iteration, one point per seed and frequency.

    Parameters
    ----------
    points : sequence of dicts ``{"family", "approx" ("fourier" | "full"), "predicted",
        "measured", "freq"}`` (iterations > 0).
    agreement : the band ±agreement around the diagonal that is drawn.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharex=True, sharey=True)
    families = sorted({p["family"] for p in points})
    colours = {f: plt.cm.tab10(i % 10) for i, f in enumerate(families)}
    freqs = sorted({p["freq"] for p in points})
    markers = dict(zip(freqs, "os^D"))
    values = [v for p in points for v in (p["predicted"], p["measured"]) if v and v > 0] or [1, 10]
    lo, hi = min(values) / 1.5, max(values) * 1.5
    for ax, approx in zip(axes, ("fourier", "full")):
        line = np.array([lo, hi])
        ax.plot(line, line, "k-", linewidth=0.8)
        ax.fill_between(line, line * (1 - agreement), line * (1 + agreement), color="0.85", zorder=0,
                        label=f"±{agreement:.0%}")
        for f in families:
            for k in freqs:
                sel = [p for p in points if p["family"] == f and p["approx"] == approx and p["freq"] == k]
                if sel:
                    ax.plot([p["measured"] for p in sel], [p["predicted"] for p in sel], markers[k], color=colours[f],
                            markersize=5, alpha=0.8, linestyle="none", label=f"{f}, k={k}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("measured convergence iteration (SGD)")
        ax.set_title("Fourier-diagonal kernel" if approx == "fourier" else "full linearised kernel", fontsize=10)
    axes[0].set_ylabel("predicted convergence iteration (GD on the kernel at initialisation)")
    axes[1].legend(fontsize=7, loc="upper left", ncol=2)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def kernel_trajectory_figure(panels: Mapping[str, Mapping], *, title: str) -> Figure:
    """Per recording (column): the kernel's energies at the snapshots and its relative change.

    Parameters
    ----------
    panels : mapping label -> ``{"iterations" (S,), "energy" (S, R, K), "lambda_max" (S, R),
        "kernel_change" (S, R') or None, "measured" (R, K) convergence iterations (NaN = never),
        "freqs" (K,), "stable_energy": M/lr or None}``
    """
    labels = list(panels)
    fig, axes = plt.subplots(2, len(labels), figsize=(4.2 * len(labels), 7), squeeze=False, sharex="col")
    for col, label in enumerate(labels):
        p = panels[label]
        its = np.asarray(p["iterations"], dtype=float)
        ax = axes[0][col]
        for j, k in enumerate(p["freqs"]):
            e = np.asarray(p["energy"])[:, :, j]
            line, = ax.plot(its, e.mean(axis=1), "o-", markersize=3, label=f"λ(k={k})")
            ax.fill_between(its, e.min(axis=1), e.max(axis=1), color=line.get_color(), alpha=0.2)
            t = np.asarray(p["measured"])[:, j]
            if np.isfinite(t).any():
                ax.axvline(np.nanmedian(t), color=line.get_color(), linestyle=":", linewidth=1)
        lam = np.asarray(p["lambda_max"])
        ax.plot(its, lam.mean(axis=1), "k.-", markersize=3, label="λ_max")
        if p.get("stable_energy"):
            ax.axhline(p["stable_energy"], color="k", linestyle="--", linewidth=0.8, label="M / lr (edge of stability)")
        ax.set_xscale("symlog", linthresh=1)  # iteration 0 included
        ax.set_yscale("log")
        ax.set_ylabel("kernel energy uᵀΘu")
        ax.set_title(label, fontsize=10)
        ax.legend(fontsize=7)
        ax = axes[1][col]
        if p.get("kernel_change") is not None:
            change = np.asarray(p["kernel_change"])
            ax.plot(its, change, "o-", markersize=3)
            ax.set_ylabel("‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("iteration (dotted: measured median t(k))")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def image_bands_figure(panels: Mapping[str, Mapping], *, title: str) -> Figure:
    """Kernel energy per radial band (relative to the first ring) and the bands' time to fit.

    Parameters
    ----------
    panels : mapping label -> ``{"energy" (B,), "band_edges" (B + 1,), "adam": {"time_to_fit":
        [per run: B int or None]}, optional "sgd": {"time_to_fit": ..., "predicted": B int or None}}``
    """
    has_sgd = any("sgd" in p for p in panels.values())
    fig, axes = plt.subplots(1, 3 if has_sgd else 2, figsize=(15 if has_sgd else 10, 4.5), squeeze=False)
    axes = axes[0]
    for i, (label, p) in enumerate(panels.items()):
        edges = np.asarray(p["band_edges"])
        centres = 0.5 * (edges[2:] + edges[1:-1])  # rings 1..B-1
        colour = plt.cm.tab10(i % 10)
        e = np.asarray(p["energy"])[1:]
        axes[0].plot(centres, e / e[0], "o-", color=colour, markersize=3, label=label)
        for ax, key in zip(axes[1:], ("adam", "sgd")):
            if key not in p:
                continue
            times = np.array([[np.nan if t is None else t for t in run[1:]] for run in p[key]["time_to_fit"]])
            fitted = np.isfinite(times)
            mean = np.where(fitted.any(axis=0), np.where(fitted, times, 0).sum(axis=0) / np.maximum(fitted.sum(0), 1),
                            np.nan)  # over the runs that fitted the band
            ax.plot(centres, mean, "o-", color=colour, markersize=3, label=f"{label} measured")
            if key == "sgd" and "predicted" in p[key]:
                pred = np.array([np.nan if t is None else t for t in p[key]["predicted"][1:]])
                ax.plot(centres, pred, "x--", color=colour, markersize=4, label=f"{label} predicted")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("λ_b / λ_1 (mean kernel energy per band)")
    axes[0].set_title("kernel at initialisation", fontsize=10)
    axes[1].set_title("Adam: measured time to fit (missing = never)", fontsize=10)
    if has_sgd:
        axes[2].set_title("SGD: measured (o) and predicted (x)", fontsize=10)
    for ax in axes:
        ax.set_xlabel("radial frequency (cycles/pixel)")
    for ax in axes[1:]:
        ax.set_yscale("symlog", linthresh=1)  # a band fitted from the start is at 0
        ax.set_ylabel("iteration")
    axes[0].legend(fontsize=7)
    axes[-1].legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
