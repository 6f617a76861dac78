"""000_... (Cheng et al.) Fig. 6: the trained DIP against the Gaussian process of its own prior as the
channels grow.

    python experiments/bayes_dip_gp.py [--quick | --preset quick|hour|paper] [--image PATH]
        [--seeds R] [--out-dir DIR] [--estimate-only] [--set FIELD=VALUE]

An image (default: Cameraman of ../shared/data/inpainting11, grey; the paper's Fig. 6 image) is
down-sampled to ``size`` × ``size`` (centre crop) and ``drop`` of its pixels are removed at
random (noise seed 0). Then:

- **DIP**: the U-Net of the paper's Fig. 6 — the ``dip`` model with ``levels`` levels, every
  layer of ``c`` channels for each c in ``channels`` — fits the known pixels with Adam at ``lr``
  for ``iterations`` steps, R seeds, input z ~ N(0, 1) of 32 channels (the input the kernel is
  sampled with), no input perturbation; scored by the PSNR of its best frame in the holes
  (oracle) and of its last frame;
- **GP-DIP**: a GP whose kernel is that network's own prior covariance at initialisation,
  estimated from ``kernel_nets`` random networks of ``kernel_channels`` channels
  (`spectral_lab.kernels.sampled.sampled_covariance`, output taken before the sigmoid, the
  covariance averaged over positions at each offset: a stationary estimate); the posterior
  mean fills the holes (`spectral_lab.kernels.gp.gp_inpaint`: amplitude and nugget by marginal
  likelihood);
- **GP-RBF**: the same with the squared-exponential kernel, its length scale (from
  ``rbf_length_scales``) also chosen by marginal likelihood.

The PSNR is reported in the holes and over the whole image (the paper's number: output at every
pixel). Writes trajectories/bayes_dip_gp/<image>--c<channels>.h5 and figures/bayes_dip_gp/
{table.md, results.json, dip_vs_gp_<image>.png, outputs_<image>.png}.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._cli import experiment_cli
from experiments._common import Experiment, Setting, fmt_mean_std, markdown_table, presets, run, run_config, shared_data, write_report
from spectral_lab.analyze.psnr import psnr, psnr_file
from spectral_lab.config import DegradeConfig, SignalConfig
from spectral_lab.errors import SpectralLabError
from spectral_lab.images import image_name, image_paths
from spectral_lab.kernels.gp import covariance_matrix_from_lags
from spectral_lab.kernels.gp_inputs import rbf_covariance
from spectral_lab.kernels.gp_inference import gp_inpaint
from spectral_lab.kernels.sampled import sampled_covariance
from spectral_lab.sweep import Job, fmt_seconds
from spectral_lab.trajectory import open_trajectory

NAME = "bayes_dip_gp"
CAMERAMAN = shared_data("inpainting11", "Cameraman256.png")
# 000_... Fig. 6 (64 × 64, 50 % dropped, whole-image PSNR): GP-RBF 25.78, GP-DIP 26.34, DIP 26.43
PAPER = {"GP-RBF": 25.78, "GP-DIP": 26.34, "DIP": 26.43}


@dataclass(frozen=True)
class Config(Experiment):
    """``image``: a file (None: Cameraman when ../shared/data is there, else the sample
    photograph), read grey, down-sampled by the integer factor that brings its shorter side
    closest to ``size`` from above, then centre-cropped to ``size`` × ``size``."""

    image: str | None = None
    size: int = 32
    drop: float = 0.5
    noise_seed: int = 0
    levels: int = 2
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    skip: int = 4
    lr: float = 0.01
    iterations: int = 2000
    seeds: int = 2
    kernel_channels: int = 256
    kernel_nets: int = 2000
    kernel_batch: int = 16
    rbf_length_scales: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
    noise_ratios: tuple[float, ...] = (1e-4, 1e-3, 1e-2)
    name: str = NAME


PRESETS = presets(
    # The paper's size: 64 × 64, channels 16 … 512; kernel from 20 000 networks of 256 channels.
    paper=Config(size=64, channels=(16, 32, 64, 128, 256, 512), iterations=5000, seeds=3, kernel_nets=20000),
    # 32 × 32 (Cameraman ÷8), channels 16 … 256, 2000 Adam steps, 2 seeds; kernel from 2000 nets.
    hour=Config(),
    # Minutes: 32 × 32, channels 8, 32, 128, 500 steps, one seed; kernel from 300 nets of 128.
    quick=Config(channels=(8, 32, 128), iterations=500, seeds=1, kernel_channels=128, kernel_nets=300),
)
PAPER_PRESET, HOUR, QUICK = PRESETS["paper"], PRESETS["hour"], PRESETS["quick"]


def image_of(cfg: Config) -> Path | None:
    if cfg.image is not None:
        return image_paths(cfg.image)[0]
    return CAMERAMAN if CAMERAMAN.is_file() else None


def dip_options(cfg: Config, channels: int) -> dict:
    return {"levels": cfg.levels, "down": channels, "up": channels, "skip": cfg.skip}


def signal_of(cfg: Config) -> SignalConfig:
    """The grey image down-sampled to a shorter side of about ``size`` (centre-cropped later)."""
    from spectral_lab.images import downsample_for
    from spectral_lab.signals import sample_image_path

    image = image_of(cfg)
    factor = downsample_for(sample_image_path() if image is None else image, cfg.size)
    return SignalConfig(kind="image", image=None if image is None else str(image), grey=True, downsample=factor,
                        crop_multiple=cfg.size)


def plan_jobs(cfg: Config) -> dict[int, Job]:
    if cfg.seeds < 1:
        raise SpectralLabError(f"seeds must be >= 1, got {cfg.seeds}")
    if not cfg.channels or min(cfg.channels) < 1:
        raise SpectralLabError(f"channels must list positive channel counts, got {list(cfg.channels)}")
    if not 0 < cfg.drop < 1:
        raise SpectralLabError(f"drop must be in (0, 1), got {cfg.drop}")
    out = {}
    for c in cfg.channels:
        setting = Setting(f"c{c}", "dip", dip_options(cfg, c), lr=cfg.lr, iterations=cfg.iterations,
                          input_dist="normal", input_scale=1.0)
        out[c] = Job(cfg.paths.trajectory(f"{image_name(image_of(cfg))}--c{c}"),
                     run_config(setting, signal_of(cfg), runs=cfg.seeds, seed=cfg.seed, device=cfg.device,
                                degrade=DegradeConfig(noise="none", sigma=0.0, seed=cfg.noise_seed), task="inpaint",
                                operator_options={"drop": cfg.drop}), f"c{c}")
    return out


def jobs(cfg: Config) -> list[Job]:
    return list(plan_jobs(cfg).values())


def main(cfg: Config) -> dict:
    print(f"{cfg.name} [{cfg.preset}]: {image_name(image_of(cfg))} {cfg.size}², {cfg.drop:.0%} dropped; dip "
          f"{cfg.levels} levels, channels {list(cfg.channels)}, Adam lr {cfg.lr:g} × {cfg.iterations}, {cfg.seeds} "
          f"seed(s); GP-DIP kernel from {cfg.kernel_nets} networks of {cfg.kernel_channels} channels")
    return run(cfg, jobs, report)


# --------------------------------------------------------------------------- the GP side

def dip_kernel(cfg: Config, shape: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """The GP-DIP prior: the normalised lag covariance of random ``dip`` networks of
    ``kernel_channels`` channels, FFT order of shape (2H−1, 2W−1) (a window of an infinite
    stationary process, `covariance_matrix_from_lags`), and its sampling statistics."""
    sampled = sampled_covariance("dip", dip_options(cfg, cfg.kernel_channels), (1, *shape), cfg.kernel_nets,
                                 runs=cfg.kernel_batch, input_scale=1.0, first_seed=cfg.seed, full_matrix=False)
    lag = np.fft.ifftshift(sampled.correlation)  # centred -> FFT order (index 0: offset 0)
    centre = tuple(n - 1 for n in shape)
    info = {"nets": sampled.n_nets, "channels": cfg.kernel_channels,
            "correlation_at_offsets": {d: float(sampled.correlation[centre[0], centre[1] + d])
                                       for d in (1, 2, 4, 8) if d < shape[1]},
            "max_se": float(sampled.correlation_se.max())}
    return lag, info


def gp_side(cfg: Config, clean: np.ndarray, known: np.ndarray) -> dict[str, dict]:
    """GP-DIP and GP-RBF (length scale by marginal likelihood) posterior means and scores."""
    x = clean[0]
    mask = known[0].astype(bool)
    shape = x.shape
    lag, info = dip_kernel(cfg, shape)
    candidates = [("GP-DIP", f"sampled, {cfg.kernel_channels} ch", lag)]
    big = tuple(2 * n - 1 for n in shape)
    candidates += [("GP-RBF", f"ℓ {s:g}", rbf_covariance(big, s)) for s in cfg.rbf_length_scales]
    out: dict[str, dict] = {}
    for family, label, cov in candidates:
        fit = gp_inpaint(covariance_matrix_from_lags(cov, shape), x, mask, cfg.noise_ratios)
        mean = fit.posterior.mean
        entry = {"setting": f"{label}, noise/amp {fit.noise_ratio:g}", "log_ml": fit.log_ml,
                 "psnr_all": float(psnr(mean, x)[0]), "psnr_hole": float(psnr(mean[~mask], x[~mask])[0]),
                 "_mean": mean, "_lag": cov}
        if family not in out or fit.log_ml > out[family]["log_ml"]:
            out[family] = entry
    out["GP-DIP"]["kernel"] = info
    return out


# --------------------------------------------------------------------------- report

def report(cfg: Config, recorded) -> dict:
    from spectral_lab.plot import save
    from spectral_lab.plot.bayes import dip_vs_gp_figure
    from spectral_lab.plot.denoise import output_grid_figure

    planned = plan_jobs(cfg)
    seconds = {rec.path: rec.seconds for rec in recorded}
    dip = {}
    for c, job in planned.items():
        hole = psnr_file(job.path, region="hole", with_ssim=False)
        whole = psnr_file(job.path, with_ssim=False)
        dip[c] = {"best_hole": [r.best_psnr for r in hole.runs], "best_iteration": [r.best_iteration for r in hole.runs],
                  "final_hole": [r.final_psnr for r in hole.runs], "final_all": [r.final_psnr for r in whole.runs],
                  "best_all": [r.best_psnr for r in whole.runs], "seconds": seconds.get(job.path, 0.0),
                  "peaked": all(r.best_iteration < 0.9 * cfg.iterations for r in hole.runs)}
    with open_trajectory(planned[cfg.channels[-1]].path) as t:
        clean, known, observed = np.asarray(t.target, np.float64), np.asarray(t.known), np.asarray(t.observed)
        last = {c: None for c in planned}
    for c, job in planned.items():
        with open_trajectory(job.path) as t:
            last[c] = np.asarray(t.frames(0)[t.n_frames(0) - 1], dtype=np.float64)
    gp = gp_side(cfg, clean, known)
    mean_fill = float(psnr(np.full(int((known[0] == 0).sum()), clean[0][known[0] == 1].mean()),
                           clean[0][known[0] == 0])[0])

    rows = []
    for c, d in dip.items():
        rows.append({"model": f"DIP, {c} channels", "PSNR hole: best (it.)":
                     f"{fmt_mean_std(d['best_hole'])} ({', '.join(map(str, d['best_iteration']))})"
                     + ("" if d["peaked"] else " †"),
                     "PSNR hole: last": fmt_mean_std(d["final_hole"]), "PSNR all: last": fmt_mean_std(d["final_all"]),
                     "recording": fmt_seconds(d["seconds"])})
    for family, g in gp.items():
        rows.append({"model": f"{family} ({g['setting']})", "PSNR hole: best (it.)": "—",
                     "PSNR hole: last": f"{g['psnr_hole']:.2f}", "PSNR all: last": f"{g['psnr_all']:.2f}",
                     "recording": f"log ML {g['log_ml']:.1f}"})
    rows.append({"model": "mean fill (baseline)", "PSNR hole: last": f"{mean_fill:.2f}"})
    rows.append({"model": "paper Fig. 6 (64 × 64, whole image)", "PSNR all: last":
                 f"GP-RBF {PAPER['GP-RBF']:.2f}, GP-DIP {PAPER['GP-DIP']:.2f}, DIP {PAPER['DIP']:.2f}"})
    table = markdown_table(rows)
    gaps = {c: float(np.mean(d["final_hole"]) - gp["GP-DIP"]["psnr_hole"]) for c, d in dip.items()}

    figures = []
    shape = clean.shape[1:]
    offsets = np.arange(shape[1])
    kernels = {}
    for family, g in gp.items():
        k = np.asarray(g["_lag"])
        kernels[f"{family} ({g['setting'].split(',')[0]})"] = (offsets, k[0, offsets] / k[0, 0])
    figures.append(save(dip_vs_gp_figure(
        cfg.channels, {"DIP, last frame": np.array([d["final_hole"] for d in dip.values()]),
                       "DIP, best frame (oracle)": np.array([d["best_hole"] for d in dip.values()])},
        {f: g["psnr_hole"] for f, g in gp.items()}, kernels=kernels, ylabel="PSNR in the holes (dB)",
        title=f"000 Fig. 6 at CPU scale: {image_name(image_of(cfg))} {shape[0]}×{shape[1]} grey, {cfg.drop:.0%} "
              f"dropped; DIP U-Net {cfg.levels} levels, Adam lr {cfg.lr:g} × {cfg.iterations}, {cfg.seeds} seed(s); "
              f"GP-DIP kernel from {cfg.kernel_nets} random nets of {cfg.kernel_channels} channels"),
        cfg.paths.figures / f"dip_vs_gp_{image_name(image_of(cfg))}.png"))
    grid = [("", [("clean", clean), ("observation", np.where(known.astype(bool), observed, 0.0))]
             + [(f"{f}: {g['psnr_hole']:.2f} dB (hole)", g["_mean"][None]) for f, g in gp.items()]),
            ("DIP (seed 0, last)", [(f"{c} ch: {float(psnr(last[c][0][known[0] == 0], clean[0][known[0] == 0])[0]):.2f} dB",
                                     last[c]) for c in planned])]
    figures.append(save(output_grid_figure(grid, title=f"GP and DIP inpainting, {shape[0]}×{shape[1]}"),
                        cfg.paths.figures / f"outputs_{image_name(image_of(cfg))}.png"))

    setting = (f"preset `{cfg.preset}`: {image_name(image_of(cfg))} {shape[0]}×{shape[1]} grey, {cfg.drop:.0%} of the "
               f"pixels dropped (Bernoulli, seed {cfg.noise_seed}); DIP {cfg.levels} levels × c channels (skip "
               f"{cfg.skip}), Adam lr {cfg.lr:g}, {cfg.iterations} iterations, z ~ N(0, 1), {cfg.seeds} seed(s); "
               f"GP-DIP: sampled kernel of {cfg.kernel_nets} random networks of {cfg.kernel_channels} channels")
    body = (f"{setting}.\n\nPSNR (dB), mean ± std over seeds; † = a best frame in the last 10 % of the budget.\n\n"
            f"{table}\n\nLast-frame DIP minus GP-DIP in the holes: "
            + ", ".join(f"{c} ch {v:+.2f} dB" for c, v in gaps.items())
            + f"\n\nFigures: {', '.join(f.name for f in figures)}\n")
    numbers = {"config": cfg, "setting": setting, "dip": dip, "gap_to_gp_dip": gaps, "mean_fill_hole": mean_fill,
               "gp": {f: {k: v for k, v in g.items() if not k.startswith("_")} for f, g in gp.items()}, "paper": PAPER}
    write_report(cfg.paths, title=f"{cfg.name} [{cfg.preset}]", body=body, numbers=numbers, tables=[setting, table],
                 figures=figures)
    return numbers


FLAGS = {"image": "an image file (default: Cameraman of ../shared/data/inpainting11)",
         "seeds": "seeds (runs) per channel count"}


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
