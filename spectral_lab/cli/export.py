"""``spectral-lab export``: one output as an image or a signal file, or the whole trajectory as a
labelled array (netCDF, Zarr, npz). Every flag is checked before the file is read."""

from __future__ import annotations

import argparse

from ._common import key_value

_FRAME_HELP = ("best (the frame of the best PSNR against the clean target), last, N (iteration N, which must be "
               "stored), or stop:RULE (where a stopping rule of `analyze stop` stops the run; reads no target)")


def add_parser(sub) -> None:
    from ..export import FRAME_SUFFIXES, TRAJECTORY_FORMATS, parse_frame

    suffixes = sorted({s for v in FRAME_SUFFIXES.values() for s in v})
    p = sub.add_parser(
        "export", help="write an output as PNG/.npy/.csv, or the whole trajectory as netCDF/Zarr/npz",
        description="Take-away outputs. With --frame: one output of one run, an image as a 16-bit PNG (--bits 8 "
                    "for 8) or .npy, a 1D signal as .npy or .csv. With --to: every run's outputs and losses as one "
                    "labelled array, dims (run, iteration, channel, y, x) or (run, iteration, sample), with the "
                    "configuration as attributes (netCDF needs h5netcdf: pip install 'spectral_lab[xarray]'; Zarr "
                    "needs xarray and zarr: pip install 'spectral_lab[zarr]'). Outputs are written to a hidden "
                    "sibling and renamed when complete; an existing output is replaced only with --overwrite, a "
                    "trajectory file never.")
    p.add_argument("file", help="the trajectory file")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--frame", type=_frame_type(parse_frame), metavar="best|last|N|stop:RULE", help=_FRAME_HELP)
    what.add_argument("--to", choices=tuple(TRAJECTORY_FORMATS),
                      help="the whole trajectory: " + ", ".join(f"{k} ({v[0]})" for k, v in TRAJECTORY_FORMATS.items()))
    p.add_argument("-o", "--output", required=True,
                   help=f"output file: with --frame {', '.join(suffixes)}; with --to its format's suffix")
    p.add_argument("--run", type=int, default=None, help="with --frame: the run (default 0)")
    p.add_argument("--bits", type=int, choices=(8, 16), default=None,
                   help="PNG only: bits per sample (default 16)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output (never a trajectory file)")
    rules = p.add_argument_group("with --frame stop:RULE")
    rules.add_argument("--rule-opt", type=key_value, action="append", metavar="KEY=VALUE",
                       help="an option of the rule (repeatable), e.g. --rule-opt window=50")
    rules.add_argument("--sigma", type=float, help="noise std on the 0-255 scale, for the rules that need it "
                                                   "(default: the file's)")
    rules.add_argument("--twin", help="sure: the file's twin, recorded with the same settings and --probe EPS")
    p.set_defaults(func=cmd_export)


def _frame_type(parse):
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


def _refuse_unused(a: argparse.Namespace) -> None:
    """Flags that the chosen output would ignore are refused, in one line, before any work."""
    from ..errors import ExportError

    stop = a.frame is not None and a.frame[0] == "stop"
    unused = []
    if a.to is not None and a.run is not None:
        unused.append(("--run", "--to writes every run"))
    if a.bits is not None and not str(a.output).lower().endswith(".png"):
        unused.append(("--bits", "it sets a PNG's depth"))
    for flag, value in (("--rule-opt", a.rule_opt), ("--sigma", a.sigma), ("--twin", a.twin)):
        if value is not None and not stop:
            unused.append((flag, "it is an input of --frame stop:RULE"))
    if unused:
        flag, why = unused[0]
        raise ExportError(f"{flag} does not apply here: {why}")


def _rule_params(a: argparse.Namespace) -> dict:
    """The stopping rule's options and inputs, checked as ``analyze stop`` checks them."""
    from ..analyze.stopping.rules import RULES
    from ..errors import AnalysisError
    from .analyzers.stop import _params

    rule = a.frame[1]
    if rule not in RULES:
        raise AnalysisError(f"unknown stopping rule {rule!r}; choose from {', '.join(RULES.names())}")
    ns = argparse.Namespace(rule=rule, rule_opt=a.rule_opt, window=None, patience=None, sigma=a.sigma, twin=a.twin)
    return _params(ns)


def cmd_export(a: argparse.Namespace) -> int:
    from ..export import FRAME_SUFFIXES, check_export, check_output, choose_frame, export_trajectory, write_frame
    from ..trajectory import open_trajectory

    _refuse_unused(a)
    if a.to is not None:
        check_export(a.output, a.to, overwrite=a.overwrite, source=a.file)
        with open_trajectory(a.file) as t:
            path, what = export_trajectory(t, a.output, a.to, overwrite=a.overwrite)
        print(f"wrote {path} ({what})")
        return 0
    # the suffix is checked against every kind before the file is read, then against its own
    check_output(a.output, tuple(sorted({s for v in FRAME_SUFFIXES.values() for s in v})),
                 overwrite=a.overwrite, source=a.file)
    params = _rule_params(a) if a.frame[0] == "stop" else None
    with open_trajectory(a.file) as t:
        check_output(a.output, FRAME_SUFFIXES[t.kind], overwrite=a.overwrite, source=a.file)
        choice = choose_frame(t, a.frame, run=0 if a.run is None else a.run, rule_params=params)
        path, what = write_frame(choice, a.output, kind=t.kind, bits=16 if a.bits is None else a.bits,
                                 overwrite=a.overwrite, source=a.file)
    runs = f"run {choice.runs[0]}" if len(choice.runs) == 1 else f"runs {' and '.join(map(str, choice.runs))}"
    print(f"wrote {path} ({what}): {runs} at iteration {choice.iteration}, {choice.why}")
    return 0
