"""When does an error curve get below a threshold, and when does it stay there.

Index = iteration: `err[i]` is the error of frame i (frame 0 is the untrained network).
NaN counts as above the threshold, so a diverged run never counts as converged.

Two readings of "converged", because the first is fragile when amplitudes oscillate:

- `settle_iteration`: the first i from which err stays <= threshold to the end (the
  paper's "SE(k) <= delta after t iterations"); it jumps when one late wobble crosses back.
- `first_crossing`: the first i with err[i] <= threshold; stable, but says less.
"""

from __future__ import annotations

import numpy as np

from spectral_lab.errors import AnalysisError


def settle_iteration(err: np.ndarray, threshold: float) -> int | None:
    """First iteration from which `err` stays <= `threshold` up to the last iteration.

    Parameters
    ----------
    err : array (T,)
        Error per iteration.
    threshold : float

    Returns
    -------
    int or None
        None when the last value is above the threshold (never converged).
    """
    return settle_iteration_per_column(_as_curves(err, ndim=1)[:, None], threshold)[0]


def first_crossing(err: np.ndarray, threshold: float) -> int | None:
    """First iteration i with `err[i] <= threshold`; None if there is none.

    Parameters
    ----------
    err : array (T,)
    threshold : float
    """
    return first_crossing_per_column(_as_curves(err, ndim=1)[:, None], threshold)[0]


def settle_iteration_per_column(err: np.ndarray, threshold: float) -> list[int | None]:
    """`settle_iteration` of every column of `err`, shape (T, K) -> list of K entries."""
    above = _above(_as_curves(err, ndim=2), threshold)
    n_iterations = above.shape[0]
    # The curve settles right after its last value above the threshold.
    last_above = n_iterations - 1 - np.argmax(above[::-1], axis=0)
    settle = np.where(above.any(axis=0), last_above + 1, 0)
    return [None if never else int(i) for i, never in zip(settle, above[-1])]


def first_crossing_per_column(err: np.ndarray, threshold: float) -> list[int | None]:
    """`first_crossing` of every column of `err`, shape (T, K) -> list of K entries."""
    below = ~_above(_as_curves(err, ndim=2), threshold)
    first = np.argmax(below, axis=0)
    return [int(i) if crossed else None for i, crossed in zip(first, below.any(axis=0))]


def _above(err: np.ndarray, threshold: float) -> np.ndarray:
    # `not <=` rather than `>`, so that NaN counts as above.
    return ~(err <= threshold)


def _as_curves(err: np.ndarray, *, ndim: int) -> np.ndarray:
    err = np.asarray(err, dtype=np.float64)
    if err.ndim != ndim or err.shape[0] == 0:
        expected = "(T,)" if ndim == 1 else "(T, K)"
        raise AnalysisError(f"expected a non-empty error curve of shape {expected}, got shape {err.shape}")
    return err
