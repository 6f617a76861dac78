"""Figures of the 1D experiments: SE curves over seeds, outputs at convergence, capacity
sweeps, amplitude heat maps and the spectral-bias curve (convergence time vs frequency).

Every function takes numbers that are already computed (``AmplitudeResult`` s, tables,
arrays) and returns a ``Figure``; none recomputes an analysis, none calls ``show()``.
Save with `spectral_lab.plot.save`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .titles import wrap

__all__ = ["se_curves", "se_range", "conv_vs_linear_figure", "capacity_figure", "amplitude_heatmaps",
           "spectral_bias_curve"]

_COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def se_curves(ax, results: Sequence, delta: float, *, center: str = "median", title: str | None = None) -> None:
    """SE(k) per frequency over iterations, log scale: the median (or mean) over runs, the
    min–max band, the δ line, and each run's settle iteration as a tick on it. The y-range
    runs from the curves' top to where they cross δ (`se_range`); x is the real iteration.

    ``results``: one ``AmplitudeResult`` per run (same frequencies). ``title``: None leaves
    the axes untitled; "" gives a default naming the runs.
    """
    if center not in ("median", "mean"):
        raise ValueError(f"center must be 'median' or 'mean', got {center!r}")
    t_len = min(len(r.se) for r in results)
    its = getattr(results[0], "iterations", None)
    it = np.arange(t_len) if its is None else np.asarray(its[:t_len])
    floor = np.finfo(np.float64).tiny  # an exact fit would vanish from a log axis
    drawn = []
    for j, freq in enumerate(results[0].freqs):
        se = np.stack([r.se[:t_len, j] for r in results])  # (R, T)
        c = _COLORS[j % len(_COLORS)]
        mid = np.median(se, axis=0) if center == "median" else se.mean(axis=0)
        ax.plot(it, np.maximum(mid, floor), color=c, label=f"k={freq:g}" + ("" if center == "median" else " (mean)"))
        drawn.append(se)
        if len(results) > 1:
            ax.fill_between(it, np.maximum(se.min(axis=0), floor), np.maximum(se.max(axis=0), floor),
                            color=c, alpha=0.2, linewidth=0)
        settled = [r.converged_at[j] for r in results if r.converged_at[j] is not None]
        ax.plot(settled, [delta] * len(settled), "|", color=c, markersize=12, markeredgewidth=1.5)
    ax.set_ylim(*se_range(np.stack(drawn), delta))
    ax.axhline(delta, color="k", linestyle=":", linewidth=1, label=f"δ = {delta:g}")
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("SE(k) = (Ã_k − A_k)²")
    if title is not None:
        ax.set_title(title or f"{len(results)} runs: {center}, min–max band, | = settled", fontsize=9)
    ax.legend(fontsize=8)


def se_range(se: np.ndarray, delta: float, *, below: float = 100.0) -> tuple[float, float]:
    """The y-range of SE curves on a log axis: from their largest value down to where they
    cross δ, at most ``below`` times under δ (curves that fit exactly would otherwise stretch
    the axis to 1e-300 and flatten the crossing)."""
    finite = np.asarray(se, dtype=np.float64)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    top = float(finite.max()) * 1.5 if finite.size else 10 * delta
    low = float(finite.min()) if finite.size else delta
    bottom = min(max(low, delta / below), delta / 2)
    return bottom, max(top, 2 * delta)


def conv_vs_linear_figure(panels: Mapping[str, Mapping], *, delta: float, title: str) -> Figure:
    """Paper Fig. 3 for several models: per model a row of [SE(k) curves, output of run 0
    when k1 settled, output of run 0 when k2 settled].

    ``panels``: label -> ``{"results": [AmplitudeResult per run], "target": (N,),
    "snapshots": [(iteration | None, frame (N,) | None, caption), ...]}``.
    """
    rows = len(panels)
    fig, axes = plt.subplots(rows, 3, figsize=(15, 3.6 * rows), squeeze=False,
                             gridspec_kw={"width_ratios": [1.3, 1, 1]})
    for row, (label, p) in zip(axes, panels.items()):
        se_curves(row[0], p["results"], delta, center="mean", title=wrap(f"{label}: SE(k), {len(p['results'])} seeds "
                                                                 f"(mean, min–max band, | = settled)", 70))
        target = np.asarray(p["target"])
        t = np.arange(target.size) / target.size
        for ax, (it, frame, caption) in zip(row[1:], p["snapshots"]):
            ax.plot(t, target, color="0.6", linewidth=1, label="target")
            if frame is not None:
                ax.plot(t, frame, color="C3", linewidth=1.2, label=f"output at iteration {it}")
            else:
                ax.text(0.5, 0.5, "never settled", ha="center", transform=ax.transAxes)
            ax.set_title(wrap(f"{label}: {caption}", 60), fontsize=9)
            ax.set_xlabel("t (signal length = 1)")
            ax.set_ylabel("signal value")
            ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(wrap(title, 150), fontsize=10)
    fig.tight_layout()
    return fig


def capacity_figure(points: Sequence[Mapping], *, families: Sequence[str], freqs: Sequence[float],
                    title: str, reading: str = "settle") -> Figure:
    """Paper Fig. 6 on a grid: per family, convergence time vs depth (one line per width) and
    vs width (one line per depth); colour = frequency, mean ± std over seeds.

    ``points``: ``{"family", "depth", "width", "budget", "per_freq": [S, ...]}`` with S a
    convergence summary ``{"mean", "std", "n_converged", "per_run"}`` per frequency. Hollow
    marker: only some runs converged (mean of those); triangle at the budget: none did.
    ``reading``: which convergence reading the numbers are (for the axis label only).
    """
    fig, axes = plt.subplots(len(families), 2, figsize=(12, 3.8 * len(families)), squeeze=False)
    styles = ["-", "--", "-.", ":"]
    markers = "osD^v<>"
    for row, family in zip(axes, families):
        pts = [p for p in points if p["family"] == family]
        depths = sorted({p["depth"] for p in pts})
        widths = sorted({p["width"] for p in pts})
        for ax, (xname, xs, lname, ls) in zip(row, (("depth", depths, "width", widths),
                                                    ("width", widths, "depth", depths))):
            for li, lval in enumerate(ls):
                for j, freq in enumerate(freqs):
                    line = sorted((p[xname], p["per_freq"][j], p["budget"]) for p in pts if p[lname] == lval)
                    x = np.array([v for v, _, _ in line], dtype=float)
                    mean = np.array([np.nan if s["mean"] is None else s["mean"] for _, s, _ in line], dtype=float)
                    std = np.array([0.0 if s["std"] is None else s["std"] for _, s, _ in line], dtype=float)
                    done = np.array([s["n_converged"] for _, s, _ in line])
                    runs = np.array([len(s["per_run"]) for _, s, _ in line])
                    color, marker = _COLORS[j % len(_COLORS)], markers[li % len(markers)]
                    ax.errorbar(x, mean, std, color=color, linestyle=styles[li % len(styles)], marker=marker,
                                capsize=3, markersize=4, label=f"k={freq:g}, {lname} {lval}")
                    partial = (done > 0) & (done < runs)
                    ax.plot(x[partial], mean[partial], marker, color=color, markerfacecolor="white", markersize=7)
                    never = done == 0
                    ax.plot(x[never], [b for (_, _, b), n in zip(line, never) if n], "^", color=color,
                            markerfacecolor="none", markersize=8)
            ax.set_xlabel(xname + (" (layers)" if xname == "depth" else " (channels / units per layer)"))
            ax.set_ylabel(f"convergence iteration ({reading})")
            if xname == "width":
                ax.set_xscale("log", base=2)
            ax.set_title(f"{family}: vs {xname}, mean ± std over seeds (hollow: some runs never "
                         f"converged; △: none by the budget)", fontsize=8)
            ax.legend(fontsize=6, ncol=2)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def amplitude_heatmaps(maps: Mapping[str, np.ndarray], freqs: Sequence[float], *, title: str,
                       ncols: int = 2) -> Figure:
    """Normalised amplitude Ã_k/A_k (mean over runs) per frequency over iterations, one panel
    per model. ``maps``: label -> array (K, T). Colour scale 0 (nothing fitted) to 1.2."""
    n = len(maps)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, 3.0 * nrows), squeeze=False,
                             layout="constrained")
    freqs = np.asarray(freqs, dtype=float)
    image = None
    for ax, (label, m) in zip(axes.flat, maps.items()):
        m = np.asarray(m, dtype=float)
        step = freqs[1] - freqs[0] if freqs.size > 1 else 1.0
        image = ax.imshow(m, aspect="auto", origin="lower", cmap="viridis", vmin=0.0, vmax=1.2,
                          interpolation="nearest",
                          extent=(-0.5, m.shape[1] - 0.5, freqs[0] - step / 2, freqs[-1] + step / 2))
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("iteration")
        ax.set_ylabel("frequency k (cycles / signal)")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="Ã_k / A_k (mean over runs)")
    fig.suptitle(title, fontsize=10)
    return fig


def spectral_bias_curve(curves: Mapping[str, Mapping], *, title: str,
                        ylabel: str = "convergence iteration") -> Figure:
    """Convergence time against frequency, one line per model (the spectral-bias curve).

    Left: iterations (log scale); right: divided by the line's value at the lowest frequency,
    so that models trained at different speeds compare as shapes.

    ``curves``: label -> ``{"freqs": (K,), "mean": (K,), "std": (K,), "n_converged": (K,),
    "n_runs": int, "budget": int}``; ``mean`` over the runs that converged (NaN if none).
    Filled marker: every run converged; hollow: only some did (the mean is a lower bound);
    a triangle at the budget: none did.
    """
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    for i, (label, c) in enumerate(curves.items()):
        f = np.asarray(c["freqs"], dtype=float)
        mean = np.asarray(c["mean"], dtype=float)
        std = np.asarray(c["std"], dtype=float)
        done = np.asarray(c["n_converged"])
        color, marker = _COLORS[i % len(_COLORS)], "os^Dv<>"[i % 7]
        scale = mean[0] if np.isfinite(mean[0]) and mean[0] > 0 else np.nan
        for ax, div in ((axes[0], 1.0), (axes[1], scale)):
            ax.errorbar(f, mean / div, std / div, color=color, marker=marker, capsize=3, label=label,
                        markerfacecolor=color)
            partial = (done > 0) & (done < c["n_runs"])
            ax.plot(f[partial], mean[partial] / div, marker, color=color, markerfacecolor="white", markersize=8)
            never = done == 0
            if never.any() and np.isfinite(div):
                ax.plot(f[never], np.full(never.sum(), c["budget"] / div), "^", color=color, markersize=9,
                        markerfacecolor="none")
    axes[0].set_yscale("log")
    axes[0].set_ylabel(ylabel)
    axes[1].set_ylabel(ylabel + " / its value at the lowest k")
    for ax in axes:
        ax.set_xlabel("frequency k (cycles / signal)")
        ax.legend(fontsize=8)
    axes[0].set_title("hollow: some runs never converged (mean of the rest); △: none by the budget", fontsize=8)
    axes[1].set_title("normalised by the lowest frequency", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
