"""The analyzers of ``spectral-lab analyze`` and ``spectral-lab plot``: one `Analyzer` record each.

Every module of this package registers one analyzer with `analyzer` (a decorator on its
``analyze`` function); the registry imports each module the first time it is read, so a
new analyzer is one new file here. ``analyze NAME`` and, when the record has a ``plot``,
``plot NAME`` are built from the record: its help, its arguments (plus ``--json`` for
analyze, ``-o/--output`` for plot; a plot that draws several files in one figure, ``many``,
takes more file names after the first, see `plot_files`). The analyzers in
`spectral_lab.analyze` stream the file; these functions only parse, call and format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ...registry import Registry

__all__ = ["Analyzer", "ANALYZERS", "analyzer", "check_run", "save_figure", "plot_files", "file_labels",
           "add_analyze_parsers", "add_plot_parsers"]


@dataclass(frozen=True)
class Analyzer:
    """One analysis on the CLI: ``add_arguments(parser)``, ``analyze(args) -> exit code``
    (a table, or JSON with ``--json``) and optionally ``plot(args) -> exit code``, with its own
    ``plot_arguments`` when they differ from the analysis's; ``many``: the plot draws several
    files in one figure."""

    name: str
    help: str
    add_arguments: Callable
    analyze: Callable
    plot: Callable | None = None
    plot_arguments: Callable | None = None
    many: bool = False


ANALYZERS: Registry = Registry("analyzer", package="spectral_lab.cli.analyzers")


def analyzer(name: str, *, help: str, add_arguments: Callable, plot: Callable | None = None,
             plot_arguments: Callable | None = None, many: bool = False):
    """Decorator of an analyzer's ``analyze`` function: registers its `Analyzer` record."""

    def deco(fn: Callable) -> Callable:
        ANALYZERS.add(name, Analyzer(name, help, add_arguments, fn, plot, plot_arguments, many), help=help)
        return fn

    return deco


def check_run(run: int, n_runs: int) -> None:
    """--run names one of the file's runs (one line otherwise)."""
    from ...errors import AnalysisError

    if not 0 <= run < n_runs:
        raise AnalysisError(f"--run {run}: the file has runs 0..{n_runs - 1}")


def plot_files(a) -> list[str]:
    """The files a plot draws: the first positional and, for a ``many`` plot, the ones after it."""
    return [a.file, *(getattr(a, "more_files", None) or [])]


def file_labels(files) -> tuple[list[dict], list[str], str]:
    """The files' configurations, their legend labels (what tells them apart, in words) and the
    figure's title (what they share; the differences joined by "vs")."""
    from ... import plot
    from ...trajectory import open_trajectory

    configs = []
    for path in files:
        with open_trajectory(path) as t:
            configs.append(t.config)
    return configs, plot.labels_of(configs, files), plot.title_of(*configs)


def save_figure(a, draw: Callable) -> int:
    """``draw(title)`` -> Figure, titled with what the file(s) ran, saved to ``a.output``."""
    from ... import plot

    _, _, title = file_labels(plot_files(a))
    print(f"wrote {plot.save(draw(title), a.output, overwrite=a.overwrite)}")
    return 0


def _checked_output(handler: Callable) -> Callable:
    """The plot command with its output checked before any work (`spectral_lab.outputs`)."""
    def run(a) -> int:
        from ...outputs import check_output

        check_output(a.output, overwrite=a.overwrite)
        return handler(a)
    return run


def add_analyze_parsers(sub) -> None:
    for name, entry in ANALYZERS.items():
        p = sub.add_parser(name, help=entry.help)
        entry.obj.add_arguments(p)
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        p.set_defaults(handler=entry.obj.analyze)


def add_plot_parsers(sub) -> None:
    for name, entry in ANALYZERS.items():
        if entry.obj.plot is not None:
            p = sub.add_parser(name, help=entry.help)
            (entry.obj.plot_arguments or entry.obj.add_arguments)(p)
            if entry.obj.many:
                p.add_argument("more_files", nargs="*", metavar="FILE",
                               help="more trajectory files, drawn in the same figure (before the options)")
            p.add_argument("-o", "--output", required=True, help="figure file (.png, .pdf, .svg)")
            p.add_argument("--overwrite", action="store_true", help="replace an existing figure (never a trajectory)")
            p.set_defaults(handler=_checked_output(entry.obj.plot))
