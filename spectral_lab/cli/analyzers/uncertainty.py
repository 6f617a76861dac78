"""``analyze uncertainty``: where a sampler's posterior is uncertain (000, Fig. 1 d), as numbers and a map."""

from __future__ import annotations

from .._common import dump
from . import analyzer, check_run, save_figure


def _args(p) -> None:
    p.add_argument("file", help="a file recorded with a posterior (--optimizer sgld|sgld_adam, or --burn-in N)")
    p.add_argument("--run", type=int, default=0, help="the run whose posterior is read (default 0)")
    p.add_argument("--edge-fraction", type=float, default=0.2,
                   help="share of pixels with the strongest edges compared with the flattest (default 0.2)")
    p.add_argument("--flat-fraction", type=float, default=0.5, help="share of the flattest pixels (default 0.5)")


def _read(a, *, arrays: bool = False):
    """The summary of run --run's posterior; with ``arrays``, also the images the map draws."""
    from ...analyze._io import open_reader
    from ...analyze.uncertainty import uncertainty_file

    with open_reader(a.file) as traj:
        check_run(a.run, traj.n_runs)
        res = uncertainty_file(traj, run=a.run, edge_fraction=a.edge_fraction, flat_fraction=a.flat_fraction)
        if not arrays:
            return res
        mean, var, _ = traj.posterior(a.run)
        return res, traj.target, traj.observed, mean, var


def plot_uncertainty(a) -> int:
    import numpy as np

    from ...plot.bayes import uncertainty_figure

    res, clean, observed, mean, var = _read(a, arrays=True)
    std = np.sqrt(np.asarray(var, dtype=np.float64).mean(axis=0))
    error = np.sqrt(((np.asarray(mean, dtype=np.float64) - clean) ** 2).mean(axis=0))
    display = observed if observed.shape == clean.shape else clean
    return save_figure(a, lambda title: uncertainty_figure(
        clean, display, np.clip(mean, 0, 1), std, error, title=f"{title}; run {a.run}, {res['samples']} samples"))


@analyzer("uncertainty", help="the posterior's per-pixel spread against the holes, the edges and the error of "
          "its mean, and its calibration (000, Fig. 1 d)", add_arguments=_args, plot=plot_uncertainty)
def analyze_uncertainty(a) -> int:
    from ...analyze._io import json_safe

    res = _read(a)
    if a.json:
        dump(json_safe({"file": str(a.file), "run": a.run, **res}))
        return 0

    def num(x):
        return "—" if x is None else f"{x:.4g}"

    print(f"{a.file}: posterior of run {a.run} ({res['samples']} samples); s = per-pixel posterior std, "
          f"e = |error| of the posterior mean (0-1 scale, channels averaged)")
    print(f"  mean s: all {num(res['std_all'])}, holes {num(res['std_hole'])}, known {num(res['std_known'])} "
          f"(holes / known {num(res['hole_over_known'])})")
    print(f"  mean s on the strongest {a.edge_fraction:.0%} edges {num(res['std_edges'])}, on the flattest "
          f"{a.flat_fraction:.0%} {num(res['std_flat'])} (ratio {num(res['edges_over_flat'])})")
    print(f"  corr(s, e): Pearson {num(res['corr_error']['pearson'])}, Spearman {num(res['corr_error']['spearman'])}"
          + ("" if res["corr_error_hole"] is None else
             f"; in the holes {num(res['corr_error_hole']['pearson'])} / {num(res['corr_error_hole']['spearman'])}"))
    print(f"  RMSE of the mean: known {num(res['rmse_known'])}, holes {num(res['rmse_hole'])}")
    if res["within_1std_hole"] is not None:
        print(f"  calibration in the holes: e <= s at {res['within_1std_hole']:.2f} of pixels, e <= 2s at "
              f"{res['within_2std_hole']:.2f} (a right Gaussian posterior: 0.68, 0.95)")
    return 0
