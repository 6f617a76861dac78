"""000_... (Cheng et al.) Figs. 1 a–b and 2: SGD fits the noise, SGLD stays at the noise level; and
the posterior mean's spectrum against the SGD frames'.

    python experiments/bayes_sgld.py [--quick | --preset quick|hour|paper] [--image PATH]
        [--seeds R] [--out-dir DIR] [--estimate-only] [--set FIELD=VALUE]

One image (default: Peppers of ../shared/data/denoising9, the image of the paper's Fig. 2, in
colour) is down-sampled to a shorter side of about ``size``, degraded once by white noise of
σ = ``sigma`` and fitted by R seeds of the DIP under each of ``schemes``
(`experiments._common.SamplerExperiment`: ``sgd`` = Adam, ``sgd_input`` = Adam with the input
perturbed, ``sgld_adam`` = the released code's SGLD, ``sgld`` = Eq. 8), all for ``iterations``
steps. Then the noise level is swept (``sweep_sigmas``) for ``sweep_schemes``: Fig. 1 b.

Reported per scheme: the best PSNR along the trajectory (the oracle stop) and its iteration,
the final PSNR, the best PSNR of the outputs' moving average (factor ``ema``), the posterior
mean's PSNR (samplers: the mean of every output after the burn-in), and the MSE to the noisy
image over the last ``tail`` of the iterations against σ² and against the observation's own
noise energy ‖y − x*‖²/N (smaller than σ² where clipping to [0, 1] cut the noise); whether a
frame stride of ``stride_check`` would have changed the best PSNR of the files that keep every
frame. The spectrum (`spectral_lab.analyze.spectrum`, radial bands): per band the error power
P_b(x − x*) / P_b(x*) (`task_spectrum.missing_band_error`) and the power ratio P_b(x) / P_b(x*)
(`spectrum.band_power`; the spectrum analyzer's error is |ratio − 1|) of the observation, the
best and the last frame of each SGD scheme and the posterior mean of each sampler.

Writes trajectories/bayes_sgld/<image>--s<σ>--<scheme>.h5 and figures/bayes_sgld/{table.md,
results.json, curves_<image>.png (Fig. 2 + Fig. 1 a), mse_vs_noise_<image>.png (Fig. 1 b),
bands_<image>.png, outputs_<image>.png}.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._cli import experiment_cli
from experiments._common import (SCHEMES, SamplerExperiment, fmt_mean_std, markdown_table, presets, run, shared_data,
                                 write_report)
from spectral_lab.analyze.psnr import psnr, psnr_file, running_mean_curve
from spectral_lab.analyze.spectrum import band_power, radial_bands
from spectral_lab.analyze.task_spectrum import missing_band_error
from spectral_lab.errors import SpectralLabError
from spectral_lab.images import image_name, image_paths
from spectral_lab.optim import is_sampler
from spectral_lab.sweep import Job
from spectral_lab.trajectory import open_trajectory

NAME = "bayes_sgld"
PEPPERS = shared_data("denoising9", "image_Peppers512rgb.png")
SCALE2 = 255.0**2  # MSE in units of the 0-255 scale squared, as σ² = 625 for σ = 25


@dataclass(frozen=True)
class Config(SamplerExperiment):
    """See `SamplerExperiment` for the schemes and the DIP. ``image``: a file (default: Peppers
    when ../shared/data is there, else the sample photograph); ``schemes`` run at ``sigma``;
    ``sweep_sigmas`` × ``sweep_schemes`` for Fig. 1 b, ``sweep_iterations`` steps each (None:
    ``iterations``; ``sigma``'s own files are shared);
    ``tail``: the final share of the iterations over which the MSE to the observation is
    averaged; ``spectrum_bands``: radial bands of the spectrum table (DC + rings);
    ``stride_check``: the stride K whose effect on the best PSNR is checked; ``variants``: extra
    files at ``sigma``, each ``SCHEME:FIELD=VALUE[;FIELD=VALUE]`` (numeric fields of this
    Config, e.g. ``sgld:temperature=0`` or ``sgld_adam:reg_noise_std=0``): which setting carries
    the effect."""

    image: str | None = None
    seeds: int = 1
    schemes: tuple[str, ...] = SCHEMES
    sweep_sigmas: tuple[float, ...] = (10.0, 25.0, 50.0)
    sweep_schemes: tuple[str, ...] = ("sgd", "sgld_adam", "sgld")
    sweep_iterations: int | None = None
    tail: float = 0.1
    spectrum_bands: int = 5
    stride_check: int = 10
    variants: tuple[str, ...] = ()
    name: str = NAME


PRESETS = presets(
    # The paper's setting (Section 5.2): full-size images, the DIP of 5 levels × 128 channels,
    # 20 000 steps with a burn-in of 7 000, Adam and the released SGLD at lr 0.01.
    paper=Config(size=None, downsample=1, levels=5, channels=128, iterations=20000, burn_in=7000, every=10),
    # 64x64 colour (Peppers ÷8), the lab's quick DIP (4 levels × 64 channels), 3000 steps: Adam
    # peaks near iteration 130 and is back at the observation by ~1000; SGLD's burn-in 1000; the
    # noise sweep (SGD and Eq. 8) 2000 steps: both MSEs have settled by then. Variants: Eq. 8 at
    # temperature 0 (gradient descent at the same step) and at a 3x smaller step; the released
    # SGLD without its input perturbation.
    hour=Config(sweep_iterations=2000, sweep_schemes=("sgd", "sgld"),
                variants=("sgld:temperature=0", "sgld:exact_lr=3", "sgld_adam:reg_noise_std=0")),
    # Minutes: 32x32 (Peppers ÷16), a 3-level DIP of 32 channels, 600 steps, burn-in 200.
    quick=Config(size=32, levels=3, channels=32, iterations=600, burn_in=200, sweep_sigmas=(25.0, 50.0)),
)
PAPER, HOUR, QUICK = PRESETS["paper"], PRESETS["hour"], PRESETS["quick"]


def image_of(cfg: Config) -> Path | None:
    """The image file (None: the sample photograph, when Peppers is not there)."""
    if cfg.image is not None:
        return image_paths(cfg.image)[0]
    return PEPPERS if PEPPERS.is_file() else None


def variant(cfg: Config, spec: str) -> tuple[str, str, str, Config]:
    """``(scheme, label, file tag, configuration)`` of a variant ``SCHEME:FIELD=VALUE[;...]``."""
    scheme, sep, assigns = spec.partition(":")
    if not sep or scheme not in SCHEMES:
        raise SpectralLabError(f"variant {spec!r}: expected SCHEME:FIELD=VALUE with SCHEME one of {', '.join(SCHEMES)}")
    numeric = {f for f, v in vars(cfg).items() if isinstance(v, float) and not isinstance(v, bool)}
    changes = {}
    for item in assigns.split(";"):
        key, eq, value = item.partition("=")
        try:
            changes[key.strip()] = float(value)
        except ValueError:
            eq = ""
        if not eq or key.strip() not in numeric:
            raise SpectralLabError(f"variant {spec!r}: expected FIELD=NUMBER with FIELD one of {', '.join(sorted(numeric))}")
    label = f"{scheme} ({', '.join(f'{k}={v:g}' for k, v in changes.items())})"
    tag = f"{scheme}--" + "-".join(f"{k}{v:g}" for k, v in changes.items())
    return scheme, label, tag, replace(cfg, **changes)


def plan_jobs(cfg: Config) -> dict[tuple[float, str], Job]:
    """(σ, scheme) -> Job: ``schemes`` at ``sigma``, ``sweep_schemes`` at every ``sweep_sigmas``
    and each variant at ``sigma`` (keyed by its label)."""
    if cfg.seeds < 1:
        raise SpectralLabError(f"seeds must be >= 1, got {cfg.seeds}")
    unknown = sorted((set(cfg.schemes) | set(cfg.sweep_schemes)) - set(SCHEMES))
    if unknown:
        raise SpectralLabError(f"unknown scheme(s) {', '.join(unknown)}; choose from {', '.join(SCHEMES)}")
    if not cfg.schemes:
        raise SpectralLabError("schemes is empty: name at least one of " + ", ".join(SCHEMES))
    if not 0 < cfg.tail <= 1:
        raise SpectralLabError(f"tail must be in (0, 1], got {cfg.tail}")
    if not cfg.burn_in < cfg.iterations:
        raise SpectralLabError(f"the burn-in ({cfg.burn_in}) must end before the last iteration ({cfg.iterations})")
    image = image_of(cfg)
    out: dict[tuple[float, str], Job] = {}
    pairs = [(cfg.sigma, s) for s in cfg.schemes] + [(sig, s) for sig in cfg.sweep_sigmas for s in cfg.sweep_schemes]
    for sigma, scheme in pairs:
        if (sigma, scheme) in out:
            continue
        c = replace(cfg, sigma=sigma)
        its = None if (sigma == cfg.sigma and scheme in cfg.schemes) else cfg.sweep_iterations
        if its is not None and not cfg.burn_in < its:
            raise SpectralLabError(f"the burn-in ({cfg.burn_in}) must end before the sweep's last iteration ({its})")
        out[(sigma, scheme)] = Job(cfg.paths.trajectory(f"{image_name(image)}--s{sigma:g}--{scheme}"),
                                   c.image_config(c.scheme(scheme, iterations=its), image), scheme)
    for spec in cfg.variants:
        scheme, label, tag, c = variant(cfg, spec)
        out[(cfg.sigma, label)] = Job(cfg.paths.trajectory(f"{image_name(image)}--s{cfg.sigma:g}--{tag}"),
                                      c.image_config(c.scheme(scheme), image), label)
    return out


def jobs(cfg: Config) -> list[Job]:
    return list(plan_jobs(cfg).values())


def main(cfg: Config) -> dict:
    """Estimate, record, analyse, tabulate and draw."""
    print(f"{cfg.name} [{cfg.preset}]: {image_name(image_of(cfg))}, σ={cfg.sigma:g}, {cfg.seeds} seed(s)")
    for s in cfg.schemes:
        print(f"  {s}: {cfg.scheme(s).describe()}")
    return run(cfg, jobs, report)


# --------------------------------------------------------------------------- analysis

def analyze_file(path: Path, cfg: Config) -> dict:
    """The numbers of one file; curves (keys starting with ``_``) kept for the figures."""
    res = psnr_file(path, with_ssim=False)
    ema = psnr_file(path, with_ssim=False, ema=cfg.ema)
    with open_trajectory(path) as t:
        clean = np.asarray(t.target, dtype=np.float64)
        observed = np.asarray(t.observed, dtype=np.float64)
        burn_in = t.config["record"]["burn_in"]
        its = t.frame_iterations(0)
        losses = np.stack([t.losses(r) for r in range(t.n_runs)]).astype(np.float64) * SCALE2
        running, images = [], []
        for r, rp in enumerate(res.runs):
            frames = t.frames(r)
            image = {"best frame": np.asarray(frames[rp.best_frame], dtype=np.float64),
                     "last frame": np.asarray(frames[len(rp.psnr) - 1], dtype=np.float64)}
            if burn_in is not None and t.has_posterior:
                image["posterior mean"] = t.posterior(r)[0]
                running.append(running_mean_curve(t, r, burn_in, lambda b: psnr(b, clean)))
            images.append(image)
        shape = tuple(t.signal_shape)
        every = t.config["record"]["every"]
    tail = max(1, int(round(cfg.tail * losses.shape[1])))
    stride = None
    if every == 1 and cfg.stride_check > 1:  # the best PSNR had only every K-th frame been kept
        stride = [float(r.best_psnr - np.nanmax(r.psnr[::cfg.stride_check])) for r in res.runs]
    runs = [{"seed": r.seeds["seed"], "best_psnr": r.best_psnr, "best_iteration": r.best_iteration,
             "final_psnr": r.final_psnr, "ema_best_psnr": e.best_psnr, "ema_best_iteration": e.best_iteration,
             "posterior_psnr": r.posterior_psnr, "mse_tail": float(losses[i, -tail:].mean())}
            for i, (r, e) in enumerate(zip(res.runs, ema.runs))]
    return {"file": path, "shape": shape, "observed_psnr": res.observed_psnr, "burn_in": burn_in, "every": every,
            "noise_energy": float(np.mean((observed - clean) ** 2) * SCALE2), "runs": runs,
            "stride_loss": stride, "_its": its, "_psnr": np.stack([r.psnr for r in res.runs]),
            "_ema": np.stack([e.psnr for e in ema.runs]), "_mse": losses, "_running": running,
            "_images": images, "_clean": clean, "_observed": observed}


def spectrum_rows(cfg: Config, analysis: dict[str, dict], n_bands: int) -> tuple[list[dict], dict, np.ndarray]:
    """Per image kind (the observation; best / last frame of each SGD scheme; each sampler's
    posterior mean and last sample): the error power and the power ratio per band, averaged
    over runs. Returns (table rows, {label: (B,) error power}, band edges)."""
    first = next(iter(analysis.values()))
    clean, observed = first["_clean"], first["_observed"]
    _, edges = radial_bands(clean.shape[-2:], n_bands)
    ref = band_power(clean[None], n_bands)[0]
    kinds = {"observation": [observed]}
    for scheme, a in analysis.items():
        wanted = ("posterior mean", "last frame") if is_sampler(scheme) else ("best frame", "last frame")
        for what in wanted:
            label = f"{scheme} {what}" if not (is_sampler(scheme) and what == "last frame") else f"{scheme} last sample"
            kinds[label] = [img[what] for img in a["_images"] if what in img]
    rows, ratios = [], {}
    for label, imgs in kinds.items():
        if not imgs:
            continue
        stack = np.stack(imgs)
        err = missing_band_error(stack, clean, None, n_bands).mean(axis=0)
        power = (band_power(stack, n_bands) / ref).mean(axis=0)
        ratios[label] = err
        row = {"image": label, "PSNR (dB)": f"{np.mean(psnr(stack, clean)):.2f}"}
        for b in range(1, len(edges) - 1):
            band = f"({edges[b]:.2f}, {edges[b + 1]:.2f}]"
            row[f"error {band}"] = f"{err[b]:.3g}"
        for b in range(1, len(edges) - 1):
            row[f"power ratio ({edges[b]:.2f}, {edges[b + 1]:.2f}]"] = f"{power[b]:.3g}"
        rows.append(row)
    return rows, ratios, edges


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float("nan")


def report(cfg: Config, recorded) -> dict:
    """Every number and figure of the experiment (see the module docstring)."""
    from spectral_lab.plot import save
    from spectral_lab.plot.bayes import band_ratio_figure, mse_vs_noise_figure, sgld_curves_figure
    from spectral_lab.plot.denoise import output_grid_figure

    planned = plan_jobs(cfg)
    seconds = {rec.path: rec.seconds for rec in recorded}
    analysis = {key: analyze_file(job.path, cfg) for key, job in planned.items()}
    img = image_name(image_of(cfg))
    main = {s: analysis[(cfg.sigma, s)] for s in cfg.schemes}
    first = next(iter(main.values()))
    size = "×".join(map(str, first["shape"]))
    setting = (f"preset `{cfg.preset}`: {img} {size} (colour{'' if cfg.size is None else f', shorter side ~{cfg.size}'}), "
               f"white noise σ={cfg.sigma:g}, DIP {cfg.levels} levels × {cfg.channels} channels, {cfg.iterations} "
               f"iterations, {cfg.seeds} seed(s)")

    variants = {label: (scheme, c) for scheme, label, _, c in (variant(cfg, v) for v in cfg.variants)}
    shown = {**{s: (s, cfg) for s in cfg.schemes}, **variants}
    rows = []
    for s, (scheme, c) in shown.items():
        a = analysis[(cfg.sigma, s)]
        rs = a["runs"]
        post = [r["posterior_psnr"] for r in rs if r["posterior_psnr"] is not None]
        rows.append({
            "scheme": s, "setting": c.scheme(scheme).describe_fit(),
            "best PSNR (it.)": f"{fmt_mean_std([r['best_psnr'] for r in rs])} "
                               f"({', '.join(str(r['best_iteration']) for r in rs)})",
            "final PSNR": fmt_mean_std([r["final_psnr"] for r in rs]),
            f"best of moving avg {cfg.ema:g}": fmt_mean_std([r["ema_best_psnr"] for r in rs]),
            "posterior mean": fmt_mean_std(post) if post else "—",
            f"MSE to y, last {cfg.tail:.0%}": f"{_mean(r['mse_tail'] for r in rs):.1f}",
            "MSE / σ²": f"{_mean(r['mse_tail'] for r in rs) / cfg.sigma ** 2:.3f}",
            "MSE / ‖y−x*‖²/N": f"{_mean(r['mse_tail'] for r in rs) / a['noise_energy']:.3f}",
            f"stride {cfg.stride_check}: best PSNR lost": "—" if a["stride_loss"] is None else
            f"{max(a['stride_loss']):.3f} dB",
        })
    table = markdown_table(rows)

    sweep_rows, sweep = [], {s: [] for s in cfg.sweep_schemes}
    for sigma in cfg.sweep_sigmas:
        energy = analysis[(sigma, cfg.sweep_schemes[0])]["noise_energy"]
        row = {"σ": f"{sigma:g}", "σ²": f"{sigma ** 2:g}", "‖y−x*‖²/N": f"{energy:.0f}",
               "observation PSNR": f"{analysis[(sigma, cfg.sweep_schemes[0])]['observed_psnr']:.2f}"}
        for s in cfg.sweep_schemes:
            a = analysis[(sigma, s)]
            m = _mean(r["mse_tail"] for r in a["runs"])
            sweep[s].append(m)
            row[f"{s}: MSE to y"] = f"{m:.1f}"
            row[f"{s}: PSNR"] = (fmt_mean_std([r["posterior_psnr"] for r in a["runs"]]) + " (mean)" if is_sampler(s)
                                 else fmt_mean_std([r["best_psnr"] for r in a["runs"]]) + " (best)")
        sweep_rows.append(row)
    sweep_table = markdown_table(sweep_rows)

    spec_rows, ratios, edges = spectrum_rows(cfg, main, cfg.spectrum_bands)
    spec_table = markdown_table(spec_rows)
    _, fine_ratios, fine_edges = spectrum_rows(cfg, main, None)

    figures = []
    psnr_curves = {s: (a["_its"], a["_psnr"]) for s, a in main.items()}
    averaged = {f"{s} moving avg": (a["_its"], a["_ema"]) for s, a in main.items() if not is_sampler(s)}
    averaged.update({f"{s} running posterior mean": (a["_running"][0][0], np.stack([c for _, c in a["_running"]]))
                     for s, a in main.items() if a["_running"]})
    posterior = {f"{s} posterior mean": _mean(r["posterior_psnr"] for r in a["runs"])
                 for s, a in main.items() if is_sampler(s)}
    figures.append(save(sgld_curves_figure(
        psnr_curves, {s: (a["_its"], a["_mse"]) for s, a in main.items()}, averaged=averaged, posterior=posterior,
        observed_psnr=first["observed_psnr"], noise_levels={"σ²": cfg.sigma**2, "‖y−x*‖²/N": first["noise_energy"]},
        burn_in=cfg.burn_in, title=f"000 Fig. 2 and Fig. 1 a at CPU scale: {setting}"),
        cfg.paths.figures / f"curves_{img}.png"))
    if cfg.sweep_sigmas:
        figures.append(save(mse_vs_noise_figure(
            [s**2 for s in cfg.sweep_sigmas], {f"{s} (last {cfg.tail:.0%})": v for s, v in sweep.items()},
            title=f"000 Fig. 1 b: MSE to the noisy image at the end ({cfg.sweep_iterations or cfg.iterations} "
                  f"iterations; σ = {cfg.sigma:g}: {cfg.iterations}) vs σ²; {img} {size}"),
            cfg.paths.figures / f"mse_vs_noise_{img}.png"))
    if variants:
        its_of = {label: analysis[(cfg.sigma, label)] for label in variants}
        base = {s: main[s] for s in main if s in {scheme for scheme, _ in variants.values()}}
        figures.append(save(sgld_curves_figure(
            {k: (a["_its"], a["_psnr"]) for k, a in {**base, **its_of}.items()},
            {k: (a["_its"], a["_mse"]) for k, a in {**base, **its_of}.items()},
            posterior={f"{k} posterior mean": _mean(r["posterior_psnr"] for r in a["runs"])
                       for k, a in {**base, **its_of}.items() if a["burn_in"] is not None},
            observed_psnr=first["observed_psnr"], noise_levels={"σ²": cfg.sigma**2, "‖y−x*‖²/N": first["noise_energy"]},
            burn_in=cfg.burn_in, title=f"Variants (which setting carries the effect): {setting}"),
            cfg.paths.figures / f"variants_{img}.png"))
    figures.append(save(band_ratio_figure(
        fine_edges, fine_ratios, ylabel="error power per band P_b(x − x*) / P_b(x*)",
        title=f"Which bands each estimate gets wrong (mean over seeds): {setting}"), cfg.paths.figures / f"bands_{img}.png"))
    grid = [("", [("clean", first["_clean"]), (f"observation {first['observed_psnr']:.2f} dB", first["_observed"])])]
    for s, a in main.items():
        shown = a["_images"][0]
        grid.append((s, [(f"{what}: {float(psnr(x, first['_clean'])[0]):.2f} dB", x) for what, x in shown.items()]))
    figures.append(save(output_grid_figure(grid, title=f"Outputs of seed {cfg.seed}: {setting}"),
                        cfg.paths.figures / f"outputs_{img}.png"))

    body = (f"{setting}.\n\n## Fig. 2 / Fig. 1 a: PSNR and MSE to the noisy image per scheme\n\nMean ± std over "
            f"seeds; MSE in (0–255)², σ² = {cfg.sigma ** 2:g}, the observation's own noise energy "
            f"‖y−x*‖²/N = {first['noise_energy']:.1f} (clipping to [0, 1]).\n\n{table}\n\n"
            f"## Fig. 1 b: MSE to the noisy image at the end against σ²\n\n{sweep_table}\n\n"
            f"## Spectrum: error power P_b(x − x*)/P_b(x*) and power ratio P_b(x)/P_b(x*) per radial band "
            f"(cycles/pixel), mean over seeds\n\n{spec_table}\n\nFigures: {', '.join(f.name for f in figures)}\n")
    numbers = {"config": cfg, "setting": setting, "schemes": {s: {k: v for k, v in a.items() if not k.startswith("_")}
                                                             for s, a in main.items()},
               "variants": {label: {k: v for k, v in analysis[(cfg.sigma, label)].items() if not k.startswith("_")}
                            for label in variants},
               "sweep": {f"{sig:g}": {s: {k: v for k, v in analysis[(sig, s)].items() if not k.startswith("_")}
                                      for s in cfg.sweep_schemes} for sig in cfg.sweep_sigmas},
               "spectrum": {"band_edges": edges.tolist(), "error_power": {k: v.tolist() for k, v in ratios.items()},
                            "rows": spec_rows},
               "seconds": {str(p): s for p, s in seconds.items()}}
    write_report(cfg.paths, title=f"{cfg.name} [{cfg.preset}]", body=body, numbers=numbers,
                 tables=[setting, table, sweep_table, spec_table], figures=figures)
    return numbers


FLAGS = {"image": "an image file (default: Peppers of ../shared/data/denoising9)",
         "seeds": "seeds (runs) per scheme"}


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))
