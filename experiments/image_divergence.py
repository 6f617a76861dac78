"""Paper Fig. 1 a–e: do two DIP runs on one clean image converge twice, and which source of
randomness — the initial weights, the fixed input z, or both — drives the divergence between?

    python experiments/image_divergence.py [--quick] [--image triangle|photo|PATH] [--out-dir DIR]

One trajectory file per source of randomness, trajectories/image_divergence/vary-<source>.h5,
each holding R runs that differ only in that source (``FitConfig.vary``; seeds are stored per
run). ε(i) = Σ (T_a(i) − T_b(i))² for every pair, its dips (convergence points) and the
re-convergence after the first dip (see `experiments._images.rebound`). Writes
figures/image_divergence/{vary-<source>.png (Fig. 1 a–e per file), by_source.png, table.md,
results.json} and prints the table. Results and reading: experiments/results/images.md.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._common import REPO, Paths, markdown_table, record_setting, write_report
from experiments._images import dip_run_config, image_cli, image_label, image_signal, rebound
from spectral_lab.analyze.divergence import DEFAULT_PROMINENCE, DEFAULT_SMOOTH, divergence_file
from spectral_lab.plot import save
from spectral_lab.plot.images import divergence_figure
from spectral_lab.plot.spectral import divergence_by_source_figure
from spectral_lab.trajectory import open_trajectory

NAME = "image_divergence"
SOURCES = ("weights", "input", "both")


@dataclass(frozen=True)
class Config:
    """One image, R runs per source of randomness, the ``dip`` network fitting it (no noise).

    ``image``: "triangle" (synthetic, side ``size``, fine pattern over ``pattern_fraction``
    of the area), "photo" (matplotlib's photograph) or a file path (grey, down-sampled by
    ``downsample``; None: to a shorter side of about ``size``). The DIP's settings: Adam,
    lr 0.01, z ~ U(0, 0.1) of 32 channels; no input perturbation (the spectral-bias reference
    code fits clean images without it).
    """

    image: str = "triangle"
    size: int = 128
    downsample: int | None = None
    pattern_fraction: float = 1.0
    levels: int = 5
    channels: int = 128
    iterations: int = 1000
    lr: float = 0.01
    runs: int = 3
    seed: int = 0
    sources: tuple[str, ...] = SOURCES
    smooth: int = DEFAULT_SMOOTH
    prominence: float = DEFAULT_PROMINENCE
    name: str = NAME


DEFAULT = Config()
# About two and a half minutes on 2 cores: 64 x 64, 32 channels per level, 3 runs (3 pairs) per
# source, 300 iterations (the rebound of ε on the triangle is over by ~150 iterations here).
QUICK = replace(DEFAULT, size=64, channels=32, iterations=300, runs=3)


def main(cfg: Config, out_dir: Path = REPO) -> dict:
    """Record one file per source, analyse ε, draw the figures and write the table."""
    paths = Paths(Path(out_dir), cfg.name)
    signal = image_signal(cfg.image, size=cfg.size, downsample=cfg.downsample,
                          pattern_fraction=cfg.pattern_fraction)
    options = {"levels": cfg.levels, "down": cfg.channels, "up": cfg.channels}
    results, again, rows = {}, {}, []
    numbers: dict = {"config": cfg, "sources": {}}
    for source in cfg.sources:
        run_cfg = dip_run_config(signal, options, iterations=cfg.iterations, lr=cfg.lr, runs=cfg.runs,
                                 seed=cfg.seed, vary=source)
        rec = record_setting(run_cfg, paths.trajectory(f"vary-{source}"))
        res = divergence_file(rec.path, smooth=cfg.smooth, prominence=cfg.prominence)
        summaries = {pair: rebound(eps, res.points[pair]) for pair, eps in res.pairs.items()}
        results[source], again[source] = res, {pair: s["reconverged"] for pair, s in summaries.items()}
        for pair, s in summaries.items():
            rows.append(_row(source, pair, res, s))
        figure = save(_file_figure(rec.path, res, summaries, cfg, signal, source), paths.figures / f"vary-{source}.png")
        numbers["sources"][source] = {
            "file": rec.path, "seconds": rec.seconds, "figure": figure,
            "seeds": {str(r): s for r, s in res.seeds.items()},
            "pairs": [{"runs": list(pair), "differs": res.differs(pair), "convergence_points": res.points[pair],
                       **summaries[pair]} for pair in res.pairs],
            "epsilon_mean": res.mean.tolist()}
    fig = divergence_by_source_figure(results, reconvergence=again, title=_title(cfg, signal))
    figure = save(fig, paths.figures / "by_source.png")
    table = markdown_table(rows)
    seconds = ", ".join(f"{s} {v['seconds']:.0f} s" for s, v in numbers["sources"].items())
    body = (f"{_title(cfg, signal)}\n\nPer pair of runs: the first detected convergence point (dip of ε; detector: "
            f"median window {cfg.smooth}, prominence {cfg.prominence:g} decades), ε there, the peak of ε after "
            f"it, the rebound log10 ε(peak)/ε(first), the re-convergence (first iteration after the peak with "
            f"ε <= ε(first)) and ε at the last iteration. '—': no dip detected.\n\n{table}\n\n"
            f"Wall time per file: {seconds}\n\nFigures: by_source.png, "
            + ", ".join(f"vary-{s}.png" for s in cfg.sources) + "\n")
    md, js = write_report(paths, title=cfg.name, body=body, numbers=numbers)
    print(table)
    print(f"wrote {figure}, {md}, {js}")
    return numbers


def _row(source: str, pair: tuple[int, int], res, s: dict) -> dict:
    def it(v):
        return "—" if v is None else str(v)

    def num(v, fmt=".3g"):
        return "—" if v is None else format(v, fmt)

    seeds = res.seeds
    return {"runs differ in": source, "pair": f"{pair[0]},{pair[1]}",
            "seeds (weights/input)": f"{seeds[pair[0]]['weight_seed']}/{seeds[pair[0]]['input_seed']} vs "
                                     f"{seeds[pair[1]]['weight_seed']}/{seeds[pair[1]]['input_seed']}",
            "ε(0)": num(res.pairs[pair][0]), "dips": ", ".join(map(str, res.points[pair])) or "—",
            "first conv.": it(s["first"]), "ε(first)": num(s["eps_first"]), "peak after": it(s["peak"]),
            "ε(peak)": num(s["eps_peak"]), "rebound (decades)": num(s["decades"], ".2f"),
            "re-conv.": it(s["reconverged"]), "ε(final)": num(s["eps_final"])}


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
            else f"{image_label(cfg.image)} (grey, ÷{signal.downsample})")
    return (f"dip(levels={cfg.levels}, {cfg.channels} ch) fitting {what}; Adam lr={cfg.lr:g}, "
            f"{cfg.iterations} it, {cfg.runs} runs per source, seeds from {cfg.seed}")


if __name__ == "__main__":
    sys.exit(image_cli(__doc__.splitlines()[0], DEFAULT, QUICK, main,
                       image_help="triangle (default), photo (matplotlib's photograph) or an image file"))
