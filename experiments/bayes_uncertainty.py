"""000_... (Cheng et al.) Fig. 1 c–d and Table 2: the posterior of an inpainting run — its mean and
its uncertainty map — against SGD.

    python experiments/bayes_uncertainty.py [--quick | --preset quick|hour|paper] [--images PATH]
        [--seeds R] [--out-dir DIR] [--estimate-only] [--set FIELD=VALUE]

Every image (default: Cameraman of ../shared/data/inpainting11, grey) is down-sampled to a
shorter side of about ``size`` and ``drop`` of its pixels are removed at random (a Bernoulli
mask from noise seed 0, the same for every scheme and seed; or ``mask``, a mask image). Then R
seeds of the DIP fit the known pixels under the SGD schemes and the samplers of ``schemes``
(`experiments._common.SamplerExperiment`; ``sgld`` needs a likelihood noise level,
``likelihood_sigma``, since the observation itself is noise-free).

Reported per file: the PSNR in the holes of the best frame (an oracle stop), of the last frame
and of the posterior mean (samplers); and the uncertainty map's numbers
(`spectral_lab.analyze.uncertainty`): the posterior standard deviation in the holes against on
the known pixels, on the strongest 20 % of the clean image's edges against its flattest half,
its correlation with the posterior mean's error, and the share of hole pixels whose error is
within one and two standard deviations.

Writes trajectories/bayes_uncertainty/<image>--<scheme>.h5 and figures/bayes_uncertainty/{table.md,
results.json, uncertainty_<image>--<scheme>.png}.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._cli import experiment_cli
from experiments._common import (SCHEMES, SamplerExperiment, fmt_mean_std, markdown_table, presets, run, run_config,
                                 shared_data, write_report)
from spectral_lab.analyze.psnr import psnr_file
from spectral_lab.analyze.uncertainty import uncertainty_file
from spectral_lab.config import DegradeConfig, SignalConfig
from spectral_lab.errors import SpectralLabError
from spectral_lab.optim import is_sampler
from spectral_lab.images import image_name, image_paths
from spectral_lab.problem import make_problem
from spectral_lab.sweep import Job
from spectral_lab.trajectory import open_trajectory

NAME = "bayes_uncertainty"
CAMERAMAN = shared_data("inpainting11", "Cameraman256.png")


@dataclass(frozen=True)
class Config(SamplerExperiment):
    """See `SamplerExperiment`. ``drop``: the share of pixels removed (Bernoulli), or ``mask`` a
    mask image (nonzero = known); ``likelihood_sigma``: the noise level (0–255 scale) of the
    Gaussian likelihood of ``sgld`` (the observation is noise-free; 0 leaves ``sgld`` out);
    ``edge_fraction`` / ``flat_fraction``: the pixels compared as edges and as flat."""

    images: str | None = None
    grey: bool = True
    sigma: float = 0.0
    drop: float = 0.5
    mask: str | None = None
    schemes: tuple[str, ...] = SCHEMES
    likelihood_sigma: float = 5.0
    seeds: int = 2
    reg_noise_std: float = 1.0 / 30
    edge_fraction: float = 0.2
    flat_fraction: float = 0.5
    name: str = NAME


PRESETS = presets(
    # The paper's inpainting (Section 5.2.2): full size, the DIP 5 × 128 at lr 0.001, 30 000 steps
    # with a burn-in of 20 000 for the samplers.
    paper=Config(size=None, downsample=1, levels=5, channels=128, lr=0.001, iterations=30000, burn_in=20000,
                 every=50, seeds=3),
    # Cameraman 64×64 grey, 50 % of the pixels dropped, the lab's quick DIP, 2000 steps for every
    # scheme (Adam at 0.01: ten times the paper's step), burn-in 700, one seed.
    hour=Config(iterations=2000, burn_in=700, seeds=1),
    # Minutes: the sample photograph (grey) at ~32 px, a 3-level DIP of 32 channels, 600 steps.
    quick=Config(size=32, levels=3, channels=32, iterations=600, burn_in=200, seeds=1,
                 schemes=("sgd", "sgld_adam", "sgld")),
)
PAPER, HOUR, QUICK = PRESETS["paper"], PRESETS["hour"], PRESETS["quick"]


def images_of(cfg: Config) -> list:
    if cfg.images is not None:
        return image_paths(cfg.images)
    if cfg.preset != "quick" and CAMERAMAN.is_file():
        return [CAMERAMAN]
    return [None]


def inpaint_config(cfg: Config, scheme: str, image: Path | None):
    """The `RunConfig` of one scheme inpainting ``image``."""
    setting = cfg.scheme(scheme)
    signal = SignalConfig(kind="image", image=None if image is None else str(image), grey=cfg.grey,
                          downsample=cfg.downsample_of(image))
    if scheme == "sgld":
        # The likelihood's σ is a choice (the observation has no noise). N: the samples the data
        # term averages over — the mse loss averages over every pixel, holes included (zeros
        # there), so N is the image's size, not the count of known pixels the fit would assume.
        n_all = int(np.prod(make_problem(run_config(setting, signal, runs=1, task="inpaint", degrade=DegradeConfig(
            noise="none", sigma=0.0, seed=cfg.noise_seed), operator_options=_operator(cfg))).clean.shape))
        setting = replace(setting, optimizer_options={**setting.optimizer_options, "n_observed": n_all,
                                                      "noise_sigma": cfg.likelihood_sigma / 255.0})
    return run_config(setting, signal, runs=cfg.seeds, seed=cfg.seed, device=cfg.device,
                      degrade=DegradeConfig(noise="none", sigma=0.0, seed=cfg.noise_seed), task="inpaint",
                      operator_options=_operator(cfg))


def _operator(cfg: Config) -> dict:
    return {"mask": cfg.mask} if cfg.mask is not None else {"drop": cfg.drop}


def plan_jobs(cfg: Config) -> dict[tuple[str, str], Job]:
    if cfg.seeds < 1:
        raise SpectralLabError(f"seeds must be >= 1, got {cfg.seeds}")
    unknown = [s for s in cfg.schemes if s not in SCHEMES]
    if unknown or not cfg.schemes:
        raise SpectralLabError(f"schemes must name one or more of {', '.join(SCHEMES)}, got {list(cfg.schemes)}")
    if not cfg.burn_in < cfg.iterations:
        raise SpectralLabError(f"the burn-in ({cfg.burn_in}) must end before the last iteration ({cfg.iterations})")
    schemes = [s for s in cfg.schemes if not (s == "sgld" and cfg.likelihood_sigma <= 0)]
    return {(image_name(img), s): Job(cfg.paths.trajectory(f"{image_name(img)}--{s}"), inpaint_config(cfg, s, img), s)
            for img in images_of(cfg) for s in schemes}


def jobs(cfg: Config) -> list[Job]:
    return list(plan_jobs(cfg).values())


def main(cfg: Config) -> dict:
    where = f"mask {cfg.mask}" if cfg.mask else f"{cfg.drop:.0%} of the pixels dropped"
    print(f"{cfg.name} [{cfg.preset}]: {len(images_of(cfg))} image(s), {where}, {cfg.seeds} seed(s)")
    for s in cfg.schemes:
        print(f"  {s}: {cfg.scheme(s).describe()}")
    return run(cfg, jobs, report)


def report(cfg: Config, recorded) -> dict:
    from spectral_lab.plot import save
    from spectral_lab.plot.bayes import uncertainty_figure

    planned = plan_jobs(cfg)
    rows, unc_rows, numbers, figures = [], [], {}, []
    for (img, scheme), job in planned.items():
        hole = psnr_file(job.path, region="hole", with_ssim=False)
        whole = psnr_file(job.path, with_ssim=False)
        entry = {"best_hole": [r.best_psnr for r in hole.runs], "best_iteration": [r.best_iteration for r in hole.runs],
                 "final_hole": [r.final_psnr for r in hole.runs],
                 "posterior_hole": [r.posterior_psnr for r in hole.runs if r.posterior_psnr is not None],
                 "posterior_all": [r.posterior_psnr for r in whole.runs if r.posterior_psnr is not None],
                 "mean_fill_hole": hole.baselines.get("mean_fill")}
        rows.append({"image": img, "scheme": scheme, "setting": job.config.fit.optimizer
                     + f" lr={job.config.fit.lr:g}" + (f", input noise {job.config.fit.reg_noise_std:.3g}"
                                                       if job.config.fit.reg_noise_std else ""),
                     "best frame, hole (it.)": f"{fmt_mean_std(entry['best_hole'])} "
                                               f"({', '.join(map(str, entry['best_iteration']))})",
                     "last frame, hole": fmt_mean_std(entry["final_hole"]),
                     "posterior mean, hole": fmt_mean_std(entry["posterior_hole"]) if entry["posterior_hole"] else "—",
                     "posterior mean, all": fmt_mean_std(entry["posterior_all"]) if entry["posterior_all"] else "—"})
        if is_sampler(scheme):
            with open_trajectory(job.path) as t:
                per_run = [uncertainty_file(t, r, edge_fraction=cfg.edge_fraction, flat_fraction=cfg.flat_fraction)
                           for r in range(t.n_runs)]
                mean, var, _ = t.posterior(0)
                clean, observed, known = t.target, t.observed, t.known
            entry["uncertainty"] = per_run

            def avg(key, sub=None):
                vals = [u[key] if sub is None else u[key][sub] for u in per_run]
                return float(np.mean(vals))
            unc_rows.append({
                "image": img, "scheme": scheme, "samples": per_run[0]["samples"],
                "std hole / known": f"{avg('std_hole'):.4f} / {avg('std_known'):.4f} (×{avg('hole_over_known'):.2f})",
                "std edges / flat": f"{avg('std_edges'):.4f} / {avg('std_flat'):.4f} (×{avg('edges_over_flat'):.2f})",
                "corr(std, |error|) all: Pearson / Spearman": f"{avg('corr_error', 'pearson'):.2f} / "
                                                               f"{avg('corr_error', 'spearman'):.2f}",
                "in holes": f"{avg('corr_error_hole', 'pearson'):.2f} / {avg('corr_error_hole', 'spearman'):.2f}",
                "corr(std, edge strength)": f"{avg('corr_edges', 'pearson'):.2f} / {avg('corr_edges', 'spearman'):.2f}",
                "hole error within 1 / 2 std": f"{avg('within_1std_hole'):.2f} / {avg('within_2std_hole'):.2f}",
                "RMSE hole / known": f"{avg('rmse_hole'):.4f} / {avg('rmse_known'):.4f}"})
            std = np.sqrt(np.asarray(var, dtype=np.float64).mean(axis=0))
            err = np.sqrt(((np.asarray(mean, dtype=np.float64) - clean) ** 2).mean(axis=0))
            shown = np.where(np.asarray(known, dtype=bool), observed, 0.0)
            figures.append(save(uncertainty_figure(
                clean, shown, mean, std, err, captions={
                    "observation": f"observation ({1 - float(np.mean(known)):.0%} dropped)",
                    "posterior mean": f"posterior mean, hole {entry['posterior_hole'][0]:.2f} dB",
                    "posterior std": f"posterior std (hole ×{per_run[0]['hole_over_known']:.2f} of known)"},
                title=f"000 Fig. 1 d: {img} {'×'.join(map(str, clean.shape[1:]))}, {scheme} "
                      f"({job.config.fit.optimizer} lr={job.config.fit.lr:g}, {job.config.fit.iterations} it, burn-in "
                      f"{job.config.record.burn_in}), seed {cfg.seed}"),
                cfg.paths.figures / f"uncertainty_{img}--{scheme}.png"))
        numbers[f"{img}--{scheme}"] = entry
    table, unc_table = markdown_table(rows), markdown_table(unc_rows) if unc_rows else "(no sampler)"
    shape = None
    with open_trajectory(next(iter(planned.values())).path) as t:
        shape = "×".join(map(str, t.signal_shape))
    setting = (f"preset `{cfg.preset}`: {len(images_of(cfg))} image(s) ({shape}, grey), "
               + (f"mask {cfg.mask}" if cfg.mask else f"{cfg.drop:.0%} of the pixels dropped (Bernoulli, seed "
                                                       f"{cfg.noise_seed})")
               + f", DIP {cfg.levels} levels × {cfg.channels} channels, {cfg.iterations} iterations, burn-in "
                 f"{cfg.burn_in}, {cfg.seeds} seed(s)"
               + (f"; sgld's likelihood σ = {cfg.likelihood_sigma:g}/255" if "sgld" in cfg.schemes else ""))
    body = (f"{setting}.\n\n## PSNR in the holes (dB), mean ± std over seeds\n\n{table}\n\n"
            f"## The uncertainty map (posterior std of the outputs after the burn-in; mean over seeds)\n\n{unc_table}\n\n"
            f"Figures: {', '.join(f.name for f in figures)}\n")
    out = {"config": cfg, "setting": setting, "files": numbers}
    write_report(cfg.paths, title=f"{cfg.name} [{cfg.preset}]", body=body, numbers=out,
                 tables=[setting, table, unc_table], figures=figures)
    return out


FLAGS = {"images": "an image file or a folder (default: Cameraman of ../shared/data/inpainting11; quick: the "
                   "sample photograph)", "seeds": "seeds (runs) per image and scheme"}


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
