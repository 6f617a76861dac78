"""003_… Section 5.3 (Tables 5–6, A3–A4): DIP blending against alpha, Poisson and Laplacian-pyramid blending.

    python experiments/blending.py [--quick | --preset hour|quick|paper] [--pairs P1,P2]
        [--seeds R] [--data DIR] [--out-dir DIR] [--estimate-only] [--set FIELD=VALUE]

**Pairs.** Built from ../shared/data by `spectral_lab.blend.pairs.build_pair` at ``size`` ×
``size`` (`PAIR_SPECS`, in fractions of each photograph, so every size shows the same scene):

- ``jet-beach`` (the paper's "child and the lake": an object into water with directional
  texture): the F16 jet (dip/denoising/F16_GT.png, its box 0.24–0.57 × 0.05–0.93) scaled onto
  the sea of kodim12 (its top-left 0.45 × 0.30, the sea between sky and sand), an ellipse mask
  around the jet (centre 0.42, 0.50; semi-axes 0.19 × 0.46 of the canvas);
- ``hat-zebra`` (the "bear and the penguin": an object onto a textured animal): the yellow hat of
  kodim03 (box 0.15–0.60 × 0.10–0.40) onto the striped body of the zebra (dip/sr/zebra_GT.png,
  columns 0.12–0.78), an ellipse mask (centre 0.45, 0.50; semi-axes 0.22 × 0.25);
- ``peppers-baboon`` (Fig. 9's apple and orange): Peppers left of a vertical seam at x = ½,
  Baboon right of it (denoising9), both whole images.

The inputs as `record --task blend` reads them (foreground placed on the canvas, background,
mask, 8-bit PNGs) are written to figures/blending/pairs/<pair>-<size>/, and pairs.png shows
them with the soft map α and the transition region Ω_T.

**Runs.** Per pair and *variant* one trajectory file of ``seeds`` DIP runs
(trajectories/blending/<preset>/<pair>-<size>--<variant>.h5) fitted with the A3 objective
(`spectral_lab.blend.objective`; loss ``blend``, annealed over the iterations). Variant
``paper`` is the paper's objective with its weights and input noise (σ = ``reg_noise_std``,
the DIP's 1/30: the paper applies "input noise perturbation" without a value); the others
change one setting each (`VARIANTS`) and run on ``variant_pairs``.

**Scores** (`spectral_lab.analyze.blend`): GFF, GFP, BSI and SSIM_T (A4) of the DIP at its last
frame, at the ES-WMV stop (``window``, ``patience``; the rule sees only the outputs) and at
the iteration of best SSIM_T (an oracle, for reference only), next to the three baselines;
mean ± std (ddof = 1) over seeds. Beside them, ours and not the paper's: SSIM_A, the SSIM of
the result against the *foreground* inside the mask away from Ω_T (SSIM_T rewards looking like
the background, so a blend that drops the foreground wins it), and GFP for several ε (GFP is
unbounded and its ε is not given). The band view: `spectral_lab.analyze.task_spectrum` in the
transition band (w = 4α(1 − α)), the foreground (α) and the background (1 − α) against each
run's own last frame: when each radial band settles.

Writes figures/blending/{table.md, results.json, pairs.png, results.png, variants.png,
curves_<pair>.png, bands_<pair>.png}.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._cli import experiment_cli
from experiments._common import (REPO, Experiment, Setting, fmt_mean_std, markdown_table, presets, run, run_config,
                                 write_report)
from spectral_lab.blend.pairs import PairSpec, build_pair, write_pair
from spectral_lab.config import SignalConfig
from spectral_lab.errors import SpectralLabError
from spectral_lab.sweep import Job, fmt_seconds

NAME = "blending"
METHODS = ("alpha", "poisson", "laplacian", "dip")
METRICS = ("gff", "gfp", "bsi", "ssim")

# The pairs, paths relative to the shared data folder (module docstring).
PAIR_SPECS: dict[str, PairSpec] = {
    "jet-beach": PairSpec("dip/denoising/F16_GT.png", "denoising9/kodim12.png",
                          background_box=(0.10, 0.01, 0.45, 0.30), object_box=(0.24, 0.05, 0.33, 0.88),
                          target_box=(0.25, 0.04, 0.345, 0.92), mask=("ellipse", 0.42, 0.50, 0.19, 0.46)),
    "hat-zebra": PairSpec("denoising9/kodim03.png", "dip/sr/zebra_GT.png",
                          background_box=(0.0, 0.12, 1.0, 0.664), object_box=(0.15, 0.10, 0.45, 0.30),
                          target_box=(0.20, 0.25, 0.50, 0.50), mask=("ellipse", 0.45, 0.50, 0.22, 0.25)),
    "peppers-baboon": PairSpec("denoising9/image_Peppers512rgb.png", "denoising9/image_Baboon512rgb.png",
                               mask=("left", 0.5)),
}

# One setting changed from the `paper` variant each: (what, fit changes, loss options).
VARIANTS: dict[str, tuple[str, dict, dict]] = {
    "paper": ("the paper's objective, weights (50, 25, 20, 6, 4, 12, 18) and input noise", {}, {}),
    "no-noise": ("no input noise (reg_noise_std = 0)", {"reg_noise_std": 0.0}, {}),
    "narrow": ("narrow soft map: 3 passes of a 3-px box (α within ±3 px of the boundary, not ±9)", {},
               {"soft_size": 3}),
    "no-anneal": ("annealing off after ~10 % of T (c = 50: γ(t) = 1 + 4(1 − t/T)^50)", {}, {"anneal_power": 50.0}),
    "fg-x4": ("foreground weights ×4 (grad 24, dir 16)", {}, {"weights": {"grad": 24.0, "dir": 16.0}}),
}

# 003_… Tables 5 and 6 (method -> GFF, GFP, BSI, SSIM); "ours" is the DIP.
PAPER_TABLES = {
    "Table 5 (child and lake)": {"alpha": (0.666876, 0.840638, 15.171874, 0.363135),
                                 "poisson": (0.608026, 0.842703, 22.493957, 0.679560),
                                 "laplacian": (0.658930, 1.861390, 27.954209, 0.334541),
                                 "dip": (0.665686, 9.351012, 29.016716, 0.834993)},
    "Table 6 (bear and penguin)": {"alpha": (0.591284, 0.817655, 515.180007, 0.570862),
                                   "poisson": (0.611293, 2.090503, 585.931454, 0.837563),
                                   "laplacian": (0.593106, 1.932817, 562.232692, 0.660616),
                                   "dip": (0.709274, 2.785332, 133.374406, 0.848493)},
}


@dataclass(frozen=True)
class Config(Experiment):
    """``data``: the shared data folder (None: ../shared/data next to the checkout, or two levels
    up from a git worktree); ``pairs``: names of `PAIR_SPECS`, built at ``size`` × ``size``;
    the DIP (``levels`` × ``channels``, input U(0, 0.1) of 32 channels) fitted by Adam at ``lr``
    for ``iterations`` with input noise ``reg_noise_std``, ``seeds`` runs per file; ``variants``
    (names of `VARIANTS`; ``paper`` on every pair, the others on ``variant_pairs``); ES-WMV's
    ``window`` and ``patience`` (in stored frames); Ω_T's half-width ``width`` (px); the band
    view's ``n_bands`` and settle ``threshold``; ``gfp_eps``: the ε values GFP is also read at;
    ``gfp_noise``: σ of the white noise added to the alpha blend for GFP's noise reference;
    ``every``: the frame stride (1: every iteration's output is stored)."""

    data: str | None = None
    pairs: tuple[str, ...] = tuple(PAIR_SPECS)
    size: int = 64
    levels: int = 3
    channels: int = 32
    lr: float = 0.01
    iterations: int = 1000
    reg_noise_std: float = 1.0 / 30
    seeds: int = 3
    variants: tuple[str, ...] = tuple(VARIANTS)
    variant_pairs: tuple[str, ...] = ("jet-beach", "hat-zebra")
    window: int = 50
    patience: int = 200
    width: int = 5
    n_bands: int = 9
    threshold: float = 0.1
    gfp_eps: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-6)
    gfp_noise: tuple[float, ...] = (0.003, 0.01, 0.03)
    every: int = 1
    name: str = NAME


PRESETS = presets(
    # about an hour here: three pairs at 64 × 64, every variant on two of them, 3 seeds, the
    # 3-level DIP of the lab's quick runs; ES-WMV's patience at 20 % of the budget, as in
    # experiments/stopping_rules.py (300 of 1500)
    hour=Config(),
    # a few minutes: two pairs, the paper variant only, 2 seeds, 500 iterations
    quick=Config(pairs=("jet-beach", "hat-zebra"), iterations=500, seeds=2, variants=("paper",), patience=100),
    # for a GPU: 256 × 256, the DIP paper's network (5 levels × 128), 3000 iterations, every 5th
    # frame stored (~1.4 GB a file instead of 7), ES-WMV with the authors' window and patience
    # in iterations (100 and 1000: 20 and 200 stored frames)
    paper=Config(size=256, levels=5, channels=128, iterations=3000, every=5, window=20, patience=200),
)
HOUR, QUICK, PAPER = PRESETS["hour"], PRESETS["quick"], PRESETS["paper"]


# --------------------------------------------------------------------------- inputs

def data_dir(cfg: Config) -> Path:
    """The shared data folder (`Config.data`); SpectralLabError when it is not there."""
    if cfg.data is not None:
        candidates = [Path(cfg.data)]
    else:  # ../shared next to the checkout; a git worktree under ../wt/<name> has it two levels up
        candidates = [REPO.parent / "shared" / "data", REPO.parents[1] / "shared" / "data"]
    for d in candidates:
        if d.is_dir():
            return d
    raise SpectralLabError(f"the shared data folder is not there ({candidates[0]}): pass --data DIR")


def pair_folder(cfg: Config, pair: str) -> Path:
    return cfg.paths.figures / "pairs" / f"{pair}-{cfg.size}"


def build_inputs(cfg: Config) -> dict[str, dict[str, Path]]:
    """Build every pair of ``cfg.pairs`` at ``cfg.size`` and write its PNGs (`pair_folder`);
    returns ``{pair: {"foreground", "background", "mask": path}}``."""
    unknown = sorted(set(cfg.pairs) - set(PAIR_SPECS))
    if unknown:
        raise SpectralLabError(f"unknown pair(s) {', '.join(unknown)}; the pairs are {', '.join(PAIR_SPECS)}")
    data = data_dir(cfg)
    out = {}
    for pair in cfg.pairs:
        spec = PAIR_SPECS[pair]
        spec = replace(spec, foreground=str(data / spec.foreground), background=str(data / spec.background))
        out[pair] = write_pair(build_pair(spec, cfg.size), pair_folder(cfg, pair))
    return out


def _variants(cfg: Config, pair: str) -> list[str]:
    unknown = sorted(set(cfg.variants) - set(VARIANTS))
    if unknown:
        raise SpectralLabError(f"unknown variant(s) {', '.join(unknown)}; the variants are {', '.join(VARIANTS)}")
    return [v for v in cfg.variants if v == "paper" or pair in cfg.variant_pairs]


def setting(cfg: Config, variant: str) -> Setting:
    """The DIP and its optimisation under ``variant``."""
    fit = {"reg_noise_std": cfg.reg_noise_std, **VARIANTS[variant][1]}
    return Setting(variant, "dip", {"levels": cfg.levels, "down": cfg.channels, "up": cfg.channels}, lr=cfg.lr,
                   iterations=cfg.iterations, input_dist="uniform", input_scale=0.1, every=cfg.every, **fit)


def jobs(cfg: Config) -> list[Job]:
    """One file per (pair, variant): trajectories/blending/<preset>/<pair>-<size>--<variant>.h5; the
    pairs' inputs are written first (`build_inputs`), since the recordings read them."""
    if cfg.seeds < 2:
        raise SpectralLabError(f"seeds must be >= 2 (the spread over seeds is reported), got {cfg.seeds}")
    inputs = build_inputs(cfg)
    out = []
    for pair, files in inputs.items():
        signal = SignalConfig(kind="image", image=str(files["background"]), foreground=str(files["foreground"]))
        for variant in _variants(cfg, pair):
            rc = run_config(setting(cfg, variant), signal, runs=cfg.seeds, seed=cfg.seed, device=cfg.device,
                            task="blend", operator_options={"mask": str(files["mask"])},
                            loss_options=VARIANTS[variant][2])
            # one folder per preset: the quick files must not overwrite the hour's
            path = cfg.paths.trajectory(f"{cfg.preset}/{pair}-{cfg.size}--{variant}")
            out.append(Job(path, rc, f"{pair}--{variant}"))
    return out


# --------------------------------------------------------------------------- evaluation

def evaluate_file(path: Path, cfg: Config) -> dict:
    """Everything the tables and figures need from one recording, through the package's
    analyzers: the metric curves of every run, the ES-WMV and best-SSIM iterations, the
    baselines' scores, SSIM_A and GFP at each ε of the DIP's chosen frames and of the
    baselines, and the band view's settle times per region."""
    from spectral_lab.analyze.blend import blend_curves_file, blend_file, blend_inputs, soft_map
    from spectral_lab.analyze.stopping import stop_file
    from spectral_lab.analyze.task_spectrum import task_spectrum_file
    from spectral_lab.blend.baselines import alpha_blend, laplacian_pyramid_blend, poisson_blend
    from spectral_lab.blend.metrics import gfp, masked_ssim, transition_region
    from spectral_lab.trajectory import open_trajectory

    with open_trajectory(path) as t:
        runs = t.n_runs
        fg, bg, mask = blend_inputs(t)
        alpha = soft_map(t)
    band = transition_region(mask, width=cfg.width)
    interior = (mask >= 0.5) & ~band
    curves = [blend_curves_file(path, run=r, width=cfg.width) for r in range(runs)]
    its = curves[0]["iterations"]
    es = [e.iteration for e in stop_file(path, "es_wmv", window=cfg.window, patience=cfg.patience).entries]
    best = [int(its[int(np.argmax(c["ssim"]))]) for c in curves]
    frames = {"last": [int(its[-1])] * runs, "es_wmv": es, "best_ssim": best}
    dip = {which: [{m: float(c[m][int(np.searchsorted(its, it))]) for m in METRICS} for c, it in zip(curves, at)]
           for which, at in frames.items()}
    reference = blend_file(path, frame="last", run=0, width=cfg.width)  # the baselines' scores
    outputs = {"alpha": alpha_blend(fg, bg, alpha), "poisson": poisson_blend(fg, bg, mask),
               "laplacian": laplacian_pyramid_blend(fg, bg, mask)}
    chosen: dict[str, list[np.ndarray]] = {}
    with open_trajectory(path) as t:
        for which, at in frames.items():
            chosen[which] = [np.asarray(t.frames(r)[int(np.searchsorted(its, it))], dtype=np.float64)
                             for r, it in enumerate(at)]

    def extra(x: np.ndarray) -> dict:
        x = np.clip(x, 0, 1)
        # a mask thinner than 2 × width has no interior: no SSIM_A (NaN, null in results.json)
        ssim_a = masked_ssim(x, fg, interior) if interior.any() else float("nan")
        return {"ssim_a": ssim_a, "gfp_eps": [gfp(x, fg, bg, eps=e) for e in cfg.gfp_eps]}

    for which, xs in chosen.items():
        for scores, x in zip(dip[which], xs):
            scores.update(extra(x))
    baselines = {m: {**reference.scores[m], **extra(x)} for m, x in outputs.items()}
    # GFP's reference: the alpha blend plus white noise of σ (seeded), to show what raises GFP
    rng = np.random.default_rng(cfg.seed)
    noisy = {s: [gfp(np.clip(outputs["alpha"] + rng.normal(0.0, s, outputs["alpha"].shape), 0, 1), fg, bg, eps=e)
                 for e in cfg.gfp_eps] for s in cfg.gfp_noise}
    bands = {}
    for region in ("transition", "foreground", "background"):
        res = task_spectrum_file(path, region=region, n_bands=cfg.n_bands, threshold=cfg.threshold)
        bands[region] = np.array([[np.nan if v is None else v for v in times] for times in res.fill_times])
        edges = res.band_edges
    return {"file": path, "runs": runs, "iterations": int(its[-1]), "curves": curves, "frames": frames, "dip": dip,
            "baselines": baselines, "gfp_noise": noisy, "band_edges": edges, "settle": bands, "outputs": outputs,
            "chosen": {k: v[0] for k, v in chosen.items()}, "inputs": (fg, bg, mask, alpha, band)}


def dip_rank(scores: Mapping[str, Mapping[str, float]], metric: str) -> int:
    """The DIP's place among the methods on ``metric`` (1 = highest; all four are higher-is-better in A4)."""
    return 1 + sum(scores[m][metric] > scores["dip"][metric] for m in scores if m != "dip")


def _mean(runs: Sequence[Mapping[str, float]], key: str) -> float:
    return float(np.mean([r[key] for r in runs]))


# --------------------------------------------------------------------------- report

def main(cfg: Config) -> dict:
    """Estimate, record, score, tabulate and draw."""
    print(f"{cfg.name} [{cfg.preset}]: pairs {', '.join(cfg.pairs)} at {cfg.size}x{cfg.size}; DIP {cfg.levels} levels "
          f"x {cfg.channels} ch, Adam {cfg.lr:g}, {cfg.iterations} it, {cfg.seeds} seeds; variants "
          f"{', '.join(cfg.variants)}")
    return run(cfg, jobs, report)


def _spec(metric: str) -> str:
    return ".1f" if metric == "bsi" else ".3f"


def _fmt(values: Sequence[float], metric: str) -> str:
    """``mean ± std`` over seeds, in the metric's precision."""
    return fmt_mean_std(values, _spec(metric), _spec(metric))


def _column(metric: str) -> str:
    return "SSIM_T" if metric == "ssim" else metric.upper()


def _main_rows(pair: str, res: Mapping) -> list[dict]:
    rows = []
    for m in ("alpha", "poisson", "laplacian"):
        s = res["baselines"][m]
        rows.append({"pair": pair, "method": m, "iteration": "—",
                     **{_column(k): format(s[k], _spec(k)) for k in METRICS},
                     "SSIM_A (ours)": f"{s['ssim_a']:.3f}"})
    for which, label in (("last", "DIP, last frame"), ("es_wmv", "DIP, ES-WMV stop"),
                         ("best_ssim", "DIP, best SSIM_T (oracle)")):
        runs = res["dip"][which]
        at = res["frames"][which]
        rows.append({"pair": pair, "method": label, "iteration": ", ".join(map(str, at)),
                     **{_column(k): _fmt([r[k] for r in runs], k) for k in METRICS},
                     "SSIM_A (ours)": _fmt([r["ssim_a"] for r in runs], "ssim")})
    return rows


def _rank_rows(results: Mapping[str, Mapping]) -> list[dict]:
    rows = []
    for table, methods in PAPER_TABLES.items():
        scores = {m: dict(zip(METRICS, v)) for m, v in methods.items()}
        rows.append({"where": f"paper, {table}", **{k.upper(): str(dip_rank(scores, k)) for k in METRICS}})
    for pair, res in results.items():
        for which in ("last", "es_wmv", "best_ssim"):
            scores = {m: res["baselines"][m] for m in ("alpha", "poisson", "laplacian")}
            scores["dip"] = {k: _mean(res["dip"][which], k) for k in METRICS}
            per_seed = [dip_rank({**{m: res["baselines"][m] for m in ("alpha", "poisson", "laplacian")}, "dip": r}, k)
                        for k in METRICS for r in res["dip"][which]]
            n = len(res["dip"][which])
            rows.append({"where": f"here, {pair}, DIP {which} (mean over seeds; per seed)",
                         **{k.upper(): f"{dip_rank(scores, k)} ({','.join(map(str, per_seed[j * n:(j + 1) * n]))})"
                            for j, k in enumerate(METRICS)}})
    return rows


def report(cfg: Config, recorded) -> dict:
    """Score every file (`evaluate_file`), write the tables and figures."""
    from spectral_lab.plot import save
    from spectral_lab.plot.blend import blend_curves_figure, settle_times_figure
    from spectral_lab.plot.denoise import output_grid_figure

    paths = cfg.paths
    results: dict[str, dict[str, dict]] = {}  # pair -> variant -> evaluation
    seconds = {}
    for rec in recorded:
        pair, variant = rec.job.label.split("--")
        results.setdefault(pair, {})[variant] = evaluate_file(rec.job.path, cfg)
        seconds[rec.job.label] = rec.seconds
    paper = {pair: by["paper"] for pair, by in results.items() if "paper" in by}

    what = (f"pairs at {cfg.size}×{cfg.size} (colour); DIP {cfg.levels} levels × {cfg.channels} channels, input "
            f"U(0, 0.1) of 32 channels, Adam lr {cfg.lr:g}, {cfg.iterations} iterations, input noise "
            f"σ = {cfg.reg_noise_std:.4g} (variant paper), {cfg.seeds} seeds (seeds {cfg.seed}..{cfg.seed + cfg.seeds - 1})"
            f"; ES-WMV window {cfg.window}, patience {cfg.patience}; Ω_T = pixels within {cfg.width} px of the mask's "
            f"boundary")
    main_table = markdown_table([row for pair, res in paper.items() for row in _main_rows(pair, res)])
    paper_table = markdown_table([{"table": table, "method": m, **dict(zip(("GFF", "GFP", "BSI", "SSIM"), (
        f"{v[0]:.3f}", f"{v[1]:.3f}", f"{v[2]:.1f}", f"{v[3]:.3f}")))} for table, ms in PAPER_TABLES.items()
        for m, v in ms.items()])
    rank_table = markdown_table(_rank_rows(paper))

    variant_rows = []
    for pair, by in results.items():
        for variant, res in by.items():
            runs = res["dip"]["last"]
            scores = {m: res["baselines"][m] for m in ("alpha", "poisson", "laplacian")}
            scores["dip"] = {k: _mean(runs, k) for k in METRICS}
            variant_rows.append({
                "pair": pair, "variant": variant,
                **{f"DIP last {_column(k)}": _fmt([r[k] for r in runs], k) for k in METRICS},
                "DIP last SSIM_A": _fmt([r["ssim_a"] for r in runs], "ssim"),
                "DIP rank (GFF, GFP, BSI, SSIM_T)": ", ".join(str(dip_rank(scores, k)) for k in METRICS),
                "best-SSIM_T iteration": ", ".join(map(str, res["frames"]["best_ssim"])),
                "best SSIM_T": _fmt([r["ssim"] for r in res["dip"]["best_ssim"]], "ssim"),
                "ES-WMV iteration": ", ".join(map(str, res["frames"]["es_wmv"])),
                "alpha SSIM_T (its α)": f"{res['baselines']['alpha']['ssim']:.3f}"})
    variant_table = markdown_table(variant_rows)

    trajectory_rows = []  # is there a best iteration? each metric's peak along the trajectory
    for pair, by in results.items():
        for variant, res in by.items():
            its = res["curves"][0]["iterations"]
            cells = {}
            for k in METRICS:
                per_seed = np.stack([c[k] for c in res["curves"]])
                peaks = [int(its[int(np.argmax(c))]) for c in per_seed]
                mean = per_seed.mean(axis=0)
                b = int(np.argmax(mean))
                cells[f"{_column(k)}: peak it (per seed)"] = f"{int(its[b])} ({', '.join(map(str, peaks))})"
                cells[f"{_column(k)}: peak → last"] = f"{format(mean[b], _spec(k))} → {format(mean[-1], _spec(k))}"
            trajectory_rows.append({"pair": pair, "variant": variant, **cells})
    trajectory_table = markdown_table(trajectory_rows)

    eps_rows = []
    for pair, res in paper.items():
        for m in METHODS:
            values = ([res["baselines"][m]["gfp_eps"]] if m != "dip" else [r["gfp_eps"] for r in res["dip"]["last"]])
            eps_rows.append({"pair": pair, "method": m if m != "dip" else "DIP, last frame",
                             **{f"GFP ε={e:g}": _fmt([v[j] for v in values], "gfp") for j, e in enumerate(cfg.gfp_eps)}})
        for sigma, values in res["gfp_noise"].items():
            eps_rows.append({"pair": pair, "method": f"alpha + white noise σ={sigma:g}",
                             **{f"GFP ε={e:g}": f"{v:.3f}" for e, v in zip(cfg.gfp_eps, values)}})
    eps_table = markdown_table(eps_rows)

    band_rows = []
    for pair, by in results.items():
        for variant, res in by.items():
            edges = res["band_edges"]
            for region, times in res["settle"].items():
                med = np.nanmedian(times, axis=0) if np.isfinite(times).any() else times[0]
                band_rows.append({"pair": pair, "variant": variant, "region": region,
                                  **{f"≤{edges[b + 1]:.2f}" if b else "DC": ("never" if not np.isfinite(v) else f"{v:.0f}")
                                     for b, v in enumerate(med)}})
    band_table = markdown_table(band_rows)

    figures = []
    # the inputs: background, placed foreground, mask, α and Ω_T, alpha composite
    rows = []
    for pair, res in paper.items():
        fg, bg, mask, alpha, band = res["inputs"]
        rows.append((pair, [("background B", bg), ("foreground A, placed", fg), ("mask", mask[None]),
                            ("soft map α", alpha[None]), ("Ω_T (transition region)", band[None].astype(float)),
                            ("alpha blend", res["outputs"]["alpha"])]))
    figures.append(save(output_grid_figure(rows, title=f"The blending pairs as recorded ({cfg.size}×{cfg.size}): "
                                                       f"inputs, soft map and transition region"),
                        paths.figures / "pairs.png"))
    rows = []
    for pair, res in paper.items():
        sc = res["baselines"]
        d = res["dip"]
        rows.append((pair, [*((f"{m}\nSSIM_T {sc[m]['ssim']:.3f}", res["outputs"][m]) for m in ("alpha", "poisson",
                                                                                              "laplacian")),
                            *((f"DIP {w}, it {res['frames'][w][0]}\nSSIM_T {d[w][0]['ssim']:.3f}", res["chosen"][w])
                              for w in ("es_wmv", "best_ssim", "last"))]))
    figures.append(save(output_grid_figure(rows, title=f"Alpha, Poisson, Laplacian-pyramid and DIP blending (seed "
                                                       f"{cfg.seed}, variant paper); {what}"),
                        paths.figures / "results.png"))
    rows = [(pair, [(f"{v}: SSIM_A {res['dip']['last'][0]['ssim_a']:.2f}", res["chosen"]["last"]) for v, res in by.items()])
            for pair, by in results.items() if len(by) > 1]
    if rows:
        figures.append(save(output_grid_figure(rows, title=f"DIP's last frame per variant (seed {cfg.seed}); {what}"),
                            paths.figures / "variants.png"))
    for pair, by in results.items():
        curves = {v: {"iterations": res["curves"][0]["iterations"],
                      **{k: np.stack([c[k] for c in res["curves"]]) for k in METRICS}} for v, res in by.items()}
        base = {m: by["paper"]["baselines"][m] for m in ("alpha", "poisson", "laplacian")} if "paper" in by else {}
        marks = {v: {"ES-WMV": res["frames"]["es_wmv"], "best SSIM_T": res["frames"]["best_ssim"]}
                 for v, res in by.items()}
        figures.append(save(blend_curves_figure(curves, base, marks=marks,
                                                title=f"{pair}: the A4 metrics along the DIP's trajectory, per variant "
                                                      f"(mean, min–max over seeds); dashed: baselines; {what}"),
                            paths.figures / f"curves_{pair}.png"))
        settle = {f"{v}, {region}": times for v, res in by.items() if v in ("paper", "no-anneal")
                  for region, times in res["settle"].items()}
        any_res = next(iter(by.values()))
        figures.append(save(settle_times_figure(settle, any_res["band_edges"], iterations=cfg.iterations,
                                                threshold=cfg.threshold,
                                                title=f"{pair}: when each band of the output settles, per region "
                                                      f"(E_b against each run's last frame); {what}"),
                            paths.figures / f"bands_{pair}.png"))

    cost = markdown_table([{"file": label, "recording": fmt_seconds(s) if s else "reused"}
                           for label, s in seconds.items()])
    body = (f"{what}.\n\nVariant `paper`: the four methods (higher is better for every metric, as A4 reads them; "
            f"GFP is a mean over the whole image, the others over Ω_T). DIP rows: mean ± std over seeds; the "
            f"iteration column lists each seed's frame. SSIM_A (ours, not the paper's) is the SSIM against the "
            f"foreground inside the mask, more than {cfg.width} px from its boundary.\n\n{main_table}\n\n"
            f"The paper's Tables 5 and 6 (its own images, sizes not given):\n\n{paper_table}\n\n"
            f"The DIP's place among the four methods (1 = best):\n\n{rank_table}\n\n"
            f"Variants (one setting changed from `paper` each; `VARIANTS`):\n\n"
            + "\n".join(f"- `{v}`: {VARIANTS[v][0]}" for v in cfg.variants) + f"\n\n{variant_table}\n\n"
            f"Along the trajectory: the iteration where the seed-mean curve of each metric peaks (each seed's "
            f"peak in brackets), and the mean value there and at the last frame:\n\n{trajectory_table}\n\n"
            f"GFP at other ε (variant paper), and of the alpha blend plus white noise of σ (one draw, seed "
            f"{cfg.seed}; clipped to [0, 1]):\n\n{eps_table}\n\n"
            f"Band view: median over seeds of the iteration from which E_b = P_b((x_t − x_T) w) / P_b(x_T w) stays "
            f"≤ {cfg.threshold:g} (x_T: the run's last frame; w: the region's weight), per radial band (upper edge, "
            f"cycles/px):\n\n{band_table}\n\nRecording time:\n\n{cost}\n\nFigures: "
            f"{', '.join(f.name for f in figures)}\n")
    numbers = {"config": cfg, "what": what,
               "files": {pair: {v: {"file": res["file"], "frames": res["frames"], "dip": res["dip"],
                                    "baselines": res["baselines"], "gfp_noise": res["gfp_noise"],
                                    "band_edges": res["band_edges"],
                                    "settle": {k: v.tolist() for k, v in res["settle"].items()}}
                                for v, res in by.items()} for pair, by in results.items()},
               "paper_tables": PAPER_TABLES, "seconds": seconds}
    write_report(paths, title=f"{cfg.name} [{cfg.preset}]", body=body, numbers=numbers,
                 tables=[what, main_table, rank_table, variant_table, trajectory_table, eps_table, band_table],
                 figures=figures)
    return {"config": cfg, "results": results}


FLAGS = {
    "pairs": f"comma-separated pair names ({', '.join(PAIR_SPECS)})",
    "seeds": "DIP runs (seeds) per file, >= 2",
    "data": "the shared data folder (default: ../shared/data next to the checkout)",
}


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
