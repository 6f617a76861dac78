"""``analyze|plot psnr``: PSNR (and SSIM) of every frame against the clean target, per region and scale."""

from __future__ import annotations

import math

from .._common import dump
from . import analyzer, file_labels, plot_files, save_figure


def _args(p) -> None:
    from ...analyze.psnr import REGIONS

    p.add_argument("file")
    p.add_argument("--region", choices=REGIONS, default="all",
                   help="all pixels (default), the inpainting hole (the masked-out pixels) or the known ones")
    p.add_argument("--scale", type=int, default=1,
                   help="score after S x S average pooling (S = 4: the student study's psnr_coarse)")
    p.add_argument("--ema", type=float, default=None, metavar="ALPHA",
                   help="score the exponential moving average of the outputs, m = ALPHA m + (1 - ALPHA) x "
                        "(000's +Avg schemes, e.g. 0.99)")


def _scores(a, path=None):
    from ...analyze.psnr import psnr_file

    return psnr_file(a.file if path is None else path, region=a.region, scale=a.scale, ema=a.ema)


def _db(v) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.2f} dB"


def plot_psnr(a) -> int:
    """One file: a colour per run; several (e.g. white vs low-frequency noise): a colour per
    file, labelled by what differs between their configurations."""
    from ...plot.images import psnr_figure

    files = plot_files(a)
    if len(files) == 1:
        res = _scores(a)
        return save_figure(a, lambda title: psnr_figure(res, title=title))
    results = [_scores(a, f) for f in files]
    _, labels, _ = file_labels(files)
    return save_figure(a, lambda title: psnr_figure(results, labels=labels, title=title))


@analyzer("psnr", help="PSNR (and SSIM) of every frame against the clean target, best iteration, the "
          "observation's and the task's baselines", add_arguments=_args, plot=plot_psnr, many=True)
def analyze_psnr(a) -> int:
    res = _scores(a)
    if a.json:
        dump({"file": str(a.file), **res.to_json()})
        return 0
    where = "" if res.region == "all" else f" in the {res.region} region"
    where += "" if res.scale == 1 else f" after {res.scale}x{res.scale} average pooling"
    where += "" if a.ema is None else f", of the outputs' moving average (factor {a.ema:g})"
    base = "".join(f"; {k} {_db(v)}" for k, v in res.baselines.items())
    print(f"{a.file}: PSNR against the clean target{where} (data range {res.data_range:g}); "
          f"observation {_db(res.observed_psnr)}{base}")
    for run in res.runs:
        ssim = "" if run.ssim_at_best is None or not math.isfinite(run.ssim_at_best) else (
            f" (SSIM {run.ssim_at_best:.3f})")
        post = "" if run.posterior_psnr is None else f"; posterior mean {_db(run.posterior_psnr)}"
        print(f"  run {run.run}: best {run.best_psnr:.2f} dB at iteration {run.best_iteration}{ssim}, "
              f"final {run.final_psnr:.2f} dB{post}")
    return 0
