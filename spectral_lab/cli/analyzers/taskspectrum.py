"""``analyze|plot taskspectrum``: which frequency bands of the missing content each run restores first."""

from __future__ import annotations

from .._common import dump, fmt_it
from . import analyzer, check_run, save_figure


def _args(p) -> None:
    p.add_argument("file")
    p.add_argument("--region", choices=("auto", "hole", "transition", "foreground", "background", "all"),
                   default="auto", help="auto (default): the hole for inpainting files, the transition band "
                   "(w = 4α(1 − α)) for blends, the whole image otherwise; foreground (α) and background "
                   "(1 − α): blends")
    p.add_argument("--bands", type=int, default=None, help="number of radial bands (default: min side / 4 + 1)")
    p.add_argument("--threshold", type=float, default=0.1, help="E_b that counts as restored (default 0.1)")
    p.add_argument("--run", type=int, default=0, help="run shown in the heat map (plot only)")


def _result(a):
    from ...analyze.task_spectrum import task_spectrum_file

    return task_spectrum_file(a.file, region=a.region, n_bands=a.bands, threshold=a.threshold)


def plot_taskspectrum(a) -> int:
    from ...plot.images import task_spectrum_figure

    res = _result(a)
    check_run(a.run, len(res.errors))
    return save_figure(a, lambda title: task_spectrum_figure(res, run=a.run, title=title))


@analyzer("taskspectrum", help="which frequency bands of the missing content (inpainting hole, super-resolution's "
          "high bands) each run restores first (images)", add_arguments=_args, plot=plot_taskspectrum)
def analyze_taskspectrum(a) -> int:
    res = _result(a)
    if a.json:
        dump({"file": str(a.file), **res.to_json()})
        return 0
    nyq = "" if res.observed_nyquist is None else f"; the observation holds frequencies up to {res.observed_nyquist:g}"
    if res.reference == "final":
        print(f"{a.file}: change still to come per band, E_b = P_b((x_t - x_T) w) / P_b(x_T w) against each run's "
              f"last frame x_T (a blend has no clean image), region {res.region} ({res.operator}); settle time = "
              f"first iteration from which E_b <= {res.threshold:g}")
    else:
        print(f"{a.file}: error of the missing content per band, E_b = P_b(error) / P_b(clean), region "
              f"{res.region} ({res.operator}){nyq}; fill time = first iteration from which E_b <= {res.threshold:g}")
    edges = res.band_edges
    print(f"{'band (cycles/px)':>18} " + " ".join(f"{'run ' + str(r):>8}" for r in range(len(res.errors))))
    for b in range(len(edges) - 1):
        cells = " ".join(f"{fmt_it(times[b]):>8}" for times in res.fill_times)
        print(f"{edges[b]:8.3f}–{edges[b + 1]:<8.3f} {cells}")
    return 0
