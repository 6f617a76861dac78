"""Figures of the denoising experiments: architectures (paper Table 1, appendix D), the
low-frequency-noise failure case (Fig. 2) and ground-truth-free stopping rules.

Every function takes finished numbers (curves, frames, tables) and returns a Figure; none
recomputes an analysis or shows anything.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from . import show_image
from .titles import wrap

__all__ = ["psnr_curves_figure", "output_grid_figure", "failure_figure", "band_error_figure",
           "cutoff_sweep_figure", "stopping_example_figure", "stopping_gap_figure", "stopping_rules_figure"]


def _wrap(title: str, width: int = 150) -> str:
    """Long titles (the full setting of a run) on several lines instead of a wide figure."""
    return wrap(title, width)


def _band(ax, x, curves: np.ndarray, label: str, color=None):
    """Mean over runs as a line, min–max over runs as a band; returns the line's colour."""
    curves = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    line, = ax.plot(x, curves.mean(axis=0), linewidth=1.2, label=label, color=color)
    if len(curves) > 1:
        ax.fill_between(x, curves.min(axis=0), curves.max(axis=0), color=line.get_color(), alpha=0.2, linewidth=0)
    return line.get_color()


def psnr_curves_figure(curves: Mapping[str, np.ndarray], observed_psnr: float, *, title: str,
                       iterations: Mapping[str, int] | None = None) -> Figure:
    """PSNR against the clean image over iterations, one curve per model on one image.

    ``curves``: label -> ``(R, T)`` PSNR of R runs (entry i = iteration i). Mean and min–max
    over runs, a dot at the best of the mean curve, the observation's PSNR as a dotted line.
    The x axis is logarithmic (iteration + 1): the models' budgets differ by orders of
    magnitude. A vertical tick marks each model's budget, so a curve still rising at its
    tick has not reached its peak.
    """
    fig, ax = plt.subplots(figsize=(9, 5))
    for label, c in curves.items():
        c = np.atleast_2d(c)
        x = np.arange(c.shape[1]) + 1
        color = _band(ax, x, c, label)
        mean = c.mean(axis=0)
        b = int(np.nanargmax(mean))
        ax.plot([x[b]], [mean[b]], "o", color=color, markersize=5)
        ax.annotate(f"{mean[b]:.2f} dB @ {b}", (x[b], mean[b]), textcoords="offset points", xytext=(4, 6),
                    fontsize=7, color=color)
        if iterations is not None and label in iterations:
            ax.axvline(iterations[label] + 1, color=color, linestyle="--", linewidth=0.6, alpha=0.6)
    ax.axhline(observed_psnr, color="k", linestyle=":", linewidth=1, label=f"observation {observed_psnr:.2f} dB")
    ax.set_xscale("log")
    ax.set_xlabel("iteration + 1 (log scale; dashed: end of each model's budget)")
    ax.set_ylabel("PSNR against the clean image (dB)")
    lo = min(observed_psnr, min(np.nanmax(np.atleast_2d(c).mean(axis=0)) for c in curves.values())) - 6
    ax.set_ylim(bottom=max(lo, 0))
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    ax.set_title(_wrap(title, 110), fontsize=9)
    fig.tight_layout()
    return fig


def output_grid_figure(rows: Sequence[tuple[str, Sequence[tuple[str, np.ndarray]]]], *, title: str) -> Figure:
    """Rows of labelled frames ``(C, H, W)`` in [0, 1]: ``[(row label, [(caption, frame), ...]), ...]``."""
    cols = max(len(frames) for _, frames in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.1 * cols + 0.6, 2.2 * len(rows)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for (label, frames), ax_row in zip(rows, axes):
        for j, (caption, frame) in enumerate(frames):
            ax_row[j].axis("on")
            show_image(ax_row[j], frame, caption)
        ax_row[0].set_ylabel(label, fontsize=9)
        ax_row[0].yaxis.label.set_visible(True)
    fig.suptitle(_wrap(title), fontsize=9)
    fig.tight_layout()
    return fig


def failure_figure(psnr: Mapping[str, np.ndarray], observed: Mapping[str, float],
                   fractions: Mapping[str, Mapping[str, np.ndarray]], *, half: float = 0.5,
                   title: str, iterations: Mapping[str, np.ndarray] | None = None) -> Figure:
    """Paper Fig. 2 as curves: per noise kind, PSNR over iterations (left) and what the output
    holds (right): ν(t), the fraction of the noise, and η(t), the fraction of the clean image's
    content above the cut-off (``fractions[kind] = {"noise_fitted": (R, T), "highfreq_fitted":
    (R, T)}``). Mean and min–max over runs; log iteration axis. ``iterations[kind]``: the
    iteration of each column (a frame stride); default 0, 1, 2, ..."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (kind, curves) in enumerate(psnr.items()):
        c = colors[k % len(colors)]
        curves = np.atleast_2d(curves)
        its = None if iterations is None else iterations.get(kind)
        x = (np.arange(curves.shape[1]) if its is None else np.asarray(its[: curves.shape[1]])) + 1
        _band(axes[0], x, curves, f"{kind}: best {curves.max(axis=1).mean():.2f} dB", color=c)
        axes[0].axhline(observed[kind], color=c, linestyle=":", linewidth=1,
                        label=f"{kind}: observation {observed[kind]:.2f} dB")
        fr = fractions[kind]
        _band(axes[1], x, fr["noise_fitted"], f"{kind}: ν, noise in the output", color=c)
        _band(axes[1], x, fr["highfreq_fitted"], f"{kind}: η, image content above the cut-off", color=c)
        axes[1].lines[-1].set_linestyle("--")
    axes[0].set_ylabel("PSNR against the clean image (dB)")
    axes[1].axhline(half, color="k", linewidth=0.6, linestyle=":")
    axes[1].set_ylabel("fraction present in the output")
    axes[1].set_ylim(-0.1, 1.15)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("iteration + 1 (log scale)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_title("PSNR along the trajectory", fontsize=9)
    axes[1].set_title("what has been fitted: noise ν (solid) vs the image's high frequencies η (dashed)", fontsize=9)
    fig.suptitle(_wrap(title), fontsize=9)
    fig.tight_layout()
    return fig


def band_error_figure(errors: Mapping[str, tuple[np.ndarray, np.ndarray]], band_edges: np.ndarray, *,
                      cutoff: float, title: str) -> Figure:
    """Per noise kind: heat map of the error power against the clean image relative to the
    clean image's power, P_b(x_t − x*) / P_b(x*), over iterations (x, log) and radial bands
    (y, cycles/pixel), and beside it the same ratio of the noise itself, P_b(n) / P_b(x*).
    ``errors[kind] = ((T, B) ratios, (B,) noise ratios)``; a white line marks the cut-off."""
    from matplotlib.colors import LogNorm

    n = len(errors)
    fig, axes = plt.subplots(1, n, figsize=(6.4 * n, 4.4), squeeze=False)
    norm = LogNorm(vmin=1e-3, vmax=10.0)
    centres = 0.5 * (band_edges[1:-1] + band_edges[2:])  # ring bands (DC left out)
    for ax, (kind, (err, noise)) in zip(axes[0], errors.items()):
        err = np.clip(np.asarray(err, dtype=np.float64)[:, 1:], 1e-3, 10.0)
        t = np.arange(err.shape[0]) + 1
        im = ax.pcolormesh(t, centres, err.T, norm=norm, cmap="magma", shading="nearest")
        ax.set_xscale("log")
        ax.axhline(cutoff, color="w", linewidth=1, linestyle="--")
        ax.set_xlabel("iteration + 1 (log scale)")
        ax.set_ylabel("radial frequency (cycles/pixel)")
        ax.set_title(f"{kind}: P_b(x_t − x*) / P_b(x*), run 0", fontsize=9)
        inset = ax.inset_axes([1.02, 0, 0.12, 1], sharey=ax)
        inset.barh(centres, np.clip(np.asarray(noise)[1:], 1e-3, 10.0), height=np.diff(band_edges[1:]),
                   color="0.4")
        inset.set_xscale("log")
        inset.set_xlim(1e-3, 10)
        inset.tick_params(labelleft=False, labelsize=6)
        inset.set_title("noise", fontsize=7)
        fig.colorbar(im, ax=ax, pad=0.2, label="relative error power")
    fig.suptitle(_wrap(title), fontsize=9)
    fig.tight_layout()
    return fig


def cutoff_sweep_figure(cutoffs: Sequence[float], gains: Sequence[Sequence[float]],
                        noise_at_best: Sequence[Sequence[float]], highfreq_at_best: Sequence[Sequence[float]], *,
                        white_gain: Sequence[float] | None = None, title: str) -> Figure:
    """Left: gain of the best iteration over the observation (dB) vs the low-frequency noise's
    cut-off (one dot per run, line through the means); right: at the best iteration, the
    fraction of the noise (ν) and of the image's content above the cut-off (η) in the output."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    c = np.asarray(cutoffs, dtype=np.float64)
    for ax, series in ((axes[0], [("gain", gains, "C0")]),
                       (axes[1], [("ν: noise in the output", noise_at_best, "C3"),
                                  ("η: image above the cut-off in the output", highfreq_at_best, "C2")])):
        for label, values, color in series:
            means = [np.mean(v) for v in values]
            ax.plot(c, means, "-", color=color, label=label)
            for ci, v in zip(c, values):
                ax.plot([ci] * len(v), v, "o", color=color, markersize=4, alpha=0.7)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(c)
        ax.set_xticklabels([f"{v:.3g}" for v in c], fontsize=8)
        ax.set_xlabel("low-frequency noise cut-off (cycles/pixel, log scale)")
        ax.grid(alpha=0.3)
    if white_gain is not None:
        axes[0].axhline(np.mean(white_gain), color="k", linestyle=":", label="white noise, same σ")
    axes[0].axhline(0, color="k", linewidth=0.6)
    axes[0].set_ylabel("best PSNR − observation PSNR (dB)")
    axes[0].set_title("what early stopping can gain", fontsize=9)
    axes[1].set_ylabel("fraction present at the best iteration")
    axes[1].set_title("the best frame's content", fontsize=9)
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle(_wrap(title), fontsize=9)
    fig.tight_layout()
    return fig


def stopping_example_figure(curves: Mapping[str, object], chosen: Mapping[str, int], *, observed_psnr: float,
                            title: str) -> Figure:
    """One pair of runs: PSNR of each run and of their average with every rule's chosen
    iteration (top), and the signals the rules read (bottom): the pair's disagreement ε(t),
    the windowed moving variance of run 0, and the runs' mean residual against the
    observation with the noise level. ``curves``: {"psnr": (3, T), "epsilon": (T,),
    "wmv": {t: var}, "residual": (T,), "sigma": float} and optionally "level": (T,) and "sure":
    (T,), run 0's SURE estimate of its MSE, drawn as the PSNR it predicts (images in [0, 1])."""
    fig, axes = plt.subplots(2, 1, figsize=(10, 7.5), sharex=True)
    p = np.asarray(curves["psnr"])
    x = np.arange(p.shape[1]) + 1
    for row, label in zip(p, ("run 0", "run 1", "average of runs 0, 1")):
        axes[0].plot(x, row, linewidth=1, label=label)
    axes[0].axhline(observed_psnr, color="k", linestyle=":", linewidth=1, label=f"observation {observed_psnr:.2f} dB")
    if curves.get("sure") is not None:
        sure = np.asarray(curves["sure"], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            predicted = np.where(sure > 0, -10 * np.log10(sure), np.nan)
        axes[0].plot(x[: sure.size], predicted, color="C0", linestyle=":", linewidth=1,
                     label="run 0: PSNR predicted by SURE")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (rule, it) in enumerate(chosen.items()):
        c = colors[(k + 3) % len(colors)]
        for ax in axes:
            ax.axvline(it + 1, color=c, linestyle="--", linewidth=1, label=f"{rule}: {it}" if ax is axes[0] else None)
    axes[0].set_ylabel("PSNR against the clean image (dB)")
    axes[0].legend(fontsize=7, ncol=2)
    axes[0].set_title("PSNR and the rules' stops (x: iteration + 1, log)", fontsize=9)
    ax = axes[1]
    eps = np.asarray(curves["epsilon"], dtype=np.float64)
    n = eps.size
    ax.plot(x[:n], eps / eps.max(), color="C0", label="ε(t) / max ε (pair disagreement)")
    wmv = curves["wmv"]
    if wmv:
        t = np.array(sorted(wmv))
        v = np.array([wmv[i] for i in t])
        ax.plot(t + 1, v / v.max(), color="C1", label="ES-WMV variance / max (run 0)")
    res = np.asarray(curves["residual"], dtype=np.float64)
    sigma2 = float(curves["sigma"]) ** 2
    ax.plot(x[: res.size], res / sigma2, color="C2", label="mean residual of runs 0, 1 / σ²")
    if "level" in curves:
        level = np.asarray(curves["level"], dtype=np.float64)
        ax.plot(x[: level.size], level / sigma2, color="C2", linestyle="--",
                label="noise level (clipped Gaussian at the average) / σ²")
    ax.axhline(1.0, color="k", linestyle=":", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xlabel("iteration + 1 (log scale)")
    ax.set_ylabel("normalised value")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.suptitle(_wrap(title), fontsize=9)
    fig.tight_layout()
    return fig


def stopping_gap_figure(losses: Mapping[str, Mapping[str, Sequence[float]]], *, title: str) -> Figure:
    """Loss of each rule against the single-run oracle (dB; below 0: better than one run stopped
    at its best), one column of dots per rule and noise kind; bars: mean. ``losses[rule][noise]``."""
    rules = list(losses)
    noises = sorted({n for v in losses.values() for n in v})
    fig, ax = plt.subplots(figsize=(max(7.0, 1.7 * len(rules)), 4.5))
    width = 0.8 / max(len(noises), 1)
    for j, noise in enumerate(noises):
        pos = np.arange(len(rules)) + (j - (len(noises) - 1) / 2) * width
        means = [np.mean(losses[r].get(noise, [np.nan])) if losses[r].get(noise) else np.nan for r in rules]
        ax.bar(pos, means, width=width * 0.9, alpha=0.35, color=f"C{j}", label=f"{noise} (mean)")
        for p, r in zip(pos, rules):
            v = losses[r].get(noise) or []
            ax.plot([p] * len(v), v, "o", color=f"C{j}", markersize=4)
    ax.axhline(0, color="k", linewidth=0.8)
    ax.set_xticks(np.arange(len(rules)))
    ax.set_xticklabels(rules, fontsize=8)
    ax.set_ylabel("single-run oracle best − PSNR of the rule's output (dB)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(_wrap(title, 120), fontsize=8)
    fig.tight_layout()
    return fig


def stopping_rules_figure(psnr, stops: Mapping[str, object], *, title: str) -> Figure:
    """Where each stopping rule stops, on the PSNR curves of one file.

    ``psnr``: the file's `PsnrResult` (every run's curve against the clean image, drawn in one
    colour per run, its oracle best as a star); ``stops``: rule name -> `StopResult`, each
    decision a marker (one shape per rule) at the chosen iteration and the PSNR of the rule's
    output: on the run's curve, or for a pair rule, the PSNR of the pair's average (hollow, it
    lies off the single-run curves). The legend gives each rule's mean loss to the oracle."""
    fig, ax = plt.subplots(figsize=(9.5, 5.2))
    colors = {}
    for run in psnr.runs:
        x = np.arange(len(run.psnr)) if run.iterations is None else run.iterations
        line, = ax.plot(x, run.psnr, linewidth=1, label=f"run {run.run}")
        colors[run.run] = line.get_color()
        ax.plot([run.best_iteration], [run.best_psnr], "*", color=line.get_color(), markersize=11,
                markeredgecolor="k", markeredgewidth=0.5)
    ax.plot([], [], "*", color="0.5", markersize=11, markeredgecolor="k", markeredgewidth=0.5,
            label="oracle best (needs the clean image)")
    if np.isfinite(psnr.observed_psnr):
        ax.axhline(psnr.observed_psnr, color="k", linestyle=":", linewidth=1,
                   label=f"observation {psnr.observed_psnr:.2f} dB")
    markers = "oDs^vP<>X"
    for k, (rule, res) in enumerate(stops.items()):
        m = markers[k % len(markers)]
        gaps = [e.gap for e in res.entries if np.isfinite(e.gap)]
        for e in res.entries:
            pair = len(e.runs) > 1
            color = colors.get(e.runs[0], "0.3")
            ax.plot([e.iteration], [e.psnr], m, markersize=8, markeredgecolor=color, markeredgewidth=1.5,
                    markerfacecolor="none" if pair else color)
        what = "pair average" if any(len(e.runs) > 1 for e in res.entries) else "each run"
        mean_gap = f", {np.mean(gaps):.2f} dB below the oracle" if gaps else ""
        ax.plot([], [], m, color="0.4", markerfacecolor="none" if what == "pair average" else "0.4", markersize=8,
                label=f"{rule} ({what}){mean_gap}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("PSNR against the clean image (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(_wrap(title + "\nmarkers: where each rule stops (filled: a run, hollow: the average of a pair "
                       "of runs, scored as the rule's output)", 120), fontsize=8)
    fig.tight_layout()
    return fig
