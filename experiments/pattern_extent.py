"""Paper Fig. 1 f–h: the more of the image a fine pattern covers, the more two DIP runs diverge.

    python experiments/pattern_extent.py [--quick] [--image triangle|DIR] [--out-dir DIR]
        [--estimate-only] [--set FIELD=VALUE]

The synthetic triangle (`spectral_lab.signals.triangle_image`) with its fine line pattern over
a top-left square of side s × the image side, s in 0.2, 0.4, …, 1.0 — the grid of the paper's
files triangle-0.2.png … triangle-1.0.png, whose suffix is that SIDE fraction — so the pattern
covers s² = 4 %, 16 %, 36 %, 64 %, 100 % of the AREA. With ``--image DIR`` the files
DIR/triangle-<s>.png are fitted instead (their lines are one pixel wide: down-sampling them
blurs the pattern away, so they are read at full size unless ``--set downsample=N``).

Per extent one file of R runs (weights and input vary), trajectories/pattern_extent/
side-<s>.h5; ε is compared over the R/2 disjoint pairs (0,1), (2,3), … so that the pairs
are independent and their spread is a fair mean ± std (the sample std, ddof=1). Summary per pair: the excess
divergence Σ_i (ε(i) − min_{j<=i} ε(j)), counted from the largest ε on (how far the runs
drift apart again after having agreed; needs no dip), and the area under ε after the first
convergence point (where one is detected). Writes figures/pattern_extent/
{epsilon_by_extent.png, table.md, results.json} and prints the table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._cli import experiment_cli
from experiments._common import DivergenceExperiment, fmt_mean_std, markdown_table, presets, run, run_config, write_report
from spectral_lab.analyze.divergence import rebound
from spectral_lab.analyze.stats import mean_std
from spectral_lab.config import SignalConfig
from spectral_lab.images import image_signal
from spectral_lab.plot import save
from spectral_lab.plot.spectral import pattern_extent_figure
from spectral_lab.sweep import Job
from spectral_lab.trajectory import open_trajectory

NAME = "pattern_extent"


@dataclass(frozen=True)
class Config(DivergenceExperiment):
    """Extents as SIDE fractions (area = side²); R runs per extent, R even. ``image``:
    "triangle" or a folder of triangle-<s>.png files (read at ``downsample``, None: 1)."""

    side_fractions: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
    runs: int = 6
    name: str = NAME


PRESETS = presets(
    paper=Config(),
    # About two minutes on 2 cores: a 32 x 32 triangle, 4 levels (the deepest keeps 2 x 2),
    # 32 channels, 6 runs (3 independent pairs) per extent, 250 iterations.
    quick=Config(size=32, levels=4, channels=32, iterations=250, runs=6))
PAPER, QUICK = PRESETS["paper"], PRESETS["quick"]


def signal_for(cfg: Config, side: float) -> SignalConfig:
    """The synthetic triangle with pattern area side², or the file triangle-<side>.png."""
    if cfg.image == "triangle":
        return image_signal("triangle", size=cfg.size, pattern_fraction=side**2)
    return image_signal(str(Path(cfg.image) / f"triangle-{side:.1f}.png"), downsample=cfg.downsample or 1)


def jobs(cfg: Config) -> list[Job]:
    """One file of R runs (weights and input vary) per extent, trajectories/pattern_extent/side-<s>.h5."""
    if cfg.runs < 2 or cfg.runs % 2:
        raise ValueError(f"runs must be even and >= 2 (disjoint pairs), got {cfg.runs}")
    if cfg.image != "triangle" and not Path(cfg.image).is_dir():
        raise ValueError(f"--image must be 'triangle' or a folder of triangle-<s>.png files, got {cfg.image!r}")
    return [Job(cfg.paths.trajectory(f"side-{side:g}"),
                run_config(cfg.dip(), signal_for(cfg, side), runs=cfg.runs, seed=cfg.seed, device=cfg.device),
                f"{side:g}")
            for side in cfg.side_fractions]


def report(cfg: Config, recorded) -> dict:
    """Compare ε over disjoint pairs per extent, draw and tabulate."""
    pairs = [(r, r + 1) for r in range(0, cfg.runs, 2)]
    results, targets, summary, rows = {}, {}, {}, []
    numbers: dict = {"config": cfg, "extents": {}}
    for side, rec in zip(cfg.side_fractions, recorded):
        label = f"{side**2:.0%} (side {side:g})"
        res = cfg.divergence(rec.path, pairs)
        with open_trajectory(rec.path) as traj:
            targets[label] = traj.target
        per_pair = [rebound(res.pairs[p], res.points[p]) for p in pairs]
        excess = mean_std(s["excess"] for s in per_pair)
        after = mean_std(s["area_after_first"] for s in per_pair if s["area_after_first"] is not None)
        peak = mean_std(s["eps_peak"] for s in per_pair if s["eps_peak"] is not None)
        firsts = [s["first"] for s in per_pair if s["first"] is not None]
        results[label], summary[label] = res, excess
        rows.append({"side fraction": f"{side:g}", "pattern area": f"{side**2:.0%}",
                     "pairs": len(pairs), "dip detected": f"{len(firsts)}/{len(pairs)}",
                     "first conv. (mean)": f"{np.mean(firsts):.0f}" if firsts else "—",
                     "excess divergence": _fmt(excess),
                     "area under ε after first conv.": _fmt(after) + (f" (n={len(firsts)})" if firsts else ""),
                     "max ε after first conv.": _fmt(peak)})
        numbers["extents"][f"{side:g}"] = {
            "side_fraction": side, "area_fraction": side**2, "file": rec.path, "seconds": rec.seconds,
            "pairs": [{"runs": list(p), "convergence_points": res.points[p], **s} for p, s in zip(pairs, per_pair)],
            "excess": {"mean": excess[0], "std": excess[1]},
            "area_after_first": {"mean": after[0], "std": after[1], "n": len(firsts)},
            "epsilon_mean": res.mean.tolist()}
    fig = pattern_extent_figure(results, targets, summary, title=_title(cfg),
                                summary_label="excess divergence Σᵢ (ε(i) − min of ε up to i), ε·iterations")
    figure = save(fig, cfg.paths.figures / "epsilon_by_extent.png")
    table = markdown_table(rows)
    seconds = sum(v["seconds"] for v in numbers["extents"].values())
    body = (f"{_title(cfg)}\n\nPer extent, over the disjoint pairs of runs (mean ± std, the sample std, ddof=1): "
            f"the excess divergence Σᵢ(ε(i) − min_(j≤i) ε(j)) in ε·iterations, counted from the iteration of the "
            f"largest ε (the start); the area Σ ε(i) from the first convergence point (first dip of ε; detector "
            f"{cfg.detector()}) to the end, over the pairs where one was "
            f"detected; the largest ε after it.\n\n{table}\n\n"
            f"Recording wall time: {seconds:.0f} s in all\n\nFigure: {figure.name}\n")
    write_report(cfg.paths, title=cfg.name, body=body, numbers=numbers, tables=[table], figures=[figure])
    return numbers


def main(cfg: Config) -> dict:
    """Record one file per extent, compare ε over disjoint pairs, draw and tabulate."""
    return run(cfg, jobs, report)


def _fmt(ms: tuple[float, float]) -> str:
    return fmt_mean_std(ms, ".3g", ".2g", summarized=True)


def _title(cfg: Config) -> str:
    what = f"triangle {cfg.size}²" if cfg.image == "triangle" else f"{cfg.image}/triangle-<s>.png"
    return cfg.title(f"fitting {what}, fine pattern over side fractions {', '.join(f'{s:g}' for s in cfg.side_fractions)}",
                     f"per extent (seeds from {cfg.seed}, weights and input vary)")


FLAGS = {
    "image": "triangle (default, synthetic) or a folder of triangle-<s>.png files",
}


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
