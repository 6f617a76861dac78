"""002_... Fig. 10: flash / no-flash restoration, the flash image as the network's input.

    python experiments/flash_noflash.py [--quick | --preset quick|hour|paper]
        [--observed PATH] [--guide PATH] [--seeds R] [--out-dir DIR] [--estimate-only] [--set FIELD=VALUE]

The no-flash photograph (default: ../shared/data/dip/flash_no_flash/cave01_01_noflash.jpg, noisy,
with no clean version) is the observation, fitted as it is (denoising data term, no synthetic
noise: ``record --observed NOFLASH --input-image FLASH``); the network's input z is the flash
photograph of the same scene (``guide``) instead of noise. The same fit with z ~ U(0, 0.1) is the
comparison. Both are colour, brought to a shorter side of about ``size``:
trajectories/flash_noflash/{guided,noise}.h5.

There is no clean image, so no PSNR against one: the figure shows the no-flash and flash images
and both fits at the iterations ``shown``; the table gives each output's PSNR against the
no-flash observation there (how much of it, noise included, the output reproduces) and against
the flash guide. Writes figures/flash_noflash/{table.md, results.json, flash_noflash.png}.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._cli import experiment_cli
from experiments._common import TaskExperiment, shared_data, markdown_table, presets, run, write_report
from spectral_lab.errors import SpectralLabError
from spectral_lab.sweep import Job
from spectral_lab.trajectory import open_trajectory

NAME = "flash_noflash"
PAIR = shared_data("dip", "flash_no_flash")


@dataclass(frozen=True)
class Config(TaskExperiment):
    """`TaskExperiment` in colour: ``observed`` the no-flash photograph, ``guide`` the flash one
    (empty: the DIP pair); ``shown``: the iterations drawn and tabulated (the last is added)."""

    grey: bool = False
    observed: str = ""
    guide: str = ""
    shown: tuple[int, ...] = (50, 150, 300)
    name: str = NAME

    def pair(self) -> tuple[Path, Path]:
        obs = Path(self.observed or PAIR / "cave01_01_noflash.jpg").expanduser().resolve()
        guide = Path(self.guide or PAIR / "cave01_00_flash.jpg").expanduser().resolve()
        for p in (obs, guide):
            if not p.is_file():
                raise SpectralLabError(f"flash / no-flash image {p}: no such file")
        return obs, guide


PRESETS = presets(
    # the DIP reference code: 5 x 128, Adam 0.1, no input perturbation, 600 iterations, own size
    paper=Config(downsample=1, levels=5, channels=128, lr=0.1, reg_noise_std=0.0, iterations=600, every=5,
                 shown=(100, 300)),
    # ~15 min on an idle core: 128 px, 1000 iterations
    hour=Config(size=128, lr=0.01, reg_noise_std=0.0, iterations=1000, shown=(100, 300, 600)),
    # ~3 min on an idle core: 64 px, 600 iterations
    quick=Config(size=64, lr=0.01, reg_noise_std=0.0, iterations=600),
)
PAPER, HOUR, QUICK = PRESETS["paper"], PRESETS["hour"], PRESETS["quick"]


def jobs(cfg: Config) -> list[Job]:
    """``guided`` (the flash image as z) and ``noise`` (z ~ U(0, 0.1)), the same observation."""
    obs, guide = cfg.pair()
    signal, setting = cfg.signal(None, observed=obs), cfg.setting()
    return [Job(cfg.paths.trajectory(label), cfg.task_config(setting, signal, "denoise", input_image=z), label)
            for label, z in (("guided", guide), ("noise", None))]


def main(cfg: Config) -> dict:
    """Estimate, record, draw and tabulate."""
    obs, guide = cfg.pair()
    print(f"{cfg.name} [{cfg.preset}]: {cfg.setting().describe()}; observed {obs.name}, guide {guide.name}, "
          f"{cfg.seeds} seed(s)")
    return run(cfg, jobs, report)


def report(cfg: Config, recorded) -> dict:
    """The figure (inputs, guided and unguided outputs at ``shown``) and PSNR to the observation and guide."""
    from spectral_lab.analyze.psnr import psnr
    from spectral_lab.plot import save
    from spectral_lab.plot.denoise import output_grid_figure
    from spectral_lab.problem import make_problem

    guide = make_problem(recorded[0].job.config).guide
    per, rows, grid = {}, [], []
    for rec in recorded:
        with open_trajectory(rec.job.path) as t:
            observed, its = np.asarray(t.observed, dtype=np.float64), t.frame_iterations(0)
            shown = sorted({int(its[int(np.searchsorted(its, min(i, int(its[-1]))))]) for i in cfg.shown}
                           | {int(its[-1])})
            if not grid:
                grid.append(("inputs", [(f"no-flash (observed) {'×'.join(map(str, observed.shape[1:]))}", observed),
                                        ("flash (guide)", guide)]))
            frames = {i: np.asarray(t.frames(0)[int(np.searchsorted(its, i))]) for i in shown}
        label = "flash image as input" if rec.job.label == "guided" else "noise input (no guide)"
        grid.append((label, [(f"it {i}", f) for i, f in frames.items()]))
        per[rec.job.label] = {"file": rec.job.path, "seconds": rec.seconds, "shape": observed.shape,
                              "psnr_to_observed": {i: float(psnr(f, observed)[0]) for i, f in frames.items()},
                              "psnr_to_guide": {i: float(psnr(f, guide)[0]) for i, f in frames.items()}}
        for i in shown:
            rows.append({"input z": label, "iteration": i,
                         "PSNR to the no-flash observation (dB)": f"{per[rec.job.label]['psnr_to_observed'][i]:.2f}",
                         "PSNR to the flash guide (dB)": f"{per[rec.job.label]['psnr_to_guide'][i]:.2f}"})
    table = markdown_table(rows)
    what = f"{cfg.setting().describe()}, colour, seed {cfg.seed}"
    fig = save(output_grid_figure(grid, title=f"Flash / no-flash [{cfg.preset}]: the no-flash image fitted with the "
                                              f"flash image as the input (row 2) and with noise (row 3); {what}"),
               cfg.paths.figures / "flash_noflash.png")
    body = (f"Preset `{cfg.preset}`: {what}. No clean image exists: the outputs are shown in the figure; PSNR "
            f"against the no-flash observation (rises as the fit reproduces its noise) and the flash guide "
            f"(its lighting differs, so a high value means the guide was copied).\n\n{table}\n\n"
            f"Figure: {fig.name}\n")
    write_report(cfg.paths, title=f"{cfg.name} [{cfg.preset}]", body=body, numbers={"config": cfg, "files": per},
                 tables=[what, table], figures=[fig])
    return {"config": cfg, "files": per}


FLAGS = {
    "observed": "the no-flash photograph (default: ../shared/data/dip/flash_no_flash/cave01_01_noflash.jpg)",
    "guide": "the flash photograph used as the input (default: cave01_00_flash.jpg beside it)",
}


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
