"""Beyond the paper: the spectral-bias curve, convergence time against frequency k = 5..50.

    python experiments/frequency_ladder.py [--quick] [--out-dir DIR]

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

from experiments._common import (Paths, Setting, analyze_setting, cli, fmt_iter, fmt_ratio, markdown_table,
                                 record_setting, run_config, write_report)
from spectral_lab.analyze.amplitudes import convergence_table
from spectral_lab.config import SignalConfig
from spectral_lab.plot import save
from spectral_lab.plot.oned import amplitude_heatmaps, spectral_bias_curve

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
class Config:
    freqs: tuple[float, ...] = tuple(range(5, 55, 5))
    profiles: tuple[str, ...] = ("equal", "increasing")
    power: float = 1.0  # mean square of the signal; the paper's sin(2π5t)+sin(2π50t) has 1
    length: int = 200
    phase_draws: int = 3
    runs_per_draw: int = 4
    seed: int = 0
    delta: float = 0.01
    settings: tuple[Setting, ...] = SETTINGS
    name: str = NAME


DEFAULT = Config()
# About a minute on 2 cores: equal amplitudes only, one phase draw of 3 seeds, shorter runs.
QUICK = replace(DEFAULT, phase_draws=1, runs_per_draw=3, profiles=("equal",),
                settings=tuple(replace(s, iterations=min(s.iterations, 400)) for s in SETTINGS))


def amplitudes_of(profile: str, freqs, power: float = 1.0) -> tuple[float, ...]:
    """A_k per profile, scaled so that the signal's mean square Σ A_k²/2 is ``power``.

    'equal': A_k all alike; 'increasing': A_k ∝ k (the lowest is k_min/k_max of the highest).
    A fixed power, not a fixed A_k, keeps the signal's size that of the paper's two unit sines:
    ten unit sines are 5x as strong, and then the DIP spends its early iterations growing the
    output's scale and every frequency converges at about the same time (results/oned.md).
    """
    if profile == "equal":
        shape = np.ones(len(freqs))
    elif profile == "increasing":
        shape = np.asarray(freqs, dtype=float) / max(freqs)
    else:
        raise ValueError(f"unknown amplitude profile {profile!r}; choose 'equal' or 'increasing'")
    if not power > 0:
        raise ValueError(f"power must be positive, got {power}")
    scale = np.sqrt(2.0 * power / np.sum(shape ** 2))
    return tuple(float(a) for a in scale * shape)


def phases_of(seed: int, draw: int, n: int) -> tuple[float, ...]:
    """Phases φ_k ~ U[0, 2π), one set per (seed, draw): reproducible and independent of the model."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(draw)]))
    return tuple(float(p) for p in rng.uniform(0.0, 2 * np.pi, size=n))


def main(cfg: Config, out_dir: Path) -> dict:
    """Record every (profile, model, phase draw), analyse on Ã_k/A_k, draw and tabulate."""
    paths = Paths(Path(out_dir), cfg.name)
    freqs = tuple(cfg.freqs)
    pair = (freqs[0], freqs[-1])
    numbers = {"config": cfg, "cells": []}
    rows, figures = [], []
    for profile in cfg.profiles:
        amps = amplitudes_of(profile, freqs, cfg.power)
        maps, curves = {}, {}
        for setting in cfg.settings:
            results, files = [], []
            for draw in range(cfg.phase_draws):
                signal = SignalConfig(kind="sines", freqs=freqs, amps=amps,
                                      phases=phases_of(cfg.seed, draw, len(freqs)), length=cfg.length)
                # seeds differ across draws too: draw d uses seed + d * R .. seed + (d + 1) * R - 1
                rc = run_config(setting, signal, runs=cfg.runs_per_draw, seed=cfg.seed + draw * cfg.runs_per_draw)
                rec = record_setting(rc, paths.trajectory(f"{setting.label}-{profile}-phase{draw}"))
                draw_results, _ = analyze_setting(rec.path, [cfg.delta], relative=True)[float(cfg.delta)]
                results += [draw_results[r] for r in sorted(draw_results)]
                files.append({"file": rec.path, "seconds": rec.seconds, "network": rec.network,
                              "phases": signal.phases})
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
                            paths.figures / f"heatmap_{profile}.png"))
        figures.append(save(_curves_figure(curves, what, cfg.delta), paths.figures / f"spectral_bias_{profile}.png"))
    table_md = markdown_table(rows)
    total = sum(f["seconds"] for c in numbers["cells"] for f in c["files"])
    body = (f"{_title(cfg)}\n\nSettle iteration of (Ã_k/A_k − 1)² <= {cfg.delta:g}, mean ± std over draws x "
            f"seeds ((n/R): only n of R runs converged); ratios: mean of per-run t({pair[1]:g})/t({pair[0]:g}) "
            f"[95 % Student-t CI], settle and first crossing.\n\n{table_md}\n\nRecording wall time: {total:.0f} s."
            f"\n\nFigures: " + ", ".join(f.name for f in figures) + "\n")
    md, js = write_report(paths, title=cfg.name, body=body, numbers=numbers)
    print(table_md)
    print(f"wrote {', '.join(map(str, figures))}, {md}, {js}")
    return numbers


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
    models = "; ".join(f"{s.label}: {s.model}({', '.join(f'{k}={v}' for k, v in s.options.items())}) "
                       f"{s.optimizer} lr={s.lr:g} x{s.iterations}" for s in cfg.settings)
    return f"k = {', '.join(f'{k:g}' for k in cfg.freqs)}; profiles {', '.join(cfg.profiles)}; {models}"


if __name__ == "__main__":
    sys.exit(cli(__doc__.splitlines()[0], DEFAULT, QUICK, main))
