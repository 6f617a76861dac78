"""Amplitude of chosen frequencies along a 1D trajectory, and when each one converges.

Section 3.1 of the paper: fit x0 = sin(2 pi k1 t) + sin(2 pi k2 t), track
SE(k) = (Ã_k - A_k)^2 per iteration, and say k converged at t when SE(k) <= delta
from t on. Convention: a frame has N samples x_n, n = 0..N-1, a frequency k is in
cycles per frame (x_n = A sin(2 pi k n / N + phi)), and the measured amplitude is the
one-sided

    Ã_k = 2 |X(k)| / N,   X(k) = sum_n x_n exp(-2 pi i k n / N),   0 < k < N/2.

For an integer k, X(k) is bin k of `np.fft.rfft` and Ã_k recovers A exactly for any
phase. Analyse integer frequencies when you can; see `amplitudes` for other k.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from spectral_lab.analyze import convergence
from spectral_lab.analyze._io import Result, at_iterations, frame_iterations, json_numbers, map_blocks, open_reader
from spectral_lab.errors import AnalysisError


def amplitudes(frames: np.ndarray, freqs: Sequence[float]) -> np.ndarray:
    """One-sided amplitude Ã_k = 2|X(k)|/N of each frequency in each frame.

    Parameters
    ----------
    frames : array (T, N) or (N,)
        Real signals; a single signal is treated as T = 1. NaN frames give NaN amplitudes.
    freqs : sequence of K floats
        Cycles per frame, each with 0 < k < N/2 (the Nyquist bin has another
        normalisation and loses the phase, so it is refused).

    Returns
    -------
    array (T, K) float64

    Notes
    -----
    Integer k: bin k of `np.fft.rfft` (computed in float64). Non-integer k: the DTFT is
    evaluated exactly at k, X(k) = sum_n x_n exp(-2 pi i k n / N); nothing is rounded to a
    bin. That is still not the amplitude of a sinusoid at k: the frame is not periodic at
    a non-integer k (a rectangular window), so X(k) also picks up the sinusoid's
    negative-frequency image and leakage from every other component. For one pure
    sinusoid of amplitude 1 at k = 5.25 and N = 64 this gives 0.98 to 1.03 depending
    on its phase, not 1.

    Raises
    ------
    AnalysisError
        Frames not 1D/2D, or a frequency not finite or outside 0 < k < N/2.
    """
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise AnalysisError(f"frames must have shape (T, N) or (N,), got shape {np.shape(frames)}")
    n_samples = x.shape[1]
    k = _checked_freqs(freqs, n_samples)

    on_bin = k == np.round(k)
    out = np.empty((x.shape[0], k.size))
    if on_bin.any():
        spectrum = np.fft.rfft(x, axis=1)
        out[:, on_bin] = np.abs(spectrum[:, k[on_bin].astype(np.int64)])
    if not on_bin.all():
        basis = np.exp(-2j * np.pi * np.outer(np.arange(n_samples), k[~on_bin]) / n_samples)
        out[:, ~on_bin] = np.abs(x @ basis)
    return out * (2.0 / n_samples)


def squared_error(amps: np.ndarray, target_amps: np.ndarray) -> np.ndarray:
    """SE(k) = (Ã_k - A_k)^2 per iteration and frequency.

    Parameters
    ----------
    amps : array (T, K)
        Measured amplitudes, e.g. from `amplitudes`.
    target_amps : array (K,)
        True amplitudes A_k.

    Returns
    -------
    array (T, K) float64
    """
    amps = np.asarray(amps, dtype=np.float64)
    target_amps = np.asarray(target_amps, dtype=np.float64)
    if amps.ndim != 2 or target_amps.shape != (amps.shape[1],):
        raise AnalysisError(
            f"expected amplitudes (T, K) and target amplitudes (K,), got {amps.shape} and {target_amps.shape}"
        )
    return (amps - target_amps) ** 2


@dataclass(frozen=True, eq=False)
class AmplitudeResult(Result):
    """Amplitudes and convergence of K frequencies over T iterations of one run.

    Attributes
    ----------
    freqs : array (K,)
        Cycles per frame.
    target_amps : array (K,)
        A_k the fit is compared against.
    amplitudes : array (T, K)
        Ã_k per iteration (row i = frame i).
    se : array (T, K)
        (Ã_k - A_k)^2.
    delta : float
        Convergence threshold on SE.
    converged_at : list of K int or None
        First iteration from which SE(k) stays <= delta; None if it never does.
    first_crossing : list of K int or None
        First iteration with SE(k) <= delta; None if none.
    """

    freqs: np.ndarray
    target_amps: np.ndarray
    amplitudes: np.ndarray
    se: np.ndarray
    delta: float
    converged_at: list[int | None]
    first_crossing: list[int | None]
    iterations: np.ndarray | None = None  # the iteration of each row (a frame stride); None: row i

    def to_json(self) -> dict:
        """Plain dicts, lists and numbers; never-converged and NaN values become None (JSON null)."""
        return {
            "freqs": json_numbers(self.freqs),
            "target_amps": json_numbers(self.target_amps),
            "delta": float(self.delta),
            "n_iterations": int(self.amplitudes.shape[0]),
            "converged_at": list(self.converged_at),
            "first_crossing": list(self.first_crossing),
            "amplitudes": json_numbers(self.amplitudes),
            "se": json_numbers(self.se),
            **({} if self.iterations is None else {"iterations": self.iterations.tolist()}),
        }


def analyze_amplitudes(
    frames: np.ndarray,
    freqs: Sequence[float],
    *,
    target: np.ndarray | None = None,
    target_amps: Sequence[float] | None = None,
    delta: float = 0.01,
) -> AmplitudeResult:
    """Amplitudes, squared errors and convergence iterations of one run held in memory.

    Parameters
    ----------
    frames : array (T, N)
        Network output per iteration.
    freqs : sequence of K floats
        Cycles per frame, 0 < k < N/2.
    target : array (N,), optional
        Clean signal; A_k is measured from it with the same transform as the frames, so
        SE is 0 for a perfect fit whatever the sampling of the signal. Wins over `target_amps`.
    target_amps : sequence of K floats, optional
        A_k given directly, used when `target` is None.
    delta : float
        Threshold on SE (0.01 in the paper).
    """
    frame_amps = amplitudes(frames, freqs)
    reference = _target_amplitudes(freqs, np.shape(frames)[-1], target, target_amps)
    return _result(freqs, reference, frame_amps, delta)


def analyze_amplitudes_file(
    traj_or_path,
    *,
    freqs: Sequence[float] | None = None,
    delta: float = 0.01,
    chunk: int | None = None,
) -> dict[int, AmplitudeResult]:
    """`analyze_amplitudes` for every run of a trajectory file, reading frames in chunks.

    Only the (T, K) amplitudes of each run are kept in memory, never its frames.

    Parameters
    ----------
    traj_or_path : str, os.PathLike or an open trajectory (see `spectral_lab.trajectory`)
    freqs : sequence of K floats, optional
        Defaults to the file's `config["signal"]["freqs"]`.
    delta : float
        Threshold on SE.
    chunk : int, optional
        Frames per read, passed to `traj.iter_frames`.

    Returns
    -------
    dict run index -> AmplitudeResult
        A_k are measured from `traj.target`.

    Raises
    ------
    AnalysisError
        An image trajectory, no frequencies, a frequency out of range, a run without frames.
    """
    with open_reader(traj_or_path) as traj:
        if traj.kind != "1d":
            raise AnalysisError("amplitude analysis needs a 1D trajectory; this file holds images")
        if freqs is None:
            freqs = traj.config.get("signal", {}).get("freqs")
            if not freqs:
                raise AnalysisError("no frequencies given and the file's signal configuration lists none")
        # Measured before any frame is read, so a bad frequency fails fast.
        reference = amplitudes(np.asarray(traj.target), freqs)[0]
        return {run: _result(freqs, reference, map_blocks(traj, run, lambda b: amplitudes(b, freqs), chunk), delta,
                             _stride(frame_iterations(traj, run)))
                for run in range(traj.n_runs)}


def _stride(iterations: np.ndarray) -> np.ndarray | None:
    """None when frame i is iteration i (no stride)."""
    return None if np.array_equal(iterations, np.arange(len(iterations))) else iterations


def relative_results(results: Mapping[int, AmplitudeResult]) -> dict[int, AmplitudeResult]:
    """The analysis of the normalised amplitude Ã_k / A_k against 1, at the same δ.

    SE_rel(k) = (Ã_k/A_k − 1)² = SE(k)/A_k², so δ bounds the *relative* amplitude error
    (δ = 0.01: within 10 % of A_k whatever A_k is). With an absolute δ = 0.01 a component of
    amplitude 0.1 would count as converged before training (SE = A_k² = 0.01 at Ã_k = 0).
    Identical to the absolute analysis when every A_k = 1.

    Parameters
    ----------
    results : mapping run -> AmplitudeResult
        From `analyze_amplitudes` / `analyze_amplitudes_file`; every A_k must be nonzero.

    Returns
    -------
    dict run -> AmplitudeResult
        ``target_amps`` all 1, ``amplitudes`` Ã_k/A_k, ``se`` SE_rel, convergence re-read.
    """
    out = {}
    for run, res in results.items():
        if np.any(res.target_amps == 0):
            raise AnalysisError("relative amplitudes need every target amplitude A_k != 0")
        norm = res.amplitudes / res.target_amps
        out[run] = _result(res.freqs, np.ones_like(res.target_amps), norm, res.delta, res.iterations)
    return out


def convergence_table(
    results: Mapping[int, AmplitudeResult] | Sequence[AmplitudeResult],
    *,
    pair: tuple[float, float] | None = None,
    confidence: float = 0.95,
) -> dict:
    """Convergence iterations across runs, and the ratio t(k2)/t(k1) with a confidence interval.

    Both readings of convergence are reported (settle and first crossing; see
    `spectral_lab.analyze.convergence`), because the settle iteration is fragile.

    Parameters
    ----------
    results : mapping run -> AmplitudeResult, or a sequence of them
        All with the same frequencies and delta.
    pair : (k1, k2), optional
        Frequencies of the ratio; defaults to the first two. No ratio when K = 1.
    confidence : float
        Level of the interval.

    Returns
    -------
    dict (JSON-ready; None where a value does not exist)
        ``{"runs", "n_runs", "delta", "per_freq": [{"freq", "converged_at": S,
        "first_crossing": S}, ...], "ratio": None | {"k1", "k2", "converged_at": R,
        "first_crossing": R}}`` with S = ``{"per_run", "n_converged", "mean", "std"}``
        (mean and sample std over converged runs) and R = ``{"per_run", "n", "mean",
        "ci", "confidence", "ci_method"}``. A run enters the ratio only if both
        frequencies converged and t(k1) > 0. The interval is a Student-t interval on the
        mean of the per-run ratios, mean ± t_{n-1} s / sqrt(n); it needs n >= 2.
    """
    runs = list(results.keys()) if isinstance(results, Mapping) else list(range(len(results)))
    items = list(results.values()) if isinstance(results, Mapping) else list(results)
    if not items:
        raise AnalysisError("no runs to tabulate")
    freqs, delta = items[0].freqs, items[0].delta
    for item in items[1:]:
        if not np.array_equal(item.freqs, freqs) or item.delta != delta:
            raise AnalysisError("all runs must be analysed at the same frequencies and delta")
    if not 0 < confidence < 1:
        raise AnalysisError(f"confidence must be in (0, 1), got {confidence}")

    table = {
        "runs": runs,
        "n_runs": len(items),
        "delta": float(delta),
        "per_freq": [
            {
                "freq": float(k),
                "converged_at": iteration_summary([r.converged_at[j] for r in items]),
                "first_crossing": iteration_summary([r.first_crossing[j] for r in items]),
            }
            for j, k in enumerate(freqs)
        ],
        "ratio": None,
    }
    if pair is None and len(freqs) < 2:
        return table

    def ratio(k1, k2) -> dict:
        j1, j2 = _freq_index(freqs, k1), _freq_index(freqs, k2)
        return {
            "k1": float(k1),
            "k2": float(k2),
            "converged_at": ratio_summary([(r.converged_at[j1], r.converged_at[j2]) for r in items], confidence),
            "first_crossing": ratio_summary([(r.first_crossing[j1], r.first_crossing[j2]) for r in items],
                                             confidence),
        }

    table["ratio"] = ratio(*(pair if pair is not None else (freqs[0], freqs[1])))
    # every pair k_i < k_j when there are more than two frequencies
    table["ratios"] = [ratio(freqs[i], freqs[j]) for i in range(len(freqs)) for j in range(i + 1, len(freqs))]
    return table


def _result(freqs, reference: np.ndarray, frame_amps: np.ndarray, delta: float,
            iterations: np.ndarray | None = None) -> AmplitudeResult:
    delta = float(delta)
    if not np.isfinite(delta) or delta < 0:
        raise AnalysisError(f"delta must be a finite number >= 0, got {delta}")
    se = squared_error(frame_amps, reference)
    settle = convergence.settle_iteration_per_column(se, delta)
    first = convergence.first_crossing_per_column(se, delta)
    if iterations is not None:  # a frame stride: frame indices as the iterations they are
        settle, first = at_iterations(iterations, settle), at_iterations(iterations, first)
    return AmplitudeResult(
        freqs=np.asarray(freqs, dtype=np.float64),
        target_amps=reference,
        amplitudes=frame_amps,
        se=se,
        delta=delta,
        converged_at=settle,
        first_crossing=first,
        iterations=iterations,
    )


def _target_amplitudes(freqs, n_samples: int, target, target_amps) -> np.ndarray:
    if target is not None:
        if np.shape(target) != (n_samples,):
            raise AnalysisError(f"target must have shape ({n_samples},) like a frame, got {np.shape(target)}")
        return amplitudes(target, freqs)[0]
    if target_amps is None:
        raise AnalysisError("give the target signal or the target amplitudes")
    reference = np.asarray(target_amps, dtype=np.float64)
    if reference.shape != (len(freqs),) or not np.isfinite(reference).all():
        raise AnalysisError(f"target amplitudes must be {len(freqs)} finite numbers, got {target_amps!r}")
    return reference


def _checked_freqs(freqs, n_samples: int) -> np.ndarray:
    k = np.asarray(freqs, dtype=np.float64)
    if k.ndim != 1 or k.size == 0:
        raise AnalysisError(f"freqs must be a non-empty list of numbers, got {freqs!r}")
    for value in k:
        if not (np.isfinite(value) and 0 < value < n_samples / 2):
            raise AnalysisError(
                f"frequency {value:g} is outside 0 < k < N/2 = {n_samples / 2:g} (N = {n_samples} samples)"
            )
    return k


def silent_frequencies(result: AmplitudeResult, *, fraction: float = 1e-3) -> list[float]:
    """The analysed frequencies at which the target has (almost) no energy: A_k below
    ``fraction`` of the largest target amplitude. Their SE(k) measures nothing but how far the
    output's component there stays from 0."""
    amps = np.abs(np.asarray(result.target_amps, dtype=np.float64))
    top = float(amps.max()) if amps.size else 0.0
    return [float(k) for k, a in zip(result.freqs, amps) if not a > fraction * top]


def _freq_index(freqs: np.ndarray, k: float) -> int:
    matches = np.flatnonzero(freqs == k)
    if matches.size == 0:
        raise AnalysisError(f"frequency {k:g} is not among the analysed {freqs.tolist()}")
    return int(matches[0])


def iteration_summary(per_run: list[int | None]) -> dict:
    """``{"per_run", "n_converged", "mean", "std"}`` of convergence iterations (None = never):
    mean and sample std over the converged ones (`convergence_table`'s per-frequency entry)."""
    done = np.array([t for t in per_run if t is not None], dtype=np.float64)
    return {
        "per_run": per_run,
        "n_converged": int(done.size),
        "mean": float(done.mean()) if done.size else None,
        "std": float(done.std(ddof=1)) if done.size >= 2 else None,
    }


def ratio_summary(pairs: list[tuple[int | None, int | None]], confidence: float = 0.95) -> dict:
    """The ratio t2/t1 of ``(t1, t2)`` pairs (one per run) with a Student-t interval on its mean
    (`convergence_table`'s ratio entry): a pair enters only if both converged and t1 > 0."""
    # t(k1) = 0 (already within delta before training) gives no ratio.
    per_run = [t2 / t1 if t1 is not None and t1 > 0 and t2 is not None else None for t1, t2 in pairs]
    values = np.array([r for r in per_run if r is not None], dtype=np.float64)
    ci = None
    if values.size >= 2:
        half = stats.t.ppf(0.5 + confidence / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
        ci = [float(values.mean() - half), float(values.mean() + half)]
    return {
        "per_run": per_run,
        "n": int(values.size),
        "mean": float(values.mean()) if values.size else None,
        "ci": ci,
        "confidence": float(confidence),
        "ci_method": "Student t interval on the mean of per-run ratios",
    }

