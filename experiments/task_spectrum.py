"""The spectral view of a restoration task (beyond the papers): which frequency bands of the
missing content the DIP supplies first, for 50 % random inpainting and for ×4 super-resolution.

    python experiments/task_spectrum.py [--quick | --preset quick|hour|paper]
        [--image PATH] [--seeds R] [--out-dir DIR] [--estimate-only] [--set FIELD=VALUE]

One grey image (default: ../shared/data/standard256/boat.png) at a shorter side of about
``size`` is restored twice by ``seeds`` runs of the DIP: with ``drop`` of its pixels dropped at
random (trajectories/task_spectrum/inpaint.h5) and from its ×``factor`` down-sampled version
(superres.h5). For every frame, `spectral_lab.analyze.task_spectrum` gives the error of the
missing content per radial band, E_b(t) = P_b((x_t − x*) ⊙ w) / P_b(x* ⊙ w) (w: the hole for
inpainting, and also the whole image, whose error a random mask does not spread; the whole image
for super-resolution, whose missing content is the bands above the observation's Nyquist
frequency 1 / (2·factor)), and each band's fill time: the first iteration from which E_b stays
≤ a threshold (``thresholds``: 0.5 = half restored, 0.1 = restored).

The table says, per band, when it is filled and, for super-resolution, how low E_b gets above
the Nyquist frequency (E_b = 1: nothing of the band is there, as in an output without it; > 1:
the output holds content the image has not). Spearman's ρ between a band's frequency and its fill
time summarises the order (ρ > 0: low bands first). Writes figures/task_spectrum/{table.md,
results.json, inpaint_hole.png, inpaint_all.png, superres.png}.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._cli import experiment_cli
from experiments._common import TaskExperiment, shared_data, fmt_or_dash, markdown_table, presets, run, write_report
from spectral_lab.errors import SpectralLabError
from spectral_lab.sweep import Job
from spectral_lab.trajectory import open_trajectory

NAME = "task_spectrum"


@dataclass(frozen=True)
class Config(TaskExperiment):
    """`TaskExperiment` on one grey ``image`` (empty: standard256/boat.png); ``drop`` of the
    random mask, ``factor`` of the down-sampler (Lanczos-2); ``thresholds`` of E_b for the fill
    times (the first is the figures')."""

    image: str = ""
    drop: float = 0.5
    factor: int = 4
    thresholds: tuple[float, ...] = (0.5, 0.1)
    seeds: int = 2
    name: str = NAME

    def image_path(self) -> Path:
        path = Path(self.image or shared_data("standard256", "boat.png")).expanduser().resolve()
        if not path.is_file():
            raise SpectralLabError(f"image {path}: no such file")
        return path


PRESETS = presets(
    # the paper-sized DIP (5 x 128) on the image at its own size
    paper=Config(downsample=1, levels=5, channels=128, iterations=3000, every=10),
    # ~30 min on an idle core: 128 x 128, 2 seeds, 2000 iterations
    hour=Config(size=128, iterations=2000, every=2),
    # ~5 min on an idle core: 64 x 64, 2 seeds, 1000 iterations
    quick=Config(size=64, iterations=1000),
)
PAPER, HOUR, QUICK = PRESETS["paper"], PRESETS["hour"], PRESETS["quick"]


def jobs(cfg: Config) -> list[Job]:
    """``inpaint`` (``drop`` at random) and ``superres`` (×``factor``) of the one image."""
    path, setting = cfg.image_path(), cfg.setting()
    return [Job(cfg.paths.trajectory("inpaint"),
                cfg.task_config(setting, cfg.signal(path), "inpaint", operator={"drop": cfg.drop}), "inpaint"),
            Job(cfg.paths.trajectory("superres"),
                cfg.task_config(setting, cfg.signal(path, crop_multiple=cfg.factor), "superres",
                                operator={"factor": cfg.factor}), "superres")]


def main(cfg: Config) -> dict:
    """Estimate, record, analyse and draw."""
    print(f"{cfg.name} [{cfg.preset}]: {cfg.setting().describe()}; {cfg.image_path().name}: {cfg.drop:.0%} "
          f"dropped, ×{cfg.factor} super-resolution; {cfg.seeds} seed(s)")
    return run(cfg, jobs, report)


def report(cfg: Config, recorded) -> dict:
    """Fill times per band and threshold, E_b above the Nyquist frequency, figures."""
    from scipy.stats import spearmanr

    from spectral_lab.analyze.task_spectrum import task_spectrum_file
    from spectral_lab.plot import save
    from spectral_lab.plot.images import task_spectrum_figure

    files = {rec.job.label: rec.job.path for rec in recorded}
    views = {"inpaint_hole": (files["inpaint"], "hole"), "inpaint_all": (files["inpaint"], "all"),
             "superres": (files["superres"], "all")}
    numbers, tables, figures = {}, [], []
    for view, (path, region) in views.items():
        results = {thr: task_spectrum_file(path, region=region, threshold=thr) for thr in cfg.thresholds}
        first = results[cfg.thresholds[0]]
        edges, nyq = first.band_edges, first.observed_nyquist
        centres = 0.5 * (edges[:-1] + edges[1:])
        errors = np.stack(first.errors)  # (R, T, B)
        with open_trajectory(path) as t:
            its = t.frame_iterations(0)
        rows, rho = [], {}
        for thr, res in results.items():
            times = np.array([[np.nan if v is None else v for v in run] for run in res.fill_times], dtype=float)
            ok = ~np.isnan(times[0])
            rho[thr] = float(spearmanr(centres[ok], times[0][ok]).correlation) if ok.sum() > 2 else None
        for b in range(len(centres)):
            row = {"band (cycles/px)": f"{edges[b]:.3f}–{edges[b + 1]:.3f}"}
            if nyq is not None:
                row["above Nyquist"] = "yes" if edges[b] >= nyq else ("partly" if edges[b + 1] > nyq else "")
            for thr, res in results.items():
                row[f"fill time E_b≤{thr:g}"] = ", ".join(fmt_or_dash(t_[b]) for t_ in res.fill_times)
            lows = errors[:, :, b].min(axis=1)
            at = [int(its[int(np.argmin(errors[r, :, b]))]) for r in range(len(errors))]
            row["min E_b (it)"] = ", ".join(f"{v:.2f} ({i})" for v, i in zip(lows, at))
            row["last E_b"] = ", ".join(f"{v:.2f}" for v in errors[:, -1, b])
            rows.append(row)
        table = markdown_table(rows)
        numbers[view] = {"file": path, "region": region, "band_edges": edges, "observed_nyquist": nyq,
                         "fill_times": {thr: res.fill_times for thr, res in results.items()},
                         "spearman_rho_run0": rho, "min_error": errors.min(axis=1), "last_error": errors[:, -1]}
        what = {"inpaint_hole": f"{cfg.drop:.0%} random inpainting, error in the hole",
                "inpaint_all": f"{cfg.drop:.0%} random inpainting, error over the whole image",
                "superres": f"×{cfg.factor} super-resolution (observation's Nyquist {nyq})"}[view]
        heading = (f"**{what}** — Spearman ρ(band frequency, fill time) of run 0: "
                   + ", ".join(f"E_b≤{thr:g}: {fmt_or_dash(r, '.2f')}" for thr, r in rho.items()))
        tables.append(f"{heading}\n\n{table}")
        figures.append(save(task_spectrum_figure(first, title=f"{what} [{cfg.preset}]: {cfg.setting().describe()}, "
                                                        f"{cfg.image_path().stem}"),
                            cfg.paths.figures / f"{view}.png"))
    what = (f"{cfg.setting().describe()} on {cfg.image_path().name} (grey, shorter side ~{cfg.size}), "
            f"{cfg.seeds} seed(s)")
    body = (f"Preset `{cfg.preset}`: {what}.\n\nPer radial band (cycles/pixel): the fill times of each run "
            f"(first iteration from which E_b stays at or below the threshold; — = never), the lowest E_b "
            f"reached and when, and E_b at the last iteration.\n\n" + "\n\n".join(tables)
            + f"\n\nFigures: {', '.join(f.name for f in figures)}\n")
    write_report(cfg.paths, title=f"{cfg.name} [{cfg.preset}]", body=body, numbers={"config": cfg, **numbers},
                 tables=[what, *tables], figures=figures)
    return {"config": cfg, **numbers}


FLAGS = {
    "image": "a grey image file (default: ../shared/data/standard256/boat.png)",
    "seeds": "seeds (runs) per file",
}


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
