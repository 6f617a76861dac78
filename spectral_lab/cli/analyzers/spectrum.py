"""``analyze|plot spectrum``: band-power error over iterations (images), and Shi et al.'s band view."""

from __future__ import annotations

from pathlib import Path

from ...errors import AnalysisError
from .._common import dump, fmt_it
from . import analyzer, check_run


def _spectrum(a):
    from ...analyze.spectrum import spectrum_file

    channel = int(a.channel) if a.channel.isdigit() else a.channel
    return spectrum_file(a.file, n_bands=a.bands, threshold=a.threshold, reference=a.reference, channel=channel)


def _spectrum_shi(a) -> int:
    """Shi et al. (IJCV 2022): mean of |F(output)| / |F(target)| per ring, over iterations."""
    from ...analyze._io import json_numbers
    from ...analyze.spectrum import magnitude_ratio_file

    channel = int(a.channel) if a.channel.isdigit() else a.channel
    edges, ratios = magnitude_ratio_file(a.file, n_bands=a.bands, channel=channel)
    if a.json:
        dump({"file": str(a.file), "view": "shi", "band_edges": [float(e) for e in edges],
              "ratio": [json_numbers(r) for r in ratios]})
        return 0
    print(f"{a.file}: Shi et al. band view, mean |F(output)|/|F(target)| per ring (clipped to [0, 1]); "
          f"run 0 at a few iterations")
    r0 = ratios[0]
    picks = sorted({0, len(r0) // 4, len(r0) // 2, len(r0) - 1}) if len(r0) else []
    print(f"{'band (cycles/px)':>18} " + " ".join(f"{'it ' + str(i):>8}" for i in picks))
    for b in range(len(edges) - 1):
        print(f"{edges[b]:8.3f}–{edges[b + 1]:<8.3f} " + " ".join(f"{r0[i, b]:8.3f}" for i in picks))
    return 0


def plot_spectrum(a) -> int:
    from ... import plot
    from ...plot.images import spectra_at_figure, spectrum_figure
    from ...trajectory import open_trajectory

    res = _spectrum(a)
    check_run(a.run, len(res.errors))
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
            print(f"wrote {plot.save(fig, extra, overwrite=a.overwrite)}")
    print(f"wrote {plot.save(spectrum_figure(res, run=a.run, title=title), a.output, overwrite=a.overwrite)}")
    return 0


def _args(p):
    p.add_argument("file")
    p.add_argument("--bands", type=int, default=None, help="number of radial bands (default: min side / 4 + 1)")
    p.add_argument("--threshold", type=float, default=0.1, help="relative error that counts as fitted")
    p.add_argument("--reference", choices=("target", "observed", "final"), default="target",
                   help="the clean image (default), the observation, or each run's last frame (files without a "
                        "clean image: when each band settles)")
    p.add_argument("--channel", default="luminance", help="luminance, all, or a channel index")
    p.add_argument("--run", type=int, default=0, help="run shown in the heat map (plot only)")
    p.add_argument("--view", choices=("error", "shi"), default="error",
                   help="error: band-power error (default); shi: Shi et al.'s magnitude ratio (analyze only)")
    p.add_argument("--at", type=lambda t: [int(v) for v in t.split(",") if v.strip()], default=None,
                   help="plot only: also draw outputs and spectra at these iterations (appendix Fig. 5), "
                        "into <output>-at.png")


@analyzer("spectrum", help="radially averaged power-spectrum error per band over iterations (images)",
          add_arguments=_args, plot=plot_spectrum)
def analyze_spectrum(a) -> int:
    if a.view == "shi":
        return _spectrum_shi(a)
    res = _spectrum(a)
    if a.json:
        dump({"file": str(a.file), **res.to_json()})
        return 0
    edges = res.band_edges
    print(f"{a.file}: band-power error against the {res.reference} ({res.channel}); time to fit = first "
          f"iteration from which the relative error stays <= {res.threshold:g}")
    print(f"{'band (cycles/px)':>18} " + " ".join(f"{'run ' + str(r):>8}" for r in range(len(res.errors))))
    for b in range(len(edges) - 1):
        cells = " ".join(f"{fmt_it(times[b]):>8}" for times in res.time_to_fit)
        print(f"{edges[b]:8.3f}–{edges[b + 1]:<8.3f} {cells}")
    return 0
