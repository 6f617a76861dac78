"""SURE (Jo, Chun, Choi 2021) for white Gaussian noise, with its degrees-of-freedom term from a twin.

SURE(t) = ||y − f_t||² / n − σ² + 2σ² dof_t / n, where dof_t = Σ_i ∂f_t,i / ∂y_i is the
trace of the Jacobian of the map y ↦ f_t (its *degrees of freedom*). One file's outputs
hold no information about it; a *twin* file, the same runs fitted to y + ε·b
(``record --probe``), gives it by a Monte-Carlo finite difference (`probe_dof`).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

import numpy as np

import contextlib

from spectral_lab.analyze._io import open_reader, run_frames
from spectral_lab.analyze.stopping.rules import RULES
from spectral_lab.errors import AnalysisError

__all__ = ["sure", "sure_rule", "sure_curve", "sure_curve_file", "sure_score", "probe_dof", "check_twin"]


_SURE_NEEDS_DOF = (
    "SURE needs the degrees of freedom dof_t = sum_i d f_t,i / d y_i (the trace of the Jacobian of "
    "the map from the observation to the output), which one file's outputs cannot give: record a twin "
    "of the same configuration with the observation perturbed (spectral-lab record ... --probe 5) and "
    "pass it (analyze stop FILE --rule sure --twin TWIN; in Python twin=..., or dof=, one value per frame)"
)


def probe_dof(
    frames: Iterable[np.ndarray],
    twin_frames: Iterable[np.ndarray],
    delta: np.ndarray,
    *,
    epsilon: float,
) -> Iterator[float]:
    """Monte-Carlo degrees of freedom of y -> f_t from a twin run, one value per frame pair.

    The twin has the same seeds (weights, input, input perturbations) and was fitted to
    y + delta, delta = epsilon * b with b ~ N(0, I). Then

        dof_t ~= b . (f'_t - f_t) / epsilon = delta . (f'_t - f_t) / epsilon^2,

    whose expectation over b is the trace of the Jacobian of y -> f_t, up to the
    finite-difference error of a step epsilon (the estimator of Ramani, Blu and Unser,
    2008, with the whole optimisation as the map). Small epsilon is noisy (float32 frames,
    and optimisation trajectories separate), large epsilon biased; the stopping
    experiment measures the choice (experiments/results/denoise.md).

    Parameters
    ----------
    frames, twin_frames : iterables of arrays of one shape, read in lockstep
    delta : array
        y' - y, the twin's observation minus the file's.
    epsilon : float > 0
        The perturbation's standard deviation, signal units.
    """
    if not (np.isfinite(epsilon) and epsilon > 0):
        raise AnalysisError(f"epsilon must be a positive finite number, got {epsilon!r}")
    d = np.asarray(delta, dtype=np.float64)
    for t, (a, b) in enumerate(zip(frames, twin_frames)):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != d.shape or b.shape != d.shape:
            raise AnalysisError(f"frame {t} has shapes {a.shape}, {b.shape}; the perturbation {d.shape}")
        yield float(np.vdot(d, b - a)) / epsilon**2


def sure_score(
    residual_sq_mean: np.ndarray | float, dof: np.ndarray | float, sigma: float, n: int
) -> np.ndarray:
    """Per-element SURE: ||y - f||^2 / n - sigma^2 + 2 sigma^2 dof / n.

    For y = x + white Gaussian noise of standard deviation sigma and a weakly
    differentiable estimate f(y), its expectation is the per-element MSE E||f - x||^2 / n.

    Parameters
    ----------
    residual_sq_mean : float or array (T,)
        ||y - f_t||^2 / n, mean squared residual per element.
    dof : float or array (T,)
        sum_i d f_i / d y_i (not divided by n).
    sigma : float
        Noise standard deviation, in the signal's units.
    n : int
        Elements per signal.
    """
    residual_sq_mean = np.asarray(residual_sq_mean, dtype=np.float64)
    dof = np.asarray(dof, dtype=np.float64)
    return residual_sq_mean - sigma**2 + 2.0 * sigma**2 * dof / n


def sure_curve(
    frames: Iterable[np.ndarray],
    observed: np.ndarray,
    *,
    sigma: float,
    dof: np.ndarray | Sequence[float] | None,
) -> np.ndarray:
    """SURE(t) for every frame of a stream (see `sure_score`), shape (T,), float64.

    Raises
    ------
    AnalysisError
        `dof` missing (None), not one finite value per frame, sigma not > 0, or a
        frame not of the observation's shape.
    """
    if dof is None:
        raise AnalysisError(_SURE_NEEDS_DOF)
    if not (np.isfinite(sigma) and sigma > 0):
        raise AnalysisError(f"sigma must be a positive finite number, got {sigma!r}")
    dof = np.asarray(dof, dtype=np.float64)
    if dof.ndim != 1 or not np.all(np.isfinite(dof)):
        raise AnalysisError("dof must be a 1D array of finite values, one per frame")
    observed = np.asarray(observed, dtype=np.float64)
    residuals = []
    for t, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.shape != observed.shape:
            raise AnalysisError(f"frame {t} has shape {frame.shape}, observed {observed.shape}")
        residuals.append(np.mean((frame.astype(np.float64) - observed) ** 2))
    if len(residuals) != len(dof):
        raise AnalysisError(f"{len(residuals)} frames but {len(dof)} dof values")
    return sure_score(np.array(residuals), dof, sigma, observed.size)


def sure(
    frames: Iterable[np.ndarray],
    observed: np.ndarray,
    *,
    sigma: float,
    dof: np.ndarray | Sequence[float] | None = None,
) -> int:
    """The iteration minimising SURE (Jo, Chun, Choi 2021), an unbiased estimate of the MSE.

    SURE(t) = ||y - f_t||^2 / n - sigma^2 + 2 sigma^2 dof_t / n, with y the observation
    and f_t frame t. Valid for denoising (identity forward operator) with white Gaussian
    noise of known standard deviation sigma, in the signal's units (e.g. 25/255 for
    images in [0, 1] degraded by sigma = 25 on the 0..255 scale). Observations clipped
    to [0, 1] after adding the noise (`spectral_lab.signals.add_white_noise`) break the
    Gaussian model near 0 and 1, which biases SURE slightly.

    Design: dof_t, the trace of the Jacobian of y -> f_t, is the degrees-of-freedom term that keeps
    SURE from favouring the frames that fit the noise; one file's outputs hold no
    information about it (it is a derivative with respect to y), and dropping it would
    make SURE the data-fit loss, minimised by the last frame. So it is an input, one value
    per recorded frame. `stop_file` computes it from a twin file (the same runs fitted to
    y + eps*b, `probe_dof`): the derivative of the whole optimisation map, which is
    what the frame at iteration t is a function of (Jo et al. monitor the same degrees of
    freedom with their own estimator). Without it the rule raises instead of
    guessing.

    Parameters
    ----------
    frames : iterable of arrays of the observation's shape
    observed : array
        y, the noisy observation that was fitted.
    sigma : float
        Noise standard deviation (> 0), signal units.
    dof : array (T,) or None
        dof_t per frame. None raises AnalysisError.

    Returns
    -------
    int
        argmin_t SURE(t) (first of ties).
    """
    return int(np.argmin(sure_curve(frames, observed, sigma=sigma, dof=dof)))




def check_twin(traj, twin) -> tuple[np.ndarray, float]:
    """The twin's perturbation delta = y' - y and epsilon, after checking that ``twin`` is
    ``traj`` fitted again to a probed observation: the same configuration but for
    ``degrade.probe`` (0 in the file, > 0 in the twin), and the same runs."""
    def probe_of(cfg) -> float:
        return float((cfg.get("degrade") or {}).get("probe", 0.0) or 0.0)

    def without_probe(cfg) -> dict:
        out = {k: v for k, v in cfg.items() if k != "record"}
        out["degrade"] = {k: v for k, v in (cfg.get("degrade") or {}).items() if k != "probe"}
        return out

    if probe_of(traj.config) != 0.0:
        raise AnalysisError("this file was itself recorded with a probe: pass the file without one, "
                            "and this one as its twin")
    eps = probe_of(twin.config) / 255.0
    if not eps > 0:
        raise AnalysisError("the twin was recorded without a probe (record it with --probe EPS)")
    if without_probe(traj.config) != without_probe(twin.config):
        diff = sorted(k for k in (set(traj.config) | set(twin.config)) - {"record"}
                      if without_probe(traj.config).get(k) != without_probe(twin.config).get(k))
        raise AnalysisError(f"the twin's configuration differs from the file's in {', '.join(diff)} "
                            "(only degrade.probe may differ)")
    if twin.n_runs != traj.n_runs or any(twin.run_seeds(r) != traj.run_seeds(r) for r in range(traj.n_runs)):
        raise AnalysisError("the twin's runs (seeds) differ from the file's")
    for r in range(traj.n_runs):
        # same seeds, same network: the untrained outputs (frame 0) must agree. They do not
        # when the two files were recorded by different versions of a model family.
        if traj.n_frames(r) and twin.n_frames(r):
            a, b = (np.asarray(t.frames(r)[0], dtype=np.float64) for t in (traj, twin))
            if not np.allclose(a, b, rtol=0, atol=1e-5):
                raise AnalysisError(f"run {r}: the twin's untrained output (frame 0) differs from the file's "
                                    f"(max {np.max(np.abs(a - b)):.3g}): not the same network; re-record the twin "
                                    "with the code that recorded the file")
    delta = np.asarray(twin.observed, dtype=np.float64) - np.asarray(traj.observed, dtype=np.float64)
    return delta, eps


@RULES.register("sure", help="SURE (Jo et al. 2021), white noise; its degrees of freedom from a twin file "
                "(record --probe)", needs=("observed", "sigma", "twin"), per_run=("dof",),
                operators=("identity",))
def sure_rule(
    frames: Iterable[np.ndarray],
    observed: np.ndarray,
    *,
    sigma: float,
    twin_frames: Iterable[np.ndarray] | None = None,
    delta: np.ndarray | None = None,
    epsilon: float | None = None,
    dof: np.ndarray | Sequence[float] | None = None,
) -> int:
    """`sure` with dof_t from a twin's frames (`probe_dof`), or given directly (``dof``).

    With a twin, SURE covers the frames both runs hold (a twin still being recorded may be
    shorter).
    """
    if twin_frames is None:
        return sure(frames, observed, sigma=sigma, dof=dof)
    if dof is not None:
        raise AnalysisError("give SURE either a twin file or its degrees of freedom (dof), not both")
    if not (np.isfinite(sigma) and sigma > 0):
        raise AnalysisError(f"sigma must be a positive finite number, got {sigma!r}")
    y = np.asarray(observed, dtype=np.float64)
    residuals: list[float] = []

    def own_frames() -> Iterator[np.ndarray]:
        for f in frames:
            residuals.append(float(np.mean((np.asarray(f, dtype=np.float64) - y) ** 2)))
            yield f

    dofs = np.array(list(probe_dof(own_frames(), twin_frames, delta, epsilon=epsilon)))
    if dofs.size == 0:
        raise AnalysisError("the twin file holds no frames")
    return int(np.argmin(sure_score(np.array(residuals[: dofs.size]), dofs, sigma, y.size)))



def sure_curve_file(traj_or_path: Any, twin: Any, run: int = 0, *, sigma: float | None = None,
                    chunk: int | None = None) -> np.ndarray:
    """SURE(t) of one run of a file, its degrees of freedom from the run's twin (`probe_dof`),
    over the frames both files hold, streamed; ``sigma`` (signal units) defaults to the file's
    ``degrade.sigma / 255``."""
    with contextlib.ExitStack() as stack:
        traj = stack.enter_context(open_reader(traj_or_path))
        tw = stack.enter_context(open_reader(twin))
        delta, epsilon = check_twin(traj, tw)
        if sigma is None:
            sigma = float((traj.config.get("degrade") or {}).get("sigma", 0.0)) / 255.0
        y = np.asarray(traj.observed, dtype=np.float64)
        residuals: list[float] = []

        def own_frames() -> Iterator[np.ndarray]:
            for f in run_frames(traj, run, chunk):
                residuals.append(float(np.mean((np.asarray(f, dtype=np.float64) - y) ** 2)))
                yield f

        dofs = np.array(list(probe_dof(own_frames(), run_frames(tw, run, chunk), delta, epsilon=epsilon)))
    return sure_score(np.array(residuals[: dofs.size]), dofs, sigma, y.size)
