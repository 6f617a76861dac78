"""``analyze|plot psnr``: PSNR of every frame against the clean target."""

from __future__ import annotations

from .._common import dump
from . import analyzer


def plot_psnr(a) -> int:
    from ... import plot
    from ...analyze.psnr import psnr_file
    from ...plot.images import psnr_figure
    from ...trajectory import open_trajectory

    res = psnr_file(a.file)
    with open_trajectory(a.file) as t:
        title = plot.title_of(t.config)
    print(f"wrote {plot.save(psnr_figure(res, title=title), a.output)}")
    return 0


def _args(p):
    p.add_argument("file")


@analyzer("psnr", help="PSNR of every frame against the clean target, best iteration, observation's PSNR",
          add_arguments=_args, plot=plot_psnr)
def analyze_psnr(a) -> int:
    from ...analyze.psnr import psnr_file

    res = psnr_file(a.file)
    if a.json:
        dump({"file": str(a.file), **res.to_json()})
        return 0
    print(f"{a.file}: PSNR against the clean target (data range {res.data_range:g}); "
          f"observation {res.observed_psnr:.2f} dB")
    for run in res.runs:
        print(f"  run {run.run}: best {run.best_psnr:.2f} dB at iteration {run.best_iteration}, "
              f"final {run.final_psnr:.2f} dB")
    return 0
