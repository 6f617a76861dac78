"""Beyond the paper: the spectral-bias curve, convergence time against frequency k = 5..50.

    python experiments/frequency_ladder.py [--quick] [--out-dir DIR] [--estimate-only] [--set FIELD=VALUE]

The signal is Σ_k A_k sin(2π k t + φ_k) on N = 200 points (k <= 50 is a quarter of the
Nyquist limit N/2 = 100), with equal amplitudes or amplitudes increasing with frequency
(A_k ∝ k, the opposite of a natural image's spectrum), scaled to the power of the paper's
two unit sines (mean square 1). The phases φ_k are
drawn at random per phase draw; each draw is one batched file of R seeds per model, so the
statistics run over draws x seeds. A frequency has converged when the normalised amplitude
Ã_k / A_k is within √δ of 1 (δ = 0.01: 10 %), for every A_k alike.

Models: the plain conv stack, the linear (fully connected) net, the DIP encoder-decoder in 1D
with its fixed up-sampling, the same DIP with a learned (transposed-conv) up-sampling, and
the coordinate ReLU MLP. Writes figures/frequency_ladder/{heatmap_<profile>.png,
spectral_bias_<profile>.png, table.md, results.json} and prints the table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._cli import experiment_cli
from experiments._common import (Experiment, Setting, analyze_setting, fmt_iter, fmt_ratio, markdown_table,
                                 models_line, presets, run, run_config, write_report)
from spectral_lab.analyze.amplitudes import convergence_table
from spectral_lab.config import SignalConfig
from spectral_lab.plot import save
from spectral_lab.plot.oned import amplitude_heatmaps, spectral_bias_curve
from spectral_lab.signals import amplitude_profile, random_phases
from spectral_lab.sweep import Job

NAME = "frequency_ladder"

# Learning rates and budgets: experiments/results/oned.md. The conv net is the 64-channel
# version of oned_conv_vs_linear's (reference init, no biases); DIP with 3 levels of stride 2
# needs N to be a multiple of 8 (200 is). ReLUNet gets 2000 iterations: in 2000 at lr 1e-3 it
# fitted k = 5 but never k = 50 (measured), so its curve is censored at high k.
_CONV = {"depth": 10, "width": 64, "kernel": 3, "init": "default", "bias": False}
_DIP = {"levels": 3, "down": 32, "up": 32}
SETTINGS = (
    Setting("conv", "conv", _CONV, lr=1e-4, iterations=600),
    Setting("linear", "linear", {"depth": 10, "width": 64}, lr=1e-4, iterations=600),
    Setting("dip-bilinear", "dip", {**_DIP, "upsample": "bilinear"}, lr=1e-4, iterations=600),
    Setting("dip-nearest", "dip", {**_DIP, "upsample": "nearest"}, lr=1e-4, iterations=600),
    Setting("dip-transposed", "dip", {**_DIP, "upsample": "transposed"}, lr=1e-4, iterations=600),
    Setting("relunet", "relunet", {"depth": 6, "width": 128}, lr=1e-3, iterations=2000),
)


@dataclass(frozen=True)
class Config(Experiment):
    """``profiles`` of `spectral_lab.signals.amplitude_profile` at mean square ``power``;
    ``phase_draws`` files of ``runs_per_draw`` seeds per (profile, setting); convergence on the
    relative SE at ``delta``."""

    freqs: tuple[float, ...] = tuple(range(5, 55, 5))
    profiles: tuple[str, ...] = ("equal", "increasing")
    power: float = 1.0  # mean square of the signal; the paper's sin(2π5t)+sin(2π50t) has 1
    length: int = 200
    phase_draws: int = 3
    runs_per_draw: int = 4
    delta: float = 0.01
    settings: tuple[Setting, ...] = SETTINGS
    device: str = "auto"
    name: str = NAME


PRESETS = presets(
    full=Config(),
    # About a minute on 2 cores: equal amplitudes only, one phase draw of 3 seeds, shorter runs.
    quick=Config(phase_draws=1, runs_per_draw=3, profiles=("equal",),
                 settings=tuple(replace(s, iterations=min(s.iterations, 400)) for s in SETTINGS)))
FULL, QUICK = PRESETS["full"], PRESETS["quick"]


def cells(cfg: Config) -> list[tuple[str, Setting, int, SignalConfig]]:
    """Every (profile, setting, phase draw) file: its signal (seeded phases per draw)."""
    out = []
    for profile in cfg.profiles:
        amps = amplitude_profile(profile, cfg.freqs, cfg.power)
        for setting in cfg.settings:
            for draw in range(cfg.phase_draws):
                signal = SignalConfig(kind="sines", freqs=tuple(cfg.freqs), amps=amps, length=cfg.length,
                                      phases=random_phases(len(cfg.freqs), seed=cfg.seed, draw=draw))
                out.append((profile, setting, draw, signal))
    return out


def jobs(cfg: Config) -> list[Job]:
    # seeds differ across draws too: draw d uses seed + d * R .. seed + (d + 1) * R - 1
    return [Job(cfg.paths.trajectory(f"{setting.label}-{profile}-phase{draw}"),
                run_config(setting, signal, runs=cfg.runs_per_draw, seed=cfg.seed + draw * cfg.runs_per_draw,
                           device=cfg.device), setting.label)
            for profile, setting, draw, signal in cells(cfg)]


def report(cfg: Config, recorded) -> dict:
    """Analyse on Ã_k/A_k over draws x seeds per (profile, model), draw and tabulate."""
    freqs = tuple(cfg.freqs)
    pair = (freqs[0], freqs[-1])
    numbers = {"config": cfg, "cells": []}
    rows, figures = [], []
    recs = iter(recorded)
    for profile in cfg.profiles:
        amps = amplitude_profile(profile, freqs, cfg.power)
        maps, curves = {}, {}
        for setting in cfg.settings:
            results, files = [], []
            for draw in range(cfg.phase_draws):
                rec = next(recs)
                draw_results, _ = analyze_setting(rec.path, [cfg.delta], relative=True)[float(cfg.delta)]
                results += [draw_results[r] for r in sorted(draw_results)]
                files.append({"file": rec.path, "seconds": rec.seconds, "network": rec.network,
                              "phases": random_phases(len(freqs), seed=cfg.seed, draw=draw)})
            table = convergence_table(results, pair=pair)
            t_len = min(len(r.amplitudes) for r in results)
            maps[setting.label] = np.mean([r.amplitudes[:t_len].T for r in results], axis=0)  # (K, T)
            curves[setting.label] = _curve(table, "converged_at", setting.iterations)
            rows.append({"model": setting.label, "amplitudes": profile,
                         **{f"k={pf['freq']:g}": fmt_iter(pf["converged_at"]) for pf in table["per_freq"]},
                         f"t({pair[1]:g})/t({pair[0]:g}) settle": fmt_ratio(table["ratio"]["converged_at"]),
                         f"t({pair[1]:g})/t({pair[0]:g}) first": fmt_ratio(table["ratio"]["first_crossing"])})
            numbers["cells"].append({"setting": setting, "profile": profile, "amps": amps, "files": files,
                                     "table": table, "curve_settle": curves[setting.label],
                                     "curve_first": _curve(table, "first_crossing", setting.iterations)})
        what = f"{profile} amplitudes, {cfg.phase_draws} phase draw(s) x {cfg.runs_per_draw} seeds, N={cfg.length}"
        figures.append(save(amplitude_heatmaps(maps, freqs, title=f"Ã_k/A_k over iterations; {what}"),
                            cfg.paths.figures / f"heatmap_{profile}.png"))
        figures.append(save(_curves_figure(curves, what, cfg.delta),
                            cfg.paths.figures / f"spectral_bias_{profile}.png"))
    table_md = markdown_table(rows)
    total = sum(f["seconds"] for c in numbers["cells"] for f in c["files"])
    body = (f"{_title(cfg)}\n\nSettle iteration of (Ã_k/A_k − 1)² <= {cfg.delta:g}, mean ± std over draws x "
            f"seeds ((n/R): only n of R runs converged); ratios: mean of per-run t({pair[1]:g})/t({pair[0]:g}) "
            f"[95 % Student-t CI], settle and first crossing.\n\n{table_md}\n\nRecording wall time: {total:.0f} s."
            f"\n\nFigures: " + ", ".join(f.name for f in figures) + "\n")
    write_report(cfg.paths, title=cfg.name, body=body, numbers=numbers, tables=[table_md], figures=figures)
    return numbers


def main(cfg: Config) -> dict:
    """Record every (profile, model, phase draw), analyse on Ã_k/A_k, draw and tabulate."""
    return run(cfg, jobs, report)


def _curve(table: dict, key: str, budget: int) -> dict:
    nan = float("nan")
    return {"freqs": [pf["freq"] for pf in table["per_freq"]],
            "mean": [nan if pf[key]["mean"] is None else pf[key]["mean"] for pf in table["per_freq"]],
            "std": [0.0 if pf[key]["std"] is None else pf[key]["std"] for pf in table["per_freq"]],
            "n_converged": [pf[key]["n_converged"] for pf in table["per_freq"]],
            "n_runs": table["n_runs"], "budget": budget}


def _curves_figure(curves, what, delta):
    return spectral_bias_curve(curves, title=f"convergence (settle, δ={delta:g} relative) vs frequency; {what}",
                               ylabel="settle iteration")


def _title(cfg: Config) -> str:
    return (f"k = {', '.join(f'{k:g}' for k in cfg.freqs)}; profiles {', '.join(cfg.profiles)}; "
            f"{models_line(cfg.settings)}")


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
