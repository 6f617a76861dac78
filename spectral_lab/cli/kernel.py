"""``spectral-lab kernel ntk|gp``: what a configuration's network prefers before it is trained.

``kernel ntk`` takes record's configuration flags (signal, task, model, fit: the same
defaults and presets) and prints, per frequency of the signal (1D) or radial band (images),
the tangent kernel's energy λ_k and the iteration at which plain gradient descent at the
configured ``--lr`` is predicted to fit it (`spectral_lab.kernels.configured`), with the
largest stable step M/λ_max. ``--file F --at I`` takes the kernel at a parameter snapshot of a
recording (``record --snapshots``) instead. ``kernel gp`` prints the Gaussian-process
covariance of the random network (analytic for the ``conv`` family, sampled for any) and the
prior's power spectrum: the spectral bias at iteration 0.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ..analyze._io import json_safe
from ..errors import ConfigError
from ._common import Parser, dump, fmt_it

# kernel ntk's own flags: what --file accepts beside the recording (plus --lr, --threads, --device)
NTK_FLAGS = ("approx", "seeds", "delta", "bands", "directions", "horizon", "per_phase", "file", "at", "json")
FILE_FLAGS = set(NTK_FLAGS) | {"lr", "threads", "device", "func", "command", "what", "handler"}
DEFAULT_DELTA = {"1d": 0.01, "image": 0.1}  # SE(k) (analyze amplitudes); relative band power (analyze spectrum)
HORIZON_FACTOR = 10


def add_parser(sub) -> None:
    from ..kernels.configured import APPROXIMATIONS
    from .record import add_config_arguments

    p = sub.add_parser("kernel", help="the network's kernels before training: tangent kernel (ntk), GP covariance (gp)")
    inner = p.add_subparsers(dest="what", required=True, parser_class=Parser)
    ntk = inner.add_parser(
        "ntk", help="tangent-kernel energy per frequency and the predicted convergence under gradient descent",
        description="Per frequency of the signal (1D: --freqs) or radial band (images: --bands), the energy λ_k of "
                    "the network's tangent kernel Θ = J Jᵀ at initialisation and the iteration at which plain gradient "
                    "descent at --lr is predicted to fit it; the largest stable step M/λ_max. Takes record's flags.")
    add_config_arguments(ntk)
    g = ntk.add_argument_group("kernel")
    g.add_argument("--approx", choices=APPROXIMATIONS, default="fourier",
                   help="fourier: Θ diagonal in the Fourier basis (λ_k per mode; any size); full: the whole M x M "
                        "linearised kernel, all its eigenvectors (1D, up to 4096 samples). (--kernel is the model's "
                        "conv kernel size, a record flag.)")
    g.add_argument("--seeds", type=int, metavar="N",
                   help="average the kernel over N weight seeds (--seed, --seed+1, ...; one seed's kernel is noisy); "
                        "with --file: runs 0..N-1 of the recording (default 1)")
    g.add_argument("--delta", type=float,
                   help="threshold: on SE(k) for 1D signals (default 0.01), on the relative band-power error for "
                        "images (default 0.1), as analyze amplitudes / spectrum")
    g.add_argument("--bands", type=int, help="images: number of radial bands (default: min side / 4 + 1)")
    g.add_argument("--directions", type=int, default=32,
                   help="images: directions (backward passes) per band at most (default 32)")
    g.add_argument("--horizon", type=int,
                   help=f"iterations predicted; later is 'never' (default {HORIZON_FACTOR} x --iterations)")
    g.add_argument("--per-phase", action="store_true",
                   help="1D, fourier: decay the cosine and sine of each frequency at their own rates")
    g.add_argument("--file", metavar="FILE", help="take the kernel from a recording's parameter snapshot (--at)")
    g.add_argument("--at", type=int, metavar="ITER", help="with --file: the snapshot's iteration")
    g.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ntk.set_defaults(handler=cmd_ntk)

    gp = inner.add_parser(
        "gp", help="GP covariance of the random network (analytic vs sampled) and the prior's power spectrum",
        description="The normalised output covariance K(d)/K(0) of random networks of the configuration: analytic "
                    "(the wide-network limit, conv family, circular boundary) next to the sample mean over --nets "
                    "networks (interior samples); and the share of the prior's power per frequency band. Input: white "
                    "N(0, input_scale²) noise per channel, smoothed by --length-scale. Takes record's flags.")
    add_config_arguments(gp)
    g = gp.add_argument_group("kernel")
    g.add_argument("--nets", type=int, default=500, help="random networks sampled (default 500)")
    g.add_argument("--length-scale", type=float, default=0.0,
                   help="std (samples) of the Gaussian filter correlating the input (default 0: white)")
    g.add_argument("--max-lag", type=int, default=16, help="lags shown (default 16)")
    g.add_argument("--margin", type=int,
                   help="edge samples left out of the sampled estimate (default: depth x kernel//2 for conv, 0 else)")
    g.add_argument("--bands", type=int, help="images: radial bands of the power spectrum (default: min side / 4 + 1)")
    g.add_argument("--json", action="store_true", help="print JSON instead of a table")
    gp.set_defaults(handler=cmd_gp)
    p.set_defaults(func=lambda a: a.handler(a))


# --------------------------------------------------------------------------- kernel ntk

def _check_ntk_flags(a: argparse.Namespace) -> None:
    for name in ("seeds", "bands", "horizon"):
        if getattr(a, name) is not None and getattr(a, name) < 1:
            raise ConfigError(f"--{name} must be >= 1, got {getattr(a, name)}")
    if a.directions < 1:
        raise ConfigError(f"--directions must be >= 1, got {a.directions}")
    if a.delta is not None and not (np.isfinite(a.delta) and a.delta >= 0):
        raise ConfigError(f"--delta must be a finite number >= 0, got {a.delta}")
    if (a.file is None) != (a.at is None):
        raise ConfigError("--file and --at go together: the snapshot at iteration --at of recording --file")
    if a.file is not None:
        other = sorted("--" + k.replace("_", "-") for k, v in vars(a).items()
                       if k not in FILE_FLAGS and v is not None and v is not False)
        if other:
            raise ConfigError(f"--file takes the configuration of the recording; {', '.join(other)} cannot change it "
                              "(only --lr, the step to predict for)")
    elif a.runs is not None:
        raise ConfigError("--runs is record's; use --seeds N to average the kernel over N seeds")


def _fit_warnings(cfg, lr: float) -> list[str]:
    """What the prediction leaves out of the configuration's training."""
    out = []
    f = cfg.fit
    if f.optimizer != "sgd":
        out.append(f"the configuration trains with {f.optimizer}; the prediction is for plain gradient descent "
                   f"(--optimizer sgd) at lr {lr:g}")
    else:
        extra = {k: v for k, v in f.optimizer_options.items()
                 if k in ("momentum", "weight_decay", "nesterov") and v}
        if extra:
            out.append("the prediction is for plain gradient descent; "
                       + ", ".join(f"{k}={v}" for k, v in extra.items()) + " is not in it")
    if f.reg_noise_std > 0:
        out.append(f"the input perturbation (reg_noise_std {f.reg_noise_std:g}) is not in the prediction")
    return out


def _check_task(cfg) -> None:
    if cfg.operator.name != "identity" or cfg.loss.name != "mse":
        raise ConfigError(f"kernel ntk predicts gradient descent on the mean squared error of the output itself (fit, "
                          f"denoise); this configuration has the {cfg.operator.name} operator and the {cfg.loss.name} "
                          f"loss")


def ntk_prediction(a: argparse.Namespace) -> dict:
    """The dict `cmd_ntk` prints (and ``--json`` dumps)."""
    from ..kernels.configured import check_approximation, kernel_runs, measure_kernel, predict_ntk, snapshot_runs
    from .record import build_config, set_threads

    _check_ntk_flags(a)
    set_threads(a.threads)
    seeds = a.seeds or 1
    if a.file is not None:
        cfg, problem, runs = snapshot_runs(a.file, a.at, seeds=seeds)
    else:
        cfg, problem, runs = kernel_runs(build_config(a), seeds=seeds)
    _check_task(cfg)
    check_approximation(a.approx, problem.kind, int(np.prod(problem.model_shape)))
    lr = a.lr if a.lr is not None else cfg.fit.lr
    if not (np.isfinite(lr) and lr > 0):
        raise ConfigError(f"--lr must be a positive number, got {lr}")
    delta = a.delta if a.delta is not None else DEFAULT_DELTA[problem.kind]
    horizon = a.horizon or HORIZON_FACTOR * cfg.fit.iterations
    full = a.approx == "full"
    if problem.kind == "1d":
        freqs = list(cfg.signal.freqs)
        if a.bands is not None:
            raise ConfigError("--bands is for images; a 1D signal's frequencies are its --freqs")
        measured = [measure_kernel(r, freqs=freqs, full=full) for r in runs]
        out = predict_ntk(measured, problem.observed, lr=lr, horizon=horizon, delta=delta, freqs=freqs, full=full,
                          per_phase=a.per_phase)
    else:
        if a.per_phase:
            raise ConfigError("--per-phase is for 1D signals")
        measured = [measure_kernel(r, n_bands=a.bands, max_directions=a.directions) for r in runs]
        out = predict_ntk(measured, problem.observed, lr=lr, horizon=horizon, delta=delta,
                          reference=problem.clean if problem.clean is not None else problem.observed,
                          n_bands=a.bands)
    warnings = _fit_warnings(cfg, lr) if a.file is None or a.lr is None else []
    if out["lr_above_stable"]:
        warnings.append(f"lr {lr:g} is at or above the stable step M/λ_max = {out['stable_lr']:.4g}: the top "
                        "eigen-direction grows, and so do the frequencies it reaches")
    from ..plot import title_of

    out.update({"config": title_of(cfg.to_dict()), "file": a.file, "warnings": warnings})
    return out


def cmd_ntk(a: argparse.Namespace) -> int:
    out = ntk_prediction(a)
    for w in out["warnings"]:
        print(f"spectral-lab: warning: {w}", file=sys.stderr)
    if a.json:
        dump(json_safe(out))
        return 0
    where = (f"snapshot at iteration {out['from_iteration']} of {out['file']}" if out["file"] else "initialisation")
    seeds = ", ".join(str(s["seed"]) for s in out["seeds"])
    mean = f"mean over {len(out['seeds'])} seeds ({seeds})" if len(out["seeds"]) > 1 else f"seed {seeds}"
    form = "full linearised kernel" if out["approx"] == "full" else "Fourier-diagonal kernel"
    print(f"{out['config']}\nkernel at {where}, {mean}; {form}")
    frac = out["lr_fraction_of_stable"]
    print(f"gradient descent at lr {out['lr']:g}: stable up to M/λ_max = {out['stable_lr']:.4g} "
          f"(λ_max {out['lambda_max']:.4g}, M = {out['n_samples']}); lr is {frac:.3g} of it")
    horizon = f"never = not by iteration {out['from_iteration'] + out['horizon']}"
    if out["kind"] == "1d":
        print(f"{'k':>6} {'λ_k':>12}   predicted t (SE <= {out['delta']:g}; {horizon})")
        for k, e, t in zip(out["frequencies"], out["energy"], out["predicted_convergence"]):
            print(f"{k:>6} {e:>12.5g}   {fmt_it(t)}")
        ts = out["predicted_convergence"]
        if len(ts) >= 2 and ts[0] and ts[1] is not None:
            k1, k2 = out["frequencies"][:2]
            print(f"predicted t({k2})/t({k1}) = {ts[1] / ts[0]:.3g}")
        if out["alignment"]:
            al = out["alignment"]
            print(f"eigenvectors: the top {al['top_eigenvectors']} hold a median {al['top_fraction_median']:.0%} of "
                  "their energy in one frequency; share of each mode on eigen-directions with λ < λ_k/10: "
                  + ", ".join(f"k={k} {w:.0%}" for k, w in zip(out["frequencies"], al["slow_weight"])))
    else:
        edges = out["band_edges"]
        print(f"{'band (cycles/px)':>18} {'λ_b':>12}   predicted time to fit (relative band power error <= "
              f"{out['delta']:g}; {horizon})")
        for b, (e, t) in enumerate(zip(out["energy"], out["predicted_convergence"])):
            band = "DC" if b == 0 else f"{edges[b]:.3f}-{edges[b + 1]:.3f}"
            print(f"{band:>18} {e:>12.5g}   {fmt_it(t)}")
    if len(out["per_seed"]) > 1:
        print("per seed: " + "; ".join(
            f"seed {s['seeds']['seed']}: λ_max {s['lambda_max']:.4g}, t " + "/".join(fmt_it(t) for t in
                                                                                  s["predicted_convergence"])
            for s in out["per_seed"]))
    return 0


# --------------------------------------------------------------------------- kernel gp

def _octave_edges(n: int) -> np.ndarray:
    """|f| band edges 0, 1/2^J, ..., 1/4, 1/2 (cycles per sample) with 1/2^J >= 1/n."""
    top = int(np.floor(np.log2(n / 2)))
    return np.array([0.0] + [0.5 / 2 ** j for j in reversed(range(max(top, 1)))])


def gp_kernel(a: argparse.Namespace) -> dict:
    """The dict `cmd_gp` prints."""
    from ..analyze.spectrum import radial_bands
    from ..config import validate
    from ..kernels.gp import centred_lags, conv_gp_covariance, normalised_covariance, prior_power_spectrum
    from ..kernels.gp_inputs import gaussian_input_covariance
    from ..kernels.sampled import conv_layer_variances, sampled_covariance, sampled_power_spectrum
    from ..models import build_model
    from ..plot import title_of
    from ..problem import make_problem
    from .record import build_config, set_threads

    set_threads(a.threads)
    if a.nets < 2:
        raise ConfigError(f"--nets must be >= 2 (a standard error needs two), got {a.nets}")
    if a.max_lag < 0:
        raise ConfigError(f"--max-lag must be >= 0, got {a.max_lag}")
    cfg = validate(build_config(a))
    # the signal only gives the shape (a 1D signal's frequencies do not matter here)
    shape = (1, cfg.signal.length) if cfg.signal.kind == "sines" else make_problem(cfg).model_shape
    spatial = shape[1:]
    name, options = cfg.model.name, dict(cfg.model.options)
    margin = a.margin
    if margin is None:
        margin = int(options["depth"]) * (int(options["kernel"]) // 2) if name == "conv" else 0
    inner = min(spatial) - 2 * margin
    if margin < 0 or inner < 2:
        raise ConfigError(f"--margin must leave at least 2 interior samples per side, got {margin} on {spatial}")
    max_lag = min(a.max_lag, inner - 1)
    input_scale = cfg.fit.input_scale if cfg.fit.input_scale is not None else 1.0
    sampled = sampled_covariance(name, options, shape, a.nets, length_scale=a.length_scale, input_scale=input_scale,
                                 first_seed=cfg.fit.seed, margin=margin, full_matrix=False)
    centre = tuple(n - 2 * margin - 1 for n in spatial)  # index of lag 0 in the centred sampled arrays
    row = centre[:-1]  # 2D: the lags along x (dy = 0)
    lag_index = (*row, slice(centre[-1], centre[-1] + max_lag + 1))
    out = {"config": title_of(cfg.to_dict()), "model": name, "shape": list(shape), "n_nets": int(a.nets),
           "length_scale": float(a.length_scale), "margin": int(margin), "lags": list(range(max_lag + 1)),
           "sampled": sampled.correlation[lag_index].tolist(), "sampled_se": sampled.correlation_se[lag_index].tolist(),
           "analytic": None, "max_gap": None, "max_z": None}
    input_cov = gaussian_input_covariance(spatial, a.length_scale)
    analytic_cov = None
    if name == "conv":
        net = build_model(name, signal_shape=shape, runs=1, **options)
        weight_var, bias_var = conv_layer_variances(net)
        analytic_cov = conv_gp_covariance(input_cov, int(options["depth"]), weight_var=weight_var, bias_var=bias_var)
        lags = centred_lags(normalised_covariance(analytic_cov), (max_lag,) * len(spatial))
        analytic = lags[(*(max_lag,) * (len(spatial) - 1), slice(max_lag, None))]
        gap = np.asarray(out["sampled"]) - analytic
        se = np.asarray(out["sampled_se"])
        out.update(analytic=analytic.tolist(), max_gap=float(np.abs(gap).max()),
                   max_z=float(np.max(np.abs(gap) / np.where(se > 0, se, np.inf))))
    mean, se = sampled_power_spectrum(name, options, shape, a.nets, length_scale=a.length_scale,
                                      input_scale=input_scale, first_seed=cfg.fit.seed)
    if len(spatial) == 1:
        if a.bands is not None:
            raise ConfigError("--bands is for images; 1D spectra are shown in octave bands")
        radius = np.abs(np.fft.fftfreq(spatial[0]))
        edges = _octave_edges(spatial[0])
        index = np.minimum(np.searchsorted(edges, radius, side="right") - 1, len(edges) - 2)
    else:
        index, edges = radial_bands(spatial, a.bands)
    n_b = int(index.max()) + 1

    def shares(power):
        return (np.bincount(index.ravel(), weights=power.ravel(), minlength=n_b) / power.sum()).tolist()

    out["power"] = {"band_edges": np.asarray(edges).tolist(), "sampled": shares(mean),
                    "sampled_se": (np.sqrt(np.bincount(index.ravel(), weights=(se ** 2).ravel(), minlength=n_b))
                                   / mean.sum()).tolist(),
                    "analytic": None if analytic_cov is None else shares(prior_power_spectrum(analytic_cov))}
    return out


def cmd_gp(a: argparse.Namespace) -> int:
    out = gp_kernel(a)
    if a.json:
        dump(json_safe(out))
        return 0
    print(f"{out['config']}\n{out['n_nets']} random networks, input white N(0, s²)"
          + (f" smoothed by a Gaussian of std {out['length_scale']:g}" if out["length_scale"] else "")
          + f"; sampled over the interior ({out['margin']} edge samples left out)")
    print(f"{'lag':>5} {'analytic':>10} {'sampled':>18}   normalised covariance K(d)/K(0)")
    analytic = out["analytic"] or [None] * len(out["lags"])
    for d, an, s, e in zip(out["lags"], analytic, out["sampled"], out["sampled_se"]):
        print(f"{d:>5} {'—' if an is None else format(an, '.4f'):>10} {s:>10.4f} ± {e:.4f}")
    if out["max_gap"] is not None:
        print(f"largest |sampled - analytic| {out['max_gap']:.4f} ({out['max_z']:.1f} standard errors)")
    else:
        print("analytic kernel: conv family only")
    p = out["power"]
    edges = p["band_edges"]
    print("share of the prior's power per band (cycles/sample): "
          + "; ".join(f"[{lo:.3g}, {hi:.3g}] " + (f"{an:.4f} / " if p["analytic"] else "") + f"{s:.4f}"
                      for lo, hi, an, s in zip(edges[:-1], edges[1:], p["analytic"] or [None] * len(p["sampled"]),
                                               p["sampled"]))
          + ("  (analytic / sampled)" if p["analytic"] else "  (sampled)"))
    return 0
