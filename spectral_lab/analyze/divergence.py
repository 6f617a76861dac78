"""Divergence between runs, epsilon(i), and its dips: the "convergence points" of section 2.

The same signal is fitted R >= 2 times from different seeds; the outputs of runs a and b
at iteration i are compared by

    epsilon(i) = sum over all signal elements of (T_a(i) - T_b(i))^2      (float64)

The paper sees epsilon fall, rise while the runs learn the high frequencies differently,
and fall again: a dip of epsilon is a point where the runs agree again. Row i of every
curve is iteration i (frame 0 is the untrained network).

`divergence` and `pairwise_divergence` work on arrays; `divergence_file` reads a
trajectory file chunk by chunk and calls `divergence` on each chunk.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from spectral_lab.analyze._io import Result, at_iterations, frame_iterations, json_numbers, json_safe, open_reader
from spectral_lab.errors import AnalysisError

__all__ = [
    "DivergenceResult",
    "convergence_points",
    "divergence",
    "divergence_file",
    "pairwise_divergence",
    "seed_difference",
]

DEFAULT_SMOOTH = 9
DEFAULT_PROMINENCE = 0.3  # decades: a rise and fall of at least a factor 2 around a dip
# log10 of 0 is -inf: values below this fraction of the curve's maximum count as this fraction.
_DYNAMIC_RANGE = 1e-15
_CHUNK_BYTES = 64 * 2**20  # float64 frames held per chunk, over all runs read together


def divergence(frames_a: np.ndarray, frames_b: np.ndarray) -> np.ndarray:
    """epsilon(i) = sum of (frames_a[i] - frames_b[i])^2 over every signal element.

    Parameters
    ----------
    frames_a, frames_b : array (T, *signal_shape)
        Two runs' outputs, same shape; (T, N) for 1D signals, (T, C, H, W) for images.

    Returns
    -------
    array (T,) float64
    """
    a = np.asarray(frames_a, dtype=np.float64)
    b = np.asarray(frames_b, dtype=np.float64)
    if a.shape != b.shape:
        raise AnalysisError(f"the two runs have different shapes {a.shape} and {b.shape}")
    if a.ndim < 2:
        raise AnalysisError(f"frames must have shape (T, *signal_shape), got shape {a.shape}")
    return np.sum((a - b).reshape(len(a), -1) ** 2, axis=1)


def convergence_points(
    eps: np.ndarray,
    *,
    smooth: int = DEFAULT_SMOOTH,
    prominence: float = DEFAULT_PROMINENCE,
    min_separation: int | None = None,
) -> list[int]:
    """Iterations where epsilon dips: local minima of log10(epsilon) with a rise on both sides.

    Notes
    -----
    1. Work on log10(epsilon): the curve spans decades and jitter between runs is
       multiplicative. Zeros are lifted to 1e-15 times the maximum.
    2. Smooth it with a centred moving median over `smooth` iterations (edges repeat
       the end values). A median ignores single-iteration spikes and drops, which a
       mean or a Savitzky-Golay filter would turn into bumps.
    3. `scipy.signal.find_peaks` on the negated smoothed curve, keeping minima whose
       prominence is at least `prominence` decades: on each side, before the curve gets
       lower than the minimum (or the run starts or ends), it must climb at least that
       far above it. The initial fall from frame 0 is such a climb, seen backwards.
       Minima closer than `min_separation` iterations keep the deeper one.
    4. Refine each to the raw argmin of epsilon within +-smooth//2 of the smoothed minimum.

    End points are never dips: a curve that is still falling at the last frame has not
    shown where it bottoms out, so a monotone decreasing epsilon has no convergence
    point, and neither has the final fall of a run that ends while epsilon decreases
    (the paper's second convergence when the runs end fitted). Read that one from
    epsilon itself, e.g. where it falls below a threshold.

    Parameters
    ----------
    eps : array (T,)
        epsilon per iteration, finite and >= 0.
    smooth : int
        Odd window of the moving median, >= 1 (1: no smoothing).
    prominence : float
        Minimum depth of a dip in decades of epsilon (> 0).
    min_separation : int, optional
        Minimum distance between two dips in iterations (>= 1); default `smooth`.

    Returns
    -------
    list of int
        Increasing iterations; empty when there is no dip (T < 3, epsilon all zero,
        monotone, or only shallower dips than `prominence`).
    """
    e = np.asarray(eps, dtype=np.float64)
    if e.ndim != 1:
        raise AnalysisError(f"epsilon must have shape (T,), got shape {e.shape}")
    if not (np.isfinite(e).all() and (e >= 0).all()):
        raise AnalysisError("epsilon must be finite and >= 0 (a diverged run has no convergence points)")
    params = _detector(smooth, prominence, min_separation)
    if e.size < 3 or e.max() == 0:
        return []

    log_eps = np.log10(np.maximum(e, e.max() * _DYNAMIC_RANGE))
    from scipy import ndimage, signal  # here: importing scipy costs every CLI command ~1 s

    smoothed = ndimage.median_filter(log_eps, size=params["smooth"], mode="nearest")
    minima, _ = signal.find_peaks(-smoothed, prominence=params["prominence"], distance=params["min_separation"])
    half = params["smooth"] // 2
    dips = set()
    for m in minima:
        first = max(int(m) - half, 0)
        dips.add(first + int(np.argmin(e[first : m + half + 1])))
    return sorted(dips)


def seed_difference(seeds_a: dict | None, seeds_b: dict | None) -> str | None:
    """What differs between two runs: "weights", "input", "both" or "none".

    Compares ``weight_seed`` (network initialisation) and ``input_seed`` (the fixed
    input z) of two `traj.run_seeds(r)` dicts; None when either is unknown.
    """
    if not seeds_a or not seeds_b:
        return None
    weights = seeds_a.get("weight_seed") != seeds_b.get("weight_seed")
    inputs = seeds_a.get("input_seed") != seeds_b.get("input_seed")
    if weights and inputs:
        return "both"
    if weights:
        return "weights"
    return "input" if inputs else "none"


@dataclass(frozen=True, eq=False)
class DivergenceResult(Result):
    """epsilon of every analysed pair of runs, their mean and spread, and their dips.

    Attributes
    ----------
    pairs : dict (i, j) -> array (T,)
        epsilon between runs i < j.
    mean, std : array (T,)
        Mean and population standard deviation (ddof=0) over the pairs, per iteration.
        Pairs sharing a run are not independent: std describes, it is no error bar.
    points : dict (i, j) -> list of int
        `convergence_points` of each pair.
    mean_points : list of int
        `convergence_points` of the mean curve.
    seeds : dict run -> dict
        ``traj.run_seeds(r)`` of each analysed run; empty for arrays without seeds.
    detector : dict
        The `convergence_points` parameters used (smooth, prominence, min_separation).
    """

    pairs: dict[tuple[int, int], np.ndarray]
    mean: np.ndarray
    std: np.ndarray
    points: dict[tuple[int, int], list[int]]
    mean_points: list[int]
    seeds: dict[int, dict]
    detector: dict
    iterations: np.ndarray | None = None  # the iteration of each frame (a frame stride); None: frame i

    def iteration(self, index):
        """A frame index (or None, or a list) as the iteration of that frame."""
        return index if self.iterations is None or index is None else at_iterations(self.iterations, index)

    def differs(self, pair: tuple[int, int]) -> str | None:
        """`seed_difference` of the two runs of `pair` (None without seeds)."""
        return seed_difference(self.seeds.get(pair[0]), self.seeds.get(pair[1]))

    def to_json(self) -> dict:
        """Plain dicts, lists and numbers (``json.dumps(..., allow_nan=False)`` accepts it).

        ``{"n_iterations", "detector": {"smooth", "prominence", "min_separation"},
        "pairs": [{"runs": [i, j], "seeds": {"i": {...}, "j": {...}} | null,
        "differs": "weights" | "input" | "both" | "none" | null, "epsilon": [T floats],
        "convergence_iterations": [...], "rebound": {see `rebound`}}, ...], "mean": [T], "std": [T],
        "mean_convergence_iterations": [...]}``; seed dicts are keyed by the run index
        as a string (JSON keys are strings); NaN (a diverged run) is null.
        """
        pairs = []
        for (i, j), eps in self.pairs.items():
            known = i in self.seeds and j in self.seeds
            pairs.append(
                {
                    "runs": [i, j],
                    "seeds": {str(i): dict(self.seeds[i]), str(j): dict(self.seeds[j])} if known else None,
                    "differs": self.differs((i, j)),
                    "epsilon": json_numbers(eps),
                    "convergence_iterations": self.iteration(list(self.points[(i, j)])),
                    "rebound": json_safe(self.rebound((i, j))),
                }
            )
        return {
            "n_iterations": int(self.mean.size),
            "detector": dict(self.detector),
            "pairs": pairs,
            "mean": json_numbers(self.mean),
            "std": json_numbers(self.std),
            "mean_convergence_iterations": self.iteration(list(self.mean_points)),
            **({} if self.iterations is None else {"iterations": self.iterations.tolist()}),
        }

    def rebound(self, pair: tuple[int, int]) -> dict:
        """`rebound` of a pair, its iteration fields as real iterations."""
        rb = rebound(self.pairs[pair], self.points[pair])
        return {k: self.iteration(v) if k in ("first", "peak", "reconverged") else v for k, v in rb.items()}


def pairwise_divergence(
    frames_list: Sequence[np.ndarray],
    *,
    smooth: int = DEFAULT_SMOOTH,
    prominence: float = DEFAULT_PROMINENCE,
    min_separation: int | None = None,
) -> DivergenceResult:
    """epsilon of every pair i < j of R >= 2 runs held in memory, with mean, std and dips.

    Parameters
    ----------
    frames_list : sequence of R arrays (T, *signal_shape)
        All of the same shape.
    smooth, prominence, min_separation
        Passed to `convergence_points`.

    Returns
    -------
    DivergenceResult
        Without seeds.
    """
    if len(frames_list) < 2:
        raise AnalysisError(f"divergence needs at least two runs; got {len(frames_list)}")
    detector = _detector(smooth, prominence, min_separation)
    eps = {(i, j): divergence(frames_list[i], frames_list[j]) for i, j in _all_pairs(len(frames_list))}
    return _result(eps, {}, detector)


def divergence_file(
    traj_or_path,
    pairs: Sequence[tuple[int, int]] | None = None,
    chunk: int | None = None,
    *,
    smooth: int = DEFAULT_SMOOTH,
    prominence: float = DEFAULT_PROMINENCE,
    min_separation: int | None = None,
) -> DivergenceResult:
    """`pairwise_divergence` over a trajectory file, reading `chunk` iterations at a time.

    For each block of iterations [a, b) the frames of every run in `pairs` are read
    once (``traj.frames(r)[a:b]``) and every pair's epsilon over the block is computed;
    memory holds one block per run, never a whole run.

    Parameters
    ----------
    traj_or_path : str, os.PathLike or an open trajectory (see `spectral_lab.trajectory`)
    pairs : sequence of (i, j), optional
        Runs to compare; default every pair i < j. (j, i) is read as (i, j).
    chunk : int, optional
        Iterations per block; default as many as fit in 64 MiB of float64 frames.
    smooth, prominence, min_separation
        Passed to `convergence_points`.

    Returns
    -------
    DivergenceResult
        With the seeds of the analysed runs. All curves cover the iterations recorded by
        every analysed run (a killed run shortens them all).

    Raises
    ------
    AnalysisError
        A file with one run, a bad pair or chunk, a run without frames.
    """
    detector = _detector(smooth, prominence, min_separation)
    with open_reader(traj_or_path) as traj:
        if traj.n_runs < 2:
            raise AnalysisError(f"divergence needs at least two runs; this file has {traj.n_runs}")
        pairs = _checked_pairs(pairs, traj.n_runs)
        runs = sorted({r for pair in pairs for r in pair})
        n_iterations = min(traj.n_frames(r) for r in runs)
        if n_iterations == 0:
            raise AnalysisError(f"runs {runs} have no frames in common (one of them recorded none)")
        if chunk is None:
            frame_bytes = 8 * int(np.prod(traj.signal_shape))
            chunk = max(1, _CHUNK_BYTES // (frame_bytes * len(runs)))
        if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
            raise AnalysisError(f"chunk must be an integer >= 1, got {chunk!r}")

        eps = {pair: np.empty(n_iterations) for pair in pairs}
        for start in range(0, n_iterations, chunk):
            stop = min(start + chunk, n_iterations)
            blocks = {r: np.asarray(traj.frames(r)[start:stop], dtype=np.float64) for r in runs}
            for i, j in pairs:
                eps[(i, j)][start:stop] = divergence(blocks[i], blocks[j])
        seeds = {r: dict(traj.run_seeds(r)) for r in runs}
        its = frame_iterations(traj, runs[0])[:n_iterations]
    result = _result(eps, seeds, detector)
    if np.array_equal(its, np.arange(n_iterations)):
        return result
    return replace(result, iterations=its)


def _result(eps: dict, seeds: dict, detector: dict) -> DivergenceResult:
    stacked = np.stack(list(eps.values()))
    mean = stacked.mean(axis=0)
    return DivergenceResult(
        pairs=eps,
        mean=mean,
        std=stacked.std(axis=0),
        points={pair: _dips(e, detector) for pair, e in eps.items()},
        mean_points=_dips(mean, detector),
        seeds=seeds,
        detector=detector,
    )


def _dips(eps: np.ndarray, detector: dict) -> list[int]:
    # A NaN curve (a diverged run) is kept and reported with no dips.
    return convergence_points(eps, **detector) if np.isfinite(eps).all() else []


def _detector(smooth, prominence, min_separation) -> dict:
    """Checked `convergence_points` parameters, min_separation filled in."""
    if isinstance(smooth, bool) or not isinstance(smooth, (int, np.integer)) or smooth < 1 or smooth % 2 == 0:
        raise AnalysisError(f"smooth must be an odd integer >= 1, got {smooth!r}")
    if not (np.isfinite(prominence) and prominence > 0):
        raise AnalysisError(f"prominence must be a positive number of decades, got {prominence!r}")
    if min_separation is None:
        min_separation = smooth
    if isinstance(min_separation, bool) or not isinstance(min_separation, (int, np.integer)) or min_separation < 1:
        raise AnalysisError(f"min_separation must be an integer >= 1, got {min_separation!r}")
    return {"smooth": int(smooth), "prominence": float(prominence), "min_separation": int(min_separation)}



def _all_pairs(n_runs: int) -> list[tuple[int, int]]:
    return list(itertools.combinations(range(n_runs), 2))


def _checked_pairs(pairs, n_runs: int) -> list[tuple[int, int]]:
    if pairs is None:
        return _all_pairs(n_runs)
    checked = []
    for pair in pairs:
        if len(pair) != 2:
            raise AnalysisError(f"a pair is two run indices, got {pair!r}")
        i, j = (int(r) for r in pair)
        if i == j or not (0 <= i < n_runs and 0 <= j < n_runs):
            raise AnalysisError(f"pair {pair!r} must name two different runs in 0..{n_runs - 1}")
        if (min(i, j), max(i, j)) not in checked:
            checked.append((min(i, j), max(i, j)))
    if not checked:
        raise AnalysisError("no pairs to compare")
    return checked


def rebound(eps: np.ndarray, points: Sequence[int]) -> dict:
    """How far one pair of runs diverges again after it first converged (paper Fig. 1 e).

    ``first``: the first detected convergence point (a dip of ε, see
    `spectral_lab.analyze.divergence.convergence_points`), None without one; ``peak``: the
    iteration of the largest ε after it; ``reconverged``: the first iteration after the peak
    where ε is back at or below ε(first), i.e. the runs agree again at least as well as at
    their first convergence (the second convergence, which the dip detector cannot see when
    ε keeps falling to the end); ``decades``: log10 ε(peak) / ε(first); ``area_after_first``:
    Σ ε(i) over i >= first (ε · iterations). ``excess``: Σ_i (ε(i) − min_{m<=j<=i} ε(j)) over
    i >= m, the iteration of the largest ε (the untrained runs' disagreement, at the start):
    the divergence above the best agreement reached so far. It needs no dip, is 0 for a curve
    that falls from its maximum and never rises again, and is what the pattern-extent
    experiment compares.
    """
    e = np.asarray(eps, dtype=np.float64)
    after_max = e[int(np.argmax(e)):]
    out = {"first": None, "eps_first": None, "peak": None, "eps_peak": None, "reconverged": None,
           "decades": None, "area_after_first": None,
           "excess": float(np.sum(after_max - np.minimum.accumulate(after_max))), "eps_final": float(e[-1])}
    if not points:
        return out
    first = int(points[0])
    peak = first + int(np.argmax(e[first:]))
    below = np.flatnonzero(e[peak:] <= e[first])
    out.update(first=first, eps_first=float(e[first]), peak=peak, eps_peak=float(e[peak]),
               reconverged=None if peak == first or below.size == 0 else peak + int(below[0]),
               decades=float(np.log10(e[peak] / e[first])) if e[first] > 0 else None,
               area_after_first=float(np.sum(e[first:])))
    return out

