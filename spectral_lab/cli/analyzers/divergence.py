"""``analyze|plot divergence``: inter-run divergence ε(i) of every pair of runs."""

from __future__ import annotations

from .._common import dump
from . import analyzer


def _divergence(a):
    from ...analyze.divergence import divergence_file

    return divergence_file(a.file, smooth=a.smooth, prominence=a.prominence, min_separation=a.min_separation)


def plot_divergence(a) -> int:
    from ... import plot
    from ...plot.images import divergence_figure
    from ...trajectory import open_trajectory

    res = _divergence(a)
    pair = next(iter(res.pairs))
    with open_trajectory(a.file) as t:
        frames = {"target": t.target, "iteration 0": t.frames(pair[0])[0]}
        for p in res.points[pair][:4]:
            frames[f"iteration {p}"] = t.frames(pair[0])[p]
        fig = divergence_figure(res, frames, title=plot.title_of(t.config))
    print(f"wrote {plot.save(fig, a.output, overwrite=a.overwrite)}")
    return 0


def _args(p):
    p.add_argument("file")
    p.add_argument("--smooth", type=int, default=9, help="median window of the dip detector (iterations)")
    p.add_argument("--prominence", type=float, default=0.3, help="minimum dip depth in decades of ε")
    p.add_argument("--min-separation", type=int, default=None, help="minimum iterations between dips")


@analyzer("divergence", help="inter-run divergence ε(i) for every pair of runs and its convergence points",
          add_arguments=_args, plot=plot_divergence)
def analyze_divergence(a) -> int:
    res = _divergence(a)
    if a.json:
        dump({"file": str(a.file), **res.to_json()})
        return 0
    print(f"{a.file}: inter-run divergence ε(i) = Σ(T1(i) − T2(i))²; convergence points = dips of "
          f"smoothed log ε (window {res.detector['smooth']}, prominence {res.detector['prominence']} decades)")
    for pair, eps in res.pairs.items():
        pts = res.points[pair]
        print(f"  runs {pair[0]},{pair[1]} (differ in {res.differs(pair) or '?'}): ε(0)={eps[0]:.4g} "
              f"max={eps.max():.4g} final={eps[-1]:.4g}; convergence at "
              + (", ".join(f"{res.iteration(p)} (ε={eps[p]:.3g})" for p in pts) if pts else "none detected"))
        rb = res.rebound(pair)
        if rb["first"] is not None:
            again = f"back below ε(first) at {rb['reconverged']}" if rb["reconverged"] is not None else "not back yet"
            print(f"    after the first convergence ε rises {rb['decades']:.2f} decades to its peak at "
                  f"{rb['peak']}, {again}")
    return 0
