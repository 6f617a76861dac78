"""000_... Table 2 / 002_... inpainting: the DIP filling 50 % of the pixels dropped at random.

    python experiments/inpaint_random.py [--quick | --preset quick|hour|paper]
        [--images FILES_OR_FOLDERS] [--seeds R] [--out-dir DIR] [--estimate-only] [--set FIELD=VALUE]

Every image (files or folders, comma-separated; default: ../shared/data/standard256 for
``quick``, inpainting11 and standard256 for ``hour`` and ``paper``) is read grey, brought to a
shorter side of about ``size`` (``paper``: its own size) and observed through a Bernoulli
keep-mask that drops ``drop`` of its pixels (`spectral_lab.operators.Mask`, drawn from the noise
seed: every image of one size shares the mask). The DIP (``levels`` × ``channels``, Adam,
input perturbation) fits the known pixels, one file per image:
trajectories/inpaint_random/<folder>-<image>.h5 (the folder's name keeps inpainting11/barbara and
standard256/barbara apart).

Scores, per run, along the trajectory (oracle stop, as 000_... Table 2): the best PSNR over the
whole image (the papers' number), the best PSNR of the hole (the dropped pixels only) and SSIM at
the whole-image best; beside them the mean fill (every dropped pixel set to the known pixels'
mean). Writes figures/inpaint_random/{table.md, results.json, outputs.png, psnr_curves.png}.
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

NAME = "inpaint_random"

# 000_... Table 2 (50 % Bernoulli, the eleven grey images at their own size): "Ulyanov et al."
# (the DIP paper's numbers) and SGLD's posterior mean; keyed by the inpainting11 file stem.
PAPER_DIP = {"barbara": 32.22, "boat": 33.06, "house": 39.16, "Lena512": 36.16, "peppers256": 33.05,
             "Cameraman256": 29.80, "couple": 32.52, "fingerprint": 32.84, "hill": 32.77, "man": 32.2,
             "montage": 34.54}
PAPER_SGLD = {"barbara": 33.82, "boat": 34.26, "house": 40.13, "Lena512": 37.73, "peppers256": 33.97,
              "Cameraman256": 30.33, "couple": 33.72, "fingerprint": 33.41, "hill": 34.03, "man": 33.54,
              "montage": 34.65}
PAPER_MEANS = {"DIP (Ulyanov et al.)": 33.48, "SGLD": 34.51}
PAPER_FOLDER = "inpainting11"


@dataclass(frozen=True)
class Config(TaskExperiment):
    """`TaskExperiment` with ``drop``: the fraction of pixels removed (Bernoulli)."""

    drop: float = 0.5
    name: str = NAME


def default_images(preset: str) -> tuple[str, ...]:
    folders = ("standard256",) if preset == "quick" else (PAPER_FOLDER, "standard256")
    return tuple(str(shared_data(f)) for f in folders)


PRESETS = presets(
    # 000_... Sec. 5.2: the DIP paper's 5 x 128 network on the images at their own size; Adam
    # 0.001 (their inpainting rate) for 11 000 iterations (their input-noise stopping point)
    paper=Config(downsample=1, levels=5, channels=128, lr=0.001, iterations=11000, seeds=1, every=10),
    # ~45 min here: the 17 images at 64 x 64, the quick image preset's DIP, 1200 iterations
    hour=Config(size=64, levels=4, channels=64, iterations=1200),
    # ~6 min here: standard256's six images at 64 x 64, 600 iterations
    quick=Config(size=64, levels=4, channels=64, iterations=600),
)
PAPER, HOUR, QUICK = PRESETS["paper"], PRESETS["hour"], PRESETS["quick"]


def image_label(path: Path) -> str:
    """``<folder>-<stem>``: the file's name in trajectories/ and its row in the tables."""
    return f"{path.parent.name}-{path.stem}"


def jobs(cfg: Config) -> list[Job]:
    """One file per image: 50 % (``drop``) of its pixels dropped at random."""
    setting = cfg.setting()
    return [Job(cfg.paths.trajectory(image_label(p)),
                cfg.task_config(setting, cfg.signal(p), "inpaint", operator={"drop": cfg.drop}), image_label(p))
            for p in cfg.image_list(default_images(cfg.preset))]


def main(cfg: Config) -> dict:
    """Estimate, record, score and tabulate."""
    print(f"{cfg.name} [{cfg.preset}]: {cfg.setting().describe()}; {cfg.drop:.0%} of the pixels dropped, "
          f"{cfg.seeds} seed(s) per image")
    return run(cfg, jobs, report)


def report(cfg: Config, recorded) -> dict:
    """Best PSNR (whole image, hole), SSIM, the mean fill; the paper's numbers beside."""
    from spectral_lab.plot import save
    from spectral_lab.plot.denoise import output_grid_figure
    from spectral_lab.plot.tasks import task_curves_figure

    per, rows, curves, grid = {}, [], {}, []
    for rec in recorded:
        label, path = rec.job.label, rec.job.path
        scores = task_scores(path, (("all", 1), ("hole", 1)))
        whole, hole = scores["all@1"], scores["hole@1"]
        with open_trajectory(path) as t:
            shape, known = tuple(t.signal_shape), float(t.known.mean())
            best = whole["runs"][0]["best_iteration"]
            best_frame = np.asarray(t.frames(0)[int(np.searchsorted(whole["iterations"], best))])
            grid.append((label, [("clean", t.target), (f"observed ({1 - known:.0%} dropped)", t.observed),
                                 (f"mean fill {whole['baselines']['mean fill']:.2f} dB",
                                  _mean_fill(t)),
                                 (f"DIP it {best}: {whole['runs'][0]['best_psnr']:.2f} dB", best_frame)]))
        stem = path.stem.split("-", 1)[1]
        in_paper = label.startswith(PAPER_FOLDER + "-") and stem in PAPER_DIP
        per[label] = {"file": path, "shape": shape, "dropped": 1 - known, "seconds": rec.seconds,
                      "all": _summary(whole), "hole": _summary(hole),
                      "paper_dip": PAPER_DIP.get(stem) if in_paper else None,
                      "paper_sgld": PAPER_SGLD.get(stem) if in_paper else None}
        curves[label] = (hole["iterations"], hole["curves"])
        v = per[label]
        rows.append({"image": label, "size": "×".join(map(str, shape[1:])),
                     "mean fill: all / hole": f"{v['all']['baseline']:.2f} / {v['hole']['baseline']:.2f}",
                     "DIP best: all": _cell(v["all"]), "DIP best: hole": _cell(v["hole"]),
                     "SSIM at best": f"{v['all']['ssim']:.3f}",
                     "000 Table 2: DIP / SGLD": "—" if v["paper_dip"] is None
                     else f"{v['paper_dip']:.2f} / {v['paper_sgld']:.2f}"})
    means = {}
    for folder in sorted({k.split("-", 1)[0] for k in per}):
        mine = [v for k, v in per.items() if k.startswith(folder + "-")]
        means[folder] = {key: float(np.mean([v[key]["best"] for v in mine])) for key in ("all", "hole")}
        means[folder].update({f"{key} baseline": float(np.mean([v[key]["baseline"] for v in mine]))
                              for key in ("all", "hole")})
        paper = [v["paper_dip"] for v in mine if v["paper_dip"] is not None]
        rows.append({"image": f"**mean {folder}** ({len(mine)})", "size": "",
                     "mean fill: all / hole": f"{means[folder]['all baseline']:.2f} / "
                                              f"{means[folder]['hole baseline']:.2f}",
                     "DIP best: all": f"**{means[folder]['all']:.2f}**",
                     "DIP best: hole": f"**{means[folder]['hole']:.2f}**", "SSIM at best": "",
                     "000 Table 2: DIP / SGLD": "33.48 / 34.51" if len(paper) == len(PAPER_DIP) else "—"})
    table = markdown_table(rows)
    what = (f"{cfg.setting().describe()}, {cfg.drop:.0%} of the pixels dropped (Bernoulli, noise seed "
            f"{cfg.noise_seed}), {cfg.seeds} seed(s) per image, grey")
    figures = [save(output_grid_figure(grid, title=f"Random inpainting [{cfg.preset}]: {what}"),
                    cfg.paths.figures / "outputs.png"),
               save(task_curves_figure(curves, ylabel="PSNR of the dropped pixels (dB)",
                                       baselines={k: {"mean fill": v["hole"]["baseline"]} for k, v in per.items()},
                                       title=f"Hole PSNR along the trajectory [{cfg.preset}]: {what}"),
                    cfg.paths.figures / "psnr_curves.png")]
    body = (f"Preset `{cfg.preset}`: {what}.\n\nBest PSNR (dB) along the trajectory against the clean image "
            f"(oracle stop; mean over seeds, iteration of seed 0's best): over the whole image (000_… Table 2's "
            f"number) and over the dropped pixels only (hole); mean fill: every dropped pixel set to the "
            f"known mean.\n\n{table}\n\nFigures: {', '.join(f.name for f in figures)}\n")
    write_report(cfg.paths, title=f"{cfg.name} [{cfg.preset}]", body=body,
                 numbers={"config": cfg, "per_image": per, "means": means, "paper_means": PAPER_MEANS},
                 tables=[what, table], figures=figures)
    return {"config": cfg, "per_image": per, "means": means}


def _summary(view: dict) -> dict:
    return {"best": view["best_psnr"], "baseline": view["baselines"]["mean fill"],
            "runs": view["runs"], "ssim": float(np.mean([r["ssim_at_best"] for r in view["runs"]]))}


def _cell(v: dict) -> str:
    its = ", ".join(str(r["best_iteration"]) for r in v["runs"])
    return f"{v['best']:.2f} (it {its})"


def _mean_fill(t) -> np.ndarray:
    from spectral_lab.analyze.baselines import mean_fill

    return mean_fill(t.observed, t.known)


FLAGS = {
    "images": "image files or folders, comma-separated (default: ../shared/data/standard256 for quick, "
              "inpainting11 and standard256 otherwise)",
    "seeds": "seeds (runs) per image",
}


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
