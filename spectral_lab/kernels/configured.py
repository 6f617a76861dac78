"""The tangent kernel of a configuration's runs, and what gradient descent on them is predicted to do.

What ``spectral-lab kernel ntk`` prints and ``experiments/ntk_prediction.py`` puts next to the
measured convergence, from one code path:

1. `kernel_runs` / `snapshot_runs`: the networks whose kernel is taken, one single-run
   network per seed, exactly as ``record`` trains them (`spectral_lab.runner.prepare_fit`:
   the same weights, the same input z) — at initialisation, or with the parameters of a
   stored snapshot of a recording (``record --snapshots``);
2. `measure_kernel`: per run, the kernel's energy λ_k along each requested Fourier
   frequency (1D) or radial band (images), its largest eigenvalue λ_max and, for small 1D
   outputs, the full M × M kernel;
3. `predict_ntk`: the predicted convergence iteration per frequency (or time to fit per
   band) under plain gradient descent at a step ``lr``, from the kernel averaged over the
   seeds and from each seed's own, as a JSON-ready dict.

Seed averaging. One seed's kernel is a noisy estimate of the family's (the conv net's
λ(3)/λ(37) ranged over 0.41–2.29 across 10 seeds): the averaged prediction uses the mean
of the seeds' energies (or kernels) and the mean of their initial outputs; the per-seed
predictions use each seed's own. The stable step is that of the most restrictive seed,
M / max_s λ_max(s): the one learning rate every seed's gradient descent survives.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from spectral_lab.errors import AnalysisError, ConfigError
from spectral_lab.kernels.fourier import fourier_alignment, fourier_modes_1d
from spectral_lab.kernels.ntk import MAX_FULL_OUTPUTS, band_energies, frequency_energies, full_kernel, top_eigenpairs
from spectral_lab.kernels.predict import (complex_amplitudes, predict_band_fit, predict_convergence,
                                          predict_full_kernel, stable_lr)

__all__ = ["APPROXIMATIONS", "KernelMeasurement", "KernelRun", "alignment_summary", "check_approximation",
           "TrajectoryKernels", "flat_parameters", "kernel_along_trajectory", "kernel_runs", "load_parameters",
           "measure_kernel", "predict_ntk", "snapshot_runs"]

APPROXIMATIONS = ("fourier", "full")
# the eigen-directions "much slower" than a frequency's own energy: λ < λ_k / SLOW
SLOW = 10.0
# eigenvectors whose Fourier alignment is summarised
TOP_ALIGNED = 16


@dataclass
class KernelRun:
    """One run's network as its own single-run net: ``net`` (R = 1), its input ``z`` ``(1, C_in,
    *spatial)``, its ``seeds`` (``seed``, ``weight_seed``, ``input_seed``) and the ``iteration``
    its parameters are from (0: initialisation)."""

    net: torch.nn.Module
    z: torch.Tensor
    seeds: dict
    iteration: int = 0


def flat_parameters(net: torch.nn.Module) -> torch.Tensor:
    """Every run's parameters flattened, ``(R, P)``, in ``net.parameters()`` order: the layout
    of a trajectory's ``/snapshots/params`` (`spectral_lab.trajectory.writer`)."""
    return torch.cat([p.detach().reshape(net.runs, -1) for p in net.parameters()], dim=1)


def load_parameters(net: torch.nn.Module, flat) -> None:
    """Set a stacked net's parameters from ``flat`` ``(R, P)`` laid out as `flat_parameters`."""
    values = torch.as_tensor(np.asarray(flat) if not isinstance(flat, torch.Tensor) else flat)
    params = list(net.parameters())
    per_run = sum(p[0].numel() for p in params)
    if values.shape != (net.runs, per_run):
        raise AnalysisError(f"parameters of shape {tuple(values.shape)} do not fit this network "
                            f"({net.runs} run(s) of {per_run} parameters)")
    offset = 0
    with torch.no_grad():
        for p in params:
            n = p[0].numel()
            p.copy_(values[:, offset:offset + n].reshape(p.shape).to(dtype=p.dtype, device=p.device))
            offset += n


def _check_seeds(seeds: int, available: int | None = None) -> int:
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ConfigError(f"the number of seeds must be an integer >= 1, got {seeds!r}")
    if available is not None and seeds > available:
        raise ConfigError(f"asked for the kernels of {seeds} runs, but the recording holds {available}")
    return int(seeds)


def _single_runs(cfg, problem, stacked, z, seeds_of_runs, iteration: int, device) -> list[KernelRun]:
    from spectral_lab.runner import build_net

    flat = flat_parameters(stacked)
    runs = []
    for r, seeds in enumerate(seeds_of_runs):
        net = build_net(cfg, problem, [seeds]).to(device)
        load_parameters(net, flat[r:r + 1])
        runs.append(KernelRun(net, z[r:r + 1].clone(), dict(seeds), iteration))
    return runs


def kernel_runs(cfg, *, seeds: int = 1, device: torch.device | None = None):
    """The networks of ``seeds`` runs of configuration ``cfg`` at initialisation.

    Run s has the seeds ``record`` gives run s of ``cfg`` with ``seeds`` runs (`run_seeds`:
    seed + s for what ``cfg.fit.vary`` varies).

    Returns
    -------
    (cfg, problem, list of KernelRun)
        ``cfg`` validated (as a file would store it), its `Problem`.
    """
    from spectral_lab.config import run_seeds, validate
    from spectral_lab.problem import make_problem
    from spectral_lab.runner import prepare_fit, select_device

    seeds = _check_seeds(seeds)
    cfg = validate(cfg)
    cfg = cfg.replace(fit=dataclasses.replace(cfg.fit, runs=seeds))
    problem = make_problem(cfg)
    device = device or select_device(cfg.fit.device)
    state, z, _ = prepare_fit(cfg, problem, device)
    return cfg, problem, _single_runs(cfg, problem, state.net, z, run_seeds(cfg.fit), 0, device)


def snapshot_runs(path: str | Path, at: int, *, seeds: int = 1, device: torch.device | None = None):
    """The networks of runs 0..seeds-1 of a recording with the parameters of its snapshot at
    iteration ``at`` (``record --snapshots``), and their recorded input z.

    Returns
    -------
    (cfg, problem, list of KernelRun)
    """
    from spectral_lab.config import RunConfig, run_seeds
    from spectral_lab.problem import make_problem
    from spectral_lab.runner import prepare_fit, select_device
    from spectral_lab.trajectory import open_trajectory

    with open_trajectory(path) as t:
        cfg = RunConfig.from_dict(t.config)
        n_runs = t.n_runs
        iterations, params = t.snapshots()
    if iterations.size == 0:
        raise AnalysisError(f"{path} holds no parameter snapshots (record it with --snapshots I,J,...)")
    hits = np.flatnonzero(iterations == at)
    if isinstance(at, bool) or not isinstance(at, (int, np.integer)) or hits.size == 0:
        raise AnalysisError(f"{path} has no snapshot at iteration {at!r}; it has "
                            f"{', '.join(str(int(i)) for i in iterations)}")
    seeds = _check_seeds(seeds, n_runs)
    problem = make_problem(cfg)
    device = device or select_device(cfg.fit.device)
    state, z, _ = prepare_fit(cfg, problem, device)
    load_parameters(state.net, params[int(hits[0])])
    return cfg, problem, _single_runs(cfg, problem, state.net, z, run_seeds(cfg.fit)[:seeds], int(at), device)


@dataclass(frozen=True, eq=False)
class KernelMeasurement:
    """The kernel of one run: what `predict_ntk` needs.

    Attributes
    ----------
    seeds : dict
    iteration : int
    energy : array (K,) or (B,) float64
        λ_k, the phase-averaged energy per frequency (1D), or λ_b, the mean per radial band.
    energy_cos, energy_sin : array (K,) or None
        1D: the energies of the unit cosine and sine.
    lambda_max : float
        The kernel's largest eigenvalue.
    initial : array (C, *spatial) float64
        The run's output at these parameters (train mode, as the fit loop's frame).
    theta : array (M, M) or None
        The full kernel (1D, ``full=True``).
    band_edges : array (B + 1,) or None
        Images.
    """

    seeds: dict
    iteration: int
    energy: np.ndarray
    energy_cos: np.ndarray | None
    energy_sin: np.ndarray | None
    lambda_max: float
    initial: np.ndarray
    theta: np.ndarray | None = None
    band_edges: np.ndarray | None = None


def measure_kernel(run: KernelRun, *, freqs: Sequence[int] | None = None, n_bands: int | None = None,
                   full: bool = False, max_directions: int = 32, direction_seed: int = 0,
                   lambda_tol: float = 1e-4) -> KernelMeasurement:
    """Energies, λ_max and (``full``) the whole kernel of one run.

    1D outputs (one channel): energies along the unit cosine and sine of each of ``freqs``
    (`frequency_energies`, or Rayleigh quotients of the full kernel); λ_max from the full
    kernel's eigenvalues or by Lanczos (relative accuracy ``lambda_tol``). Images: the mean
    energy per radial band (`band_energies`, ``max_directions`` per band, sampled directions
    seeded by ``direction_seed``) and λ_max by Lanczos.
    """
    net, z = run.net, run.z
    net.train()
    with torch.no_grad():
        initial = net(z)[0].double().cpu().numpy()
    if net.ndim == 1:
        if freqs is None:
            raise AnalysisError("a 1D network's kernel needs the frequencies to measure")
        if net.out_channels != 1:
            raise AnalysisError("the 1D prediction is for one output channel")
        if full:
            theta = full_kernel(net, z)
            modes = fourier_modes_1d(theta.shape[0], freqs)  # (K, 2, N), unit rows
            quotients = np.einsum("kpi,ij,kpj->kp", modes, theta, modes)
            cos, sin = quotients[:, 0], quotients[:, 1]
            lam_max = float(np.linalg.eigvalsh(theta)[-1])
        else:
            theta = None
            e = frequency_energies(net, z, freqs)
            cos, sin = e.cos, e.sin
            lam_max = float(top_eigenpairs(net, z, 1, tol=lambda_tol).values[0])
        return KernelMeasurement(dict(run.seeds), run.iteration, 0.5 * (cos + sin), cos, sin, lam_max, initial,
                                 theta)
    if full:
        raise AnalysisError("the full kernel is for small 1D outputs; images use the band energies "
                            "(approximation 'fourier')")
    bands = band_energies(net, z, n_bands=n_bands, max_directions=max_directions, seed=direction_seed)
    lam_max = float(top_eigenpairs(net, z, 1, tol=lambda_tol).values[0])
    return KernelMeasurement(dict(run.seeds), run.iteration, bands.energy, None, None, lam_max, initial,
                             band_edges=bands.band_edges)


def _prediction_1d(energy, cos, sin, theta, initial, target, freqs, *, lr, horizon, delta, full, per_phase):
    """Predicted convergence iterations (list of K int or None) of one kernel."""
    if full:
        pred = predict_full_kernel(theta, target, lr=lr, iterations_max=horizon, delta=delta, initial=initial,
                                   freqs=freqs)
        return pred.curves.converged_at, pred
    lam = np.stack([cos, sin], axis=1) if per_phase else energy
    pred = predict_convergence(lam, complex_amplitudes(target, freqs), lr=lr, n_samples=target.size,
                               iterations_max=horizon, delta=delta, initial_amplitudes=complex_amplitudes(initial, freqs),
                               freqs=freqs)
    return pred.curves.converged_at, pred


def alignment_summary(theta: np.ndarray, freqs: Sequence[int], energies: np.ndarray) -> dict[str, Any]:
    """How far Θ is from diagonal in the Fourier basis, from its eigendecomposition.

    ``top_fraction_median``: median over the top `TOP_ALIGNED` eigenvectors of the share of
    each one's energy in its dominant frequency (1 = every top eigenvector a Fourier mode);
    per requested frequency ``slow_weight``: the share of the unit mode (cosine and sine
    averaged) on eigenvectors with λ < λ_k / `SLOW` — weight that decays much slower than the
    Fourier-diagonal prediction assumes.
    """
    lam, vectors = np.linalg.eigh(theta)
    m = theta.shape[0]
    top = min(TOP_ALIGNED, m)
    align = fourier_alignment(vectors[:, ::-1][:, :top].T, (1, m))
    modes = fourier_modes_1d(m, freqs)  # (K, 2, M)
    weight = 0.5 * ((modes @ vectors) ** 2).sum(axis=1)  # (K, M): share on each eigenvector
    slow = [float(weight[i, lam < e / SLOW].sum()) for i, e in enumerate(energies)]
    return {"top_eigenvectors": int(top), "top_fraction_median": float(np.median(align.fraction)),
            "top_dominant_frequency": align.dominant.tolist(), "slow_weight": slow,
            "slow_threshold": f"lambda < lambda_k / {SLOW:g}"}


def predict_ntk(measurements: Sequence[KernelMeasurement], target: np.ndarray, *, lr: float, horizon: int,
                delta: float, freqs: Sequence[int] | None = None, reference: np.ndarray | None = None,
                n_bands: int | None = None, full: bool = False, per_phase: bool = False) -> dict[str, Any]:
    """The prediction for runs whose kernels were measured, as a JSON-ready dict.

    Parameters
    ----------
    measurements : sequence of KernelMeasurement
        One per seed (all 1D, or all images with the same bands).
    target : array
        What gradient descent fits (the observation): ``(N,)`` 1D, ``(C, H, W)`` images.
    lr : float
        The step of plain gradient descent on mean((f - y)²).
    horizon : int
        Iterations predicted; a frequency that has not settled by then is null ("never").
    delta : float
        1D: threshold on SE(k); images: on the relative band-power error.
    freqs : 1D frequencies (those measured).
    reference : images: the clean image the band power is compared with (default ``target``).
    n_bands : images: the bands measured.
    full : 1D: predict from the full kernel (``measurements`` hold ``theta``).
    per_phase : 1D, Fourier: decay cosine and sine at their own rates.

    Returns
    -------
    dict with ``frequencies``, ``energy``, ``predicted_convergence`` (null = never within
    ``horizon``, or unstable), ``lambda_max``, ``stable_lr``, ``lr_above_stable``, ``per_seed``, ...
    """
    if not measurements:
        raise AnalysisError("no kernels to predict from")
    target = np.asarray(target, dtype=np.float64)
    m = target.size
    lam_max = [float(x.lambda_max) for x in measurements]
    step = stable_lr(max(lam_max), m)
    start = measurements[0].iteration
    mean_initial = np.mean([x.initial for x in measurements], axis=0)
    out: dict[str, Any] = {"n_samples": int(m), "lr": float(lr), "delta": float(delta), "horizon": int(horizon),
                           "from_iteration": int(start), "seeds": [x.seeds for x in measurements],
                           "lambda_max": max(lam_max), "lambda_max_per_seed": lam_max, "stable_lr": step,
                           "stable_lr_of_mean_lambda_max": stable_lr(float(np.mean(lam_max)), m),
                           "lr_above_stable": bool(lr >= step), "lr_fraction_of_stable": float(lr / step)}

    def absolute(its):
        return [None if t is None else int(t) + start for t in its]

    if measurements[0].band_edges is None:  # 1D
        freqs = [int(k) for k in freqs]
        target = target.reshape(-1)
        energy = np.mean([x.energy for x in measurements], axis=0)
        cos = np.mean([x.energy_cos for x in measurements], axis=0)
        sin = np.mean([x.energy_sin for x in measurements], axis=0)
        theta = np.mean([x.theta for x in measurements], axis=0) if full else None
        kwargs = dict(lr=lr, horizon=horizon, delta=delta, full=full, per_phase=per_phase)
        mean_its, _ = _prediction_1d(energy, cos, sin, theta, mean_initial.reshape(-1), target, freqs, **kwargs)
        per_seed = []
        for x in measurements:
            its, _ = _prediction_1d(x.energy, x.energy_cos, x.energy_sin, x.theta, x.initial.reshape(-1), target,
                                    freqs, **kwargs)
            per_seed.append({"seeds": x.seeds, "energy": x.energy.tolist(), "lambda_max": x.lambda_max,
                             "stable_lr": stable_lr(x.lambda_max, m), "predicted_convergence": absolute(its)})
        out.update({"kind": "1d", "approx": "full" if full else "fourier", "frequencies": freqs,
                    "energy": energy.tolist(), "energy_cos": cos.tolist(), "energy_sin": sin.tolist(),
                    "predicted_convergence": absolute(mean_its), "per_seed": per_seed,
                    "alignment": alignment_summary(theta, freqs, energy) if full else None})
        return out
    # images
    edges = measurements[0].band_edges
    energy = np.mean([x.energy for x in measurements], axis=0)
    reference = target if reference is None else reference

    def band_times(lam, initial):
        return predict_band_fit(lam, target, reference, lr=lr, iterations_max=horizon, threshold=delta,
                                initial=initial, n_bands=n_bands).time_to_fit

    centres = [0.0] + [0.5 * (a + b) for a, b in zip(edges[1:-1], edges[2:])]
    out.update({"kind": "image", "approx": "fourier", "frequencies": centres, "band_edges": edges.tolist(),
                "energy": energy.tolist(), "predicted_convergence": absolute(band_times(energy, mean_initial)),
                "per_seed": [{"seeds": x.seeds, "energy": x.energy.tolist(), "lambda_max": x.lambda_max,
                              "stable_lr": stable_lr(x.lambda_max, m),
                              "predicted_convergence": absolute(band_times(x.energy, x.initial))}
                             for x in measurements],
                "alignment": None})
    return out


def check_approximation(approx: str, kind: str, n_outputs: int) -> None:
    """One-line refusal of an approximation the signal cannot take."""
    if approx not in APPROXIMATIONS:
        raise ConfigError(f"unknown kernel approximation {approx!r}; choose from {', '.join(APPROXIMATIONS)}")
    if approx == "full" and (kind != "1d" or n_outputs > MAX_FULL_OUTPUTS):
        raise ConfigError(f"the full kernel is for 1D signals of at most {MAX_FULL_OUTPUTS} samples "
                          f"(this output has {n_outputs} values{'' if kind == '1d' else ', an image'}); "
                          "use the Fourier approximation")


@dataclass(frozen=True, eq=False)
class TrajectoryKernels:
    """The kernel at every parameter snapshot of a recording: how far it moves while training.

    Attributes
    ----------
    iterations : array (S,) int64
        The snapshots' iterations, ascending.
    energy : array (S, R, K) float64
        λ_k per snapshot, run and frequency (1D) or radial band (images).
    lambda_max : array (S, R) float64
    kernel_change : array (S, R_full) float64 or None
        ‖Θ_s − Θ_first‖_F / ‖Θ_first‖_F of the full kernel of runs 0..R_full-1 (1D only).
    freqs : list of K frequencies (1D) or None
    band_edges : array (K + 1,) or None
    """

    iterations: np.ndarray
    energy: np.ndarray
    lambda_max: np.ndarray
    kernel_change: np.ndarray | None
    freqs: list | None
    band_edges: np.ndarray | None


def kernel_along_trajectory(path: str | Path, *, freqs: Sequence[int] | None = None, n_bands: int | None = None,
                            seeds: int = 1, full_seeds: int = 0, max_directions: int = 32) -> TrajectoryKernels:
    """`measure_kernel` of runs 0..seeds-1 at every snapshot of ``path``.

    ``freqs`` (1D; default the signal's own) or ``n_bands`` (images). ``full_seeds``: for
    that many runs (1D) the full kernel is computed too, and its relative change from the
    first snapshot.
    """
    from spectral_lab.trajectory import open_trajectory

    with open_trajectory(path) as t:
        iterations = np.sort(t.snapshots()[0])
        signal = t.config["signal"]
    if iterations.size == 0:
        raise AnalysisError(f"{path} holds no parameter snapshots (record it with --snapshots I,J,...)")
    if not 0 <= full_seeds <= seeds:
        raise ConfigError(f"full_seeds must be in [0, seeds = {seeds}], got {full_seeds}")
    energy, lam_max, change, first, edges = [], [], [], None, None
    for it in iterations:
        _, problem, runs = snapshot_runs(path, int(it), seeds=seeds)
        if problem.kind == "1d" and freqs is None:
            freqs = [int(k) for k in signal["freqs"]]
        ms = [measure_kernel(r, freqs=freqs, n_bands=n_bands, full=problem.kind == "1d" and i < full_seeds,
                             max_directions=max_directions) for i, r in enumerate(runs)]
        energy.append([m.energy for m in ms])
        lam_max.append([m.lambda_max for m in ms])
        edges = ms[0].band_edges
        if full_seeds:
            thetas = [m.theta for m in ms[:full_seeds]]
            first = thetas if first is None else first
            change.append([float(np.linalg.norm(a - b) / np.linalg.norm(b)) for a, b in zip(thetas, first)])
    return TrajectoryKernels(iterations.astype(np.int64), np.asarray(energy), np.asarray(lam_max),
                             np.asarray(change) if full_seeds else None, None if edges is not None else list(freqs),
                             edges)
