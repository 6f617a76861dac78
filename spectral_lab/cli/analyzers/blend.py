"""``analyze blend``: the student study's blending metrics of a blend recording next to the baselines."""

from __future__ import annotations

from .._common import dump
from . import analyzer


def _args(p) -> None:
    p.add_argument("file")
    p.add_argument("--frame", default="last", help="last (default), an iteration, or stop:RULE (e.g. stop:es_wmv)")
    p.add_argument("--run", type=int, default=0, help="the run scored (default 0)")


@analyzer("blend", help="GFF, GFP, BSI, SSIM of a blend (003, A4) next to alpha, Poisson and Laplacian-pyramid "
          "blending", add_arguments=_args)
def analyze_blend(a) -> int:
    from ...analyze.blend import METHODS, blend_file

    res = blend_file(a.file, frame=a.frame, run=a.run)
    if a.json:
        dump({"file": str(a.file), **res.to_json()})
        return 0
    print(f"{a.file}: blending metrics (003, appendix A4) of run {res.run} at iteration {res.iteration} "
          f"({res.frame}) next to the baselines; GFF, BSI, SSIM in the transition band, GFP over the image; "
          f"higher is better")
    print(f"{'method':<10} {'GFF':>8} {'GFP':>8} {'BSI':>9} {'SSIM':>7}")
    for m in METHODS:
        s = res.scores[m]
        print(f"{m:<10} {s['gff']:8.3f} {s['gfp']:8.3f} {s['bsi']:9.2f} {s['ssim']:7.3f}")
    return 0
