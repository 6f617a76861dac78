"""``spectral-lab``: the front door. Parse, call, format errors; no science here.

Every error spectral_lab raises on purpose becomes one line on stderr and a nonzero exit:
1 for bad input or a bad file, 3 when the optimisation diverged, 130 when interrupted.

One module per subcommand (``record``, ``files`` for info/check/repair/models, ``export``,
``analyzers/`` for analyze and plot, ``sweep``, ``catalogue``, ``report``). Only the chosen subcommand's parser is built in full: its choices come
from the registries (models, optimisers, stopping rules, ...), and building them imports
what they register — torch for ``record`` — which ``info`` or ``analyze`` do not need.
Modules named in ``$SPECTRAL_LAB_PLUGINS`` are imported first, so their entries appear.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Sequence

from .. import __version__
from ..errors import SpectralLabError
from ._common import EXIT_ERROR, EXIT_INTERRUPTED, Parser

__all__ = ["main", "make_parser"]


def _record(sub) -> None:
    from .record import add_parser

    add_parser(sub)


def _export(sub) -> None:
    from .export import add_parser

    add_parser(sub)


def _files(which: str) -> Callable:
    def add(sub) -> None:
        from . import files

        getattr(files, f"add_{which}_parser")(sub)
    return add


def _analysis(verb: str) -> Callable:
    def add(sub) -> None:
        from . import analyzers

        p = sub.add_parser(verb, help=COMMANDS[verb][1])
        inner = p.add_subparsers(dest="what", required=True, parser_class=Parser)
        (analyzers.add_analyze_parsers if verb == "analyze" else analyzers.add_plot_parsers)(inner)
        p.set_defaults(func=lambda a: a.handler(a))
    return add


def _module(name: str) -> Callable:
    def add(sub) -> None:
        import importlib

        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return add


# name -> (builder of its parser, one-line help)
COMMANDS: dict[str, tuple[Callable, str]] = {
    "record": (_record, "fit R runs and record every output to an HDF5 trajectory file"),
    "info": (_files("info"), "describe a trajectory file"),
    "check": (_files("check"), "validate a file against the trajectory schema"),
    "repair": (_files("repair"), "clear a killed writer's HDF5 flags so that plain h5py, h5dump and xarray open "
                                 "the file"),
    "export": (_export, "write an output as PNG/.npy/.csv, or the whole trajectory as netCDF/Zarr/npz"),
    "models": (_files("models"), "list the model families, their options and parameter counts"),
    "analyze": (_analysis("analyze"), "compute an analysis of a trajectory file"),
    "plot": (_analysis("plot"), "draw an analysis of a trajectory file"),
    "sweep": (_module("sweep"), "record every point of a grid or list of configurations, on local processes, Dask "
                                "or Slurm"),
    "catalogue": (_module("catalogue"), "one table of every trajectory file under a folder (CSV or Parquet)"),
    "report": (_module("report"), "a static HTML page of an output folder's figures, tables and catalogue"),
    "kernel": (_module("kernel"), "the network's kernels before training: tangent kernel (ntk), GP covariance (gp)"),
}


def make_parser(argv: Sequence[str] | None = None) -> Parser:
    """The parser; with ``argv``, only the subcommand it names is built in full."""
    p = Parser(prog="spectral-lab", description="Record Deep Image Prior trajectories and measure their "
                                                "spectral bias.")
    p.add_argument("--version", action="version", version=f"spectral_lab {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    chosen = next((a for a in (argv or []) if not a.startswith("-")), None) if argv is not None else None
    for name, (build, help_text) in COMMANDS.items():
        if argv is None or name == chosen:
            build(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        from ..registry import load_plugins

        load_plugins()
        parser = make_parser(argv)
    except SpectralLabError as exc:
        print(f"spectral-lab: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpectralLabError as exc:
        print(f"spectral-lab: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("spectral-lab: aborted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OSError as exc:  # the output itself failed (a full device behind stdout, ...)
        _silence_stdout()
        print(f"spectral-lab: error: cannot write the output: [Errno {exc.errno}] {exc.strerror}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback on demand
        if os.environ.get("SPECTRAL_LAB_DEBUG"):
            raise
        first = (str(exc).splitlines() or [""])[0][:300]
        print(f"spectral-lab: internal error: {type(exc).__name__}: {first} (a bug: please report it; "
              f"SPECTRAL_LAB_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_ERROR


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's final flush of a broken or full output does
    not print a traceback at exit."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
