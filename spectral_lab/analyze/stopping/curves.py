"""What the stopping rules watch along two runs of a file, as curves (for figures).

`pair_curves_file` reads runs a and b whole (two runs' frames in memory: meant for the
example figure of a file, not for scoring, which `stop_file` streams).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spectral_lab.analyze._io import open_reader, run_frames
from spectral_lab.analyze.psnr import default_data_range, psnr
from spectral_lab.analyze.stopping.rules import clipped_noise_variance, pair_disagreement, wmv_variance
from spectral_lab.analyze.stopping.sure import sure_curve_file
from spectral_lab.errors import AnalysisError

__all__ = ["pair_curves_file"]


def pair_curves_file(traj_or_path: Any, pair: tuple[int, int] = (0, 1), *, window: int = 100,
                     twin: Any = None) -> dict[str, Any]:
    """Per iteration t, over the frames both runs have (T of them):

    - ``psnr`` (3, T): PSNR of run a, of run b and of their average (a_t + b_t)/2 against the
      clean image (`default_data_range`);
    - ``epsilon`` (T,): the pair's disagreement Σ (a_t − b_t)² (`pair_disagreement`);
    - ``wmv``: {t: windowed moving variance of run a} (ES-WMV's curve, window ``window``);
    - ``residual`` (T,): the mean over the pair of mean((x_t − y)²), y the observation;
    - ``level`` (T,): the noise variance the discrepancy rules compare it with: σ² for 1D
      signals, the clipped noise's variance at the pair average for images
      (`clipped_noise_variance`); ``sigma``: σ in signal units (the file's σ / 255);
    - ``sure`` (T,) of run a from its ``twin`` file (`sure_curve_file`), None without one.
    """
    with open_reader(traj_or_path) as t:
        if t.config.get("task") != "denoise":
            raise AnalysisError("stopping curves need a denoising file (an observation with noise)")
        a_run, b_run = pair
        sigma = float(t.config["degrade"]["sigma"]) / 255.0
        clip = t.kind == "image"  # images are clipped after the noise
        observed = np.asarray(t.observed, dtype=np.float64)
        clean = np.asarray(t.target, dtype=np.float64)
        a, b = (np.stack([np.asarray(f, dtype=np.float64) for f in run_frames(t, r)]) for r in pair)
        n = min(len(a), len(b))
        a, b = a[:n], b[:n]
        data_range = default_data_range(t.kind, clean)
        mean = 0.5 * (a + b)
        curves = {
            "psnr": np.stack([psnr(a, clean, data_range), psnr(b, clean, data_range), psnr(mean, clean, data_range)]),
            "epsilon": np.array(list(pair_disagreement(a, b))),
            "wmv": dict(wmv_variance(a, window)),
            "residual": 0.5 * (np.mean(((a - observed) ** 2).reshape(n, -1), axis=1)
                               + np.mean(((b - observed) ** 2).reshape(n, -1), axis=1)),
            "level": np.array([clipped_noise_variance(m, sigma) if clip else sigma**2 for m in mean]),
            "sigma": sigma,
            "sure": None if twin is None else sure_curve_file(t, twin, a_run),
        }
    return curves
