"""000_... (Cheng et al.) Section 3 and Figs. 3 and 6: the Gaussian-process kernel of random conv
nets, analytic against sampled, its stationarity, its power spectrum, and GP inference with it.

    python experiments/gp_kernel.py [--quick] [--out-dir DIR]

Parts (numbers only; no training, no trajectory files):

1. Fig. 3 (b): the normalised covariance K(d)/K(0) of the ``conv`` model at several depths and
   input length scales, analytic (``kernels.gp.conv_gp_covariance`` with the model's own layer
   variances) against sampled (``kernels.sampled.sampled_covariance``) with standard errors.
2. The largest analytic-vs-sampled gap as the width grows.
3. Fig. 3 (a): the ``dip`` encoder-decoder's sampled covariance and its deviation from
   stationarity (phase-resolved, period 2^levels), next to the ``conv`` model as a control.
4. The prior's power spectrum: Wiener–Khinchin of the analytic kernel against the mean power
   spectrum of untrained outputs, per frequency band.
5. Fig. 6 (GP part): GP denoising and inpainting with the conv-GP kernel against an RBF kernel,
   hyper-parameters chosen by marginal likelihood (and the best-PSNR choice, an oracle), on a
   1D scan line and on a down-sampled grey image.

Writes figures/gp_kernel/{table.md, results.json} and prints the tables.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._cli import experiment_cli
from experiments._common import REPO, Experiment, markdown_table, presets, run, write_report
from spectral_lab.analyze.psnr import psnr
from spectral_lab.kernels.gp import (centred_lags, conv_gp_covariance, conv_gp_covariance_matrix,
                                     covariance_matrix_from_lags, expected_power_spectrum, normalised_covariance,
                                     prior_power_spectrum)
from spectral_lab.kernels.gp_inputs import gaussian_input_covariance, rbf_covariance
from spectral_lab.kernels.gp_inference import (gp_inpaint, gp_log_marginal_likelihood,
                                               gp_log_marginal_likelihood_stationary, gp_posterior,
                                               gp_posterior_stationary)
from spectral_lab.kernels.sampled import (
    analytic_vs_sampled,
    conv_layer_variances,
    sampled_covariance,
    sampled_power_spectrum,
    stationarity_deviation,
)
from spectral_lab.models import build_model
from spectral_lab.signals import degrade, load_image

NAME = "gp_kernel"
# ../shared next to the checkout; a git worktree under ../wt/<name> has it two levels up
DATA = next((d for d in (REPO.parent / "shared" / "data" / "standard256",
                         REPO.parents[1] / "shared" / "data" / "standard256") if d.is_dir()),
            REPO.parent / "shared" / "data" / "standard256")


@dataclass(frozen=True)
class Config(Experiment):
    # 1. Fig. 3: conv model, depth = number of convs (the paper's d = depth - 1 ReLUs)
    length: int = 128
    width: int = 256
    in_channels: int = 128
    depths: tuple[int, ...] = (2, 3, 4, 5)
    length_scales: tuple[float, ...] = (0.0, 2.0, 5.0)
    n_nets: int = 2000
    lags: tuple[int, ...] = (1, 2, 4, 8, 16)
    max_lag: int = 24
    # 2. width sweep
    sweep_widths: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    sweep_depth: int = 4
    sweep_length: int = 64
    sweep_length_scale: float = 2.0
    sweep_nets: int = 4000
    # 3. dip stationarity (1D)
    dip_levels: int = 3
    dip_channels: int = 64
    dip_modes: tuple[str, ...] = ("bilinear", "nearest", "transposed")
    dip_nets: int = 2000
    dip_margin: int = 16
    # 5. GP inference
    image: str = "lena"
    downsample: int = 4  # 256 -> 64
    sigma: float = 25.0  # noise std in 1/255
    missing: float = 0.5
    gp_depths: tuple[int, ...] = (2, 4, 6, 8, 12)
    gp_length_scales: tuple[float, ...] = (1.0, 2.0, 4.0)
    rbf_length_scales: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
    noise_ratios: tuple[float, ...] = (1e-4, 1e-3, 1e-2)
    runs: int = 50
    name: str = NAME


DEFAULT = Config()
QUICK = replace(DEFAULT, length=64, n_nets=300, depths=(2, 4), length_scales=(0.0, 2.0), max_lag=12,
                sweep_widths=(16, 64, 256), sweep_nets=600, dip_nets=300, dip_modes=("bilinear", "nearest"),
                downsample=8, gp_depths=(2, 6), gp_length_scales=(1.0, 2.0), rbf_length_scales=(0.75, 1.5),
                noise_ratios=(1e-3,))
PRESETS = presets(paper=DEFAULT, quick=QUICK)


def conv_options(cfg: Config, depth: int, width: int | None = None, in_channels: int | None = None) -> dict:
    return {"depth": depth, "width": width or cfg.width, "kernel": 3,
            "in_channels": in_channels or cfg.in_channels, "init": "xavier", "bias": False}


def analytic_conv(options: dict, length: int, length_scale: float) -> np.ndarray:
    """The analytic lag kernel of the conv model built with ``options`` (its own layer variances)."""
    net = build_model("conv", signal_shape=(1, length), runs=1, **options)
    weight_var, bias_var = conv_layer_variances(net)
    return conv_gp_covariance(gaussian_input_covariance(length, length_scale), options["depth"],
                              weight_var=weight_var, bias_var=bias_var)


# ------------------------------------------------------------------------- 1. Fig. 3 (b)

def fig3(cfg: Config) -> tuple[list[dict], list[dict]]:
    rows, numbers = [], []
    settings = [(d, s, cfg.in_channels) for s in cfg.length_scales for d in cfg.depths]
    settings.append((cfg.depths[-1], cfg.length_scales[-1], 1))  # the lab's default single input channel
    for depth, length_scale, in_channels in settings:
        options = conv_options(cfg, depth, in_channels=in_channels)
        analytic = centred_lags(normalised_covariance(analytic_conv(options, cfg.length, length_scale)),
                                cfg.max_lag)
        sampled = sampled_covariance("conv", options, (1, cfg.length), cfg.n_nets, runs=cfg.runs,
                                     length_scale=length_scale, margin=depth, full_matrix=False,
                                     first_seed=cfg.seed)
        centre = cfg.length - 2 * depth - 1
        window = slice(centre - cfg.max_lag, centre + cfg.max_lag + 1)
        corr, se = sampled.correlation[window], sampled.correlation_se[window]
        gap = corr - analytic
        row = {"depth (d)": f"{depth} ({depth - 1})", "input σ": length_scale, "C_in": in_channels}
        for lag in (l for l in cfg.lags if l <= cfg.max_lag):
            i = cfg.max_lag + lag
            row[f"d={lag}: analytic / sampled"] = f"{analytic[i]:.3f} / {corr[i]:.3f}±{se[i]:.3f}"
        row[f"max gap |d|≤{cfg.max_lag}"] = f"{np.abs(gap).max():.3f}"
        row["max gap/se"] = f"{np.max(np.abs(gap) / np.maximum(se, 1e-300)):.1f}"
        rows.append(row)
        numbers.append({"depth": depth, "length_scale": length_scale, "in_channels": in_channels,
                        "analytic": analytic.tolist(), "sampled": corr.tolist(), "sampled_se": se.tolist(),
                        "max_gap": float(np.abs(gap).max())})
    return rows, numbers


# ------------------------------------------------------------------------ 2. width sweep

def width_sweep(cfg: Config) -> list[dict]:
    return analytic_vs_sampled(cfg.sweep_widths, length=cfg.sweep_length, depth=cfg.sweep_depth,
                               n_nets=cfg.sweep_nets, length_scale=cfg.sweep_length_scale,
                               in_channels=cfg.in_channels, max_lag=cfg.max_lag, runs=cfg.runs,
                               first_seed=cfg.seed)


# --------------------------------------------------------------- 3. dip (Fig. 3 a), stationarity

def dip_stationarity(cfg: Config) -> list[dict]:
    period = 2**cfg.dip_levels
    rows = []
    models = [("conv (control)", "conv", conv_options(cfg, cfg.dip_levels * 2, width=cfg.dip_channels, in_channels=32),
               cfg.dip_levels * 2)]
    for mode in cfg.dip_modes:
        models.append((f"dip {mode}", "dip", {"levels": cfg.dip_levels, "down": cfg.dip_channels,
                                              "up": cfg.dip_channels, "skip": 4, "upsample": mode,
                                              "in_channels": 32}, cfg.dip_margin))
    for label, name, options, margin in models:
        sampled = sampled_covariance(name, options, (1, cfg.length), cfg.dip_nets, runs=cfg.runs, margin=margin,
                                     period=period, full_matrix=False, first_seed=cfg.seed)
        dev = stationarity_deviation(sampled, max_offset=cfg.max_lag)
        centre = cfg.length - 2 * margin - 1
        row = {"model": label, "margin": margin}
        for lag in (l for l in cfg.lags if l <= cfg.max_lag):
            row[f"K(d={lag})/K(0)"] = f"{sampled.correlation[centre + lag]:.3f}±{sampled.correlation_se[centre + lag]:.3f}"
        row.update({"max |phase − mean| / K(0)": f"{dev.max_abs:.3f}±{dev.max_abs_se:.3f}",
                    "rms z": f"{dev.rms_z:.2f}", "max z": f"{dev.max_z:.1f}",
                    "phase variance min–max": f"{dev.variance_min:.3f}–{dev.variance_max:.3f}"})
        rows.append(row)
    return rows


# ------------------------------------------------------------------ 4. prior power spectrum

def spectrum_bands(cfg: Config) -> list[dict]:
    depth, length_scale = cfg.depths[-1], cfg.length_scales[1] if len(cfg.length_scales) > 1 else 0.0
    options = conv_options(cfg, depth)
    freqs = np.abs(np.fft.fftfreq(cfg.length))
    edges = [0.0, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 0.5 + 1e-9]
    analytic = prior_power_spectrum(analytic_conv(options, cfg.length, length_scale))
    weight_var, bias_var = conv_layer_variances(build_model("conv", signal_shape=(1, cfg.length), **options))
    padded = expected_power_spectrum(conv_gp_covariance_matrix(
        covariance_matrix_from_lags(gaussian_input_covariance(cfg.length, length_scale)), depth, window=3,
        weight_var=weight_var, bias_var=bias_var), cfg.length)
    mean, se = sampled_power_spectrum("conv", options, (1, cfg.length), cfg.n_nets, runs=cfg.runs,
                                      length_scale=length_scale, first_seed=cfg.seed)
    dip_mean, dip_se = sampled_power_spectrum("dip", {"levels": cfg.dip_levels, "down": cfg.dip_channels,
                                                      "up": cfg.dip_channels, "skip": 4, "in_channels": 32},
                                              (1, cfg.length), cfg.n_nets, runs=cfg.runs, first_seed=cfg.seed)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        band = (freqs >= lo) & (freqs < hi)
        rows.append({"band |f| (cycles/sample)": f"[{lo:.4f}, {min(hi, 0.5):.4f}{']' if hi > 0.5 else ')'}",
                     f"conv analytic, circular (depth {depth}, σ_in {length_scale})":
                         f"{analytic[band].sum() / analytic.sum():.4f}",
                     "conv analytic, zero padding": f"{padded[band].sum() / padded.sum():.4f}",
                     "conv sampled": f"{mean[band].sum() / mean.sum():.4f}±{np.sqrt((se[band] ** 2).sum()) / mean.sum():.4f}",
                     "dip sampled (white input)": f"{dip_mean[band].sum() / dip_mean.sum():.4f}"})
    return rows


# -------------------------------------------------------------------------- 5. GP inference

def conv_shape(depth: int, length_scale: float, grid) -> np.ndarray:
    return normalised_covariance(conv_gp_covariance(gaussian_input_covariance(grid, length_scale), depth))


def kernel_shapes(cfg: Config, grid) -> list[tuple[str, str, np.ndarray]]:
    shapes = [("conv-GP", f"depth {d}, σ_in {s}", conv_shape(d, s, grid))
              for d in cfg.gp_depths for s in cfg.gp_length_scales]
    shapes += [("RBF", f"ℓ {s}", normalised_covariance(rbf_covariance(grid, s))) for s in cfg.rbf_length_scales]
    return shapes


def denoise(cfg: Config, x: np.ndarray, y: np.ndarray, *, circular: bool) -> dict[str, dict]:
    """Per kernel family: the marginal-likelihood choice and the best-PSNR choice (oracle)."""
    noise_var = (cfg.sigma / 255) ** 2
    mu = y.mean()
    grid = x.shape if circular else tuple(2 * n for n in x.shape)
    amplitudes = np.var(y - mu) * np.logspace(-1.5, 1.0, 21)
    results: dict[str, dict] = {}
    for family, label, shape in kernel_shapes(cfg, grid):
        if circular:
            lls = [gp_log_marginal_likelihood_stationary(a * shape, y - mu, noise_var) for a in amplitudes]
        else:
            k = covariance_matrix_from_lags(shape, x.shape)
            lls = [gp_log_marginal_likelihood(a * k, y - mu, None, noise_var) for a in amplitudes]
        a = amplitudes[int(np.argmax(lls))]
        if circular:
            mean = gp_posterior_stationary(a * shape, y - mu, noise_var=noise_var, variance=False).mean + mu
        else:
            mean = gp_posterior(a * covariance_matrix_from_lags(shape, x.shape), y - mu, None, noise_var).mean + mu
        _keep(results, family, label, max(lls), float(psnr(mean, x)[0]), float(psnr(mean, x)[0]))
    return results


def inpaint(cfg: Config, x: np.ndarray, mask: np.ndarray) -> dict[str, dict]:
    results: dict[str, dict] = {}
    for family, label, shape in kernel_shapes(cfg, tuple(2 * n for n in x.shape)):
        fit = gp_inpaint(covariance_matrix_from_lags(shape, x.shape), x, mask, cfg.noise_ratios)
        mean = fit.posterior.mean
        _keep(results, family, f"{label}, noise/amp {fit.noise_ratio:g}", fit.log_ml, float(psnr(mean, x)[0]),
              float(psnr(mean[~mask], x[~mask])[0]))
    return results


def _keep(results: dict, family: str, label: str, ll: float, score: float, hole: float) -> None:
    entry = results.setdefault(family, {"ml": None, "oracle": None})
    candidate = {"setting": label, "log_ml": ll, "psnr": score, "psnr_hole": hole}
    if entry["ml"] is None or ll > entry["ml"]["log_ml"]:
        entry["ml"] = candidate
    if entry["oracle"] is None or hole > entry["oracle"]["psnr_hole"]:
        entry["oracle"] = candidate


def gp_inference(cfg: Config) -> tuple[list[dict], dict]:
    image = load_image(DATA / f"{cfg.image}.png", grey=True)[0].astype(np.float64)
    small = load_image(DATA / f"{cfg.image}.png", grey=True, downsample=cfg.downsample)[0].astype(np.float64)
    line = image[image.shape[0] // 2]
    rng = np.random.default_rng(cfg.seed)
    tasks = {}
    for label, x in ((f"1D scan line (row {image.shape[0] // 2}, {line.size} samples)", line),
                     (f"2D {small.shape[0]}x{small.shape[1]} image", small)):
        y = degrade(x, noise="white", sigma=cfg.sigma, seed=cfg.seed, clip=False).astype(np.float64)
        mask = rng.random(x.shape) >= cfg.missing
        tasks[f"denoise σ={cfg.sigma:g} {label}"] = (float(psnr(y, x)[0]), denoise(cfg, x, y, circular=x.ndim == 2))
        mean_fill = np.where(mask, x, x[mask].mean())
        tasks[f"inpaint {cfg.missing:.0%} missing {label}"] = (float(psnr(mean_fill[~mask], x[~mask])[0]),
                                                               inpaint(cfg, x, mask))
    rows = []
    for task, (baseline, results) in tasks.items():
        row = {"task": task, "baseline (noisy / mean fill)": f"{baseline:.2f}"}
        for family in ("conv-GP", "RBF"):
            ml, oracle = results[family]["ml"], results[family]["oracle"]
            key = "psnr_hole" if task.startswith("inpaint") else "psnr"
            row[f"{family} ML-chosen"] = f"{ml[key]:.2f} ({ml['setting']})"
            row[f"{family} best"] = f"{oracle[key]:.2f} ({oracle['setting']})"
        rows.append(row)
    return rows, tasks


# ----------------------------------------------------------------------------------- main

def main(cfg: Config) -> dict:
    """No recordings: kernels are computed and sampled in memory."""
    return run(cfg, lambda cfg: [], report)


def report(cfg: Config, recorded=()) -> dict:
    paths = cfg.paths
    sections, numbers = [], {"config": cfg}
    fig3_rows, numbers["fig3"] = fig3(cfg)
    sections.append(("Fig. 3 (b): normalised covariance of the conv model, analytic / sampled ± se "
                     f"(width {cfg.width}, {cfg.n_nets} networks, N = {cfg.length}, interior only)", fig3_rows))
    numbers["width_sweep"] = width_sweep(cfg)
    sections.append((f"Largest |sampled − analytic| of K(d)/K(0), |d| ≤ {cfg.max_lag}, vs width (depth "
                     f"{cfg.sweep_depth}, σ_in {cfg.sweep_length_scale}, N = {cfg.sweep_length}, "
                     f"{cfg.sweep_nets} networks)", numbers["width_sweep"]))
    numbers["dip"] = dip_stationarity(cfg)
    sections.append((f"Fig. 3 (a): dip ({cfg.dip_levels} levels, {cfg.dip_channels} channels) vs conv, white "
                     f"input, {cfg.dip_nets} networks; stationarity by phase (period {2 ** cfg.dip_levels})",
                     numbers["dip"]))
    numbers["spectrum"] = spectrum_bands(cfg)
    sections.append(("Prior power spectrum at iteration 0: fraction of the power per band", numbers["spectrum"]))
    gp_rows, numbers["gp"] = gp_inference(cfg)
    sections.append((f"GP inference PSNR (dB; inpainting: inside the holes) on {cfg.image}", gp_rows))
    body = "\n\n".join(f"## {title}\n\n{markdown_table(rows)}" for title, rows in sections)
    md, js = write_report(paths, title=cfg.name, body=body, numbers=numbers)
    print(body)
    print(f"wrote {md}, {js}")
    return numbers


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
