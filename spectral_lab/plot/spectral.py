"""Figures of the image experiments: ε by source of randomness (paper Fig. 1 e), ε by pattern
extent (Fig. 1 f–h), up-sampling responses (appendix E) and spectra by stride (Fig. 4).

Every function takes results already computed (``DivergenceResult``, ``SpectrumResult``,
arrays) and returns a Figure; nothing here recomputes an analysis.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from . import show_image
from .images import spectrum_heatmap

__all__ = ["divergence_by_source_figure", "pattern_extent_figure", "upsampling_response_figure",
           "stride_spectrum_figure"]

EPSILON_LABEL = "ε(i) = Σ (T₁(i) − T₂(i))²"


def _epsilon_axis(ax) -> None:
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(EPSILON_LABEL)


def divergence_by_source_figure(results: Mapping[str, object], *, title: str,
                                reconvergence: Mapping[str, Mapping[tuple[int, int], int | None]] | None = None
                                ) -> Figure:
    """One panel per source of randomness (``"weights"``, ``"input"``, ``"both"``): ε of every
    pair of runs that differ in that source, with its detected convergence points (dots) and,
    if given, the iteration where the runs re-converge (crosses), on a shared log axis.

    Parameters
    ----------
    results : mapping label -> DivergenceResult
        One per source, in panel order.
    reconvergence : mapping label -> {pair: iteration or None}, optional
        The second convergence of each pair (the end of the rebound), as computed by the caller.
    """
    labels = list(results)
    fig, axes = plt.subplots(1, len(labels), figsize=(4.6 * len(labels), 4.2), sharey=True, squeeze=False)
    for ax, label in zip(axes[0], labels):
        res = results[label]
        for pair, eps in res.pairs.items():
            line, = ax.plot(np.arange(len(eps)), eps, linewidth=1, label=f"runs {pair[0]},{pair[1]}")
            pts = res.points[pair]
            ax.plot(pts, eps[pts], "o", color=line.get_color(), markersize=6)
            again = (reconvergence or {}).get(label, {}).get(pair)
            if again is not None:
                ax.plot([again], [eps[again]], "x", color=line.get_color(), markersize=8, markeredgewidth=2)
        _epsilon_axis(ax)
        if ax is not axes[0][0]:
            ax.set_ylabel("")
        ax.set_title(f"runs differ in: {label}", fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f"{title}\ndots: detected convergence points (dips of ε); ×: re-convergence (ε back at its "
                 f"value at the first dip)", fontsize=10)
    fig.tight_layout()
    return fig


def pattern_extent_figure(results: Mapping[str, object], targets: Mapping[str, np.ndarray],
                          summary: Mapping[str, tuple[float, float]], *, title: str,
                          summary_label: str) -> Figure:
    """Top row: the targets; bottom left: the mean ε over pairs per extent (log scale,
    min–max band over pairs); bottom right: a scalar summary per extent, mean ± std.

    Parameters
    ----------
    results : mapping extent label -> DivergenceResult
        In increasing extent.
    targets : mapping extent label -> array (C, H, W)
    summary : mapping extent label -> (mean, std)
    summary_label : str
        The y-axis label of the summary (what it is, with units).
    """
    labels = list(results)
    n = len(labels)
    fig = plt.figure(figsize=(max(10, 2.1 * n), 7.5))
    grid = fig.add_gridspec(2, n, height_ratios=[1, 1.6])
    colors = plt.cm.viridis(np.linspace(0.0, 0.9, n))
    for j, label in enumerate(labels):
        show_image(fig.add_subplot(grid[0, j]), targets[label], f"pattern over {label}")
    ax = fig.add_subplot(grid[1, : max(1, (2 * n) // 3)])
    for color, label in zip(colors, labels):
        res = results[label]
        stacked = np.stack(list(res.pairs.values()))
        it = np.arange(stacked.shape[1])
        ax.plot(it, res.mean, color=color, linewidth=1.2, label=f"{label} ({len(res.pairs)} pairs)")
        if len(stacked) > 1:
            ax.fill_between(it, stacked.min(axis=0), stacked.max(axis=0), color=color, alpha=0.15, linewidth=0)
    _epsilon_axis(ax)
    ax.set_ylabel(EPSILON_LABEL + ", mean over pairs")
    ax.set_title("inter-run divergence by pattern extent (band: min–max over pairs)", fontsize=9)
    ax.legend(fontsize=8)
    ax = fig.add_subplot(grid[1, max(1, (2 * n) // 3):])
    means = [summary[label][0] for label in labels]
    stds = [summary[label][1] for label in labels]
    ax.errorbar(np.arange(n), means, yerr=stds, fmt="o-", color="k", capsize=3)
    ax.set_xticks(np.arange(n), labels, rotation=30, fontsize=8)
    ax.set_xlabel("area covered by the fine pattern")
    ax.set_ylabel(summary_label)
    ax.set_title("summary per extent (mean ± std over pairs)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def upsampling_response_figure(freqs: np.ndarray, responses: Mapping[tuple[str, int], Mapping[str, np.ndarray]],
                               *, title: str) -> Figure:
    """One panel per mode: for every stride L, the appendix-E formula (dashed), the exact
    gain of the torch layer (solid) and the gain measured from the layer (dots).

    Parameters
    ----------
    freqs : array (K,)
        Cycles per output sample, in [0, 1/2].
    responses : mapping (mode, stride) -> {"paper": (K,), "layer": (K,), "measured": (K,)}
    """
    modes = list(dict.fromkeys(mode for mode, _ in responses))
    fig, axes = plt.subplots(1, len(modes), figsize=(6.2 * len(modes), 4.4), sharey=True, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, mode in zip(axes[0], modes):
        strides = sorted(stride for m, stride in responses if m == mode)
        for c, stride in zip(colors, strides):
            r = responses[(mode, stride)]
            ax.plot(freqs, r["layer"], color=c, linewidth=1.3, label=f"L={stride}: torch layer (exact)")
            ax.plot(freqs, r["paper"], color=c, linestyle="--", linewidth=1, label=f"L={stride}: appendix E")
            step = max(1, len(freqs) // 40)
            ax.plot(freqs[::step], r["measured"][::step], "o", color=c, markersize=3,
                    label=f"L={stride}: measured")
        ax.set_yscale("log")
        ax.set_ylim(1e-5, 1.5)
        ax.set_xlim(0, float(np.max(freqs)))
        ax.set_xlabel("frequency k (cycles per output sample)")
        ax.set_ylabel("gain |H(k)| (1 at k = 0)")
        ax.set_title(f"{mode} up-sampling", fontsize=10)
        ax.legend(fontsize=7, ncol=3, loc="lower left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def stride_spectrum_figure(results: Mapping[str, object], outputs: Mapping[str, Sequence[tuple[str, np.ndarray]]],
                           *, title: str, run: int = 0) -> Figure:
    """Paper Fig. 4: per configuration (column) a heat map of one run's relative band-power
    error over iterations, and its outputs at a few iterations; last column: the per-band
    time to fit of every configuration and run (bands never fitted drawn above the budget).

    Parameters
    ----------
    results : mapping label -> SpectrumResult
        Same bands in all.
    outputs : mapping label -> [(caption, image (C, H, W)), ...]
        Frames of run ``run`` to show under each heat map.
    """
    labels = list(results)
    n_frames = max((len(outputs.get(label, ())) for label in labels), default=0)
    fig = plt.figure(figsize=(5.6 * len(labels) + 4.8, 4.2 + (2.2 if n_frames else 0)), layout="constrained")
    outer = fig.add_gridspec(2 if n_frames else 1, len(labels) + 1,
                             height_ratios=[2, 1] if n_frames else None, width_ratios=[1.3] * len(labels) + [1])
    for j, label in enumerate(labels):
        res = results[label]
        ax = fig.add_subplot(outer[0, j])
        im = spectrum_heatmap(ax, res.errors[run], res.band_edges,
                              title=f"{label}, run {run}: |P_out − P_{res.reference}| / P_{res.reference}")
        fig.colorbar(im, ax=ax, label="relative band-power error", pad=0.01)
        if n_frames:
            row = outer[1, j].subgridspec(1, n_frames)
            for k, (caption, img) in enumerate(outputs.get(label, ())):
                show_image(fig.add_subplot(row[0, k]), img, caption)
    ax = fig.add_subplot(outer[0, -1])
    markers = "os^vD"
    budget = max(len(e) - 1 for res in results.values() for e in res.errors)
    never_at = 1.06 * budget
    for j, label in enumerate(labels):
        res = results[label]
        upper = res.band_edges[2:]  # ring upper edges; band 0 (DC) is left out
        for r, times in enumerate(res.time_to_fit):
            t = np.array([never_at if v is None else v for v in times[1:]], dtype=float)
            alpha = 1.0 if r == 0 else 0.5
            ax.plot(upper, t, marker=markers[j % len(markers)], markersize=4, linewidth=1, color=f"C{j}",
                    alpha=alpha, label=label if r == 0 else None)
    ax.axhline(budget, color="k", linestyle=":", linewidth=1)
    ax.text(ax.get_xlim()[0], never_at, " never fitted", va="bottom", fontsize=8)
    ax.set_xlabel("band upper edge (cycles/pixel)")
    threshold = next(iter(results.values())).threshold
    ax.set_ylabel(f"time to fit (error ≤ {threshold:g} from then on), iterations")
    ax.set_title(f"per-band time to fit, every run (dotted: end of the run, {budget} it)", fontsize=9)
    ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig
