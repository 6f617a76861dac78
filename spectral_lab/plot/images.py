"""Figures of image trajectories: divergence (paper Fig. 1), spectra (Fig. 4), PSNR curves."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from . import show_image
from .titles import wrap as _wrap


def divergence_figure(result, frames: Mapping[str, np.ndarray], *, title: str) -> Figure:
    """Top: the named frames (target, iteration 0, outputs at convergence points);
    bottom: ε(i) of every pair (log scale) with its detected convergence points."""
    n = len(frames)
    fig = plt.figure(figsize=(max(8, 2.2 * n), 6.5))
    grid = fig.add_gridspec(2, n, height_ratios=[1, 1.2])
    for j, (name, img) in enumerate(frames.items()):
        ax = fig.add_subplot(grid[0, j])
        if img.ndim == 1:
            ax.plot(img)
            ax.set_title(name, fontsize=9)
        else:
            show_image(ax, img, name)
    ax = fig.add_subplot(grid[1, :])
    for pair, eps in result.pairs.items():
        label = f"runs {pair[0]},{pair[1]}"
        differs = result.differs(pair)
        if differs:
            label += f" (differ in {differs})"
        line, = ax.plot(np.arange(len(eps)), eps, linewidth=1, label=label)
        pts = result.points[pair]
        ax.plot(pts, eps[pts], "o", color=line.get_color(), markersize=6)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("ε(i) = Σ (T₁(i) − T₂(i))²")
    ax.legend(fontsize=8)
    ax.set_title("inter-run divergence; dots: detected convergence points", fontsize=9)
    fig.suptitle(_wrap(title), fontsize=10)
    fig.tight_layout()
    return fig


def spectrum_heatmap(ax, errors: np.ndarray, band_edges: np.ndarray, *, vmin: float = 1e-3,
                     vmax: float = 10.0, title: str = "") -> object:
    """Relative band-power error, iteration (x) × frequency (y, cycles/pixel), log colour."""
    from matplotlib.colors import LogNorm

    err = np.clip(np.asarray(errors, dtype=np.float64), vmin, vmax)
    centres = band_edges[1:]
    im = ax.imshow(err.T, origin="lower", aspect="auto", norm=LogNorm(vmin=vmin, vmax=vmax),
                   extent=(0, err.shape[0] - 1, 0, centres[-1]), cmap="magma", interpolation="nearest")
    ax.set_xlabel("iteration")
    ax.set_ylabel("radial frequency (cycles/pixel)")
    if title:
        ax.set_title(title, fontsize=9)
    return im


def spectrum_figure(result, *, run: int = 0, title: str) -> Figure:
    """Heat map of one run's band error (paper Fig. 4 a–b) and each band's time to fit."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3), gridspec_kw={"width_ratios": [1.6, 1]})
    im = spectrum_heatmap(axes[0], result.errors[run], result.band_edges,
                          title=f"run {run}: |P_out − P_{result.reference}| / P_{result.reference} per band")
    fig.colorbar(im, ax=axes[0], label="relative error")
    _band_times(axes[1], result.band_edges, result.time_to_fit,
                ylabel=f"time to fit (error ≤ {result.threshold:g} from then on), iterations",
                title="per-band time to fit (missing = never)")
    fig.suptitle(_wrap(title), fontsize=10)
    fig.tight_layout()
    return fig


def _band_times(ax, edges: np.ndarray, times_per_run, *, ylabel: str, title: str, marks=()) -> None:
    """Each run's iteration per band (None = never: a gap), against the band's upper edge;
    ``marks``: (frequency, label) vertical lines."""
    for r, times in enumerate(times_per_run):
        ax.plot(edges[1:], [np.nan if v is None else v for v in times], "o-", markersize=3, label=f"run {r}")
    for freq, label in marks:
        ax.axvline(freq, color="k", linestyle="--", linewidth=1, label=label)
    ax.set_xlabel("band upper edge (cycles/pixel)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)


def task_spectrum_figure(result, *, run: int = 0, title: str) -> Figure:
    """Heat map of one run's missing-content band error E_b(t) and every run's fill times,
    with the observation's Nyquist frequency marked (super-resolution)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3), gridspec_kw={"width_ratios": [1.6, 1]})
    where = {"hole": "in the hole", "all": "over the image"}.get(result.region, f"in the {result.region} region")
    final = getattr(result, "reference", "target") == "final"  # a blend: against each run's last frame
    what = "change still to come" if final else "error of the missing content"
    im = spectrum_heatmap(axes[0], result.errors[run], result.band_edges, vmax=2.0,
                          title=f"run {run}: {what} {where}, per band (E_b)")
    fig.colorbar(im, ax=axes[0], label="P_b((x_t − x_T) w) / P_b(x_T w)" if final else "P_b(error) / P_b(clean)")
    nyquist = result.observed_nyquist
    if nyquist is not None:
        axes[0].axhline(nyquist, color="w", linestyle="--", linewidth=1)
    _band_times(axes[1], result.band_edges, result.fill_times,
                ylabel=f"{'settle' if final else 'fill'} time (E_b ≤ {result.threshold:g} from then on), iterations",
                title=("when each band settles to the run's last frame" if final else
                       "when each band of the missing content is restored (missing = never)"),
                marks=() if nyquist is None else [(nyquist, f"observation's Nyquist {nyquist:g}")])
    fig.suptitle(_wrap(title), fontsize=10)
    fig.tight_layout()
    return fig


def psnr_figure(results, *, title: str, labels: Sequence[str] | None = None) -> Figure:
    """PSNR over iterations of every run of one file (``results`` a `PsnrResult`) or of several
    (a sequence of them, one legend label each): each run's curve, a dot and its value at each
    run's best (the peak), and the observation's PSNR as a dotted line. One file: a colour per
    run; several: a colour per file (its runs in that colour), the observation per file when
    they differ."""
    many = isinstance(results, (list, tuple))
    results = list(results) if many else [results]
    labels = list(labels) if labels is not None else [""] * len(results)
    fig, ax = plt.subplots(figsize=(8.5 if many else 8, 4.8))
    observed = [r.observed_psnr for r in results]
    one_observation = all(np.isfinite(observed)) and np.ptp(observed) < 0.005 or len(results) == 1
    for i, (res, label) in enumerate(zip(results, labels)):
        color = f"C{i}" if many else None
        for k, run in enumerate(res.runs):
            x = np.arange(len(run.psnr)) if run.iterations is None else run.iterations
            name = (label if k == 0 else None) if many else f"run {run.run}"
            line, = ax.plot(x, run.psnr, linewidth=1, color=color, label=name)
            ax.plot([run.best_iteration], [run.best_psnr], "o", color=line.get_color(), markersize=5)
            ax.annotate(f"{run.best_psnr:.2f} dB @ {run.best_iteration}", (run.best_iteration, run.best_psnr),
                        textcoords="offset points", xytext=(4, 5 + 9 * k), fontsize=7, color=line.get_color())
        if not one_observation and np.isfinite(res.observed_psnr):
            ax.axhline(res.observed_psnr, color=color, linestyle=":", linewidth=1,
                       label=f"its observation, {res.observed_psnr:.2f} dB")
    if one_observation and np.isfinite(observed[0]):
        ax.axhline(observed[0], color="k", linestyle=":", label=f"observation {observed[0]:.2f} dB")
    ax.set_xlabel("iteration")
    ax.set_ylabel("PSNR against the clean target (dB)")
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + 0.08 * (high - low))  # room for the peaks' notes
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(_wrap(title + "\ndots: each run's best iteration (the peak)"), fontsize=9)
    fig.tight_layout()
    return fig


def frames_grid(frames: Sequence[tuple[str, np.ndarray]], *, title: str, cols: int = 6) -> Figure:
    """A grid of labelled frames (paper appendix D)."""
    rows = -(-len(frames) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, img) in zip(axes.flat, frames):
        ax.axis("on")
        show_image(ax, img, name)
    fig.suptitle(_wrap(title), fontsize=10)
    fig.tight_layout()
    return fig


def spectra_at_figure(frames: Sequence[tuple[int, np.ndarray]], target: np.ndarray, *, title: str) -> Figure:
    """Paper appendix Fig. 5: outputs (top) and their centred log power spectra (bottom) at
    chosen iterations, with the target's last. Frames are ``(iteration, (C, H, W))``."""
    from ..analyze.spectrum import luminance, power_spectrum

    items = [(f"iteration {it}", img) for it, img in frames] + [("target", target)]
    fig, axes = plt.subplots(2, len(items), figsize=(2.3 * len(items) + 1.2, 4.8), squeeze=False,
                             layout="constrained")
    spectra = [np.fft.fftshift(power_spectrum(luminance(img[None])[0])) for _, img in items]
    floor = max(float(np.max(spectra[-1])) * 1e-9, 1e-20)
    vmin, vmax = np.log10(floor), np.log10(max(float(np.max(s)) for s in spectra))
    for j, ((name, img), spec) in enumerate(zip(items, spectra)):
        show_image(axes[0, j], img, name)
        h, w = spec.shape
        im = axes[1, j].imshow(np.log10(np.maximum(spec, floor)), cmap="viridis", vmin=vmin, vmax=vmax,
                               extent=(-0.5, 0.5, -0.5, 0.5), interpolation="nearest")
        axes[1, j].set_xlabel("fx (cycles/px)", fontsize=8)
        if j == 0:
            axes[1, j].set_ylabel("fy (cycles/px)", fontsize=8)
        axes[1, j].tick_params(labelsize=7)
    fig.colorbar(im, ax=list(axes[1]), shrink=0.9, label="log10 power (luminance)")
    fig.suptitle(_wrap(title), fontsize=10)
    return fig
