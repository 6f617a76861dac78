"""Figures of the Bayesian view (Cheng et al., 000_...): SGD against SGLD (Figs. 1 a–b and 2),
the posterior mean's spectrum, the uncertainty map of an inpainting run (Fig. 1 d) and the
trained DIP against its Gaussian process as the channels grow (Fig. 6).

Every function takes finished numbers and returns a Figure; none recomputes an analysis.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from . import show_image
from .denoise import _band, _wrap

__all__ = ["sgld_curves_figure", "mse_vs_noise_figure", "band_ratio_figure", "uncertainty_figure",
           "dip_vs_gp_figure"]


def sgld_curves_figure(psnr: Mapping[str, tuple[np.ndarray, np.ndarray]], mse: Mapping[str, tuple[np.ndarray, np.ndarray]],
                       *, averaged: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
                       posterior: Mapping[str, float] | None = None, observed_psnr: float, noise_levels: Mapping[str, float],
                       burn_in: int | None = None, title: str) -> Figure:
    """000_... Fig. 2 (left) and Fig. 1 a (right) on one image.

    ``psnr[label] = (iterations (T,), PSNR (R, T))`` of the outputs against the clean image;
    ``averaged[label]``: the same of an average (the outputs' moving average, or the running
    posterior mean after the burn-in), dashed; ``posterior[label]``: the final posterior mean's
    PSNR, a marker at the right edge; ``mse[label] = (iterations, (R, T))``: the MSE to the noisy
    observation (units of the 0–255 scale squared), log scale, with ``noise_levels`` (label ->
    value, e.g. σ² and the observation's own noise energy) as horizontal lines.
    """
    fig, axes = plt.subplots(1, 2, figsize=(14, 5))
    colors = {}
    for label, (its, curves) in psnr.items():
        colors[label] = _band(axes[0], its, curves, label)
    for label, (its, curves) in (averaged or {}).items():
        base = label.split(" ")[0]
        c = _band(axes[0], its, curves, label, color=colors.get(base))
        axes[0].lines[-1].set_linestyle("--")
        colors.setdefault(label, c)
    right = max(its[-1] for its, _ in psnr.values())
    for label, value in (posterior or {}).items():
        base = label.split(" ")[0]
        axes[0].plot([right], [value], "o", color=colors.get(base, "k"), markersize=7, clip_on=False,
                     label=f"{label}: {value:.2f} dB")
    axes[0].axhline(observed_psnr, color="k", linestyle=":", linewidth=1, label=f"observation {observed_psnr:.2f} dB")
    axes[0].set_ylabel("PSNR against the clean image (dB)")
    best = max(np.nanmax(np.asarray(c).mean(axis=0)) for _, c in psnr.values())
    axes[0].set_ylim(max(observed_psnr - 4, 0), best + 2.5)
    axes[0].set_title("PSNR (solid: the outputs; dashed: moving average / running posterior mean)", fontsize=9)
    for label, (its, curves) in mse.items():
        _band(axes[1], its, curves, label, color=colors.get(label))
    for k, (name, value) in enumerate(noise_levels.items()):
        axes[1].axhline(value, color="k", linestyle=(":", "--", "-.")[k % 3], linewidth=1, label=f"{name} = {value:.0f}")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("MSE to the noisy image ((0–255)²)")
    axes[1].set_title("MSE to the observation: SGD goes to 0, SGLD stays near the noise level", fontsize=9)
    for ax in axes:
        if burn_in is not None:
            ax.axvline(burn_in, color="grey", linewidth=0.8, linestyle="--")
        ax.set_xlabel("iteration" + ("" if burn_in is None else f" (grey: burn-in {burn_in})"))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(_wrap(title), fontsize=9)
    fig.tight_layout()
    return fig


def mse_vs_noise_figure(noise_var: Sequence[float], mse: Mapping[str, Sequence[float]], *, title: str) -> Figure:
    """000_... Fig. 1 b: the MSE to the noisy image after convergence against the noise
    variance σ² (both (0–255)²), one line per method, and the line MSE = σ²."""
    fig, ax = plt.subplots(figsize=(6.2, 5))
    x = np.asarray(noise_var, dtype=np.float64)
    for label, values in mse.items():
        ax.plot(x, values, "o-", label=label)
    ax.plot(x, x, "k:", linewidth=1, label="MSE = σ²")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("noise variance σ² ((0–255)²)")
    ax.set_ylabel("MSE to the noisy image at the end ((0–255)²)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(_wrap(title, 70), fontsize=9)
    fig.tight_layout()
    return fig


def band_ratio_figure(band_edges: np.ndarray, ratios: Mapping[str, np.ndarray], *, ylabel: str, title: str) -> Figure:
    """One line per image over radial bands (x: the band's upper edge, cycles/pixel; DC left
    out): ``ratios[label]`` is ``(B,)``, e.g. the error power P_b(x − x*) / P_b(x*), log scale."""
    edges = np.asarray(band_edges, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, r in ratios.items():
        r = np.asarray(r, dtype=np.float64)
        ax.plot(edges[2:], r[1:], "o-" if "observation" not in label else "k:", markersize=3, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("radial frequency band, upper edge (cycles/pixel)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(_wrap(title, 90), fontsize=9)
    fig.tight_layout()
    return fig


def uncertainty_figure(clean: np.ndarray, observed: np.ndarray, mean: np.ndarray, std: np.ndarray,
                       error: np.ndarray, *, captions: Mapping[str, str] | None = None, title: str) -> Figure:
    """000_... Fig. 1 c–d: the clean image, the observation, the posterior mean (images ``(C, H,
    W)`` in [0, 1]), the posterior standard deviation and the mean's absolute error (maps ``(H,
    W)``, each from 0 to its 99.5th percentile, with a colour bar)."""
    captions = dict(captions or {})
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.8))
    for ax, key, img in zip(axes[:3], ("clean", "observation", "posterior mean"), (clean, observed, mean)):
        show_image(ax, img, captions.get(key, key))
    for ax, key, m in zip(axes[3:], ("posterior std", "|error| of the mean"), (std, error)):
        # each map on its own scale (the spread is often far below the error): read the colour bars
        top = float(max(np.percentile(m, 99.5), 1e-12))
        im = ax.imshow(m, cmap="inferno", vmin=0, vmax=top, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(captions.get(key, key), fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="intensity (0–1 scale)")
    fig.suptitle(_wrap(title), fontsize=9)
    fig.tight_layout()
    return fig


def dip_vs_gp_figure(channels: Sequence[int], dip: Mapping[str, np.ndarray], gp: Mapping[str, float], *,
                     kernels: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None, ylabel: str,
                     title: str) -> Figure:
    """000_... Fig. 6: left, the kernels against the offset (``kernels[label] = (offsets, K /
    K(0))``); right, the trained DIP's PSNR against its channel count (``dip[label] = (n_channels,
    R)`` values, mean and min–max over seeds) with each GP's PSNR (``gp``) as a horizontal line."""
    fig, axes = plt.subplots(1, 2 if kernels else 1, figsize=(13 if kernels else 7, 4.8), squeeze=False)
    axes = axes[0]
    ax = axes[-1]
    x = np.asarray(channels, dtype=np.float64)
    for label, values in dip.items():
        v = np.atleast_2d(np.asarray(values, dtype=np.float64).T)
        _band(ax, x, v, label)
        ax.plot(x, v.mean(axis=0), "o", color=ax.lines[-1].get_color(), markersize=4)
    for k, (label, value) in enumerate(gp.items()):
        ax.axhline(value, linestyle=("--", ":", "-.")[k % 3], color=f"C{k + 3}", label=f"{label}: {value:.2f} dB")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("channels per layer")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("trained DIP (mean, min–max over seeds) vs GP", fontsize=9)
    if kernels:
        for label, (offsets, values) in kernels.items():
            axes[0].plot(offsets, values, label=label)
        axes[0].set_xlabel("offset |t1 − t2| (pixels)")
        axes[0].set_ylabel("K(offset) / K(0)")
        axes[0].grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        axes[0].set_title("prior kernels (horizontal offset)", fontsize=9)
    fig.suptitle(_wrap(title), fontsize=9)
    fig.tight_layout()
    return fig
