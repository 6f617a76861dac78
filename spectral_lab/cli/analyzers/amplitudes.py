"""``analyze|plot amplitudes``: per-frequency amplitude error SE(k) and convergence (1D)."""

from __future__ import annotations

import numpy as np

from .._common import dump, floats, fmt_it
from . import analyzer, file_labels, plot_files


def _args(p) -> None:
    p.add_argument("file")
    p.add_argument("--freqs", type=lambda t: list(floats(t)), help="frequencies to analyse (default: the target's own)")
    p.add_argument("--delta", type=float, default=0.01, help="convergence threshold on SE(k) (default 0.01)")
    p.add_argument("--pair", type=lambda t: tuple(floats(t)), metavar="K1,K2",
                   help="the ratio t(K2)/t(K1) to summarise (default: the first two frequencies; with more than "
                        "two, every pair is listed too)")
    p.add_argument("--curves", action="store_true", help="with --json: include every run's SE(k) curves")


def _results(a, path=None):
    from ...analyze.amplitudes import analyze_amplitudes_file
    from ...trajectory import open_trajectory

    traj = open_trajectory(a.file if path is None else path)
    try:
        return traj, analyze_amplitudes_file(traj, freqs=a.freqs, delta=a.delta)
    except BaseException:
        traj.close()
        raise


def _frames_at(traj, run: int, iterations) -> dict:
    """Run ``run``'s frames at these iterations (None left out), mapped through the stored
    iterations (a frame stride)."""
    its = list(traj.frame_iterations(run))
    frames = traj.frames(run)
    return {it: np.asarray(frames[its.index(it)], dtype=np.float64) for it in iterations
            if it is not None and it in its}


def plot_amplitudes(a) -> int:
    """One file: SE(k) curves and run 0's output when each frequency settled (paper Fig. 3).
    Several (e.g. conv vs linear): one row per file, labelled by what differs between them."""
    from ... import plot
    from ...plot.oned import conv_vs_linear_figure

    files = plot_files(a)
    if len(files) == 1:
        traj, results = _results(a)
        with traj:
            first = results[min(results)]
            frames_at = _frames_at(traj, min(results), sorted({c for c in first.converged_at if c is not None}))
            fig = plot.amplitude_figure(results, traj.target, frames_at, delta=a.delta,
                                        title=plot.title_of(traj.config))
        print(f"wrote {plot.save(fig, a.output, overwrite=a.overwrite)}")
        return 0
    _, labels, title = file_labels(files)
    panels = {}
    for path, label in zip(files, labels):
        traj, results = _results(a, path)
        with traj:
            run0 = results[min(results)]
            frames_at = _frames_at(traj, min(results), run0.converged_at)
            snapshots = [(it, frames_at.get(it), f"run {min(results)} when k={k:g} settled"
                          + ("" if it is None else f" (iteration {it})"))
                         for k, it in zip(run0.freqs[:2], run0.converged_at[:2])]
            panels[label if label not in panels else f"{label} ({path})"] = {
                "results": [results[r] for r in sorted(results)], "snapshots": snapshots,
                "target": np.asarray(traj.target, dtype=np.float64)}
    fig = conv_vs_linear_figure(panels, delta=a.delta, title=title)
    print(f"wrote {plot.save(fig, a.output, overwrite=a.overwrite)}")
    return 0


@analyzer("amplitudes", help="per-frequency amplitude error SE(k) and convergence iterations (1D)",
          add_arguments=_args, plot=plot_amplitudes, many=True)
def analyze_amplitudes(a) -> int:
    from ...analyze.amplitudes import convergence_table

    import sys

    from ...analyze.amplitudes import silent_frequencies
    from ...errors import AnalysisError

    traj, results = _results(a)
    with traj:
        if a.pair is not None and len(a.pair) != 2:
            raise AnalysisError(f"--pair takes two frequencies K1,K2, got {list(a.pair)}")
        table = convergence_table(results, pair=a.pair)
        silent = silent_frequencies(results[min(results)])
        if silent:
            print(f"spectral-lab: warning: the target has no energy at k = {', '.join(f'{k:g}' for k in silent)}: "
                  f"SE there only measures how far the output stays from 0", file=sys.stderr)
        if a.json:
            runs = []
            for r, res in sorted(results.items()):
                entry = {"run": r, "seeds": traj.run_seeds(r), "converged_at": res.converged_at,
                         "first_crossing": res.first_crossing}
                if a.curves:
                    curves = res.to_json()
                    entry.update(se=curves["se"], amplitudes=curves["amplitudes"],
                                 **({"iterations": curves["iterations"]} if "iterations" in curves else {}))
                runs.append(entry)
            dump({"file": str(a.file), "delta": a.delta, "freqs": [float(f) for f in results[0].freqs],
                  "silent_freqs": silent, "runs": runs, "summary": table})
            return 0
        freqs = results[0].freqs
        print(f"{a.file}: convergence iteration (SE(k) <= {a.delta:g} from then on; first crossing in brackets)")
        print("run  " + "".join(f"{'k=' + format(k, 'g'):>18}" for k in freqs))
        for r, res in sorted(results.items()):
            cells = [f"{fmt_it(c)} ({fmt_it(x)})" for c, x in zip(res.converged_at, res.first_crossing)]
            print(f"{r:<5}" + "".join(f"{c:>18}" for c in cells))
        ratios = table.get("ratios") or ([table["ratio"]] if table.get("ratio") else [])
        if a.pair is not None and table.get("ratio") not in ratios:
            ratios = [table["ratio"], *ratios]
        for ratio in ratios:
            for key, label in (("converged_at", "settle"), ("first_crossing", "first crossing")):
                rc = ratio[key]
                if rc and rc["mean"] is not None:
                    ci = f", {rc['confidence']:.0%} CI [{rc['ci'][0]:.2f}, {rc['ci'][1]:.2f}]" if rc["ci"] else ""
                    print(f"t(k={ratio['k2']:g}) / t(k={ratio['k1']:g}) ({label}): mean {rc['mean']:.2f} "
                          f"over {rc['n']} run(s){ci}")
    return 0
