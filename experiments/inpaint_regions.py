"""003_... Tables 3-4: region inpainting with the DIP masks, the original (mse) data term against
the multi-scale loss.

    python experiments/inpaint_regions.py [--quick | --preset quick|hour|paper]
        [--images FILES_OR_FOLDERS] [--seeds R] [--out-dir DIR] [--estimate-only] [--set FIELD=VALUE]

Every image (default: kate, vase and library of ../shared/data/dip/inpainting; a folder's
``*_mask.png`` files are the masks, not images) is read in colour with its mask
``<image>_mask.png`` (nonzero = known), both brought to a shorter side of about ``size``
(a hole never shrinks: `spectral_lab.signals.load_mask`), and fitted by the DIP twice: with the
mse data term and with ``multiscale`` (Σ_s w_s · known-sample MSE after s × s average pooling,
scales 1, 2, 4, weights 1, .5, .25: `spectral_lab.losses.MultiScale`), the same seeds, one file
per (image, loss): trajectories/inpaint_regions/<image>--<loss>.h5.

Scores as 003_...: ``psnr`` over the whole image, ``psnr_masked`` over the hole and
``psnr_coarse`` over the hole after 4 × 4 average pooling (`spectral-lab analyze psnr FILE
--region hole --scale 4`), at each run's best iteration and at the last. For vase and library
the clean image still holds what the mask removes (object removal), so their hole scores
measure nothing (003_... leaves them out too): only ``psnr`` is tabulated for them
(``scored_holes`` names the images whose hole has a ground truth). Writes
figures/inpaint_regions/{table.md, results.json, outputs.png, psnr_curves_<image>.png}.
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
from spectral_lab.config import LossConfig
from spectral_lab.errors import SpectralLabError
from spectral_lab.sweep import Job
from spectral_lab.trajectory import open_trajectory

NAME = "inpaint_regions"
MASK_SUFFIX = "_mask"
VIEWS = (("all", 1), ("hole", 1), ("hole", 4))
VIEW_NAMES = {"all@1": "psnr", "hole@1": "psnr_masked", "hole@4": "psnr_coarse"}

# 003_... Tables 3-4 at iteration 6000 (last row), and the best of their checkpoints (every 600)
PAPER_FINAL = {("kate", "mse"): (38.50, 26.62, 33.19), ("kate", "multiscale"): (38.52, 27.59, 35.07),
               ("vase", "mse"): (28.54,), ("vase", "multiscale"): (28.98,),
               ("library", "mse"): (19.34,), ("library", "multiscale"): (19.50,)}
PAPER_BEST = {("kate", "mse"): (38.50, 26.65, 33.36), ("kate", "multiscale"): (38.52, 27.59, 35.07),
              ("vase", "mse"): (28.85,), ("vase", "multiscale"): (29.10,),
              ("library", "mse"): (19.49,), ("library", "multiscale"): (19.60,)}


@dataclass(frozen=True)
class Config(TaskExperiment):
    """`TaskExperiment` in colour; ``losses``: the data terms compared; ``scored_holes``: the
    images (file stems) whose hole has a ground truth."""

    grey: bool = False
    losses: tuple[str, ...] = ("mse", "multiscale")
    scored_holes: tuple[str, ...] = ("kate",)
    name: str = NAME


def default_images() -> tuple[str, ...]:
    return tuple(str(shared_data("dip", "inpainting", f"{n}.png")) for n in ("kate", "vase", "library"))


PRESETS = presets(
    # the DIP reference code's kate setting (5 x 128, Adam 0.01, input noise 0.03, 6000 iterations)
    # for every image, at the images' own size
    paper=Config(downsample=1, levels=5, channels=128, reg_noise_std=0.03, iterations=6000, every=20),
    # ~40 min on an idle core (2-3x that on a busy machine): 64 px, 2 seeds, 2000 iterations
    hour=Config(size=64, reg_noise_std=0.03, iterations=2000, seeds=2, every=2),
    # ~10 min here: 64 px (kate 64 x 64, vase 64 x 64, library 64 x 96), 1 seed, 1000 iterations
    quick=Config(size=64, reg_noise_std=0.03, iterations=1000, seeds=1),
)
PAPER, HOUR, QUICK = PRESETS["paper"], PRESETS["hour"], PRESETS["quick"]


def mask_of(image: Path) -> Path:
    """``<image>_mask.png`` beside the image; SpectralLabError when there is none."""
    mask = image.with_name(f"{image.stem}{MASK_SUFFIX}.png")
    if not mask.is_file():
        raise SpectralLabError(f"no mask for {image}: expected {mask}")
    return mask


def jobs(cfg: Config) -> list[Job]:
    """One file per (image, loss), the same seeds for both losses."""
    setting = cfg.setting()
    images = [p for p in cfg.image_list(default_images()) if not p.stem.endswith(MASK_SUFFIX)]
    return [Job(cfg.paths.trajectory(f"{p.stem}--{loss}"),
                cfg.task_config(setting, cfg.signal(p), "inpaint", operator={"mask": str(mask_of(p))},
                                loss=LossConfig(loss)), loss)
            for p in images for loss in cfg.losses]


def main(cfg: Config) -> dict:
    """Estimate, record, score and tabulate."""
    print(f"{cfg.name} [{cfg.preset}]: {cfg.setting().describe()}; losses {', '.join(cfg.losses)}, "
          f"{cfg.seeds} seed(s) per file")
    return run(cfg, jobs, report)


def report(cfg: Config, recorded) -> dict:
    """psnr, psnr_masked and psnr_coarse (best and last) per image and loss, multiscale − mse."""
    from spectral_lab.plot import save
    from spectral_lab.plot.denoise import output_grid_figure
    from spectral_lab.plot.tasks import task_curves_figure

    per: dict[str, dict[str, dict]] = {}
    grid: dict[str, list] = {}
    for rec in recorded:
        image, loss, path = rec.job.path.stem.split("--")[0], rec.job.label, rec.job.path
        scores = task_scores(path, VIEWS)
        with open_trajectory(path) as t:
            shape, hole = tuple(t.signal_shape), float(1 - t.known.mean())
            view = scores["all@1"]
            best = view["runs"][0]["best_iteration"]
            idx = int(np.searchsorted(view["iterations"], best))
            if image not in grid:
                grid[image] = [("clean", t.target), (f"observed ({hole:.1%} hole)", t.observed)]
            grid[image].append((f"{loss} it {best}: {view['runs'][0]['best_psnr']:.2f} dB",
                                np.asarray(t.frames(0)[idx])))
        per.setdefault(image, {})[loss] = {
            "file": path, "shape": shape, "hole_fraction": hole, "seconds": rec.seconds,
            **{VIEW_NAMES[k]: {"best": v["best_psnr"], "final": float(np.mean([r["final_psnr"] for r in v["runs"]])),
                               "runs": v["runs"]} for k, v in scores.items()},
            "curves": {VIEW_NAMES[k]: (v["iterations"], v["curves"]) for k, v in scores.items()}}

    rows = []
    for image, by_loss in per.items():
        names = list(VIEW_NAMES.values()) if image in cfg.scored_holes else ["psnr"]
        for loss, v in by_loss.items():
            row = {"image": image, "size": "×".join(map(str, v["shape"][1:])), "loss": loss}
            for n in names:
                row[f"{n} best / last"] = f"{v[n]['best']:.2f} / {v[n]['final']:.2f}"
            best, final = PAPER_BEST.get((image, loss)), PAPER_FINAL.get((image, loss))
            row["003: best / it 6000"] = "—" if best is None else "; ".join(
                f"{b:.2f} / {f:.2f}" for b, f in zip(best, final))
            rows.append(row)
        if set(cfg.losses) >= {"mse", "multiscale"}:
            ms, mse = by_loss["multiscale"], by_loss["mse"]
            row = {"image": image, "size": "", "loss": "**multiscale − mse**"}
            for n in names:
                row[f"{n} best / last"] = f"{ms[n]['best'] - mse[n]['best']:+.2f} / {ms[n]['final'] - mse[n]['final']:+.2f}"
            pb, pm = PAPER_BEST.get((image, "multiscale")), PAPER_BEST.get((image, "mse"))
            pf, pfm = PAPER_FINAL.get((image, "multiscale")), PAPER_FINAL.get((image, "mse"))
            row["003: best / it 6000"] = "—" if pb is None else "; ".join(
                f"{a - b:+.2f} / {c - d:+.2f}" for a, b, c, d in zip(pb, pm, pf, pfm))
            rows.append(row)
    # a table per column set: kate has three metrics, vase and library one
    table = "\n\n".join(markdown_table([r for r in rows if set(r) == keys])
                        for keys in _unique([set(r) for r in rows]))
    what = f"{cfg.setting().describe()}, colour, {cfg.seeds} seed(s) per file (the same for both losses)"
    figures = [save(output_grid_figure(list(grid.items()), title=f"Region inpainting [{cfg.preset}]: {what}"),
                    cfg.paths.figures / "outputs.png")]
    for image, by_loss in per.items():
        metric = "psnr_masked" if image in cfg.scored_holes else "psnr"
        figures.append(save(task_curves_figure({loss: v["curves"][metric] for loss, v in by_loss.items()},
                                               ylabel=f"{metric} (dB)",
                                               title=f"{image}: {metric} along the trajectory [{cfg.preset}]: {what}"),
                            cfg.paths.figures / f"psnr_curves_{image}.png"))
    body = (f"Preset `{cfg.preset}`: {what}.\n\nPSNR (dB, mean over seeds) at each run's best iteration "
            f"(oracle) and at the last; psnr: whole image, psnr_masked: the hole, psnr_coarse: the hole after "
            f"4 × 4 average pooling (003_…). 003_…'s columns: the best of its checkpoints (every 600 "
            f"iterations) and its iteration 6000, at the images' own size.\n\n{table}\n\n"
            f"Figures: {', '.join(f.name for f in figures)}\n")
    numbers = {"config": cfg, "per_image": {i: {loss: {k: v for k, v in d.items() if k != "curves"}
                                                 for loss, d in b.items()} for i, b in per.items()},
               "paper_best": {f"{i}--{loss}": v for (i, loss), v in PAPER_BEST.items()},
               "paper_final": {f"{i}--{loss}": v for (i, loss), v in PAPER_FINAL.items()}}
    write_report(cfg.paths, title=f"{cfg.name} [{cfg.preset}]", body=body, numbers=numbers,
                 tables=[what, table], figures=figures)
    return {"config": cfg, "per_image": per}


def _unique(sets):
    out = []
    for s in sets:
        if s not in out:
            out.append(s)
    return out


FLAGS = {
    "images": "image files or folders, comma-separated, each with <image>_mask.png beside it "
              "(default: kate, vase and library of ../shared/data/dip/inpainting)",
    "seeds": "seeds (runs) per file",
}


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
