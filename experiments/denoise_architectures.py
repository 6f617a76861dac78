"""Paper Table 1 / appendix Table 2: which architectures denoise? Best PSNR along the trajectory.

    python experiments/denoise_architectures.py [--quick | --preset quick|hour|night|paper]
        [--images PATH] [--seeds R] [--out-dir DIR] [--estimate-only] [--set FIELD=VALUE]

Four models, each with its own budget (``Config.models``: options, Adam learning rate,
iterations): ``dip`` (the DIP skip network), ``linear`` of width 128 and of width 2048
(DIP-Linear: five fully connected layers) and ``relunet`` (a 10-layer coordinate MLP). Every
image (a file, or every image of a folder; default: matplotlib's sample photograph) is
down-sampled, degraded once by white Gaussian noise of σ = 25 (noise seed 0: every model and
seed sees the same observation), and fitted by R seeds of each model, one trajectory file per
(image, model): trajectories/denoise_architectures/<image>--<model>.h5. The score of a run is
its best PSNR against the clean image over all iterations (the oracle stop, as in the paper).

Writes figures/denoise_architectures/{table.md, results.json, psnr_curves_<image>.png,
grid_<image>.png} and prints the table. The estimated cost (a timed probe of every distinct
setting) is printed before anything is recorded; ``--estimate-only`` stops there. Files that
already hold a complete recording of the same configuration are reused, unfinished ones resumed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._cli import experiment_cli
from experiments._common import (DenoiseExperiment, Setting, dip_setting, fmt_mean_std, markdown_table, presets,
                                 run, write_report)
from spectral_lab.analyze.psnr import psnr_file
from spectral_lab.analyze.stats import mean_std
from spectral_lab.errors import SpectralLabError
from spectral_lab.images import image_name, image_paths
from spectral_lab.models import common_crop
from spectral_lab.signals import load_image, sample_image_path
from spectral_lab.sweep import Job, fmt_seconds
from spectral_lab.trajectory import open_trajectory

NAME = "denoise_architectures"

# --------------------------------------------------------------------------- the experiment

# Paper Table 1 (means over the nine images, 5 runs each).
PAPER_MEANS = {"dip": 27.47, "linear-128": 20.54, "linear-2048": 19.17, "relunet": 27.58}
PAPER_LABELS = {"dip": "DIP", "linear-128": "DIP Linear-128", "linear-2048": "DIP Linear-2048",
                "relunet": "ReLUNet"}


@dataclass(frozen=True)
class Config(DenoiseExperiment):
    """The comparison (see `DenoiseExperiment`): every image, white noise, each of ``models``
    with its own budget. ``downsample``: the paper's ×4 in ``paper`` (128×128 for the 512×512
    images); ``grid_image``: the image whose curves and output grid are drawn (None: every image).
    """

    models: tuple[Setting, ...] = ()
    grid_image: str | None = None
    name: str = NAME


def _models(dip: Setting, linear_iterations: tuple[int, int], relunet_iterations: int, *,
            wide_linear_checkpoint_seconds: float = 60.0, relunet_precision: str = "fp32") -> tuple[Setting, ...]:
    """The four models of Table 1: ``dip`` as given, DIP-Linear of width 128 and 2048 (five fully
    connected layers, Adam 1e-4) and the ReLUNet (10 x 256, Adam 1e-3) with these budgets;
    ``wide_linear_checkpoint_seconds``: Linear-2048's checkpoint interval; ``relunet_precision``:
    the ReLUNet's 'fp32' or 'bf16' (autocast)."""
    return (dip, *(Setting(f"linear-{w}", "linear", {"depth": 5, "width": w, "in_channels": 1}, iterations=its,
                           lr=1e-4, checkpoint_seconds=wide_linear_checkpoint_seconds if w == 2048 else 60.0)
                   for w, its in zip((128, 2048), linear_iterations)),
            Setting("relunet", "relunet", {"depth": 10, "width": 256}, iterations=relunet_iterations, lr=1e-3,
                    precision=relunet_precision))


# `in_channels=1` for DIP-Linear: its first layer maps the flattened z (in_channels·H·W values)
# to the width. The reference code fed z of the image's 3 channels; with 1 channel the first
# layer of Linear-2048 at 128×128 has 33.5 M instead of 100.7 M weights (the network 147 M
# instead of 201 M, ~2.4 GB instead of 3.2 GB per run with Adam's state) and, since the width
# (2048) is below H·W either way, the layer reaches the same outputs W1ᵀz.
# Linear-2048's checkpoint interval at 128² (longer than its run: it checkpoints only when interrupted)
WIDE_CHECKPOINT_SECONDS = 6 * 3600.0
# The ReLUNet's full-batch bf16 steps in the night preset (its peaks at ×4, seed 0: Lena 5087, kodim01 6216)
RELUNET_NIGHT_STEPS = 7000
PRESETS = presets(
    # The paper's ReLUNet ran to 50 000 iterations (appendix D) on mini-batches of 2048
    # pixels; here every step is full-batch (all pixels), so 50 000 steps cost ~8x more.
    paper=Config(downsample=4, models=_models(dip_setting("dip", {}, iterations=3000), (1000, 300), 50000,
                                              wide_linear_checkpoint_seconds=WIDE_CHECKPOINT_SECONDS)),
    # About an hour here for the nine images (3 seeds): images ×16 smaller (32×32; House 16×16),
    # a 3-level DIP of 128 channels (5 levels need sides >= 64), the paper's other models unchanged.
    hour=Config(downsample=16, models=_models(dip_setting("dip", {"levels": 3, "down": 128, "up": 128}, iterations=600),
                                              (300, 150), 2000)),
    # One night on these 2 cores (2 workers, 1 thread each) for the nine images: the paper's 128×128 (×4) and
    # networks, 3 seeds, per-model budgets from measured peaks at 128² (Lena, seed 0; results/denoise.md):
    # the DIP peaks at iteration 598 (kodim01: 734; budget 1200). The ReLUNet, full-batch (the paper: 50 000 mini-batch steps
    # of 2048 pixels), was still rising at 4000 steps in fp32 (28.09 dB at 3681), which would cost ~3 h per
    # image for 3 seeds; under bf16 autocast a step costs 0.30x the fp32 one here and it peaks at 5087 on Lena
    # (27.96 dB), at 6216 on kodim01 (128×192): budget 7000 in bf16. Every frame stored: with the DIP's input perturbation, and with the ReLUNet's
    # Adam spikes in bf16, every 2nd frame already moved the best PSNR by 0.10-0.12 dB (results/precision.md,
    # "Frame stride"; results/denoise.md).
    # Linear-2048 at 128²: its two checkpoint slots would hold 2 × 5.3 GB (147 M parameters × 3 runs with
    # Adam's two moments) against 0.18 GB of frames, 9 files 120 GB of a 70 GB disk; it is recorded in ~10 min,
    # so it checkpoints only when interrupted (a file killed with SIGKILL is recorded again).
    night=Config(downsample=4, models=_models(dip_setting("dip", {}, iterations=1200), (1000, 300), RELUNET_NIGHT_STEPS,
                                              wide_linear_checkpoint_seconds=WIDE_CHECKPOINT_SECONDS,
                                              relunet_precision="bf16")),
    # A few minutes on 2 cores for one image: 32×32, a narrow DIP; the paper's ReLUNet (width 256), which
    # at 32×32 peaks within 600–1200 steps on the nine images (`hour`) and at ~1200–1500 on the photograph.
    quick=Config(downsample=16, models=_models(dip_setting("dip", {"levels": 3, "down": 32, "up": 32}, iterations=400),
                                               (300, 100), 2500)),
)
PAPER, HOUR, NIGHT, QUICK = PRESETS["paper"], PRESETS["hour"], PRESETS["night"], PRESETS["quick"]


def jobs(cfg: Config) -> list[Job]:
    """One file per (image, model): trajectories/denoise_architectures/<image>--<model>.h5."""
    if cfg.seeds < 1:
        raise SpectralLabError(f"seeds must be >= 1, got {cfg.seeds}")
    out = []
    for image in image_paths(cfg.images):
        # every model fits the same pixels: crop to what the most demanding one needs (only
        # when the image's sides are not multiples of it already: no crop, no config entry)
        shape = load_image(sample_image_path() if image is None else image, grey=cfg.grey,
                           downsample=cfg.downsample).shape
        crop = common_crop([(m.model, m.options) for m in cfg.models], shape)
        for m in cfg.models:
            out.append(Job(cfg.paths.trajectory(f"{image_name(image)}--{m.label}"),
                           cfg.denoise_config(m, image, crop_multiple=crop), m.label))
    return out


def main(cfg: Config) -> dict:
    """Estimate, record, score every run by its best PSNR, tabulate and draw."""
    print(f"{cfg.name} [{cfg.preset}]: {len(image_paths(cfg.images))} image(s) x {len(cfg.models)} models, "
          f"{cfg.seeds} seed(s) each")
    for m in cfg.models:
        print(f"  {m.label}: {m.describe()}")
    return run(cfg, jobs, report)


def report(cfg: Config, recorded) -> dict:
    """Score every run by its best PSNR, tabulate and draw."""
    from spectral_lab.plot import save
    from spectral_lab.plot.denoise import output_grid_figure, psnr_curves_figure

    paths = cfg.paths
    per: dict[str, dict[str, dict]] = {}  # image -> model label -> numbers
    curves: dict[str, dict[str, Any]] = {}
    for rec in recorded:
        job = rec.job
        img = job.path.stem.split("--")[0]
        res = psnr_file(job.path)
        with open_trajectory(job.path) as t:
            shape = tuple(t.signal_shape)
        runs = [{"seed": r.seeds["seed"], "best_psnr": r.best_psnr, "best_iteration": r.best_iteration,
                 "final_psnr": r.final_psnr} for r in res.runs]
        its = job.config.fit.iterations
        best_its = [r.best_iteration for r in res.runs]
        per.setdefault(img, {})[job.label] = {
            "file": job.path, "shape": shape, "observed_psnr": res.observed_psnr, "runs": runs,
            "best_psnr": mean_std([r.best_psnr for r in res.runs]),
            "iterations": its, "best_iteration_max": max(best_its),
            # a run whose best frame lies in the last 10 % of its budget may not have peaked
            "peaked": all(b < 0.9 * its for b in best_its),
            "seconds": rec.seconds, "reused": rec.reused, "parameters_per_run": rec.parameters_per_run}
        curves.setdefault(img, {})[job.label] = np.stack([r.psnr for r in res.runs])

    labels = [m.label for m in cfg.models]
    table_rows, model_means = [], {lab: [] for lab in labels}
    for img, by_model in per.items():
        sizes = sorted({"×".join(map(str, v["shape"])) for v in by_model.values()})
        row = {"image": img, "size (C×H×W)": " / ".join(sizes),
               "observed": f"{next(iter(by_model.values()))['observed_psnr']:.2f}"}
        for lab in labels:
            v = by_model[lab]
            row[lab] = fmt_mean_std([r["best_psnr"] for r in v["runs"]]) + ("" if v["peaked"] else " †")
            model_means[lab].append(v["best_psnr"][0])
        table_rows.append(row)
    table_rows.append({"image": "**mean**", "size (C×H×W)": "", "observed": "",
                       **{lab: f"**{np.mean(model_means[lab]):.2f}**" for lab in labels}})
    table_rows.append({"image": "paper (Table 1, 128×128-ish, 5 runs)", "size (C×H×W)": "", "observed": "",
                       **{lab: f"{PAPER_MEANS[lab]:.2f}" if lab in PAPER_MEANS else "" for lab in labels}})
    table = markdown_table(table_rows)

    budget_rows = []
    for m in cfg.models:
        vals = [per[img][m.label] for img in per]
        budget_rows.append({
            "model": m.label, "setting": m.describe(),
            "params/run": f"{vals[0]['parameters_per_run']:,}",
            "best iteration (median, max over runs)":
                f"{int(np.median([r['best_iteration'] for v in vals for r in v['runs']]))}, "
                f"{max(v['best_iteration_max'] for v in vals)}",
            "peaked in every run": "yes" if all(v["peaked"] for v in vals) else "NO",
            "recording time": fmt_seconds(sum(v["seconds"] for v in vals))
            + (" (some reused)" if any(v["reused"] for v in vals) else "")})
    budgets = markdown_table(budget_rows)

    figures = []
    shown = [img for img in per if cfg.grid_image in (None, img)]
    for img in shown:
        title = f"{img}, {_setting_line(cfg, per[img])}"
        fig = psnr_curves_figure({lab: curves[img][lab] for lab in labels}, per[img][labels[0]]["observed_psnr"],
                                 iterations={lab: per[img][lab]["iterations"] for lab in labels},
                                 title=f"PSNR along the trajectory: {title}")
        figures.append(save(fig, paths.figures / f"psnr_curves_{img}.png"))
        figures.append(save(output_grid_figure(_grid_rows(per[img], curves[img], labels),
                                               title=f"Outputs along the trajectory (seed 0): {title}"),
                            paths.figures / f"grid_{img}.png"))

    heading = (f"Preset `{cfg.preset}`: {_setting_line(cfg, next(iter(per.values())))}; "
               f"{cfg.seeds} seeds per image and model (seeds {cfg.seed}..{cfg.seed + cfg.seeds - 1}, "
               f"weights and input), noise seed {cfg.noise_seed}.")
    body = (f"{heading}\n\nBest PSNR (dB) along each trajectory against the clean image, mean ± std (ddof=1) "
            f"over seeds; † = some run's best frame lies in the last 10 % of its budget (may not have "
            f"peaked).\n\n{table}\n\nBudgets (per-model iterations):\n\n{budgets}\n\n"
            f"Figures: {', '.join(f.name for f in figures)}\n")
    write_report(paths, title=f"{cfg.name} [{cfg.preset}]", body=body,
                 numbers={"config": cfg, "per_image": per, "model_means": model_means, "paper_means": PAPER_MEANS},
                 tables=[heading, table, budgets], figures=figures)
    return {"config": cfg, "per_image": per, "model_means": {k: float(np.mean(v)) for k, v in model_means.items()}}


def _setting_line(cfg: Config, by_model: Mapping[str, dict]) -> str:
    sizes = sorted({"×".join(map(str, v["shape"][1:])) for v in by_model.values()})
    return f"down-sampled ×{cfg.downsample} ({'/'.join(sizes)} px), white noise σ={cfg.sigma:g}, {cfg.seeds} seeds"


def _grid_rows(by_model: Mapping[str, dict], curves: Mapping[str, np.ndarray], labels: Sequence[str]) -> list:
    """Appendix D: per model (seed 0), the output at iteration 0, a quarter of the way to its
    best, its best and its last iteration; first row: the clean and the observed image."""
    with open_trajectory(by_model[labels[0]]["file"]) as t:
        rows = [("images", [("clean", t.target),
                            (f"observed ({by_model[labels[0]]['observed_psnr']:.2f} dB)", t.observed)])]
    for lab in labels:
        v = by_model[lab]
        best = v["runs"][0]["best_iteration"]
        with open_trajectory(v["file"]) as t:
            frames = t.frames(0)
            rows.append((lab, [(f"it {i}: {curves[lab][0, i]:.2f} dB" + (" (best)" if i == best else ""),
                                np.asarray(frames[i])) for i in sorted({0, best // 4, best, v["iterations"]})]))
    return rows


FLAGS = {
    "images": "an image file or a folder of images (e.g. /work/shared/data/denoising9); "
              "default: matplotlib's sample photograph",
    "seeds": "seeds (runs) per image and model",
}


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
