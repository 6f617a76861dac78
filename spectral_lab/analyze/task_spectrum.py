"""The spectral view of a restoration task: which frequency bands of the *missing* content
a run supplies first.

For each frame x_t the error image e_t = (x_t − x*) ⊙ w is restricted to the region the
observation does not constrain, and its radial band power (luminance, `spectrum.band_power`)
is divided by that of the clean content there, x* ⊙ w:

    E_b(t) = P_b((x_t − x*) ⊙ w) / P_b(x* ⊙ w),

the fraction of band b of the missing content still wrong at iteration t (1 at the start
for an output of 0 there, 0 when it is restored). w is the hole indicator 1 − m for
inpainting files, and 1 for the others (super-resolution observes every pixel but not the
frequencies above the observation's Nyquist frequency 1 / (2·factor) cycles/pixel, which
the result reports, so the bands above it are the missing ones; for denoising this is the
plain relative error spectrum). A band's *fill time* is the first iteration from which
E_b ≤ ``threshold`` (`spectrum.band_fit_times`).

A blend (003_…, A3) has no clean image: x* is then each run's own last frame x_T (so E_b(T)
= 0 and the fill time is when band b *settles* to its final content), and w one of the
objective's regions (`spectral_lab.analyze.blend.region_weights`): the transition band
w = 4α(1 − α) (the default), the foreground α, the background 1 − α, or all.

Caveat, measured in the tests: restricting to a region multiplies by w, which spreads each
frequency of e over the spectrum of w. For a contiguous region (a text mask, a block) that
blurs the bands by about 1 / (region width); for a random pixel mask (Bernoulli, p = ½) half
of the error's energy becomes white. The ratio to the clean content masked the same way
keeps the view comparable between bands, but for random masks read ``region="all"`` too:
the known pixels are fitted first and fast, so the whole-image error spectrum is the hole's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spectral_lab.analyze._io import (Result, at_iterations, frame_iterations, json_numbers, map_blocks, open_reader,
                                     operator_name)
from spectral_lab.analyze.blend import REGIONS as BLEND_REGIONS
from spectral_lab.analyze.blend import region_weights
from spectral_lab.analyze.spectrum import band_fit_times, band_power, radial_bands
from spectral_lab.errors import AnalysisError

__all__ = ["REGIONS", "TaskSpectrumResult", "task_spectrum_file", "missing_band_error"]

#: The regions `task_spectrum_file` takes.
REGIONS = ("auto", "hole", *BLEND_REGIONS, "all")


def missing_band_error(frames: np.ndarray, clean: np.ndarray, weights: np.ndarray | None = None,
                       n_bands: int | None = None) -> np.ndarray:
    """E_b(t) of frames ``(T, C, H, W)`` against ``clean`` ``(C, H, W)`` in the region ``weights``
    (``(1, H, W)`` or None for all), ``(T, B)`` float64."""
    x = np.asarray(frames, dtype=np.float64)
    ref = np.asarray(clean, dtype=np.float64)
    w = 1.0 if weights is None else np.asarray(weights, dtype=np.float64)
    missing = band_power((ref * w)[None], n_bands)[0]
    floor = 1e-12 * max(float(missing.sum()), 1e-300)
    return band_power((x - ref) * w, n_bands) / np.maximum(missing, floor)


@dataclass(frozen=True, eq=False)
class TaskSpectrumResult(Result):
    """`task_spectrum_file`: the region, band edges (cycles/pixel), per run E_b(t) ``(T, B)``
    and each band's fill time; ``observed_nyquist``: the highest frequency the observation
    holds (super-resolution: 1 / (2·factor); None when it holds all); ``reference``: what x*
    is, ``target`` (the clean image) or ``final`` (each run's last frame: a blend)."""

    operator: str
    region: str
    threshold: float
    band_edges: np.ndarray
    errors: tuple[np.ndarray, ...]
    fill_times: tuple[list[int | None], ...]
    observed_nyquist: float | None
    reference: str = "target"

    def to_json(self) -> dict:
        return {"operator": self.operator, "region": self.region, "reference": self.reference,
                "threshold": self.threshold,
                "band_edges": self.band_edges.tolist(), "observed_nyquist": self.observed_nyquist,
                "error": [json_numbers(e) for e in self.errors], "fill_time": [list(t) for t in self.fill_times]}


def task_spectrum_file(traj_or_path: Any, *, region: str = "auto", n_bands: int | None = None,
                       threshold: float = 0.1, chunk: int | None = None) -> TaskSpectrumResult:
    """E_b(t) and fill times of every run of an image trajectory, streamed.

    ``region``: ``auto`` (the hole for inpainting files, the transition band for blends, else
    all), ``hole`` (inpainting), ``transition``, ``foreground``, ``background`` (blends) or
    ``all``. For a blend x* is each run's last frame (the module docstring).
    """
    if region not in REGIONS:
        raise AnalysisError(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
    with open_reader(traj_or_path) as traj:
        if traj.kind != "image":
            raise AnalysisError("the task's spectral view needs image trajectories; this file holds a 1D signal")
        op = operator_name(traj)
        # the reader's `known` is the operator's mask array, which a blend has too (its foreground)
        known = getattr(traj, "known", None) if op != "blend" else None
        if region == "auto":
            region = "hole" if known is not None else "transition" if op == "blend" else "all"
        if region == "hole" and known is None:
            raise AnalysisError(f"region hole needs an inpainting file (a mask operator); this file's operator is {op}")
        if region in BLEND_REGIONS and op != "blend":
            raise AnalysisError(f"region {region} needs a blend file (record --task blend); this file's operator "
                                f"is {op}")
        if region == "all":
            weights = None
        elif region == "hole":
            weights = 1.0 - known
        else:
            weights = region_weights(traj, region)
        reference = "final" if op == "blend" else "target"

        def errors_of(r: int) -> np.ndarray:
            if reference == "target":
                clean = np.asarray(traj.target, dtype=np.float64)
            else:
                if traj.n_frames(r) == 0:
                    raise AnalysisError(f"run {r} has no recorded frames")
                clean = np.asarray(traj.frames(r)[traj.n_frames(r) - 1], dtype=np.float64)
            return map_blocks(traj, r, lambda b: missing_band_error(b, clean, weights, n_bands), chunk)

        _, edges = radial_bands(tuple(traj.signal_shape[-2:]), n_bands)
        errors = tuple(errors_of(r) for r in range(traj.n_runs))
        its = [frame_iterations(traj, r) for r in range(traj.n_runs)]
        nyquist = None
        if op == "downsample":
            nyquist = 0.5 / int(traj.operator["options"]["factor"])
    return TaskSpectrumResult(op, region, float(threshold), edges, errors,
                              tuple(at_iterations(i, band_fit_times(e, threshold)) for e, i in zip(errors, its)),
                              nyquist, reference)
