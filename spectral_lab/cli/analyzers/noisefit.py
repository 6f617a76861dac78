"""``analyze noisefit``: when a denoising run fits the noise, when the image's high frequencies."""

from __future__ import annotations

from .._common import dump, fmt_it
from . import analyzer, file_labels, plot_files


def _args(p):
    p.add_argument("file")
    p.add_argument("--cutoff", type=float, help="cycles per pixel (default: the file's noise cut-off)")
    p.add_argument("--level", type=float, default=0.5, help="fraction whose first crossing is reported")
    p.add_argument("--curves", action="store_true", help="with --json: include the ν, η and PSNR curves of every run")


def _check_cutoff(a) -> None:
    """An explicit --cutoff at or above the highest radial frequency leaves η undefined: refused
    here (a typo, most likely); a file's own cut-off there (low-pass noise that keeps every
    frequency, as white) is analysed, η reported as undefined."""
    import math

    from ...errors import AnalysisError

    if a.cutoff is not None and a.cutoff >= math.sqrt(0.5):
        raise AnalysisError(f"--cutoff {a.cutoff:g} cycles/pixel is at or above the highest radial frequency of an "
                            f"image, sqrt(1/2) = 0.707: no frequency lies above it")


def plot_noisefit(a) -> int:
    """PSNR (left) and ν, η (right) over iterations, one colour per file: paper Fig. 2 from
    one file or several (white vs low-frequency noise)."""
    from ... import plot
    from ...analyze.noise_fit import noise_fit_file
    from ...plot.denoise import failure_figure
    from ...trajectory import open_trajectory

    _check_cutoff(a)
    files = plot_files(a)
    _, labels, title = file_labels(files)
    if len(files) == 1:
        with open_trajectory(files[0]) as t:
            labels = [plot.titles.describe(t.config)["noise"] or labels[0]]
    psnr, observed, fractions, iterations = {}, {}, {}, {}
    cutoff = a.cutoff  # without --cutoff, the first file's, for every file: η must mean the same
    for path, label in zip(files, labels):
        res = noise_fit_file(path, cutoff=cutoff, level=a.level)
        cutoff = res.cutoff
        with open_trajectory(path) as t:
            iterations[label] = t.frame_iterations(0)
        psnr[label], observed[label] = res.psnr, res.observed_psnr
        fractions[label] = {"noise_fitted": res.noise_fitted, "highfreq_fitted": res.highfreq_fitted}
    title += f"\nν: fraction of the noise in the output; η: of the clean image above {cutoff:g} cycles/px"
    fig = failure_figure(psnr, observed, fractions, half=a.level, title=title, iterations=iterations)
    print(f"wrote {plot.save(fig, a.output, overwrite=a.overwrite)}")
    return 0


@analyzer("noisefit", help="when each run fits the noise and when the image's high frequencies (images)",
          add_arguments=_args, plot=plot_noisefit, many=True)
def analyze_noisefit(a) -> int:
    from ...analyze.noise_fit import noise_fit_file

    _check_cutoff(a)
    res = noise_fit_file(a.file, cutoff=a.cutoff, level=a.level)
    if a.json:
        out = {"file": str(a.file), **res.to_json()}
        if a.curves:
            from ...analyze._io import json_numbers

            out["curves"] = {"noise_fitted": json_numbers(res.noise_fitted),
                             "highfreq_fitted": json_numbers(res.highfreq_fitted), "psnr": json_numbers(res.psnr)}
        dump(out)
        return 0
    print(f"{a.file}: ν = fraction of the noise in the output, η = fraction of the clean image above "
          f"{res.cutoff:g} cycles/px; first iterations at {res.level:g}; observation {res.observed_psnr:.2f} dB")
    for r in res.runs:
        eta = "—" if r["highfreq_fitted_at_best"] is None else f"{r['highfreq_fitted_at_best']:.2f}"
        first = {True: "noise first", False: "image first", None: "neither first"}[r["noise_first"]]
        print(f"  run {r['run']}: t(ν) {fmt_it(r['t_noise'])}, t(η) {fmt_it(r['t_highfreq'])} ({first}); best "
              f"{r['best_psnr']:.2f} dB at {r['best_iteration']} with ν {r['noise_fitted_at_best']:.2f}, η {eta}")
    return 0
