"""000_... (Cheng et al.) Table 1: five inference schemes of the DIP over the nine denoising images.

    python experiments/bayes_denoise.py [--quick | --preset quick|hour|paper] [--images PATH]
        [--seeds R] [--out-dir DIR] [--estimate-only] [--set FIELD=VALUE]

Every image (default: the nine of ../shared/data/denoising9, colour) is down-sampled to a
shorter side of about ``size``, degraded once by white noise of σ = 25 (noise seed 0: every
scheme and seed sees the same observation) and fitted by R seeds of the DIP under three
optimisations (`experiments._common.SamplerExperiment`), one file each:

- ``sgd`` (Adam, ``sgd_iterations`` steps, every frame kept) scores **SGD+Early** (the best
  frame: an oracle stop) and **SGD+Early+Avg** (the best frame of the outputs' exponential
  moving average, factor ``ema``: oracle stop of the average);
- ``sgd_input`` (the same with the input perturbed) scores **SGD+Input+Early** and
  **SGD+Input+Early+Avg**;
- each of ``samplers`` (default ``sgld``, Eq. 8; ``sgld_adam`` is the released code's SGLD),
  ``iterations`` steps with frames every ``every`` iterations, scores **SGLD**: the PSNR of
  the posterior mean over every iteration after ``burn_in`` (no stopping, no clean image).

A run whose best frame lies in the last 10 % of its budget is marked (it may not have peaked).
The paper's per-image numbers (full-size images, 10 runs) are printed beside the means, and
CBM3D on the same observations when the optional ``bm3d`` package is installed.

Writes trajectories/bayes_denoise/<image>--<scheme>.h5 and figures/bayes_denoise/{table.md,
results.json, psnr_<image>.png}.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._cli import experiment_cli
from experiments._common import (SCHEMES, SamplerExperiment, fmt_mean_std, markdown_table, presets, run, shared_data,
                                 write_report)
from spectral_lab.analyze.baselines import bm3d_denoise
from spectral_lab.analyze.psnr import psnr, psnr_file
from spectral_lab.analyze.stats import mean_std
from spectral_lab.errors import AnalysisError, SpectralLabError
from spectral_lab.images import image_name, image_paths
from spectral_lab.sweep import Job, fmt_seconds
from spectral_lab.trajectory import open_trajectory

NAME = "bayes_denoise"
DENOISING9 = shared_data("denoising9")
ROWS = ("SGD+Early", "SGD+Early+Avg", "SGD+Input+Early", "SGD+Input+Early+Avg", "SGLD")
# 000_... Table 1 (σ = 25, full-size colour images, mean of 10 runs), and CBM3D
PAPER_IMAGES = ("House", "Peppers", "Lena", "Baboon", "F16", "Kodak1", "Kodak2", "Kodak3", "Kodak12")
PAPER = {
    "SGD+Early": (26.74, 28.42, 29.17, 23.50, 29.76, 26.61, 28.68, 30.07, 29.78, 28.08),
    "SGD+Early+Avg": (28.78, 29.20, 30.26, 23.82, 31.17, 27.14, 29.88, 31.00, 30.64, 29.10),
    "SGD+Input+Early": (28.18, 29.21, 30.17, 22.65, 30.57, 26.22, 30.29, 31.31, 30.66, 28.81),
    "SGD+Input+Early+Avg": (30.61, 30.46, 31.81, 23.69, 32.66, 27.32, 31.70, 32.86, 31.87, 30.33),
    "SGLD": (30.86, 30.82, 32.05, 24.54, 32.90, 27.96, 32.05, 33.29, 32.79, 30.81),
    "CBM3D": (33.03, 31.20, 32.27, 25.95, 32.78, 29.13, 32.44, 34.54, 33.76, 31.68),
}
# file stem of denoising9 -> the paper's column
PAPER_COLUMN = {"image_House256rgb": "House", "image_Peppers512rgb": "Peppers", "image_Lena512rgb": "Lena",
                "image_Baboon512rgb": "Baboon", "image_F16_512rgb": "F16", "kodim01": "Kodak1", "kodim02": "Kodak2",
                "kodim03": "Kodak3", "kodim12": "Kodak12"}


@dataclass(frozen=True)
class Config(SamplerExperiment):
    """See `SamplerExperiment`. ``images``: a file or folder (None: denoising9 when there, else
    the sample photograph); ``sgd_iterations``: the budget of the two SGD files (they peak
    early); ``iterations``, ``burn_in``, ``every``: the samplers'; ``samplers``: which SGLD
    variants score the SGLD row."""

    seeds: int = 2
    sgd_iterations: int = 1200
    samplers: tuple[str, ...] = ("sgld",)
    every: int = 10
    name: str = NAME


PRESETS = presets(
    # The paper's: full-size images, the DIP of 5 levels × 128, SGD to 3000 steps (its stops at
    # 500 and 1800 lie inside), the released SGLD for 20 000 steps with a burn-in of 7000, 10 runs.
    paper=Config(size=None, downsample=1, levels=5, channels=128, sgd_iterations=3000, iterations=20000,
                 burn_in=7000, every=50, seeds=10, samplers=("sgld_adam", "sgld")),
    # The nine images at ~48 px (÷10, House ÷5: 48×48, Kodak 64×48), the lab's quick DIP (4 levels
    # × 64 channels), SGD 1000 steps, SGLD (Eq. 8) 1500 with a burn-in of 500, 2 seeds.
    hour=Config(size=48, sgd_iterations=1000, iterations=1500, burn_in=500),
    # Minutes: one image (the sample photograph unless --images) at ~32 px, a 3-level DIP of 32.
    quick=Config(size=32, levels=3, channels=32, sgd_iterations=500, iterations=900, burn_in=300, every=5, seeds=1),
)
PAPER_PRESET, HOUR, QUICK = PRESETS["paper"], PRESETS["hour"], PRESETS["quick"]


def images_of(cfg: Config) -> list:
    """The image files (None: the nine denoising images when there, else the sample photograph)."""
    if cfg.images is not None:
        return image_paths(cfg.images)
    if cfg.preset != "quick" and DENOISING9.is_dir():
        return image_paths(DENOISING9)
    return [None]


def plan_jobs(cfg: Config) -> dict[tuple[str, str], Job]:
    """(image name, scheme) -> Job, for the schemes ``sgd``, ``sgd_input`` and ``samplers``."""
    if cfg.seeds < 1:
        raise SpectralLabError(f"seeds must be >= 1, got {cfg.seeds}")
    bad = [s for s in cfg.samplers if s not in SCHEMES[2:]]
    if bad or not cfg.samplers:
        raise SpectralLabError(f"samplers must name one or more of {', '.join(SCHEMES[2:])}, got {list(cfg.samplers)}")
    if not cfg.burn_in < cfg.iterations:
        raise SpectralLabError(f"the burn-in ({cfg.burn_in}) must end before the last iteration ({cfg.iterations})")
    out = {}
    for image in images_of(cfg):
        for scheme in ("sgd", "sgd_input", *cfg.samplers):
            setting = cfg.scheme(scheme, iterations=cfg.sgd_iterations if scheme in ("sgd", "sgd_input") else None)
            out[(image_name(image), scheme)] = Job(cfg.paths.trajectory(f"{image_name(image)}--{scheme}"),
                                                   cfg.image_config(setting, image), scheme)
    return out


def jobs(cfg: Config) -> list[Job]:
    return list(plan_jobs(cfg).values())


def main(cfg: Config) -> dict:
    print(f"{cfg.name} [{cfg.preset}]: {len(images_of(cfg))} image(s), σ={cfg.sigma:g}, {cfg.seeds} seed(s)")
    for s in ("sgd", "sgd_input", *cfg.samplers):
        its = cfg.sgd_iterations if s in ("sgd", "sgd_input") else None
        print(f"  {s}: {cfg.scheme(s, iterations=its).describe()}")
    return run(cfg, jobs, report)


# --------------------------------------------------------------------------- analysis

def score_file(path: Path, ema: float) -> dict:
    """Per run: the oracle best frame, the oracle best of the moving average, the posterior
    mean (samplers), with iterations; whether every run peaked inside the budget."""
    res = psnr_file(path, with_ssim=False)
    with open_trajectory(path) as t:
        its = int(t.config["fit"]["iterations"])
        shape = tuple(t.signal_shape)
        every = int(t.config["record"]["every"])
    out = {"observed_psnr": res.observed_psnr, "shape": shape, "iterations": its,
           "best": [r.best_psnr for r in res.runs], "best_iteration": [r.best_iteration for r in res.runs],
           "final": [r.final_psnr for r in res.runs],
           "posterior": [r.posterior_psnr for r in res.runs if r.posterior_psnr is not None],
           "peaked": all(r.best_iteration < 0.9 * its for r in res.runs), "_curves": [r.psnr for r in res.runs],
           "_iterations": res.runs[0].iterations}
    if every == 1:  # the moving average of every iteration (a strided file would average fewer outputs)
        avg = psnr_file(path, with_ssim=False, ema=ema)
        out.update({"avg": [r.best_psnr for r in avg.runs], "avg_iteration": [r.best_iteration for r in avg.runs],
                    "avg_peaked": all(r.best_iteration < 0.9 * its for r in avg.runs)})
    return out


def cbm3d_psnr(path: Path, sigma: float) -> float | None:
    """CBM3D's PSNR on the file's observation (the same noisy pixels the DIP saw), None
    without the optional bm3d package."""
    with open_trajectory(path) as t:
        clean, observed = np.asarray(t.target, np.float64), np.asarray(t.observed, np.float64)
    try:
        return float(psnr(bm3d_denoise(observed, sigma / 255.0), clean)[0])
    except AnalysisError as exc:
        if "optional package" in str(exc):
            return None
        raise


def report(cfg: Config, recorded) -> dict:
    from spectral_lab.plot import save
    from spectral_lab.plot.denoise import psnr_curves_figure

    planned = plan_jobs(cfg)
    seconds = {rec.path: rec.seconds for rec in recorded}
    scores = {key: score_file(job.path, cfg.ema) for key, job in planned.items()}
    images = list(dict.fromkeys(name for name, _ in planned))
    reference = {img: cbm3d_psnr(planned[(img, "sgd")].path, cfg.sigma) for img in images}
    rows_of = {"SGD+Early": ("sgd", "best"), "SGD+Early+Avg": ("sgd", "avg"),
               "SGD+Input+Early": ("sgd_input", "best"), "SGD+Input+Early+Avg": ("sgd_input", "avg")}
    for s in cfg.samplers:
        rows_of["SGLD" if len(cfg.samplers) == 1 else f"SGLD ({s})"] = (s, "posterior")
    per_image: dict[str, dict[str, tuple[float, float]]] = {}
    table_rows, means = [], {row: [] for row in rows_of}
    for img in images:
        first = scores[(img, "sgd")]
        row = {"image": img, "size": "×".join(map(str, first["shape"][1:])), "observation": f"{first['observed_psnr']:.2f}"}
        per_image[img] = {}
        for label, (scheme, key) in rows_of.items():
            s = scores[(img, scheme)]
            ms = mean_std(s[key])
            per_image[img][label] = ms
            means[label].append(ms[0])
            peaked = True if key == "posterior" else s["avg_peaked"] if key == "avg" else s["peaked"]
            flag = "" if peaked else " †"
            row[label] = fmt_mean_std(ms, summarized=True) + flag
        row["CBM3D"] = "—" if reference[img] is None else f"{reference[img]:.2f}"
        col = PAPER_COLUMN.get(img)
        row["paper SGLD / CBM3D"] = "—" if col is None else \
            f"{PAPER['SGLD'][PAPER_IMAGES.index(col)]:.2f} / {PAPER['CBM3D'][PAPER_IMAGES.index(col)]:.2f}"
        table_rows.append(row)
    mean_row = {"image": "**mean**", "size": "", "observation": f"{np.mean([scores[(i, 'sgd')]['observed_psnr'] for i in images]):.2f}"}
    mean_row.update({label: f"**{np.mean(v):.2f}**" for label, v in means.items()})
    known = [v for v in reference.values() if v is not None]
    mean_row["CBM3D"] = f"**{np.mean(known):.2f}**" if len(known) == len(images) else "—"
    table_rows.append(mean_row)
    paper_row = {"image": "paper Table 1 (full size, 10 runs)", "size": "", "observation": ""}
    paper_row.update({label: f"{PAPER[label.split(' (')[0]][-1]:.2f}" for label in rows_of})
    paper_row["CBM3D"] = f"{PAPER['CBM3D'][-1]:.2f}"
    paper_row["paper SGLD / CBM3D"] = f"{PAPER['SGLD'][-1]:.2f} / {PAPER['CBM3D'][-1]:.2f}"
    table_rows.append(paper_row)
    table = markdown_table(table_rows)

    gains = {label: float(np.mean(v) - np.mean(means["SGD+Early"])) for label, v in means.items()}
    wins = {label: int(sum(per_image[i][label][0] > max(per_image[i][o][0] for o in rows_of if o != label)
                           for i in images)) for label in rows_of}
    stops = markdown_table([{
        "scheme": s, "setting": cfg.scheme(s, iterations=cfg.sgd_iterations if s in ("sgd", "sgd_input") else None
                                         ).describe_fit(),
        "best iteration (median, max)": f"{int(np.median([i for img in images for i in scores[(img, s)]['best_iteration']]))}, "
                                        f"{max(i for img in images for i in scores[(img, s)]['best_iteration'])}",
        "moving-average best (median, max)": "—" if "avg_iteration" not in scores[(images[0], s)] else
        f"{int(np.median([i for img in images for i in scores[(img, s)]['avg_iteration']]))}, "
        f"{max(i for img in images for i in scores[(img, s)]['avg_iteration'])}",
        "final PSNR (mean)": f"{np.mean([np.mean(scores[(img, s)]['final']) for img in images]):.2f}",
        "recording time": fmt_seconds(sum(seconds.get(planned[(img, s)].path, 0.0) for img in images)),
    } for s in ("sgd", "sgd_input", *cfg.samplers)])

    figures = []
    for img in images:
        curves = {s: np.stack(scores[(img, s)]["_curves"]) for s in ("sgd", "sgd_input")}
        posterior = ", ".join(f"{s} {np.mean(scores[(img, s)]['posterior']):.2f} dB" for s in cfg.samplers)
        figures.append(save(psnr_curves_figure(
            curves, scores[(img, "sgd")]["observed_psnr"], iterations={s: cfg.sgd_iterations for s in curves},
            title=f"{img}: PSNR of the SGD schemes (the SGLD posterior mean: {posterior})"),
            cfg.paths.figures / f"psnr_{img}.png"))

    setting = (f"preset `{cfg.preset}`: {len(images)} image(s), colour, shorter side ~{cfg.size} px" if cfg.size else
               f"preset `{cfg.preset}`: {len(images)} image(s), colour, ÷{cfg.downsample}") + \
        (f", white noise σ={cfg.sigma:g} (noise seed {cfg.noise_seed}), DIP {cfg.levels} levels × {cfg.channels} "
         f"channels, {cfg.seeds} seed(s) (seeds {cfg.seed}..{cfg.seed + cfg.seeds - 1})")
    body = (f"{setting}.\n\nPSNR (dB) against the clean image, mean ± std over seeds; † = some run's best lies in the "
            f"last 10 % of its budget.\n\n{table}\n\nGain over SGD+Early (mean): "
            + ", ".join(f"{k} {v:+.2f} dB" for k, v in gains.items())
            + "; images where each scheme is the best of all: " + ", ".join(f"{k} {v}" for k, v in wins.items())
            + f"\n\n{stops}\n\nFigures: {', '.join(f.name for f in figures)}\n")
    numbers = {"config": cfg, "setting": setting, "per_image": per_image, "cbm3d": reference, "means": {k: float(np.mean(v)) for k, v in means.items()},
               "gain_over_sgd_early": gains, "wins": wins, "paper": PAPER, "paper_images": PAPER_IMAGES,
               "files": {f"{i}--{s}": {k: v for k, v in sc.items() if not k.startswith("_")} for (i, s), sc in scores.items()}}
    write_report(cfg.paths, title=f"{cfg.name} [{cfg.preset}]", body=body, numbers=numbers,
                 tables=[setting, table, stops], figures=figures)
    return numbers


FLAGS = {"images": "an image file or a folder (default: ../shared/data/denoising9; quick: the sample photograph)",
         "seeds": "seeds (runs) per image and scheme"}


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
