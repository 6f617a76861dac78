"""Figures: ``(results, ...) -> Figure``. Plots never recompute an analysis and never show().

Every figure has labelled axes with units and a title saying what was run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .titles import labels_of, title_of, wrap  # noqa: E402

__all__ = ["save", "amplitude_figure", "title_of", "labels_of", "show_image"]


def save(fig: Figure, path: str | Path, dpi: int = 120, *, overwrite: bool = True) -> Path:
    """Write the figure (folders created, through a hidden sibling renamed into place) and
    close it. An HDF5 file is never replaced, another existing file only with ``overwrite``
    (`spectral_lab.outputs`)."""
    from ..outputs import check_output, write_atomically

    try:
        path = check_output(path, overwrite=overwrite)
        return write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight"),
                                overwrite=overwrite)
    finally:
        plt.close(fig)


def amplitude_figure(results: Mapping[int, object], target: np.ndarray, frames_at: Mapping[int, np.ndarray],
                     *, delta: float, title: str) -> Figure:
    """Paper Fig. 3: SE curves (all runs) and run 0's output when each frequency converged.

    ``frames_at`` maps an iteration to run 0's frame at that iteration.
    """
    runs = [results[r] for r in sorted(results)]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1.2, 1]})
    from .oned import se_curves

    se_curves(axes[0], runs, delta)
    axes[0].set_title(f"squared amplitude error, {len(runs)} run(s) (median, min–max)")
    ax = axes[1]
    t = np.arange(target.shape[-1]) / target.shape[-1]
    ax.plot(t, target, color="k", linewidth=1.5, label="target")
    first = runs[0]
    for k, freq in enumerate(first.freqs):
        it = first.converged_at[k]
        if it is not None and it in frames_at:
            ax.plot(t, frames_at[it], linewidth=1, label=f"run 0 at iteration {it} (k={freq:g} converged)")
    ax.set_xlabel("t (signal length = 1)")
    ax.set_ylabel("signal value")
    ax.set_title("outputs when each frequency converged")
    ax.legend(fontsize=8)
    fig.suptitle(wrap(title), fontsize=10)
    fig.tight_layout()
    return fig


def show_image(ax, image: np.ndarray, title: str = "") -> None:
    """Draw a ``(C, H, W)`` frame in [0, 1] (clipped) without axes."""
    img = np.clip(np.asarray(image, dtype=np.float64), 0, 1)
    if img.shape[0] == 1:
        ax.imshow(img[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(np.moveaxis(img, 0, -1), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
