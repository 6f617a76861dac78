"""Predicted against measured: the tangent kernel at initialisation says which frequency is fitted first.

    python experiments/ntk_prediction.py [--quick | --preset defaults | --preset dip1d] [--out-dir DIR]
        [--estimate-only] [--set FIELD=VALUE]

1D (sin(2π k1 t) + sin(2π k2 t) on ``length`` samples). For every model family of
``families`` the kernel Θ = J Jᵀ of each seed is computed at initialisation (the full
M × M kernel: its Rayleigh quotients along the Fourier modes are the Fourier-diagonal
energies λ_k, its eigenvectors give the exact linearised prediction), the stable step
M / max_s λ_max(s) is taken, and the seeds are trained together under plain gradient descent
at ``fractions`` of that step and under Adam. Per file: the measured convergence iteration of
each frequency (SE(k) <= δ from then on) next to four predictions from the same seeds'
kernels — Fourier-diagonal and full, per seed and from the seed-averaged kernel — and the
ratio t(k2)/t(k1) both ways. Files of ``snapshot_families`` store parameter snapshots: the
kernel at each (energies, λ_max, relative change of the full kernel) shows how far it moves
while the frequencies are fitted.

Images: the mean kernel energy per radial band of the 2D ``dip`` (``image_levels`` level(s) ×
``image_channels`` channels) at 64×64 for each up-sampling mode and stride, next to the
measured band-fitting times of a matched recording (upsampling_stride's quick settings: Adam
0.01, ``image_iterations``) and, under gradient descent at ``image_fraction`` of the stable
step, next to the predicted ones.

Writes trajectories/ntk_prediction/, figures/ntk_prediction/{predicted_vs_measured.png,
kernel_along_trajectory.png, image_bands.png, table.md, results.json}. Results and their
reading: experiments/results/kernel.md.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments import upsampling_stride
from experiments._cli import experiment_cli
from experiments._common import (Setting, SinesExperiment, fmt_mean_std, fmt_ratio, markdown_table, presets, run,
                                 run_config, write_report)
from spectral_lab.analyze.amplitudes import analyze_amplitudes_file, convergence_table, ratio_summary
from spectral_lab.analyze.spectrum import spectrum_file
from spectral_lab.config import validate
from spectral_lab.kernels.configured import (KernelMeasurement, alignment_summary, kernel_along_trajectory, kernel_runs,
                                             measure_kernel, predict_ntk)
from spectral_lab.plot import save
from spectral_lab.plot.kernels import image_bands_figure, kernel_trajectory_figure, predicted_vs_measured_figure
from spectral_lab.sweep import Job

NAME = "ntk_prediction"
# agreement of a predicted ratio with the measured one: |predicted / measured - 1| <= this
AGREEMENT = 0.25


@dataclass(frozen=True)
class Family:
    """One model family: its options, iteration budget, the SGD steps tried (fractions of the
    stable step M/λ_max at initialisation), its Adam step (None: no Adam run) and its number of
    seeds (None: the experiment's)."""

    label: str
    model: str
    options: Mapping[str, Any] = field(default_factory=dict)
    iterations: int = 2000
    fractions: tuple[float, ...] = (0.5,)
    adam_lr: float | None = 1e-4
    seeds: int | None = None

    def setting(self, optimizer: str, lr: float, tag: str) -> Setting:
        return Setting(f"{self.label}-{tag}", self.model, dict(self.options), lr=lr, iterations=self.iterations,
                       optimizer=optimizer)


# The families at their registry defaults (conv: 4 x 256, Xavier, biases; linear: 4 x 256) at three
# steps and under Adam, 10 seeds; the conv at depths 2 and 8, the 1D DIP of the 1D presets (3 levels x
# 32) with each up-sampling and the coordinate MLP at its defaults at one step (the deep and wide ones
# with 5 seeds: conv8 and relunet cost 0.4 s an iteration for 5 runs on this shared machine).
CONV = Family("conv4", "conv", {}, 2000, (0.25, 0.5, 0.9))
LINEAR = Family("linear", "linear", {}, 2000, (0.25, 0.5, 0.9))
FAMILIES = (
    CONV, LINEAR,
    Family("conv2", "conv", {"depth": 2}, 2000, (0.5,)),
    Family("conv8", "conv", {"depth": 8}, 2000, (0.5,), None, 5),
    *(Family(f"dip-{m}", "dip", {"levels": 3, "down": 32, "up": 32, "upsample": m}, 3000, (0.5,), 1e-4, 5)
      for m in ("nearest", "bilinear", "transposed")),
    Family("relunet", "relunet", {}, 2000, (0.5,), 1e-3, 5),
)


@dataclass(frozen=True)
class Config(SinesExperiment):
    """``families`` (`Family`) fit sin(2π k t) at each of ``freqs`` on ``length`` samples, ``seeds``
    seeds a file; δ = ``deltas[0]``. Predictions run to ``horizon_factor`` × a family's budget.

    ``snapshot_families``, ``snapshot_fraction``: the files (that SGD step, and Adam) storing
    parameters at ``snapshot_iterations``; ``full_kernel_seeds`` of their runs get the full
    kernel at each snapshot (its relative change), every seed the energies and λ_max.

    Images (``images``: on/off): ``image`` fitted by dip(``image_levels``, ``image_channels``)
    with each of ``upsamples`` × ``strides``, ``image_runs`` runs; Adam at ``image_lr`` for
    ``image_iterations`` and SGD at ``image_fraction`` of the stable step for
    ``image_sgd_iterations`` (0: none); ``n_bands`` radial bands, fitted at relative error
    ``threshold``; ``directions`` backward passes per band.
    """

    freqs: tuple[float, ...] = (3, 37)
    amps: tuple[float, ...] = (1.0, 1.0)
    length: int = 256
    seeds: int = 10
    deltas: tuple[float, ...] = (0.01,)
    device: str = "cpu"
    families: tuple[Family, ...] = FAMILIES
    horizon_factor: int = 10
    snapshot_families: tuple[str, ...] = ("conv4", "linear", "dip-bilinear")
    snapshot_fraction: float = 0.5
    snapshot_iterations: tuple[int, ...] = (0, 10, 25, 50, 100, 200, 400, 800, 1400, 2000, 3000)
    full_kernel_seeds: int = 2
    images: bool = True
    image: str = "photo"
    size: int = 64
    image_levels: int = 1
    image_channels: int = 64
    upsamples: tuple[str, ...] = ("nearest", "bilinear")
    strides: tuple[int, ...] = (2, 4, 8)
    image_runs: int = 2
    image_lr: float = 0.01
    image_iterations: int = 300
    image_fraction: float = 0.5
    image_sgd_iterations: int = 600
    n_bands: int = 9
    threshold: float = 0.3
    directions: int = 32
    name: str = NAME


PRESETS = presets(
    paper=Config(),
    # A few minutes on 2 cores: 3 seeds, N = 64 (k = 2, 13), narrow nets, short budgets; the images
    # section at 32 x 32 with 2 strides.
    quick=Config(freqs=(2, 13), length=64, seeds=3,
                 families=(Family("conv4", "conv", {"width": 64}, 600, (0.5, 0.9)),
                           Family("linear", "linear", {"width": 64}, 600, (0.5, 0.9)),
                           Family("dip-bilinear", "dip", {"levels": 2, "down": 16, "up": 16}, 600, (0.5,))),
                 snapshot_families=("conv4",), snapshot_iterations=(0, 50, 200, 600), full_kernel_seeds=1,
                 size=32, image_channels=16, strides=(2, 4), upsamples=("nearest", "bilinear"), image_runs=1,
                 image_iterations=100, image_sgd_iterations=200, n_bands=5, directions=8),
    # The "done when": conv and linear at their family defaults (4 x 256, N = 256, k = 3, 37)
    # under SGD at two fractions of the stable step and under Adam, 5 seeds, 1000 iterations, no images
    # (~10 min of fitting: --estimate-only).
    defaults=Config(seeds=5, families=tuple(replace(f, iterations=1000, fractions=(0.5, 0.9)) for f in (CONV, LINEAR)),
                    snapshot_families=("conv4", "linear"), full_kernel_seeds=1, images=False),
    # The paper preset's three 1D DIPs (3 levels x 32, N = 256, k = 3, 37) under SGD at half the
    # stable step only, 3 seeds, 1500 iterations: does the 1D dip converge at the kernel's step?
    dip1d=Config(seeds=3, families=tuple(replace(f, iterations=1500, adam_lr=None, seeds=None)
                                         for f in FAMILIES if f.model == "dip"),
                 snapshot_families=(), images=False))
PAPER, QUICK, DEFAULTS = PRESETS["paper"], PRESETS["quick"], PRESETS["defaults"]


# --------------------------------------------------------------------------- kernels at initialisation

def family_seeds(cfg: Config, fam: Family) -> int:
    return fam.seeds or cfg.seeds


def family_config(cfg: Config, fam: Family, optimizer: str = "sgd", lr: float = 1.0):
    """The RunConfig of the seeds of ``fam`` (the kernels' configuration: the lr does not change
    the kernel)."""
    return run_config(fam.setting(optimizer, lr, "kernel"), cfg.signal, runs=family_seeds(cfg, fam), seed=cfg.seed,
                      device=cfg.device)


_KERNELS: dict[str, tuple[list[KernelMeasurement], np.ndarray]] = {}


def family_kernels(cfg: Config, fam: Family) -> tuple[list[KernelMeasurement], np.ndarray]:
    """Every seed's full kernel at initialisation (`measure_kernel`), and the fitted signal.
    Kept for the process and in ``kernels-<label>.npz`` next to the trajectories (reused when
    the configuration is the same)."""
    run_cfg = family_config(cfg, fam)
    key = json.dumps({"config": run_cfg.to_dict(), "freqs": list(cfg.freqs)}, sort_keys=True)
    if key in _KERNELS:
        return _KERNELS[key]
    cache = cfg.paths.trajectories / f"kernels-{fam.label}.npz"
    if cache.exists():
        stored = np.load(cache, allow_pickle=False)
        if str(stored["key"]) == key:
            ms = [KernelMeasurement(json.loads(str(s)), 0, e, c, si, float(lm), i, th)
                  for s, e, c, si, lm, i, th in zip(stored["seeds"], stored["energy"], stored["cos"], stored["sin"],
                                                    stored["lambda_max"], stored["initial"], stored["theta"])]
            _KERNELS[key] = (ms, stored["target"])
            return _KERNELS[key]
    _, problem, runs = kernel_runs(run_cfg, seeds=family_seeds(cfg, fam))
    ms = [measure_kernel(r, freqs=[int(k) for k in cfg.freqs], full=True) for r in runs]
    target = np.asarray(problem.observed, dtype=np.float64)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, key=key, seeds=[json.dumps(m.seeds) for m in ms], energy=[m.energy for m in ms],
             cos=[m.energy_cos for m in ms], sin=[m.energy_sin for m in ms],
             lambda_max=[m.lambda_max for m in ms], initial=[m.initial for m in ms], theta=[m.theta for m in ms],
             target=target)
    _KERNELS[key] = (ms, target)
    return _KERNELS[key]


def stable_step(cfg: Config, fam: Family) -> float:
    """M / max over the seeds of λ_max at initialisation: the step every seed's GD takes stably."""
    ms, target = family_kernels(cfg, fam)
    return target.size / max(m.lambda_max for m in ms)


def _label(fraction: float) -> str:
    return f"sgd{fraction:g}"


def one_d_jobs(cfg: Config) -> list[tuple[Family, str, float | None, Job]]:
    """(family, tag, fraction or None for Adam, job) of every 1D file."""
    out = []
    for fam in cfg.families:
        step = stable_step(cfg, fam)
        runs = [("sgd", _label(f), f, f * step) for f in fam.fractions]
        if fam.adam_lr is not None:
            runs.append(("adam", "adam", None, fam.adam_lr))
        for optimizer, tag, fraction, lr in runs:
            setting = fam.setting(optimizer, lr, tag)
            rc = run_config(setting, cfg.signal, runs=family_seeds(cfg, fam), seed=cfg.seed, device=cfg.device)
            if fam.label in cfg.snapshot_families and (fraction is None or fraction == cfg.snapshot_fraction):
                its = tuple(i for i in cfg.snapshot_iterations if i <= fam.iterations)
                rc = validate(rc.replace(record=dataclasses.replace(rc.record, snapshots=its)))
            out.append((fam, tag, fraction, Job(cfg.paths.trajectory(setting.label), rc, setting.label)))
    return out


# --------------------------------------------------------------------------- images

def image_stride_config(cfg: Config, upsample: str) -> upsampling_stride.Config:
    """upsampling_stride's configuration for one up-sampling mode, writing under this experiment."""
    return replace(upsampling_stride.QUICK, name=f"{NAME}/images-{upsample}", out_dir=cfg.out_dir, image=cfg.image,
                   size=cfg.size, strides=cfg.strides, levels=cfg.image_levels, channels=cfg.image_channels,
                   upsample=upsample, runs=cfg.image_runs, iterations=cfg.image_iterations, lr=cfg.image_lr,
                   n_bands=cfg.n_bands, threshold=cfg.threshold, seed=cfg.seed, device=cfg.device)


def image_jobs(cfg: Config) -> list[tuple[str, int, str, Job]]:
    """(upsample, stride, 'adam' | 'sgd', job): upsampling_stride's matched recordings, and the
    same networks under gradient descent at ``image_fraction`` of their stable step."""
    out = []
    if not cfg.images:
        return out
    for mode in cfg.upsamples:
        scfg = image_stride_config(cfg, mode)
        for job in upsampling_stride.jobs(scfg):
            stride = int(job.config.model.options["stride"])
            out.append((mode, stride, "adam", job))
            if cfg.image_sgd_iterations:
                step = image_kernels(cfg, job.config)["stable_lr"]
                rc = job.config
                rc = validate(rc.replace(fit=dataclasses.replace(rc.fit, optimizer="sgd", optimizer_options={},
                                                                 lr=cfg.image_fraction * step,
                                                                 iterations=cfg.image_sgd_iterations)))
                out.append((mode, stride, "sgd", Job(scfg.paths.trajectory(f"stride-{stride}-sgd"), rc,
                                                     f"{mode} stride {stride} sgd")))
    return out


_IMAGE_KERNELS: dict[str, dict] = {}


def image_kernels(cfg: Config, run_cfg) -> dict:
    """Band energies and λ_max of the ``image_runs`` seeds of an image configuration at initialisation."""
    key = json.dumps(run_cfg.to_dict(), sort_keys=True)
    if key not in _IMAGE_KERNELS:
        _, problem, runs = kernel_runs(run_cfg, seeds=cfg.image_runs)
        ms = [measure_kernel(r, n_bands=cfg.n_bands, max_directions=cfg.directions, lambda_tol=1e-3) for r in runs]
        _IMAGE_KERNELS[key] = {"measurements": ms, "problem": problem,
                               "stable_lr": problem.observed.size / max(m.lambda_max for m in ms)}
    return _IMAGE_KERNELS[key]


def jobs(cfg: Config) -> list[Job]:
    return [j for *_, j in one_d_jobs(cfg)] + [j for *_, j in image_jobs(cfg)]


# --------------------------------------------------------------------------- report: 1D

def one_d_report(cfg: Config, planned, recorded) -> tuple[list[list[dict]], list[dict], dict, list]:
    """The tables (absolute times, t(k2)/t(k1), t(k1)/t(k2)), the alignment table, numbers and
    the figure's points."""
    delta = cfg.deltas[0]
    freqs = [int(k) for k in cfg.freqs]
    k1, k2 = freqs[0], freqs[1]
    times, forward_rows, inverse_rows, numbers, points = [], [], [], {}, []
    for (fam, tag, fraction, job), rec in zip(planned, recorded):
        ms, target = family_kernels(cfg, fam)
        lr = job.config.fit.lr
        results = analyze_amplitudes_file(rec.path, delta=delta)
        measured = [results[r].converged_at for r in sorted(results)]
        # Adam: the ratio the GD kernel predicts at `snapshot_fraction` of the stable step
        lr_pred = lr if fraction is not None else cfg.snapshot_fraction * stable_step(cfg, fam)
        preds = {approx: predict_ntk(ms, target, lr=lr_pred, horizon=cfg.horizon_factor * fam.iterations,
                                     delta=delta, freqs=freqs, full=approx == "full") for approx in ("fourier", "full")}
        forward = convergence_table(results, pair=(k1, k2))["ratio"]["converged_at"]
        inverse = ratio_summary([(t[1], t[0]) for t in measured])
        head = {"family": fam.label, "step": ("Adam" if fraction is None else f"SGD {fraction:g}×") + f" (lr {lr:.3g})"}
        time_row, fwd_row, inv_row = dict(head), dict(head), dict(head)
        fwd_row["measured"], inv_row["measured"] = fmt_ratio(forward), fmt_ratio(inverse)
        entry = {"file": rec.path, "lr": lr, "fraction": fraction, "optimizer": job.config.fit.optimizer,
                 "prediction_lr": lr_pred, "stable_lr": preds["full"]["stable_lr"], "measured": measured,
                 "ratios": {"measured": {"k2/k1": forward, "k1/k2": inverse}}, "predicted": {}}
        for j, k in enumerate(freqs[:2]):
            time_row[f"t({k}) measured"] = _iterations(measured, j)
        for approx, p in preds.items():
            per_seed = [x["predicted_convergence"] for x in p["per_seed"]]
            avg = p["predicted_convergence"]
            if fraction is not None:  # absolute times only where the prediction is for the step taken
                for j, k in enumerate(freqs[:2]):
                    time_row[f"t({k}) {approx} per seed"] = _iterations(per_seed, j)
                    time_row[f"t({k}) {approx} seed-avg"] = "never" if avg[j] is None else str(avg[j])
                points += [{"family": fam.label, "approx": approx, "predicted": ts[j], "measured": tm[j],
                            "freq": freqs[j]}
                           for ts, tm in zip(per_seed, measured) for j in range(2)
                           if ts[j] is not None and tm[j] is not None]
            per_seed_fwd = ratio_summary(per_seed)
            per_seed_inv = ratio_summary([(t[1], t[0]) for t in per_seed])
            avg_fwd = avg[1] / avg[0] if avg[0] and avg[1] is not None else None
            avg_inv = avg[0] / avg[1] if avg[1] and avg[0] is not None else None
            fwd_row[f"{approx} per seed"] = fmt_ratio(per_seed_fwd) + _mark(per_seed_fwd["mean"], forward["mean"])
            fwd_row[f"{approx} seed-avg"] = _agree(avg_fwd, forward["mean"])
            inv_row[f"{approx} per seed"] = fmt_ratio(per_seed_inv) + _mark(per_seed_inv["mean"], inverse["mean"])
            inv_row[f"{approx} seed-avg"] = _agree(avg_inv, inverse["mean"])
            entry["predicted"][approx] = {"seed_average": avg, "per_seed": per_seed}
            entry["ratios"][approx] = {"k2/k1 per seed": per_seed_fwd, "k2/k1 seed average": avg_fwd,
                                       "k1/k2 per seed": per_seed_inv, "k1/k2 seed average": avg_inv}
        times.append(time_row)
        forward_rows.append(fwd_row)
        inverse_rows.append(inv_row)
        numbers[f"{fam.label}-{tag}"] = entry
    align_rows = []
    for fam in cfg.families:
        ms, _ = family_kernels(cfg, fam)
        lam = np.array([m.energy for m in ms])
        per_seed = [alignment_summary(m.theta, freqs, m.energy) for m in ms]
        average = alignment_summary(np.mean([m.theta for m in ms], axis=0), freqs, lam.mean(axis=0))
        ratio = lam[:, 0] / lam[:, 1]
        align_rows.append({
            "family": fam.label, "parameters": f"{_params(cfg, fam):,}",
            f"λ({k1})/λ({k2}) per seed": f"{ratio.mean():.2f} [{ratio.min():.2f}–{ratio.max():.2f}]",
            f"λ({k1})/λ({k2}) seed-avg": f"{lam[:, 0].mean() / lam[:, 1].mean():.2f}",
            f"λ_max / λ({k1})": f"{np.mean([m.lambda_max for m in ms]) / lam[:, 0].mean():.0f}",
            "top-16 eigenvectors: median share in one frequency, per seed (seed-avg kernel)":
                f"{np.mean([a['top_fraction_median'] for a in per_seed]):.0%} ({average['top_fraction_median']:.0%})",
            f"share of k={k1} / k={k2} on λ < λ_k/10, per seed": (
                f"{np.mean([a['slow_weight'][0] for a in per_seed]):.0%} / "
                f"{np.mean([a['slow_weight'][1] for a in per_seed]):.0%}")})
        numbers.setdefault("alignment", {})[fam.label] = {"seed_average": average, "per_seed": per_seed,
                                                          "energy": lam, "lambda_max": [m.lambda_max for m in ms]}
    return [times, forward_rows, inverse_rows], align_rows, numbers, points


def _params(cfg: Config, fam: Family) -> int:
    from spectral_lab.models import build_model

    return build_model(fam.model, signal_shape=(1, cfg.length), runs=1, **fam.options).parameters_per_run()


def _iterations(per_run, j: int) -> str:
    """``mean ± std`` of frequency j's convergence iterations over runs, ``(n/R)`` when only n converged."""
    done = [t[j] for t in per_run if t[j] is not None]
    if not done:
        return "never"
    cell = fmt_mean_std(done, ".0f", ".0f") if len(done) > 1 else f"{done[0]:.0f}"
    return cell + ("" if len(done) == len(per_run) else f" ({len(done)}/{len(per_run)})")


def _cell(values, spec: str = ".2f") -> str:
    """``mean ± std`` over seeds, the value alone for one seed."""
    values = np.asarray(values, dtype=np.float64)
    return format(values[0], spec) if values.size == 1 else fmt_mean_std(values, spec, spec)


def _mark(predicted, measured) -> str:
    if predicted is None or not measured:
        return ""
    return " ✓" if abs(predicted / measured - 1) <= AGREEMENT else " ✗"


def _agree(predicted, measured) -> str:
    return "—" if predicted is None else f"{predicted:.2f}" + _mark(predicted, measured)


# --------------------------------------------------------------------------- report: along the trajectory

def trajectory_report(cfg: Config, planned, recorded) -> tuple[list[dict], dict, dict]:
    freqs = [int(k) for k in cfg.freqs]
    rows, numbers, panels = [], {}, {}
    for (fam, tag, fraction, job), rec in zip(planned, recorded):
        if not job.config.record.snapshots:
            continue
        along = kernel_along_trajectory(rec.path, freqs=freqs, seeds=family_seeds(cfg, fam),
                                        full_seeds=cfg.full_kernel_seeds)
        results = analyze_amplitudes_file(rec.path, delta=cfg.deltas[0])
        measured = np.array([[np.nan if t is None else t for t in results[r].converged_at] for r in sorted(results)])
        label = f"{fam.label} {'Adam' if fraction is None else f'SGD {fraction:g}×'}"
        e0 = along.energy[0]
        for s, it in enumerate(along.iterations):
            growth = along.energy[s] / e0
            rows.append({"file": label, "iteration": int(it),
                         f"λ({freqs[0]}) / at 0": _cell(growth[:, 0]), f"λ({freqs[1]}) / at 0": _cell(growth[:, 1]),
                         f"λ({freqs[0]})/λ({freqs[1]})": _cell(along.energy[s][:, 0] / along.energy[s][:, 1]),
                         "λ_max · lr / M": "—" if fraction is None else
                         _cell(along.lambda_max[s] * job.config.fit.lr / cfg.length, ".3f"),
                         "‖Θ−Θ₀‖/‖Θ₀‖": "—" if along.kernel_change is None else _cell(along.kernel_change[s])})
        numbers[label] = {"iterations": along.iterations, "energy": along.energy, "lambda_max": along.lambda_max,
                          "kernel_change": along.kernel_change, "measured": measured, "lr": job.config.fit.lr}
        panels[label] = {"iterations": along.iterations, "energy": along.energy, "lambda_max": along.lambda_max,
                         "kernel_change": along.kernel_change, "measured": measured, "freqs": freqs,
                         "stable_energy": cfg.length / job.config.fit.lr if fraction is not None else None}
    return rows, numbers, panels


# --------------------------------------------------------------------------- report: images

def image_report(cfg: Config, planned, recorded) -> tuple[list[dict], dict, dict]:
    rows, numbers, panels = [], {}, {}
    for (mode, stride, optimizer, job), rec in zip(planned, recorded):
        kern = image_kernels(cfg, job.config if optimizer == "adam" else _adam_twin(planned, mode, stride))
        ms, problem = kern["measurements"], kern["problem"]
        res = spectrum_file(rec.path, n_bands=cfg.n_bands, threshold=cfg.threshold)
        label = f"{mode} stride {stride}"
        energy = np.mean([m.energy for m in ms], axis=0)
        entry = numbers.setdefault(label, {"energy": energy, "band_edges": res.band_edges,
                                           "lambda_max": [m.lambda_max for m in ms], "stable_lr": kern["stable_lr"],
                                           "shape": list(problem.observed.shape)})
        entry[optimizer] = {"file": rec.path, "lr": job.config.fit.lr, "time_to_fit": res.time_to_fit}
        if optimizer == "sgd":
            reference = problem.clean if problem.clean is not None else problem.observed
            p = predict_ntk(ms, problem.observed, lr=job.config.fit.lr, horizon=cfg.horizon_factor *
                            job.config.fit.iterations, delta=cfg.threshold, reference=reference, n_bands=cfg.n_bands)
            entry["sgd"]["predicted"] = p["predicted_convergence"]
        panels[label] = entry
    edges = next(iter(numbers.values()))["band_edges"] if numbers else []
    for label, entry in numbers.items():
        e = entry["energy"]
        row = {"network": label, "λ_b / λ_1 (band 1 … last)": " ".join(f"{v:.3g}" for v in e[1:] / e[1])}
        for optimizer in ("adam", "sgd"):
            if optimizer in entry:
                times = entry[optimizer]["time_to_fit"]
                row[f"{optimizer} measured time to fit per band (runs /)"] = " ".join(
                    "/".join(_fmt_t(t[b]) for t in times) for b in range(1, len(e)))
        if "sgd" in entry:
            row["sgd predicted"] = " ".join(_fmt_t(t) for t in entry["sgd"]["predicted"][1:])
        rows.append(row)
    return rows, {"bands": numbers, "band_edges": edges}, panels


def _adam_twin(planned, mode, stride):
    return next(j.config for m, s, o, j in planned if m == mode and s == stride and o == "adam")


def _fmt_t(t) -> str:
    return "∞" if t is None else str(t)


# --------------------------------------------------------------------------- report

def report(cfg: Config, recorded) -> dict:
    planned_1d = one_d_jobs(cfg)
    planned_img = image_jobs(cfg)
    rec_1d, rec_img = recorded[:len(planned_1d)], recorded[len(planned_1d):]
    one_d_tables, align_rows, numbers_1d, points = one_d_report(cfg, planned_1d, rec_1d)
    traj_rows, traj_numbers, traj_panels = trajectory_report(cfg, planned_1d, rec_1d)
    img_rows, img_numbers, img_panels = image_report(cfg, planned_img, rec_img)
    k1, k2 = (int(k) for k in cfg.freqs[:2])
    figures = [save(predicted_vs_measured_figure(points, title=f"{_title(cfg)}: predicted vs measured t(k), per seed"),
                    cfg.paths.figures / "predicted_vs_measured.png")]
    if traj_panels:
        figures.append(save(kernel_trajectory_figure(traj_panels, title=f"{_title(cfg)}: the kernel along training"),
                            cfg.paths.figures / "kernel_along_trajectory.png"))
    if img_panels:
        shape = next(iter(img_panels.values()))["shape"]
        figures.append(save(image_bands_figure(img_panels, title=f"dip({cfg.image_levels} level, "
                                               f"{cfg.image_channels} ch) on {cfg.image} {shape[1]}×{shape[2]} grey: "
                                               f"kernel energy per band vs time to fit (threshold {cfg.threshold:g})"),
                            cfg.paths.figures / "image_bands.png"))
    times, forward, inverse = (markdown_table(t) for t in one_d_tables)
    tables = [times, markdown_table(align_rows), markdown_table(traj_rows) if traj_rows else "",
              markdown_table(img_rows) if img_rows else "", forward, inverse]
    body = (f"{_title(cfg)}\n\n## Predicted vs measured convergence\n\nMeasured: SE(k) <= {cfg.deltas[0]:g} from then "
            f"on, mean ± std over seeds ((n/R) when only n converged). Predicted under gradient descent at the file's "
            f"lr from each seed's own kernel at initialisation ('per seed') or from the kernel averaged over the seeds "
            f"('seed-avg'); 'fourier': Θ diagonal in the Fourier basis (λ_k), 'full': the whole linearised kernel. "
            f"Ratios: mean of per-seed ratios [95 % CI]; ✓ within {AGREEMENT:.0%} of the measured mean. Adam rows: "
            f"the ratio gradient descent would give at {cfg.snapshot_fraction:g}× the stable step.\n\n{tables[0]}\n\n"
            f"t({k2})/t({k1}):\n\n{tables[4]}\n\nt({k1})/t({k2}):\n\n{tables[5]}\n\n"
            f"## How Fourier-like the kernel is (initialisation)\n\n{tables[1]}\n\n")
    if traj_rows:
        body += (f"## The kernel along the trajectory\n\nEnergies relative to iteration 0 (mean ± std over seeds), the "
                 f"energy ratio, λ_max·lr/M (1 = the edge of stability for SGD) and the full kernel's relative change "
                 f"({cfg.full_kernel_seeds} seed(s)).\n\n{tables[2]}\n\n")
    if img_rows:
        body += (f"## Images: kernel energy per radial band and time to fit\n\nBands 1… (DC left out), edges "
                 f"{', '.join(f'{e:.3f}' for e in img_numbers['band_edges'][2:])} cycles/px; energies relative to "
                 f"band 1, mean over {cfg.image_runs} seed(s); time to fit: relative band-power error <= "
                 f"{cfg.threshold:g} from then on (∞: never), per run.\n\n{tables[3]}\n\n")
    body += "Figures: " + ", ".join(f.name for f in figures) + "\n"
    numbers = {"config": cfg, "one_d": numbers_1d, "trajectory": traj_numbers, "images": img_numbers}
    write_report(cfg.paths, title=cfg.name, body=body, numbers=numbers, tables=[t for t in tables if t],
                 figures=figures)
    return numbers


def _title(cfg: Config) -> str:
    sig = " + ".join(f"sin(2π{k:g}t)" for k in cfg.freqs)
    fewer = [f"{f.label} {f.seeds}" for f in cfg.families if f.seeds and f.seeds != cfg.seeds]
    return (f"{sig}, N={cfg.length}, {cfg.seeds} seeds from {cfg.seed}"
            + (f" ({', '.join(fewer)})" if fewer else ""))


def main(cfg: Config) -> dict:
    """Kernels, recordings, predictions against measurements; returns the numbers."""
    return run(cfg, jobs, report)


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
