"""Paper appendix B, Fig. 6: convergence time of k1 and k2 over a depth x width grid.

    python experiments/capacity_sweep.py [--quick] [--out-dir DIR] [--estimate-only] [--set FIELD=VALUE]

Every grid point is its own configuration, its own freshly built network and its own file
trajectories/capacity_sweep/<family>-d<depth>-w<width>.h5 holding R seeds (the reference sweep
ran one network at every point; here the network each fit really trained is recorded in
results.json: class, parameters per run and parameter shapes). Writes
figures/capacity_sweep/{capacity_<reading>.png, table.md, results.json} and prints the table.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments._cli import experiment_cli
from experiments._common import (SinesExperiment, Setting, analyze_setting, convergence_row, markdown_table,
                                 presets, run, run_config, write_report)
from spectral_lab.plot import save
from spectral_lab.plot.oned import capacity_figure
from spectral_lab.sweep import Job

NAME = "capacity_sweep"

# One base setting per family; depth and width are replaced at every grid point, everything
# else is held fixed (the paper's protocol), including the learning rate. The conv net is the
# one of oned_conv_vs_linear (reference code's init, no biases). Depth 2 is left out: a 2-layer
# conv stack never fitted either frequency in 1500 iterations. Budget and lr: results/oned.md.
CONV = Setting("conv", "conv", {"kernel": 3, "init": "default", "bias": False}, lr=1e-4, iterations=2000)
LINEAR = Setting("linear", "linear", {}, lr=1e-4, iterations=2000)


@dataclass(frozen=True)
class Config(SinesExperiment):
    """Every (family, depth, width) point of the grid, ``seeds`` seeds a point."""

    families: tuple[Setting, ...] = (CONV, LINEAR)
    depths: tuple[int, ...] = (4, 6, 8, 10)
    widths: tuple[int, ...] = (16, 32, 64, 128)
    name: str = NAME


PRESETS = presets(
    paper=Config(),
    # About a minute on 2 cores: the grid's corners, 5 seeds, a 3x larger lr and fewer iterations.
    quick=Config(seeds=5, depths=(4, 10), widths=(16, 64),
                 families=(replace(CONV, lr=3e-4, iterations=600), replace(LINEAR, lr=3e-4, iterations=600))))
PAPER, QUICK = PRESETS["paper"], PRESETS["quick"]


def grid(cfg: Config) -> list[tuple[str, Setting, int, int]]:
    """Every (family, setting, depth, width) point: its own label and model options."""
    points = []
    for base, depth, width in itertools.product(cfg.families, cfg.depths, cfg.widths):
        s = replace(base, label=f"{base.label}-d{depth}-w{width}",
                    options={**dict(base.options), "depth": depth, "width": width})
        points.append((base.label, s, depth, width))
    return points


def jobs(cfg: Config) -> list[Job]:
    """One file per grid point, trajectories/capacity_sweep/<family>-d<depth>-w<width>.h5."""
    return [Job(cfg.paths.trajectory(s.label), run_config(s, cfg.signal, runs=cfg.seeds, seed=cfg.seed,
                                                          device=cfg.device), s.label)
            for _, s, _, _ in grid(cfg)]


def report(cfg: Config, recorded) -> dict:
    """Analyse every grid point, draw both readings and tabulate; returns the numbers."""
    rows, points = [], []
    for (family, setting, depth, width), rec in zip(grid(cfg), recorded):
        analysis = analyze_setting(rec.path, cfg.deltas)
        for d, (_, table) in analysis.items():
            rows.append({"family": family, "depth": depth, "width": width, "δ": f"{d:g}",
                         "params/run": f"{rec.network['parameters_per_run']:,}", **convergence_row(table)})
        points.append({"label": setting.label, "family": family, "depth": depth, "width": width,
                       "file": rec.path, "seconds": rec.seconds, "network": rec.network, "setting": setting,
                       "tables": {str(d): t for d, (_, t) in analysis.items()}})
    figures = []
    families = [f.label for f in cfg.families]
    for reading, key in (("settle", "converged_at"), ("first crossing", "first_crossing")):
        flat = [{"family": p["family"], "depth": p["depth"], "width": p["width"],
                 "budget": p["setting"].iterations,
                 "per_freq": [pf[key] for pf in p["tables"][str(float(cfg.deltas[0]))]["per_freq"]]}
                for p in points]
        fig = capacity_figure(flat, families=families, freqs=cfg.freqs, reading=reading,
                              title=f"{_title(cfg)}; δ = {cfg.deltas[0]:g}, {reading}")
        figures.append(save(fig, cfg.paths.figures / f"capacity_{key}.png"))
    table = markdown_table(rows)
    total = sum(p["seconds"] for p in points)
    body = (f"{_title(cfg)}\n\nConvergence iteration, mean ± std over seeds ((n/R) when only n of R runs "
            f"converged); ratio: mean of per-run t(k2)/t(k1) [95 % Student-t CI].\n\n{table}\n\n"
            f"Recording wall time: {total:.0f} s over {len(points)} points.\n\nFigures: "
            + ", ".join(f.name for f in figures) + "\n")
    numbers = {"config": cfg, "points": points}
    write_report(cfg.paths, title=cfg.name, body=body, numbers=numbers, tables=[table], figures=figures)
    return numbers


def main(cfg: Config) -> dict:
    """Record and analyse every grid point; returns the numbers (also in results.json)."""
    return run(cfg, jobs, report)


def _title(cfg: Config) -> str:
    fams = "; ".join(f"{s.label}: {s.optimizer} lr={s.lr:g} x{s.iterations} {dict(s.options)}" for s in cfg.families)
    return (f"k={','.join(f'{k:g}' for k in cfg.freqs)}, N={cfg.length}, {cfg.seeds} seeds; depths "
            f"{list(cfg.depths)} x widths {list(cfg.widths)}; {fams}")


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
