"""Stopping without the clean image: how much does each rule lose against the oracle stop?

    python experiments/stopping_rules.py [--quick | --preset quick|hour|paper] [--images PATH]
        [--seeds R] [--out-dir DIR] [--estimate-only]

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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._common import REPO, Paths, markdown_table, write_report
from experiments._denoise import (Job, ModelBudget, denoise_config, dip_budget, image_name,
                                  image_paths, plan, preset_cli, record_jobs)
from spectral_lab.analyze import stopping
from spectral_lab.analyze.psnr import psnr, psnr_file
from spectral_lab.trajectory import open_trajectory

NAME = "stopping_rules"


@dataclass(frozen=True)
class Config:
    """``pairs`` per file (2·pairs seeds); ``window``/``patience``: ES-WMV's W and P (the
    authors' defaults 100 and 1000 for budgets of thousands of iterations); ``rise``/``smooth``:
    the pair rule's first-valley detector; ``probe``: the SURE twin's perturbation, 0–255 scale
    (5 = σ/5 for σ = 25; 0: no twin, SURE not run)."""

    preset: str = "paper"
    images: str | None = None
    grey: bool = False
    downsample: int = 4
    sigma: float = 25.0
    cutoff: float = 0.06
    noises: tuple[str, ...] = ("white", "lowfreq")
    noise_seed: int = 0
    seeds: int = 4
    seed: int = 0
    model: ModelBudget = dip_budget("dip", {}, iterations=3000)
    window: int = 100
    patience: int = 1000
    rise: float = 2.0
    smooth: int = 1
    probe: float = 5.0
    out_dir: Path = REPO
    estimate_only: bool = False
    name: str = NAME


PAPER = Config()
HOUR = replace(PAPER, preset="hour", downsample=8, model=dip_budget("dip", {"levels": 4, "down": 64, "up": 64},
                                                                      iterations=1500), window=50, patience=500)
# 32×32, a narrow 3-level DIP: it peaks at a few hundred iterations and is well into fitting
# the noise by 1500 (a stopping rule can only be judged on a trajectory that overfits).
QUICK = replace(PAPER, preset="quick", downsample=16,
                model=dip_budget("dip", {"levels": 3, "down": 32, "up": 32}, iterations=1500),
                window=50, patience=300)
PRESETS = {"quick": QUICK, "hour": HOUR, "paper": PAPER}


TWIN = "--twin"


def jobs_of(cfg: Config) -> list[Job]:
    """One file per (image, noise); for white noise also its SURE twin (``<file>--twin.h5``,
    label ``twin``) when ``cfg.probe`` > 0."""
    paths = Paths(Path(cfg.out_dir), cfg.name)
    jobs = []
    for img in image_paths(cfg.images):
        for noise in cfg.noises:
            def config(probe: float):
                return denoise_config(cfg.model, img, downsample=cfg.downsample, grey=cfg.grey, noise=noise,
                                      sigma=cfg.sigma, cutoff=cfg.cutoff, noise_seed=cfg.noise_seed,
                                      runs=cfg.seeds, seed=cfg.seed, probe=probe)
            stem = f"{image_name(img)}--{noise}"
            jobs.append(Job(paths.trajectory(stem), config(0.0), noise))
            if noise == "white" and cfg.probe > 0:
                jobs.append(Job(paths.trajectory(stem + TWIN), config(cfg.probe), "twin"))
    return jobs


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
        sigma = t.config["degrade"]["sigma"] / 255.0
        clip = t.kind == "image"  # images are clipped after the noise
        observed = np.asarray(t.observed, dtype=np.float64)
        clean = np.asarray(t.target, dtype=np.float64)
        a, b = (np.asarray(t.frames(r)[: t.n_frames(r)], dtype=np.float64) for r in (0, 1))
    out["noise"] = noise
    sure_curve = None
    if twin is not None:
        out["rules"]["sure"] = entries(stopping.stop_file(path, "sure", twin=twin))
        sure_curve = stopping.sure_curve_file(path, twin, 0)  # run 0's SURE curve, for the figure
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
    out["_curves"] = {
        "psnr": np.stack([scores.runs[0].psnr, scores.runs[1].psnr, psnr(0.5 * (a + b), clean)]),
        "epsilon": np.array(list(stopping.pair_disagreement(a, b))),
        "wmv": dict(stopping.wmv_variance(a, cfg.window)),
        "residual": 0.5 * (np.mean(((a - observed) ** 2).reshape(len(a), -1), axis=1)
                           + np.mean(((b - observed) ** 2).reshape(len(b), -1), axis=1)),
        "level": np.array([stopping.clipped_noise_variance(0.5 * (fa + fb), sigma) if clip else sigma**2
                           for fa, fb in zip(a, b)]),
        "sigma": sigma,
        "sure": sure_curve,
    }
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
    from spectral_lab.plot import save
    from spectral_lab.plot.denoise import stopping_example_figure, stopping_gap_figure

    if cfg.seeds < 2 or cfg.seeds % 2:
        raise ValueError(f"seeds must be an even number >= 2 (pairs of runs), got {cfg.seeds}")
    jobs = jobs_of(cfg)
    print(f"{cfg.name} [{cfg.preset}]: DIP {cfg.model.describe()}; {len(jobs)} files, {cfg.seeds} seeds "
          f"({cfg.seeds // 2} pairs) each")
    plan(jobs, estimate_only=cfg.estimate_only)
    if cfg.estimate_only:
        return {}
    record_jobs(jobs)
    paths = Paths(Path(cfg.out_dir), cfg.name)
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
    md, js = write_report(paths, title=f"{cfg.name} [{cfg.preset}]", body=body, numbers=numbers)
    print(setting)
    print(table)
    print(f"wrote {', '.join(map(str, figures))}, {md}, {js}")
    return {"config": cfg, "results": results}


if __name__ == "__main__":
    sys.exit(preset_cli(__doc__.splitlines()[0], PRESETS, main,
                        images_help="an image file or a folder of images; default: matplotlib's sample photograph"))
