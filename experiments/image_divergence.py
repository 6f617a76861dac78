"""Paper Fig. 1 a–e: do two DIP runs on one clean image converge twice, and which source of
randomness — the initial weights, the fixed input z, or both — drives the divergence between?

    python experiments/image_divergence.py [--quick] [--image triangle|photo|PATH] [--out-dir DIR]
        [--estimate-only] [--set FIELD=VALUE]

One trajectory file per source of randomness, trajectories/image_divergence/vary-<source>.h5,
each holding R runs that differ only in that source (``FitConfig.vary``; seeds are stored per
run). ε(i) = Σ (T_a(i) − T_b(i))² for every pair, its dips (convergence points) and the
re-convergence after the first dip (see `spectral_lab.analyze.divergence.rebound`). Writes
figures/image_divergence/{vary-<source>.png (Fig. 1 a–e per file), by_source.png, table.md,
results.json} and prints the table. Results and reading: experiments/results/images.md.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._cli import experiment_cli
from experiments._common import DivergenceExperiment, fmt_or_dash, markdown_table, presets, run, run_config, write_report
from spectral_lab.analyze.divergence import rebound
from spectral_lab.images import image_signal
from spectral_lab.plot import save
from spectral_lab.plot.images import divergence_figure
from spectral_lab.plot.spectral import divergence_by_source_figure
from spectral_lab.sweep import Job
from spectral_lab.trajectory import open_trajectory

NAME = "image_divergence"
SOURCES = ("weights", "input", "both")


@dataclass(frozen=True)
class Config(DivergenceExperiment):
    """One image, R runs per source of randomness (``sources``: what the runs of a file differ
    in), the ``dip`` network fitting it (no noise); the triangle's fine pattern covers
    ``pattern_fraction`` of its area (see `ImageExperiment`)."""

    pattern_fraction: float = 1.0
    sources: tuple[str, ...] = SOURCES
    name: str = NAME

    @property
    def signal(self):
        return image_signal(self.image, size=self.size, downsample=self.downsample,
                            pattern_fraction=self.pattern_fraction)


PRESETS = presets(
    paper=Config(),
    # About two and a half minutes on 2 cores: 64 x 64, 32 channels per level, 3 runs (3 pairs) per
    # source, 300 iterations (the rebound of ε on the triangle is over by ~150 iterations here).
    quick=Config(size=64, channels=32, iterations=300, runs=3))
PAPER, QUICK = PRESETS["paper"], PRESETS["quick"]


def jobs(cfg: Config) -> list[Job]:
    """One file per source of randomness, trajectories/image_divergence/vary-<source>.h5."""
    signal = cfg.signal
    return [Job(cfg.paths.trajectory(f"vary-{source}"),
                run_config(cfg.dip(), signal, runs=cfg.runs, seed=cfg.seed, vary=source, device=cfg.device), source)
            for source in cfg.sources]


def report(cfg: Config, recorded) -> dict:
    """Analyse ε of every file, draw the figures and write the table."""
    signal = cfg.signal
    results, again, rows = {}, {}, []
    numbers: dict = {"config": cfg, "sources": {}}
    for source, rec in zip(cfg.sources, recorded):
        res = cfg.divergence(rec.path)
        summaries = {pair: rebound(eps, res.points[pair]) for pair, eps in res.pairs.items()}
        results[source], again[source] = res, {pair: s["reconverged"] for pair, s in summaries.items()}
        for pair, s in summaries.items():
            rows.append(_row(source, pair, res, s))
        figure = save(_file_figure(rec.path, res, summaries, cfg, signal, source), cfg.paths.figures / f"vary-{source}.png")
        numbers["sources"][source] = {
            "file": rec.path, "seconds": rec.seconds, "figure": figure,
            "seeds": {str(r): s for r, s in res.seeds.items()},
            "pairs": [{"runs": list(pair), "differs": res.differs(pair), "convergence_points": res.points[pair],
                       **summaries[pair]} for pair in res.pairs],
            "epsilon_mean": res.mean.tolist()}
    fig = divergence_by_source_figure(results, reconvergence=again, title=_title(cfg, signal))
    figure = save(fig, cfg.paths.figures / "by_source.png")
    table = markdown_table(rows)
    seconds = ", ".join(f"{s} {v['seconds']:.0f} s" for s, v in numbers["sources"].items())
    body = (f"{_title(cfg, signal)}\n\nPer pair of runs: the first detected convergence point (dip of ε; detector: "
            f"{cfg.detector()}), ε there, the peak of ε after "
            f"it, the rebound log10 ε(peak)/ε(first), the re-convergence (first iteration after the peak with "
            f"ε <= ε(first)) and ε at the last iteration. '—': no dip detected.\n\n{table}\n\n"
            f"Wall time per file: {seconds}\n\nFigures: by_source.png, "
            + ", ".join(f"vary-{s}.png" for s in cfg.sources) + "\n")
    write_report(cfg.paths, title=cfg.name, body=body, numbers=numbers, tables=[table], figures=[figure])
    return numbers


def main(cfg: Config) -> dict:
    """Record one file per source, analyse ε, draw the figures and write the table."""
    return run(cfg, jobs, report)


def _row(source: str, pair: tuple[int, int], res, s: dict) -> dict:
    seeds = res.seeds
    return {"runs differ in": source, "pair": f"{pair[0]},{pair[1]}",
            "seeds (weights/input)": f"{seeds[pair[0]]['weight_seed']}/{seeds[pair[0]]['input_seed']} vs "
                                     f"{seeds[pair[1]]['weight_seed']}/{seeds[pair[1]]['input_seed']}",
            "ε(0)": fmt_or_dash(res.pairs[pair][0], ".3g"), "dips": ", ".join(map(str, res.points[pair])) or "—",
            "first conv.": fmt_or_dash(s["first"]), "ε(first)": fmt_or_dash(s["eps_first"], ".3g"),
            "peak after": fmt_or_dash(s["peak"]), "ε(peak)": fmt_or_dash(s["eps_peak"], ".3g"),
            "rebound (decades)": fmt_or_dash(s["decades"], ".2f"),
            "re-conv.": fmt_or_dash(s["reconverged"]), "ε(final)": fmt_or_dash(s["eps_final"], ".3g")}


def _file_figure(path: Path, res, summaries: dict, cfg: Config, signal, source: str):
    """Paper Fig. 1 a–e for one file: target, run 0 at iteration 0, at the first convergence,
    at the re-convergence and at the end; ε of every pair with its dips."""
    pair = next(iter(res.pairs))
    s = summaries[pair]
    with open_trajectory(path) as traj:
        frames = traj.frames(pair[0])
        last = traj.n_frames(pair[0]) - 1
        shown = {"target": traj.target, "iteration 0": frames[0]}
        for caption, it in (("first convergence", s["first"]), ("re-convergence", s["reconverged"]),
                            ("last", last)):
            if it is not None:
                shown[f"{caption} ({it})"] = np.asarray(frames[it])
    return divergence_figure(res, shown, title=f"{_title(cfg, signal)}; runs differ in {source}")


def _title(cfg: Config, signal) -> str:
    what = (f"triangle {cfg.size}², pattern over {cfg.pattern_fraction:.0%} of the area" if cfg.image == "triangle"
            else cfg.image_what(signal.downsample))
    return cfg.title(f"fitting {what}", f"per source, seeds from {cfg.seed}")


FLAGS = {
    "image": "triangle (default), photo (matplotlib's photograph) or an image file",
}


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
