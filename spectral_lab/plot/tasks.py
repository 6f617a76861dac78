"""Figures of the restoration-task experiments (inpainting, super-resolution): score curves
with the tasks' classical baselines beside them. Finished numbers in, a Figure out."""

from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .denoise import _band, _wrap

__all__ = ["task_curves_figure"]


def task_curves_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *, ylabel: str, title: str,
                       baselines: Mapping[str, Mapping[str, float]] | None = None) -> Figure:
    """One score (PSNR of a region, dB) along the trajectory per file.

    ``curves``: label -> ``(iterations (T,), scores (R, T))``: the mean over runs as a line,
    min–max over runs as a band; ``baselines``: label -> {baseline name: score}, drawn as
    horizontal lines in the curve's colour (dotted, dash-dotted, ... per name).
    """
    styles = (":", "-.", "--")
    fig, ax = plt.subplots(figsize=(9, 5))
    names: list[str] = []
    for label, (x, c) in curves.items():
        color = _band(ax, np.asarray(x), np.atleast_2d(c), label)
        for name, value in (baselines or {}).get(label, {}).items():
            if name not in names:
                names.append(name)
            ax.axhline(value, color=color, linestyle=styles[names.index(name) % len(styles)], linewidth=0.8)
    ax.set_xlabel("iteration" + ("" if not names else " (horizontal lines: "
                                 + ", ".join(f"{n} {styles[i % len(styles)]}" for i, n in enumerate(names)) + ")"))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if len(curves) > 8 else 1)
    ax.set_title(_wrap(title, 110), fontsize=9)
    fig.tight_layout()
    return fig
