"""When does a denoising run fit the noise, and when the image's own high frequencies?

Measures of a denoising trajectory against its clean target x* and its observation
y = x* + n, streamed over the file (`Trajectory.iter_frames`), for the failure case of paper
Fig. 2 (low-frequency noise is fitted before the image's high frequencies):

- `fitted_fractions`: ν(t) = ⟨x_t − x*, n⟩ / ⟨n, n⟩, the fraction of the noise present in the
  output, and η(t) = ⟨H x_t, H x*⟩ / ⟨H x*, H x*⟩ with H the ideal high-pass above a cut-off,
  the fraction of the clean image's content above the cut-off present in the output;
- `band_error`: per radial band b, P_b(x_t − x*) / P_b(x*), and the noise's own ratio;
- `first_reaching`: the first iteration a curve reaches a level (t_ν, t_η at ½).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spectral_lab.analyze._io import (Result, at_iterations, frame_iterations, json_float, map_blocks, open_reader,
                                     require_operator)
from spectral_lab.analyze.psnr import psnr_file
from spectral_lab.analyze.spectrum import band_power, radial_bands
from spectral_lab.errors import AnalysisError
from spectral_lab.fourier import frequency_radius

__all__ = ["fitted_fractions", "band_error", "first_reaching", "noise_fit_file", "NoiseFitResult"]


def fitted_fractions(traj, cutoff: float) -> dict[str, np.ndarray]:
    """ν(t) (noise fitted) and η(t) (clean content above ``cutoff`` fitted) of every run,
    ``(R, T)`` each, keys ``noise_fitted`` and ``highfreq_fitted``, streamed over the file.
    η is NaN when no frequency lies above the cut-off. Images only; a file whose observation
    is its target (no noise) raises AnalysisError."""
    if traj.kind != "image":
        raise AnalysisError("fitted fractions are defined for images (C, H, W)")
    require_operator(traj, ("identity",), "the noise-fit analysis (noise = observation - clean image)")
    clean = np.asarray(traj.target, dtype=np.float64)
    noise = np.asarray(traj.observed, dtype=np.float64) - clean
    high = frequency_radius(clean.shape[-2:]) > cutoff
    clean_f = np.fft.fft2(clean)
    # no frequency above the cut-off (cut-off >= sqrt(1/2)): eta is undefined, NaN
    hf_norm = float(np.sum(high * np.abs(clean_f) ** 2)) or np.nan
    noise_norm = float(np.sum(noise**2))
    if noise_norm == 0:
        raise AnalysisError("the observation equals the target: there is no noise to be fitted")
    def fractions(block: np.ndarray) -> np.ndarray:  # (B, 2): nu, eta per frame
        x = block.astype(np.float64)
        nu = np.sum((x - clean) * noise, axis=(1, 2, 3)) / noise_norm
        # Parseval: <Hx, Hx*> = (1/N) sum over the kept frequencies of Re(X conj(X*))
        eta = np.sum(high * np.real(np.fft.fft2(x) * np.conj(clean_f)), axis=(1, 2, 3)) / hf_norm
        return np.stack([nu, eta], axis=1)

    per_run = np.stack([map_blocks(traj, r, fractions) for r in range(traj.n_runs)])  # (R, T, 2)
    return {"noise_fitted": per_run[..., 0], "highfreq_fitted": per_run[..., 1]}


def band_error(traj, run: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P_b(x_t − x*) / P_b(x*) per iteration and band ``(T, B)`` of one run (luminance), the
    noise's own ratio P_b(y − x*) / P_b(x*) ``(B,)`` and the band edges."""
    clean = np.asarray(traj.target, dtype=np.float64)
    _, edges = radial_bands(clean.shape[-2:])
    ref = band_power(clean[None])[0]
    noise = band_power((np.asarray(traj.observed, dtype=np.float64) - clean)[None])[0]
    rows = map_blocks(traj, run, lambda block: band_power(block.astype(np.float64) - clean))
    return rows / ref, noise / ref, edges


def first_reaching(curve: np.ndarray, level: float) -> int | None:
    """The first index where ``curve`` >= ``level``, or None."""
    hit = np.flatnonzero(np.asarray(curve) >= level)
    return int(hit[0]) if hit.size else None


@dataclass(frozen=True)
class NoiseFitResult(Result):
    """`noise_fit_file`: the cut-off and level used, the observation's PSNR, and per run its
    seeds, t_ν and t_η (first iterations at ``level``; None: never), whether the noise came
    first (None when η is undefined or neither reached the level), the best iteration (PSNR
    oracle) with ν and η there, the final PSNR; and the curves ``noise_fitted``,
    ``highfreq_fitted`` and ``psnr``, ``(R, T)`` each."""

    cutoff: float
    level: float
    observed_psnr: float
    runs: tuple[dict, ...]
    noise_fitted: np.ndarray
    highfreq_fitted: np.ndarray
    psnr: np.ndarray

    def to_json(self) -> dict:
        return {"cutoff": self.cutoff, "level": self.level, "observed_psnr": json_float(self.observed_psnr),
                "runs": [{k: json_float(v) if isinstance(v, float) else v for k, v in r.items()}
                         for r in self.runs]}


def noise_fit_file(traj_or_path: Any, *, cutoff: float | None = None, level: float = 0.5) -> NoiseFitResult:
    """When does each run fit the noise, when the image above ``cutoff`` (cycles/pixel;
    default: the file's ``degrade.cutoff``, the low-frequency noise's)? Two passes over the
    file (fractions, then PSNR); memory O(chunk · frame + R · T)."""
    if not 0 < level <= 1:
        raise AnalysisError(f"level must be in (0, 1], got {level!r}")
    with open_reader(traj_or_path) as traj:
        if cutoff is None:
            cutoff = float((traj.config.get("degrade") or {}).get("cutoff", 0.05))
        if not (np.isfinite(cutoff) and cutoff > 0):
            raise AnalysisError(f"cutoff must be a positive number of cycles per pixel, got {cutoff!r}")
        fr = fitted_fractions(traj, cutoff)
        scores = psnr_file(traj, with_ssim=False)
        frame_its = [frame_iterations(traj, r) for r in range(traj.n_runs)]
    runs = []
    for r, run in enumerate(scores.runs):
        nu, eta = fr["noise_fitted"][r], fr["highfreq_fitted"][r]
        defined = bool(np.isfinite(eta).all())
        its = frame_its[r]
        t_nu = at_iterations(its, first_reaching(nu, level))
        t_eta = at_iterations(its, first_reaching(eta, level)) if defined else None
        runs.append({"run": r, "seeds": dict(run.seeds), "t_noise": t_nu, "t_highfreq": t_eta,
                     # None: undefined (no frequency above the cut-off) or neither reached the level
                     "noise_first": None if not defined or (t_nu is None and t_eta is None)
                     else t_nu is not None and (t_eta is None or t_nu < t_eta),
                     "best_iteration": run.best_iteration, "best_psnr": run.best_psnr,
                     "final_psnr": run.final_psnr,
                     "noise_fitted_at_best": float(nu[run.best_frame]),
                     "highfreq_fitted_at_best": float(eta[run.best_frame]) if defined else None})
    return NoiseFitResult(float(cutoff), float(level), scores.observed_psnr, tuple(runs),
                          fr["noise_fitted"], fr["highfreq_fitted"], np.stack([r.psnr for r in scores.runs]))
