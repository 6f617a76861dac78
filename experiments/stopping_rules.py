"""Stopping without the clean image: how much does each rule lose against the oracle stop?

    python experiments/stopping_rules.py [--quick | --preset quick|hour|paper] [--images PATH]
        [--seeds R] [--out-dir DIR] [--estimate-only] [--set FIELD=VALUE]

For every image (a file or a folder; default: matplotlib's sample photograph) and noise type
(white Gaussian σ = 25; the low-frequency field of the same σ), R = 2·P seeds of the DIP fit
the same observation, one file trajectories/stopping_rules/<image>--<noise>.h5; runs (0, 1),
(2, 3), ... are the P pairs of the paired rules. Each rule picks an iteration from what it may
see (outputs, the observation, σ for the rules that need it); the clean image only scores it:

- gap = best PSNR along the trajectory (the oracle) − PSNR at the chosen iteration, in dB, for
  the output the rule returns (one run's frame; for a pair rule, the average of the pair's two
  frames, scored against the oracle of that average);
- vs single = mean over the pair's runs of their own oracle best − PSNR of the returned output
  (the same yardstick for single-run and pair rules; negative: better than a single run's
  oracle).

Rules (`spectral_lab.analyze.stopping`): ``es_wmv`` (Wang et al. 2023), ``sure`` (Jo et al.
2021; white noise only: its divergence term comes from a *twin* file per white-noise file, the
same seeds fitted to the observation plus ε·b, ε = ``probe``/255, see
`spectral_lab.analyze.stopping.probe_dof`; ``--set probe=0`` leaves SURE out),
``discrepancy`` (Morozov: the first iteration whose residual reaches the clipped noise's
variance; needs σ), ``pair_divergence`` (ours, the first valley of the pair's disagreement ε),
``pair_discrepancy`` (ours: the discrepancy principle on the pair's mean residual, output the
pair average), the baseline ``last`` (no early stopping) and, for reference only, the pair
average at its oracle stop.

Writes figures/stopping_rules/{table.md, results.json, gaps.png, example_<image>--<noise>.png}.
Any scalar of `Config` can be changed with ``--set FIELD=VALUE`` (e.g. ``--set probe=2.5``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._cli import experiment_cli
from experiments._common import DenoiseExperiment, Setting, dip_setting, markdown_table, presets, run, write_report
from spectral_lab.analyze import stopping
from spectral_lab.analyze.psnr import psnr_file
from spectral_lab.images import image_name, image_paths
from spectral_lab.sweep import Job
from spectral_lab.trajectory import open_trajectory

NAME = "stopping_rules"


@dataclass(frozen=True)
class Config(DenoiseExperiment):
    """``seeds`` = 2·pairs per file; ``noises``: the noise kinds, one file each per image;
    ``window``/``patience``: ES-WMV's W and P (the authors' defaults 100 and 1000 for budgets of
    thousands of iterations); ``rise``/``smooth``: the pair rule's first-valley detector;
    ``probe``: the SURE twin's perturbation, 0–255 scale (5 = σ/5 for σ = 25; 0: no twin, SURE
    not run)."""

    cutoff: float = 0.06
    noises: tuple[str, ...] = ("white", "lowfreq")
    seeds: int = 4
    model: Setting = dip_setting("dip", {}, iterations=3000)
    window: int = 100
    patience: int = 1000
    rise: float = 2.0
    smooth: int = 1
    probe: float = 5.0
    name: str = NAME


PRESETS = presets(
    paper=Config(),
    hour=Config(downsample=8, model=dip_setting("dip", {"levels": 4, "down": 64, "up": 64}, iterations=1500),
                window=50, patience=500),
    # 32×32, a narrow 3-level DIP: it peaks at a few hundred iterations and is well into fitting
    # the noise by 1500 (a stopping rule can only be judged on a trajectory that overfits).
    quick=Config(downsample=16, model=dip_setting("dip", {"levels": 3, "down": 32, "up": 32}, iterations=1500),
                 window=50, patience=300))
PAPER, HOUR, QUICK = PRESETS["paper"], PRESETS["hour"], PRESETS["quick"]


TWIN = "--twin"


def jobs(cfg: Config) -> list[Job]:
    """One file per (image, noise); for white noise also its SURE twin (``<file>--twin.h5``,
    label ``twin``) when ``cfg.probe`` > 0."""
    if cfg.seeds < 2 or cfg.seeds % 2:
        raise ValueError(f"seeds must be an even number >= 2 (pairs of runs), got {cfg.seeds}")
    out = []
    for img in image_paths(cfg.images):
        for noise in cfg.noises:
            stem = f"{image_name(img)}--{noise}"
            out.append(Job(cfg.paths.trajectory(stem), cfg.denoise_config(cfg.model, img, noise=noise), noise))
            if noise == "white" and cfg.probe > 0:
                out.append(Job(cfg.paths.trajectory(stem + TWIN),
                               cfg.denoise_config(cfg.model, img, noise=noise, probe=cfg.probe), "twin"))
    return out


# --------------------------------------------------------------------------- evaluation

def evaluate_file(path: Path, cfg: Config, twin: Path | None = None) -> dict:
    """Every rule on every run / pair of one file, scored against the clean image, through
    `spectral_lab.analyze.stopping.stop_file` (streamed; SURE when the file has a ``twin``);
    the first pair's curves are kept for the example figure."""
    scores = psnr_file(path)
    single_best = [r.best_psnr for r in scores.runs]
    out: dict[str, Any] = {"file": path, "rules": {}, "observed_psnr": scores.observed_psnr,
                           "oracle": [{"run": r.run, "best_psnr": r.best_psnr, "best_iteration": r.best_iteration}
                                      for r in scores.runs]}

    def entries(result) -> list[dict]:
        # vs_single: the runs' own oracle best (mean over a pair) - PSNR of the returned output
        return [{"runs": list(e.runs), "iteration": e.iteration, "psnr": e.psnr, "gap": e.gap,
                 "vs_single": float(np.mean([single_best[r] for r in e.runs])) - e.psnr}
                for e in result.entries]

    out["rules"]["es_wmv"] = entries(stopping.stop_file(path, "es_wmv", window=cfg.window, patience=cfg.patience))
    out["rules"]["discrepancy"] = entries(stopping.stop_file(path, "discrepancy"))
    out["rules"]["last"] = [{"runs": [r.run], "iteration": len(r.psnr) - 1, "psnr": r.final_psnr,
                             "gap": r.best_psnr - r.final_psnr, "vs_single": r.best_psnr - r.final_psnr}
                            for r in scores.runs]
    with open_trajectory(path) as t:
        noise = t.config["degrade"]["noise"]
    out["noise"] = noise
    if twin is not None:
        out["rules"]["sure"] = entries(stopping.stop_file(path, "sure", twin=twin))
    else:
        out["rules"]["sure"] = None
        out["sure_refused"] = "assumes white noise" if noise != "white" else "no twin file (probe = 0)"
    out["rules"]["pair_divergence"] = entries(stopping.stop_file(path, "pair_divergence", rise=cfg.rise,
                                                                 smooth=cfg.smooth))
    pair_discrepancy = stopping.stop_file(path, "pair_discrepancy")
    out["rules"]["pair_discrepancy"] = entries(pair_discrepancy)
    # reference only: the pair average stopped at its own oracle best
    out["rules"]["pair_oracle"] = [{"runs": list(e.runs), "iteration": e.best_iteration, "psnr": e.best_psnr,
                                    "gap": 0.0,
                                    "vs_single": float(np.mean([single_best[r] for r in e.runs])) - e.best_psnr}
                                   for e in pair_discrepancy.entries]
    # runs 0 and 1 as the rules see them (run 0's SURE curve with a twin), for the example figure
    out["_curves"] = stopping.pair_curves_file(path, (0, 1), window=cfg.window, twin=twin)
    return out


RULE_ORDER = ("es_wmv", "sure", "discrepancy", "pair_divergence", "pair_discrepancy", "last", "pair_oracle")
RULE_NOTES = {"es_wmv": "per run", "sure": "per run", "discrepancy": "per run", "pair_divergence": "pair average",
              "pair_discrepancy": "pair average", "last": "per run (no early stop)",
              "pair_oracle": "pair average, oracle stop (reference)"}


def summary_rows(results: Mapping[Path, dict]) -> list[dict]:
    rows = []
    noises = sorted({r["noise"] for r in results.values()})
    for rule in RULE_ORDER:
        for noise in [*noises, "all"]:
            entries = [e for r in results.values() if noise in ("all", r["noise"]) and r["rules"].get(rule)
                       for e in r["rules"][rule]]
            if not entries:
                reasons = sorted({r.get(f"{rule}_refused", "") for r in results.values()
                                  if noise in ("all", r["noise"])} - {""})
                if reasons:
                    rows.append({"rule": rule, "noise": noise, "output": RULE_NOTES[rule],
                                 "gap mean (dB)": "not run: " + "; ".join(reasons)})
                continue
            gaps = np.array([e["gap"] for e in entries])
            vs = np.array([e["vs_single"] for e in entries])
            rows.append({"rule": rule, "noise": noise, "output": RULE_NOTES[rule], "n": len(entries),
                         "gap mean (dB)": f"{gaps.mean():.2f}", "gap worst (dB)": f"{gaps.max():.2f}",
                         "vs single-run oracle mean (dB)": f"{vs.mean():+.2f}",
                         "vs single-run oracle worst (dB)": f"{vs.max():+.2f}"})
    return rows


def main(cfg: Config) -> dict:
    """Estimate, record, run every rule on every file, tabulate and draw."""
    print(f"{cfg.name} [{cfg.preset}]: DIP {cfg.model.describe()}; {len(image_paths(cfg.images))} image(s) x "
          f"{len(cfg.noises)} noise(s), {cfg.seeds} seeds ({cfg.seeds // 2} pairs) each")
    return run(cfg, jobs, report)


def report(cfg: Config, recorded) -> dict:
    """Every rule on every file (`evaluate_file`), the summary and per-file tables, the figures."""
    from spectral_lab.plot import save
    from spectral_lab.plot.denoise import stopping_example_figure, stopping_gap_figure

    jobs = [rec.job for rec in recorded]
    paths = cfg.paths
    twins = {j.path.with_name(j.path.name.replace(TWIN, "")): j.path for j in jobs if j.label == "twin"}
    results = {j.path: evaluate_file(j.path, cfg, twins.get(j.path)) for j in jobs if j.label != "twin"}

    with open_trajectory(jobs[0].path) as t:
        size = "×".join(map(str, t.signal_shape))
    setting = (f"preset `{cfg.preset}`: {len(image_paths(cfg.images))} image(s) at {size} "
               f"(down-sampled ×{cfg.downsample}, {'grey' if cfg.grey else 'colour'}), noise {', '.join(cfg.noises)} "
               f"(σ={cfg.sigma:g}, low-frequency cut-off {cfg.cutoff:g} cycles/px), DIP {cfg.model.describe()}, "
               f"{cfg.seeds} seeds per file; ES-WMV W={cfg.window}, P={cfg.patience}; pair rule rise={cfg.rise:g}, "
               f"smooth={cfg.smooth}; SURE probe ε={cfg.probe:g}/255")
    table = markdown_table(summary_rows(results))
    per_file = markdown_table([
        {"file": p.stem, "observed (dB)": f"{r['observed_psnr']:.2f}",
         "oracle best per run (dB)": ", ".join(f"{o['best_psnr']:.2f}@{o['best_iteration']}" for o in r["oracle"]),
         **{rule: ", ".join(f"{e['iteration']} ({e['gap']:.2f})" for e in r["rules"][rule])
            for rule in RULE_ORDER if r["rules"].get(rule)}}
        for p, r in results.items()])
    figures = [save(stopping_gap_figure({rule: {noise: [e["vs_single"] for r in results.values() if r["noise"] == noise
                                                        for e in (r["rules"].get(rule) or [])]
                                                for noise in cfg.noises}
                                         for rule in RULE_ORDER},
                                        title=f"Loss against the single-run oracle; {setting}"),
                    paths.figures / "gaps.png")]
    for p, r in results.items():
        chosen = {rule: r["rules"][rule][0]["iteration"] for rule in RULE_ORDER
                  if r["rules"].get(rule) and rule != "pair_oracle"}
        figures.append(save(stopping_example_figure(r["_curves"], chosen, observed_psnr=r["observed_psnr"],
                                                    title=f"{p.stem}: runs 0 and 1; {setting}"),
                            paths.figures / f"example_{p.stem}.png"))
    body = (f"{setting}.\n\nGap = oracle best PSNR of the returned output − its PSNR at the chosen iteration; "
            f"vs single-run oracle = mean of the pair's own best PSNRs − PSNR of the returned output (the "
            f"same yardstick for every rule; negative = better than stopping one run at its best). Mean and "
            f"worst over images, seeds (or pairs).\n\n{table}\n\n"
            + f"Per file: chosen iteration (gap dB) per run or pair:\n\n{per_file}\n\n"
            f"Figures: {', '.join(f.name for f in figures)}\n")
    numbers = {"config": cfg, "files": {str(p): {k: v for k, v in r.items() if not k.startswith("_")}
                                        for p, r in results.items()}}
    write_report(paths, title=f"{cfg.name} [{cfg.preset}]", body=body, numbers=numbers, tables=[setting, table],
                 figures=figures)
    return {"config": cfg, "results": results}


FLAGS = {
    "images": "an image file or a folder of images; default: matplotlib's sample photograph",
    "seeds": "seeds per file, an even number (pairs of runs)",
}


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
