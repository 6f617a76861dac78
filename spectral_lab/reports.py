"""``spectral-lab analyze X`` and ``spectral-lab plot X``: run an analyzer on a file, print or draw.

One entry per analyzer: a parser builder, an ``analyze`` function (text or ``--json``) and a
``plot`` function. The analyzers stream the file; these functions only format.
"""

from __future__ import annotations

import argparse
import json
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
    from .record import open_trajectory

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
        if ratio and ratio["converged_at"]["mean"] is not None:
            rc = ratio["converged_at"]
            ci = f", {rc['confidence']:.0%} CI [{rc['ci'][0]:.2f}, {rc['ci'][1]:.2f}]" if rc["ci"] else ""
            print(f"t(k={ratio['k2']:g}) / t(k={ratio['k1']:g}): mean {rc['mean']:.2f} over {rc['n']} run(s){ci}")
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


# --------------------------------------------------------------------------- registry

ANALYZE: dict[str, Callable] = {"amplitudes": analyze_amplitudes_cmd}
PLOT: dict[str, Callable] = {"amplitudes": plot_amplitudes_cmd}
_ARGS: dict[str, Callable] = {"amplitudes": _amp_args}
_HELP = {"amplitudes": "per-frequency amplitude error SE(k) and convergence iterations (1D)"}


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
