"""Image blending scored like the student study (003_…, appendix A4): GFF, GFP, BSI and SSIM of
a recorded blend next to alpha, Poisson and Laplacian-pyramid blending of the same inputs.

The foreground, background and mask come from the file (``/operator``, the blend task); the
metrics are `spectral_lab.blend.metrics` (their definitions and constants are stated there),
the baselines `spectral_lab.blend.baselines` (alpha blending with the objective's soft map,
Poisson and Laplacian-pyramid blending with the binary mask). A frame is chosen by iteration,
``last``, or ``stop:RULE`` (a stopping rule of `spectral_lab.analyze.stopping.RULES` that
needs no clean image, e.g. ``stop:es_wmv``); `blend_curves_file` scores every stored frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spectral_lab.analyze._io import Result, frame_iterations, json_safe, open_reader, require_operator, run_blocks
from spectral_lab.errors import AnalysisError

__all__ = ["METHODS", "BlendResult", "blend_file", "blend_curves_file", "blend_inputs"]

METHODS = ("dip", "alpha", "poisson", "laplacian")


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


def _frame_index(traj, r: int, frame: str | int) -> int:
    its = frame_iterations(traj, r)
    if len(its) == 0:
        raise AnalysisError(f"run {r} has no recorded frames")
    if frame in ("last", None):
        return len(its) - 1
    if isinstance(frame, str) and frame.startswith("stop:"):
        from spectral_lab.analyze.stopping import stop_file

        entry = stop_file(traj, frame[5:]).entries[r]
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


def blend_file(traj_or_path: Any, *, frame: str | int = "last", run: int = 0, width: int = 5) -> BlendResult:
    """The A4 metrics of one frame of a blend recording and of the three baselines."""
    from spectral_lab.blend.baselines import alpha_blend, laplacian_pyramid_blend, poisson_blend, soft_alpha
    from spectral_lab.blend.metrics import blend_metrics, transition_region

    with open_reader(traj_or_path) as traj:
        fg, bg, mask = blend_inputs(traj)
        if not 0 <= run < traj.n_runs:
            raise AnalysisError(f"the file has runs 0..{traj.n_runs - 1}; there is no run {run}")
        index = _frame_index(traj, run, frame)
        iteration = int(frame_iterations(traj, run)[index])
        output = np.asarray(traj.frames(run)[index], dtype=np.float64)
    region = transition_region(mask, width=width)
    outputs = {"dip": output, "alpha": alpha_blend(fg, bg, soft_alpha(mask)),
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
