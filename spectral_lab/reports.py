"""``spectral-lab analyze X`` and ``spectral-lab plot X``: run an analyzer on a file, print or draw.

One entry per analyzer: a parser builder, an ``analyze`` function (text or ``--json``) and a
``plot`` function. The analyzers stream the file; these functions only format.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import AnalysisError


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _fmt_it(v) -> str:
    return "never" if v is None else str(v)


def _dump(obj) -> None:
    print(json.dumps(obj, allow_nan=False))


# --------------------------------------------------------------------------- amplitudes

def _amplitudes(a):
    from .analyze.amplitudes import analyze_amplitudes_file
    from .trajectory import open_trajectory

    traj = open_trajectory(a.file)
    try:
        results = analyze_amplitudes_file(traj, freqs=a.freqs, delta=a.delta)
        return traj, results
    except BaseException:
        traj.close()
        raise


def analyze_amplitudes_cmd(a) -> int:
    from .analyze.amplitudes import convergence_table

    traj, results = _amplitudes(a)
    with traj:
        table = convergence_table(results)
        if a.json:
            _dump({"file": str(a.file), "delta": a.delta,
                   "freqs": [float(f) for f in results[0].freqs],
                   "runs": [{"run": r, "seeds": traj.run_seeds(r),
                             "converged_at": res.converged_at, "first_crossing": res.first_crossing}
                            for r, res in sorted(results.items())],
                   "summary": table})
            return 0
        freqs = results[0].freqs
        print(f"{a.file}: convergence iteration (SE(k) <= {a.delta:g} from then on; first crossing in brackets)")
        print("run  " + "".join(f"{'k=' + format(k, 'g'):>18}" for k in freqs))
        for r, res in sorted(results.items()):
            cells = [f"{_fmt_it(c)} ({_fmt_it(x)})" for c, x in zip(res.converged_at, res.first_crossing)]
            print(f"{r:<5}" + "".join(f"{c:>18}" for c in cells))
        ratio = table.get("ratio")
        for key, label in (("converged_at", "settle"), ("first_crossing", "first crossing")):
            rc = ratio[key] if ratio else None
            if rc and rc["mean"] is not None:
                ci = f", {rc['confidence']:.0%} CI [{rc['ci'][0]:.2f}, {rc['ci'][1]:.2f}]" if rc["ci"] else ""
                print(f"t(k={ratio['k2']:g}) / t(k={ratio['k1']:g}) ({label}): mean {rc['mean']:.2f} "
                      f"over {rc['n']} run(s){ci}")
    return 0


def plot_amplitudes_cmd(a) -> int:
    from . import plot

    traj, results = _amplitudes(a)
    with traj:
        first = results[min(results)]
        wanted = sorted({c for c in first.converged_at if c is not None})
        frames = traj.frames(min(results))
        frames_at = {it: np.asarray(frames[it], dtype=np.float64) for it in wanted}
        fig = plot.amplitude_figure(results, traj.target, frames_at, delta=a.delta,
                                    title=plot.title_of(traj.config))
    print(f"wrote {plot.save(fig, a.output)}")
    return 0


def _amp_args(p):
    p.add_argument("file")
    p.add_argument("--freqs", type=_floats, help="frequencies to analyse (default: the target's own)")
    p.add_argument("--delta", type=float, default=0.01, help="convergence threshold on SE(k) (default 0.01)")


# --------------------------------------------------------------------------- divergence

def _divergence(a):
    from .analyze.divergence import divergence_file

    return divergence_file(a.file, smooth=a.smooth, prominence=a.prominence, min_separation=a.min_separation)


def analyze_divergence_cmd(a) -> int:
    res = _divergence(a)
    if a.json:
        _dump({"file": str(a.file), **res.to_json()})
        return 0
    print(f"{a.file}: inter-run divergence ε(i) = Σ(T1(i) − T2(i))²; convergence points = dips of "
          f"smoothed log ε (window {res.detector['smooth']}, prominence {res.detector['prominence']} decades)")
    from .analyze.divergence import rebound

    for pair, eps in res.pairs.items():
        pts = res.points[pair]
        print(f"  runs {pair[0]},{pair[1]} (differ in {res.differs(pair) or '?'}): ε(0)={eps[0]:.4g} "
              f"max={eps.max():.4g} final={eps[-1]:.4g}; convergence at "
              + (", ".join(f"{p} (ε={eps[p]:.3g})" for p in pts) if pts else "none detected"))
        rb = rebound(eps, pts)
        if rb["first"] is not None:
            again = f"back below ε(first) at {rb['reconverged']}" if rb["reconverged"] is not None else "not back yet"
            print(f"    after the first convergence ε rises {rb['decades']:.2f} decades to its peak at "
                  f"{rb['peak']}, {again}")
    return 0


def plot_divergence_cmd(a) -> int:
    from . import plot
    from .plot.images import divergence_figure
    from .trajectory import open_trajectory

    res = _divergence(a)
    pair = next(iter(res.pairs))
    with open_trajectory(a.file) as t:
        frames = {"target": t.target, "iteration 0": t.frames(pair[0])[0]}
        for p in res.points[pair][:4]:
            frames[f"iteration {p}"] = t.frames(pair[0])[p]
        fig = divergence_figure(res, frames, title=plot.title_of(t.config))
    print(f"wrote {plot.save(fig, a.output)}")
    return 0


def _div_args(p):
    p.add_argument("file")
    p.add_argument("--smooth", type=int, default=9, help="median window of the dip detector (iterations)")
    p.add_argument("--prominence", type=float, default=0.3, help="minimum dip depth in decades of ε")
    p.add_argument("--min-separation", type=int, default=None, help="minimum iterations between dips")


# --------------------------------------------------------------------------- spectrum

def _spectrum(a):
    from .analyze.spectrum import spectrum_file

    channel = int(a.channel) if a.channel.isdigit() else a.channel
    return spectrum_file(a.file, n_bands=a.bands, threshold=a.threshold, reference=a.reference, channel=channel)


def analyze_spectrum_cmd(a) -> int:
    if a.view == "shi":
        return _spectrum_shi(a)
    res = _spectrum(a)
    if a.json:
        _dump({"file": str(a.file), **res.to_json()})
        return 0
    edges = res.band_edges
    print(f"{a.file}: band-power error against the {res.reference} ({res.channel}); time to fit = first "
          f"iteration from which the relative error stays <= {res.threshold:g}")
    print(f"{'band (cycles/px)':>18} " + " ".join(f"{'run ' + str(r):>8}" for r in range(len(res.errors))))
    for b in range(len(edges) - 1):
        cells = " ".join(f"{_fmt_it(times[b]):>8}" for times in res.time_to_fit)
        print(f"{edges[b]:8.3f}–{edges[b + 1]:<8.3f} {cells}")
    return 0


def _spectrum_shi(a) -> int:
    """Shi et al. (IJCV 2022): mean of |F(output)| / |F(target)| per ring, over iterations."""
    from .analyze.spectrum import magnitude_ratio_file

    channel = int(a.channel) if a.channel.isdigit() else a.channel
    edges, ratios = magnitude_ratio_file(a.file, n_bands=a.bands, channel=channel)
    if a.json:
        _dump({"file": str(a.file), "view": "shi", "band_edges": [float(e) for e in edges],
               "ratio": [[[None if not np.isfinite(v) else float(v) for v in row] for row in r] for r in ratios]})
        return 0
    print(f"{a.file}: Shi et al. band view, mean |F(output)|/|F(target)| per ring (clipped to [0, 1]); "
          f"run 0 at a few iterations")
    r0 = ratios[0]
    picks = sorted({0, len(r0) // 4, len(r0) // 2, len(r0) - 1}) if len(r0) else []
    print(f"{'band (cycles/px)':>18} " + " ".join(f"{'it ' + str(i):>8}" for i in picks))
    for b in range(len(edges) - 1):
        print(f"{edges[b]:8.3f}–{edges[b + 1]:<8.3f} " + " ".join(f"{r0[i, b]:8.3f}" for i in picks))
    return 0


def plot_spectrum_cmd(a) -> int:
    from . import plot
    from .plot.images import spectra_at_figure, spectrum_figure
    from .trajectory import open_trajectory

    res = _spectrum(a)
    with open_trajectory(a.file) as t:
        title = plot.title_of(t.config)
        if a.at:
            n = t.n_frames(a.run)
            bad = [i for i in a.at if not 0 <= i < n]
            if bad:
                raise AnalysisError(f"--at {bad[0]} is outside the recorded iterations 0..{n - 1}")
            frames = [(i, t.frames(a.run)[i]) for i in a.at]
            fig = spectra_at_figure(frames, t.target, title=f"run {a.run}: {title}")
            extra = Path(a.output).with_name(Path(a.output).stem + "-at" + Path(a.output).suffix)
            print(f"wrote {plot.save(fig, extra)}")
    print(f"wrote {plot.save(spectrum_figure(res, run=a.run, title=title), a.output)}")
    return 0


def _spec_args(p):
    p.add_argument("file")
    p.add_argument("--bands", type=int, default=None, help="number of radial bands (default: min side / 4 + 1)")
    p.add_argument("--threshold", type=float, default=0.1, help="relative error that counts as fitted")
    p.add_argument("--reference", choices=("target", "observed"), default="target")
    p.add_argument("--channel", default="luminance", help="luminance, all, or a channel index")
    p.add_argument("--run", type=int, default=0, help="run shown in the heat map (plot only)")
    p.add_argument("--view", choices=("error", "shi"), default="error",
                   help="error: band-power error (default); shi: Shi et al.'s magnitude ratio (analyze only)")
    p.add_argument("--at", type=lambda t: [int(v) for v in t.split(",") if v.strip()], default=None,
                   help="plot only: also draw outputs and spectra at these iterations (appendix Fig. 5), "
                        "into <output>-at.png")


# --------------------------------------------------------------------------- psnr

def analyze_psnr_cmd(a) -> int:
    from .analyze.psnr import psnr_file

    res = psnr_file(a.file)
    if a.json:
        _dump({"file": str(a.file), **res.to_json()})
        return 0
    print(f"{a.file}: PSNR against the clean target (data range {res.data_range:g}); "
          f"observation {res.observed_psnr:.2f} dB")
    for run in res.runs:
        print(f"  run {run.run}: best {run.best_psnr:.2f} dB at iteration {run.best_iteration}, "
              f"final {run.final_psnr:.2f} dB")
    return 0


def plot_psnr_cmd(a) -> int:
    from . import plot
    from .analyze.psnr import psnr_file
    from .plot.images import psnr_figure
    from .trajectory import open_trajectory

    res = psnr_file(a.file)
    with open_trajectory(a.file) as t:
        title = plot.title_of(t.config)
    print(f"wrote {plot.save(psnr_figure(res, title=title), a.output)}")
    return 0


def _file_arg(p):
    p.add_argument("file")


# --------------------------------------------------------------------------- noise fit

def analyze_noisefit_cmd(a) -> int:
    from .analyze.noise_fit import noise_fit_file

    res = noise_fit_file(a.file, cutoff=a.cutoff, level=a.level)
    if a.json:
        _dump({"file": str(a.file), **res.to_json()})
        return 0
    print(f"{a.file}: ν = fraction of the noise in the output, η = fraction of the clean image above "
          f"{res.cutoff:g} cycles/px; first iterations at {res.level:g}; observation {res.observed_psnr:.2f} dB")
    for r in res.runs:
        def it(v):
            return "never" if v is None else str(v)
        eta = "—" if r["highfreq_fitted_at_best"] is None else f"{r['highfreq_fitted_at_best']:.2f}"
        first = {True: "noise first", False: "image first", None: "neither first"}[r["noise_first"]]
        print(f"  run {r['run']}: t(ν) {it(r['t_noise'])}, t(η) {it(r['t_highfreq'])} ({first}); best "
              f"{r['best_psnr']:.2f} dB at {r['best_iteration']} with ν {r['noise_fitted_at_best']:.2f}, η {eta}")
    return 0


def _noisefit_args(p):
    p.add_argument("file")
    p.add_argument("--cutoff", type=float, help="cycles per pixel (default: the file's noise cut-off)")
    p.add_argument("--level", type=float, default=0.5, help="fraction whose first crossing is reported")


# --------------------------------------------------------------------------- stopping rules

STOP_RULES = ("es_wmv", "sure", "discrepancy", "pair_divergence", "pair_discrepancy")
_SIGMA_RULES = ("sure", "discrepancy", "pair_discrepancy")


def analyze_stop_cmd(a) -> int:
    from .analyze.stopping import stop_file
    from .errors import AnalysisError

    params: dict = {}
    if a.rule == "es_wmv":
        params = {"window": a.window, "patience": a.patience}
    if a.sigma is not None:
        if a.rule not in _SIGMA_RULES:
            raise AnalysisError(f"--sigma is used by the rules {', '.join(_SIGMA_RULES)}, not by {a.rule}")
        params["sigma"] = a.sigma / 255.0
    if a.twin is not None:
        if a.rule != "sure":
            raise AnalysisError(f"--twin is used by the sure rule only, not by {a.rule}")
        params["twin"] = a.twin
    res = stop_file(a.file, a.rule, **params)
    if a.json:
        _dump({"file": str(a.file), **res.to_json()})
        return 0
    print(f"{a.file}: stopping rule {res.rule} {res.params}")
    for e in res.entries:
        print(f"  runs {','.join(map(str, e.runs))}: stop at {e.iteration} ({e.psnr:.2f} dB); oracle "
              f"{e.best_psnr:.2f} dB at {e.best_iteration}; gap {e.gap:.2f} dB")
    return 0


def _stop_args(p):
    p.add_argument("file")
    # literal, so that building the parser does not import scipy (about 1 s of every command's
    # start-up); tests/test_cli.py checks it against analyze.stopping.RULES
    p.add_argument("--rule", required=True, choices=STOP_RULES)
    p.add_argument("--window", type=int, default=100, help="es_wmv: frames in the running variance")
    p.add_argument("--patience", type=int, default=1000, help="es_wmv: iterations without a new minimum")
    p.add_argument("--twin", help="sure: the file's twin, recorded with the same settings and --probe EPS")
    p.add_argument("--sigma", type=float,
                   help="sure, discrepancy, pair_discrepancy: noise std on the 0-255 scale (default: the file's)")


# --------------------------------------------------------------------------- registry

ANALYZE: dict[str, Callable] = {"amplitudes": analyze_amplitudes_cmd, "divergence": analyze_divergence_cmd,
                                "spectrum": analyze_spectrum_cmd, "psnr": analyze_psnr_cmd,
                                "stop": analyze_stop_cmd, "noisefit": analyze_noisefit_cmd}
PLOT: dict[str, Callable] = {"amplitudes": plot_amplitudes_cmd, "divergence": plot_divergence_cmd,
                             "spectrum": plot_spectrum_cmd, "psnr": plot_psnr_cmd}
_ARGS: dict[str, Callable] = {"amplitudes": _amp_args, "divergence": _div_args, "spectrum": _spec_args,
                              "psnr": _file_arg, "stop": _stop_args, "noisefit": _noisefit_args}
_HELP = {"amplitudes": "per-frequency amplitude error SE(k) and convergence iterations (1D)",
         "divergence": "inter-run divergence ε(i) for every pair of runs and its convergence points",
         "spectrum": "radially averaged power-spectrum error per band over iterations (images)",
         "psnr": "PSNR of every frame against the clean target, best iteration, observation's PSNR",
         "stop": "ground-truth-free stopping rules and their gap to the oracle",
         "noisefit": "when each run fits the noise and when the image's high frequencies (images)"}


def add_analyze_parsers(sub) -> None:
    for name, add in _ARGS.items():
        p = sub.add_parser(name, help=_HELP[name])
        add(p)
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_plot_parsers(sub) -> None:
    for name, add in _ARGS.items():
        if name in PLOT:
            p = sub.add_parser(name, help=_HELP[name])
            add(p)
            p.add_argument("-o", "--output", required=True, help="figure file (.png, .pdf, .svg)")
