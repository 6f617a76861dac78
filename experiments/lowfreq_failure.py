"""Paper Fig. 2: low-frequency noise on images rich in high frequencies defeats early stopping.

    python experiments/lowfreq_failure.py [--quick | --preset quick|hour|paper] [--images PATH]
        [--seeds R] [--out-dir DIR] [--estimate-only] [--set FIELD=VALUE]

Each image (default: barbara and baboon of ../shared/data/standard256, grey) is degraded twice
with the same energy — white Gaussian noise of σ = 25 and a low-frequency Gaussian field of the
same σ whose spectrum is zero above a cut-off (`spectral_lab.signals.lowfreq_noise`) — and
fitted by R seeds of the DIP. Then the low-frequency noise's cut-off is swept on the first image
(the largest cut-off, √2/2 cycles/pixel, keeps every frequency: white noise of the same σ).

Reported per file: the observation's PSNR, the best PSNR along the trajectory and the gain
(best − observation), and when the run fits what, from the frames and the clean image x*:

- noise fitted, ν(t) = ⟨x_t − x*, n⟩ / ⟨n, n⟩ with n = y − x* the noise of the observation y:
  the fraction of the noise present in the output (0 none, 1 all of it);
- image's high frequencies fitted, η(t) = ⟨H x_t, H x*⟩ / ⟨H x*, H x*⟩ with H the ideal
  high-pass above the low-frequency noise's cut-off: the fraction of the clean image's own
  content above the cut-off present in the output (for low-frequency noise, H y = H x*);
- t_ν, t_η: the first iterations where ν and η reach 1/2; "noise first" when t_ν < t_η;
- per radial band b and iteration t, the error power against the clean image relative to the
  clean image's power in the band, P_b(x_t − x*) / P_b(x*) (`spectral_lab.analyze.noise_fit`), and
  `analyze.spectrum.spectrum_file` band fit times against the observed and the clean image.

Writes trajectories/lowfreq_failure/<image>--<noise>.h5, figures/lowfreq_failure/{table.md,
results.json, failure_<image>.png, frames_<image>.png, bands_<image>.png, cutoff_sweep.png}.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._cli import experiment_cli
from experiments._common import REPO, DenoiseExperiment, Setting, dip_setting, fmt_mean_std, markdown_table, presets, run, write_report
from spectral_lab.analyze.noise_fit import band_error, noise_fit_file
from spectral_lab.analyze.spectrum import spectrum_file
from spectral_lab.analyze.stats import mean_std
from spectral_lab.images import image_name, image_paths
from spectral_lab.sweep import Job
from spectral_lab.trajectory import open_trajectory

NAME = "lowfreq_failure"
WHITE_CUTOFF = 0.5 * math.sqrt(2)  # the largest radius: a low-pass at it keeps every frequency
STANDARD256 = REPO.parent / "shared" / "data" / "standard256"


def default_images() -> tuple[str, ...] | None:
    """barbara and baboon (the paper's high-frequency images) when the shared data is there."""
    files = [STANDARD256 / f"{n}.png" for n in ("barbara", "baboon")]
    return tuple(str(f) for f in files) if all(f.is_file() for f in files) else None


@dataclass(frozen=True)
class Config(DenoiseExperiment):
    """``images`` None: `default_images()`, else the sample photo. ``cutoff``: the low-frequency
    noise's cut-off radius (cycles/pixel) of the main comparison; ``sweep``: the cut-offs tried
    on the first image (R seeds each; the main one is shared); ``half``: the level of ν and η
    that counts as "fitted"."""

    grey: bool = True
    downsample: int = 1
    cutoff: float = 0.06
    sweep: tuple[float, ...] = (0.03, 0.06, 0.12, 0.25, 0.5, WHITE_CUTOFF)
    seeds: int = 2
    model: Setting = dip_setting("dip", {}, iterations=2000)
    half: float = 0.5
    name: str = NAME


PRESETS = presets(
    paper=Config(),
    hour=Config(downsample=2, sweep=(0.03, 0.06, 0.12, 0.25, WHITE_CUTOFF),
                model=dip_setting("dip", {"levels": 5, "down": 64, "up": 64}, iterations=1500)),
    quick=Config(downsample=4, sweep=(0.03, 0.06, 0.12, 0.25, 0.5, WHITE_CUTOFF),
                 model=dip_setting("dip", {"levels": 5, "down": 32, "up": 32}, iterations=600)))
PAPER, HOUR, QUICK = PRESETS["paper"], PRESETS["hour"], PRESETS["quick"]


def resolved_images(cfg: Config) -> list:
    """The image files of ``cfg`` (None: barbara and baboon when present, else the sample photo)."""
    return image_paths(cfg.images if cfg.images is not None else default_images())


def _job(cfg: Config, image, noise: str, cutoff: float) -> Job:
    tag = "white" if noise == "white" else f"lowfreq{cutoff:.3f}"
    return Job(cfg.paths.trajectory(f"{image_name(image)}--{tag}"),
               cfg.denoise_config(cfg.model, image, noise=noise, cutoff=cutoff), tag)


def plan_jobs(cfg: Config) -> tuple[list[Job], list[Job], dict[Path, Job]]:
    """(main jobs: white and low-frequency per image, sweep jobs on the first image, all by path)."""
    if cfg.seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {cfg.seeds}")
    images = resolved_images(cfg)
    main = [j for img in images for j in (_job(cfg, img, "white", cfg.cutoff), _job(cfg, img, "lowfreq", cfg.cutoff))]
    sweep = [_job(cfg, images[0], "lowfreq", c) for c in cfg.sweep]
    unique = {j.path: j for j in main + sweep}
    return main, sweep, unique


def jobs(cfg: Config) -> list[Job]:
    """Every distinct file of `plan_jobs` (the sweep shares the main cut-off's file)."""
    return list(plan_jobs(cfg)[2].values())


# --------------------------------------------------------------------------- analysis

def analyze_file(path: Path, cutoff: float, half: float) -> dict:
    """Every number of one file (see the module docstring); curves kept for the figures."""
    nf = noise_fit_file(path, cutoff=cutoff, level=half)
    with open_trajectory(path) as t:
        errors, noise_ratio, edges = band_error(t)
        shape = tuple(t.signal_shape)
        cfg = t.config
    runs = [{**r, "seed": r["seeds"]["seed"], "gain": r["best_psnr"] - nf.observed_psnr} for r in nf.runs]
    fit_times = {ref: spectrum_file(path, reference=ref).time_to_fit[0] for ref in ("observed", "target")}
    return {"file": path, "shape": shape, "noise": cfg["degrade"]["noise"], "noise_cutoff": cfg["degrade"]["cutoff"],
            "observed_psnr": nf.observed_psnr, "runs": runs,
            "gain": mean_std([r["gain"] for r in runs]), "best_psnr": mean_std([r["best_psnr"] for r in runs]),
            "band_fit_times_run0": fit_times, "band_edges": edges.tolist(),
            "_psnr": nf.psnr, "_fractions": {"noise_fitted": nf.noise_fitted, "highfreq_fitted": nf.highfreq_fitted},
            "_band_error": errors,
            "_noise_band_ratio": noise_ratio}


def _fmt_it(v) -> str:
    return "never" if v is None else str(v)


def _row(label: str, a: dict) -> dict:
    runs = a["runs"]
    return {
        "image / noise": label, "observed (dB)": f"{a['observed_psnr']:.2f}",
        "best (dB)": fmt_mean_std(a["best_psnr"], summarized=True),
        "gain (dB)": fmt_mean_std(a["gain"], "+.2f", summarized=True),
        "best it.": ", ".join(str(r["best_iteration"]) for r in runs),
        "t(ν≥½)": ", ".join(_fmt_it(r["t_noise"]) for r in runs),
        "t(η≥½)": ", ".join(_fmt_it(r["t_highfreq"]) for r in runs),
        "ν at best": ", ".join(f"{r['noise_fitted_at_best']:.2f}" for r in runs),
        "η at best": ", ".join("—" if r["highfreq_fitted_at_best"] is None else f"{r['highfreq_fitted_at_best']:.2f}"
                               for r in runs),
        "noise first": "/".join({True: "yes", False: "no", None: "—"}[r["noise_first"]] for r in runs)}


def main(cfg: Config) -> dict:
    """Estimate, record, analyse every file, tabulate and draw."""
    if cfg.images is None and default_images() is None:
        print("note: ../shared/data/standard256 not found; using the sample photograph (pass --images)")
    print(f"{cfg.name} [{cfg.preset}]: DIP {cfg.model.describe()}, {cfg.seeds} seed(s); white vs low-frequency "
          f"noise (cut-off {cfg.cutoff:g} cycles/px), σ={cfg.sigma:g}; sweep of cut-offs {list(cfg.sweep)}")
    return run(cfg, jobs, report)


def report(cfg: Config, recorded) -> dict:
    """ν, η, gains and band errors of every file; the tables and figures."""
    from spectral_lab.plot import save
    from spectral_lab.plot.denoise import (band_error_figure, cutoff_sweep_figure, failure_figure,
                                           output_grid_figure)

    main_jobs, sweep_jobs, unique = plan_jobs(cfg)
    recorded = {rec.path: rec for rec in recorded}
    paths = cfg.paths
    analysis = {p: analyze_file(p, cfg.cutoff if unique[p].label == "white" else unique[p].config.degrade.cutoff,
                                cfg.half) for p in unique}
    for p, a in analysis.items():
        a["seconds"] = recorded[p].seconds

    size = "×".join(map(str, next(iter(analysis.values()))["shape"]))
    setting = (f"preset `{cfg.preset}`: {size} ({'grey' if cfg.grey else 'colour'}, down-sampled ×{cfg.downsample}), "
               f"σ={cfg.sigma:g} white vs low-frequency (cut-off {cfg.cutoff:g} cycles/px, same σ), noise seed "
               f"{cfg.noise_seed}; DIP {cfg.model.describe()}; {cfg.seeds} seeds")
    rows, figures = [], []
    images = resolved_images(cfg)
    for img, (white, low) in zip(images, zip(main_jobs[::2], main_jobs[1::2])):
        name = image_name(img)
        aw, al = analysis[white.path], analysis[low.path]
        rows += [_row(f"{name} / white", aw), _row(f"{name} / lowfreq {cfg.cutoff:g}", al)]
        title = f"{name}, {setting}"
        figures.append(save(failure_figure(
            {"white": aw["_psnr"], f"low-frequency (cut-off {cfg.cutoff:g})": al["_psnr"]},
            {"white": aw["observed_psnr"], f"low-frequency (cut-off {cfg.cutoff:g})": al["observed_psnr"]},
            {"white": aw["_fractions"], f"low-frequency (cut-off {cfg.cutoff:g})": al["_fractions"]},
            half=cfg.half, title=title), paths.figures / f"failure_{name}.png"))
        figures.append(save(band_error_figure(
            {"white": (aw["_band_error"], aw["_noise_band_ratio"]),
             f"low-frequency (cut-off {cfg.cutoff:g})": (al["_band_error"], al["_noise_band_ratio"])},
            np.asarray(aw["band_edges"]), cutoff=cfg.cutoff, title=title), paths.figures / f"bands_{name}.png"))
        figures.append(save(output_grid_figure(_frame_rows(aw, al, cfg.cutoff),
                                               title=f"Outputs (seed {cfg.seed}) along the trajectory: {title}"),
                            paths.figures / f"frames_{name}.png"))
    table = markdown_table(rows)

    sweep = [analysis[j.path] for j in sweep_jobs]
    white0 = analysis[main_jobs[0].path]
    sweep_rows = [{"cut-off (cycles/px)": f"{j.config.degrade.cutoff:.3f}"
                   + (" (all frequencies)" if j.config.degrade.cutoff == WHITE_CUTOFF else ""), **_row("", a)}
                  for j, a in zip(sweep_jobs, sweep)]
    sweep_rows.append({"cut-off (cycles/px)": "white (iid)", **_row("", white0)})
    for r in sweep_rows:
        r.pop("image / noise")
    sweep_table = markdown_table(sweep_rows)
    figures.append(save(cutoff_sweep_figure(
        [j.config.degrade.cutoff for j in sweep_jobs], [[r["gain"] for r in a["runs"]] for a in sweep],
        [[r["noise_fitted_at_best"] for r in a["runs"]] for a in sweep],
        [[np.nan if r["highfreq_fitted_at_best"] is None else r["highfreq_fitted_at_best"] for r in a["runs"]]
         for a in sweep],
        white_gain=[r["gain"] for r in white0["runs"]],
        title=f"{image_name(images[0])}: gain of the best iteration vs the noise's cut-off; {setting}"),
        paths.figures / "cutoff_sweep.png"))

    body = (f"{setting}.\n\nν = fraction of the noise in the output, η = fraction of the clean image's content "
            f"above the cut-off in the output (η for white noise uses the same cut-off); t(·≥½) = first "
            f"iteration where it reaches ½; per seed, comma-separated. Gain = best PSNR along the trajectory − "
            f"observation's PSNR (mean ± std over seeds).\n\n{table}\n\nCut-off sweep on "
            f"{image_name(images[0])}:\n\n{sweep_table}\n\nFigures: {', '.join(f.name for f in figures)}\n")
    numbers = {"config": cfg, "files": {str(p): {k: v for k, v in a.items() if not k.startswith("_")}
                                        for p, a in analysis.items()}}
    write_report(paths, title=f"{cfg.name} [{cfg.preset}]", body=body, numbers=numbers,
                 tables=[setting, table, sweep_table], figures=figures)
    return {"config": cfg, "analysis": analysis}


def _frame_rows(aw: dict, al: dict, cutoff: float) -> list:
    """Fig. 2: per noise, the observation and seed 0's output when half the noise is in it,
    at its best and at its last iteration."""
    rows = []
    with open_trajectory(aw["file"]) as t:
        rows.append(("clean", [("clean image", t.target)]))
    for label, a in (("white", aw), (f"lowfreq {cutoff:g}", al)):
        run = a["runs"][0]
        psnr = a["_psnr"][0]
        wanted = {"ν≥½": run["t_noise"], "best": run["best_iteration"], "last": len(psnr) - 1}
        with open_trajectory(a["file"]) as t:
            frames = t.frames(0)
            row = [(f"observed ({a['observed_psnr']:.2f} dB)", t.observed)]
            row += [(f"{name}: it {i}, {psnr[i]:.2f} dB", np.asarray(frames[i]))
                    for name, i in sorted(wanted.items(), key=lambda kv: kv[1] if kv[1] is not None else -1)
                    if i is not None]
        rows.append((label, row))
    return rows


FLAGS = {
    "images": "an image file or folder (default: barbara and baboon of ../shared/data/standard256 when present)",
    "seeds": "seeds (runs) per file",
}


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
