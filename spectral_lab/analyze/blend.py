"""Image blending scored like the student study (003_…, appendix A4): GFF, GFP, BSI and SSIM of
a recorded blend next to alpha, Poisson and Laplacian-pyramid blending of the same inputs.

The foreground, background and mask come from the file (``/operator``, the blend task); the
metrics are `spectral_lab.blend.metrics` (their definitions and constants are stated there),
the baselines `spectral_lab.blend.baselines` (alpha blending with the objective's soft map,
Poisson and Laplacian-pyramid blending with the binary mask; the soft map is the one the
recording's objective used, `soft_map`). A frame is chosen by iteration,
``last``, or ``stop:RULE`` (a stopping rule of `spectral_lab.analyze.stopping.RULES` that
needs no clean image, e.g. ``stop:es_wmv``); `blend_curves_file` scores every stored frame.
`region_weights` gives the objective's regions (transition band, foreground, background) as
weights, for the task's spectral view (`spectral_lab.analyze.task_spectrum`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from spectral_lab.analyze._io import Result, frame_iterations, json_safe, open_reader, require_operator, run_blocks
from spectral_lab.errors import AnalysisError

__all__ = ["METHODS", "REGIONS", "BlendResult", "blend_file", "blend_curves_file", "blend_inputs", "soft_map",
           "region_weights"]

METHODS = ("dip", "alpha", "poisson", "laplacian")
#: The regions of `region_weights`.
REGIONS = ("transition", "foreground", "background")


@dataclass(frozen=True)
class BlendResult(Result):
    """``scores[method][metric]`` for the methods of `METHODS`; ``iteration``: the frame scored."""

    run: int
    iteration: int
    frame: str
    scores: dict

    def to_json(self) -> dict:
        return {"run": self.run, "iteration": self.iteration, "frame": self.frame, **json_safe(self.scores)}


def blend_inputs(traj) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(foreground, background, mask ``(H, W)``) of a blend trajectory, float64."""
    require_operator(traj, ("blend",), "the blending metrics")
    arrays = traj.operator_arrays()
    return (np.asarray(arrays["foreground"], dtype=np.float64), np.asarray(arrays["background"], dtype=np.float64),
            np.asarray(arrays["mask"], dtype=np.float64)[0])


def soft_map(traj) -> np.ndarray:
    """The soft transition map α ``(H, W)`` float64 the recording's objective used: its mask
    through `spectral_lab.blend.objective.soft_mask` with the file's ``soft_size`` and
    ``soft_repeats`` loss options (the objective's defaults when the file sets none). This is
    α_T, the annealed map at the last iteration (γ(T) = 1)."""
    from spectral_lab.blend.baselines import soft_alpha
    from spectral_lab.blend.objective import BLEND_OPTIONS

    _, _, mask = blend_inputs(traj)
    options = dict((traj.config.get("loss") or {}).get("options") or {})
    return soft_alpha(mask, size=int(options.get("soft_size", BLEND_OPTIONS["soft_size"])),
                      repeats=int(options.get("soft_repeats", BLEND_OPTIONS["soft_repeats"])))


def region_weights(traj, region: str) -> np.ndarray:
    """A region of a blend recording as weights ``(1, H, W)`` in [0, 1], from its soft map α
    (`soft_map`): ``transition`` the objective's transition-band weight w = 4α(1 − α) (1 on
    the mask's boundary, 0 where α is 0 or 1), ``foreground`` α, ``background`` 1 − α."""
    if region not in REGIONS:
        raise AnalysisError(f"a blend region is one of {', '.join(REGIONS)}, got {region!r}")
    alpha = soft_map(traj)
    weights = {"transition": 4.0 * alpha * (1.0 - alpha), "foreground": alpha, "background": 1.0 - alpha}[region]
    return weights[None]


def _frame_index(traj, r: int, frame: str | int, stop_options: Mapping[str, Any] | None = None) -> int:
    its = frame_iterations(traj, r)
    if len(its) == 0:
        raise AnalysisError(f"run {r} has no recorded frames")
    if frame in ("last", None):
        return len(its) - 1
    if isinstance(frame, str) and frame.startswith("stop:"):
        from spectral_lab.analyze.stopping import stop_file

        entry = stop_file(traj, frame[5:], **dict(stop_options or {})).entries[r]
        return int(np.searchsorted(its, entry.iteration))
    try:
        iteration = int(frame)
    except (TypeError, ValueError):
        raise AnalysisError(f"--frame is last, an iteration, or stop:RULE; got {frame!r}") from None
    hits = np.flatnonzero(its == iteration)
    if hits.size == 0:
        near = its[np.argsort(np.abs(its - iteration))[:2]]
        raise AnalysisError(f"iteration {iteration} is not stored in run {r}; the nearest stored are "
                            f"{', '.join(map(str, sorted(near.tolist())))}")
    return int(hits[0])


def blend_file(traj_or_path: Any, *, frame: str | int = "last", run: int = 0, width: int = 5,
               stop_options: Mapping[str, Any] | None = None) -> BlendResult:
    """The A4 metrics of one frame of a blend recording and of the three baselines.

    ``frame``: ``last``, an iteration, or ``stop:RULE`` with the rule's ``stop_options``
    (e.g. ``{"window": 50, "patience": 200}`` for ES-WMV); ``width``: Ω_T's half-width.
    """
    from spectral_lab.blend.baselines import alpha_blend, laplacian_pyramid_blend, poisson_blend
    from spectral_lab.blend.metrics import blend_metrics, transition_region

    with open_reader(traj_or_path) as traj:
        fg, bg, mask = blend_inputs(traj)
        if not 0 <= run < traj.n_runs:
            raise AnalysisError(f"the file has runs 0..{traj.n_runs - 1}; there is no run {run}")
        index = _frame_index(traj, run, frame, stop_options)
        iteration = int(frame_iterations(traj, run)[index])
        output = np.asarray(traj.frames(run)[index], dtype=np.float64)
        alpha = soft_map(traj)
    region = transition_region(mask, width=width)
    outputs = {"dip": output, "alpha": alpha_blend(fg, bg, alpha),
               "poisson": poisson_blend(fg, bg, mask), "laplacian": laplacian_pyramid_blend(fg, bg, mask)}
    scores = {m: blend_metrics(np.clip(x, 0, 1), fg, bg, region) for m, x in outputs.items()}
    return BlendResult(run, iteration, str(frame), scores)


def blend_curves_file(traj_or_path: Any, *, run: int = 0, width: int = 5, chunk: int | None = None) -> dict:
    """Every stored frame of one run scored: ``{"iterations": (T,), "gff", "gfp", "bsi", "ssim": (T,)}``."""
    from spectral_lab.blend.metrics import blend_metrics_frames, transition_region

    with open_reader(traj_or_path) as traj:
        fg, bg, mask = blend_inputs(traj)
        region = transition_region(mask, width=width)
        curves = blend_metrics_frames((np.clip(b, 0, 1) for _, b in run_blocks(traj, run, chunk)), fg, bg, region)
        curves["iterations"] = frame_iterations(traj, run)
    return curves
