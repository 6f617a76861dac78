"""002_... super-resolution / 003_... Table 2: the DIP up-sampling ×4 against bicubic and nearest.

    python experiments/superres.py [--quick | --preset quick|hour|paper]
        [--images FILES_OR_FOLDERS] [--seeds R] [--out-dir DIR] [--estimate-only] [--set FIELD=VALUE]

Every image (default: zebra_GT of ../shared/data/dip/sr and the six of standard256), in its own
colour mode, brought to a shorter side of about ``size`` and cropped to sides that are multiples
of the factor (and of the network's stride), is the clean high-resolution image x; the
observation is y = A x, A the anti-aliased down-sampler by ``factor`` (``kernel``: Lanczos-2 as
in the DIP reference code, or ``box`` = average pooling; `spectral_lab.operators.Downsample`).
The DIP's output has the full size and is fitted through A: trajectories/superres/<image>.h5.

Scores, per run: the best PSNR of the output against x along the trajectory (oracle stop) and
the last one, SSIM at the best; beside them the observation up-sampled by bicubic and by
nearest-neighbour interpolation (`spectral_lab.analyze.baselines`). Writes
figures/superres/{table.md, results.json, outputs.png, psnr_curves.png}.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._cli import experiment_cli
from experiments._common import TaskExperiment, shared_data, markdown_table, presets, run, task_scores, write_report
from spectral_lab.sweep import Job
from spectral_lab.trajectory import open_trajectory

NAME = "superres"
# 003_... Table 2: zebra_GT at its own size, ×4, PSNR of the output (PSNR_HR) at iteration 3900
# (and 2100); no bicubic number is given for zebra.
PAPER_NUMBERS = {"zebra_GT": {"it 2100": 24.12, "it 3900": 24.65}}


@dataclass(frozen=True)
class Config(TaskExperiment):
    """`TaskExperiment` in each image's own colour mode; ``factor`` and ``kernel`` of the
    down-sampler."""

    grey: bool = False
    factor: int = 4
    kernel: str = "lanczos"
    name: str = NAME


def default_images() -> tuple[str, ...]:
    return (str(shared_data("dip", "sr", "zebra_GT.png")), str(shared_data("standard256")))


PRESETS = presets(
    # the DIP reference code's ×4 setting: 5 x 128, Adam 0.01, input noise 0.03, 2000 iterations,
    # at the images' own size
    paper=Config(downsample=1, levels=5, channels=128, reg_noise_std=0.03, iterations=2000, every=5),
    # ~30 min on an idle core: 128 px (observations of 32 px), 1500 iterations
    hour=Config(size=128, iterations=1500, every=2),
    # ~7 min on an idle core: 64 px (observations of 16 px), 1000 iterations
    quick=Config(size=64, iterations=1000),
)
PAPER, HOUR, QUICK = PRESETS["paper"], PRESETS["hour"], PRESETS["quick"]


def jobs(cfg: Config) -> list[Job]:
    """One file per image."""
    setting = cfg.setting()
    operator = {"factor": cfg.factor, "kernel": cfg.kernel}
    return [Job(cfg.paths.trajectory(p.stem),
                cfg.task_config(setting, cfg.signal(p, crop_multiple=cfg.factor), "superres", operator=operator),
                p.stem)
            for p in cfg.image_list(default_images())]


def main(cfg: Config) -> dict:
    """Estimate, record, score and tabulate."""
    print(f"{cfg.name} [{cfg.preset}]: {cfg.setting().describe()}; ×{cfg.factor} ({cfg.kernel} down-sampler), "
          f"{cfg.seeds} seed(s) per image")
    return run(cfg, jobs, report)


def report(cfg: Config, recorded) -> dict:
    """Best and last PSNR, SSIM, bicubic and nearest; 003_...'s zebra beside."""
    from spectral_lab.analyze.baselines import upsample
    from spectral_lab.plot import save
    from spectral_lab.plot.denoise import output_grid_figure
    from spectral_lab.plot.tasks import task_curves_figure

    per, rows, grid, curves = {}, [], [], {}
    for rec in recorded:
        label, path = rec.job.label, rec.job.path
        view = task_scores(path)["all@1"]
        with open_trajectory(path) as t:
            shape, obs = tuple(t.signal_shape), tuple(t.observed.shape)
            best = view["runs"][0]["best_iteration"]
            frame = np.asarray(t.frames(0)[int(np.searchsorted(view["iterations"], best))])
            b = view["baselines"]
            grid.append((label, [("clean", t.target),
                                 (f"observed {obs[1]}×{obs[2]} (nearest ×{cfg.factor})",
                                  upsample(t.observed, cfg.factor, "nearest")),
                                 (f"bicubic {b['bicubic']:.2f} dB", upsample(t.observed, cfg.factor, "bicubic")),
                                 (f"DIP it {best}: {view['runs'][0]['best_psnr']:.2f} dB", frame)]))
        runs = view["runs"]
        per[label] = {"file": path, "shape": shape, "observed_shape": obs, "seconds": rec.seconds,
                      "best_psnr": view["best_psnr"], "final_psnr": float(np.mean([r["final_psnr"] for r in runs])),
                      "ssim_at_best": float(np.mean([r["ssim_at_best"] for r in runs])), "runs": runs,
                      "bicubic": b["bicubic"], "nearest": b["nearest"],
                      # a best frame in the last 10 % of the budget: the run may still be improving
                      "peaked": all(r["best_iteration"] < 0.9 * cfg.iterations for r in runs)}
        curves[label] = (view["iterations"], view["curves"])
        v = per[label]
        rows.append({"image": label, "size (C×H×W)": "×".join(map(str, shape)),
                     "observed": "×".join(map(str, obs[1:])),
                     "nearest": f"{v['nearest']:.2f}", "bicubic": f"{v['bicubic']:.2f}",
                     "DIP best (it)": f"{v['best_psnr']:.2f} ({', '.join(str(r['best_iteration']) for r in runs)})"
                                      + ("" if v["peaked"] else " †"),
                     "DIP last": f"{v['final_psnr']:.2f}", "DIP − bicubic": f"{v['best_psnr'] - v['bicubic']:+.2f}",
                     "SSIM at best": f"{v['ssim_at_best']:.3f}",
                     "003 Table 2": "; ".join(f"{k}: {x:.2f}" for k, x in PAPER_NUMBERS.get(label, {}).items()) or "—"})
    if per:
        rows.append({"image": f"**mean** ({len(per)})", "size (C×H×W)": "", "observed": "",
                     **{k: f"**{np.mean([v[key] for v in per.values()]):.2f}**"
                        for k, key in (("nearest", "nearest"), ("bicubic", "bicubic"), ("DIP best (it)", "best_psnr"),
                                       ("DIP last", "final_psnr"))},
                     "DIP − bicubic": f"**{np.mean([v['best_psnr'] - v['bicubic'] for v in per.values()]):+.2f}**",
                     "SSIM at best": "", "003 Table 2": ""})
    table = markdown_table(rows)
    what = (f"{cfg.setting().describe()}, ×{cfg.factor} with the {cfg.kernel} down-sampler, "
            f"{cfg.seeds} seed(s) per image")
    figures = [save(output_grid_figure(grid, title=f"×{cfg.factor} super-resolution [{cfg.preset}]: {what}"),
                    cfg.paths.figures / "outputs.png"),
               save(task_curves_figure(curves, ylabel="PSNR against the clean image (dB)",
                                       baselines={k: {"bicubic": v["bicubic"]} for k, v in per.items()},
                                       title=f"×{cfg.factor} super-resolution [{cfg.preset}]: {what}"),
                    cfg.paths.figures / "psnr_curves.png")]
    body = (f"Preset `{cfg.preset}`: {what}.\n\nPSNR (dB) of the output against the clean image: best along "
            f"the trajectory (oracle stop; mean over seeds, iterations of each seed's best; † = a best frame "
            f"in the last 10 % of the budget: still improving) and last; bicubic and nearest: the observation "
            f"up-sampled.\n\n{table}\n\nFigures: {', '.join(f.name for f in figures)}\n")
    write_report(cfg.paths, title=f"{cfg.name} [{cfg.preset}]", body=body,
                 numbers={"config": cfg, "per_image": per, "paper": PAPER_NUMBERS}, tables=[what, table], figures=figures)
    return {"config": cfg, "per_image": per}


FLAGS = {
    "images": "image files or folders, comma-separated (default: zebra_GT of ../shared/data/dip/sr and "
              "../shared/data/standard256)",
    "seeds": "seeds (runs) per image",
}


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
