"""The command line of every experiment script: choose a preset, change any of its fields, run.

    python experiments/<name>.py [--quick | --preset NAME] [--set FIELD=VALUE ...]
        [--threads N] [--workers N] [--out-dir DIR] [--estimate-only] [--write-spec FILE]
        [the script's own flags]

- ``--quick`` is ``--preset quick``; without either, the script's first preset runs;
- ``--set FIELD=VALUE`` (repeatable) changes a field of the preset's ``Config`` whose type is
  int, float, str or bool, optionally ``| None`` (VALUE ``none``) or a ``tuple[…, ...]`` of
  those (VALUE comma-separated), parsed as that type;
- a script's own flags (``--image``, ``--images``, ``--seeds``) are names for ``--set`` of the
  field of the same name;
- ``--threads`` (default 1: on a shared 2-core machine more torch threads spin against other
  processes), ``--out-dir`` (default: the repository), ``--estimate-only`` (print the probed
  cost of the recordings and stop), ``--workers N`` (record N files side by side in local
  worker processes, ``--threads`` each), ``--write-spec FILE`` (the recordings as a
  ``spectral-lab sweep`` spec, to run them on Dask or Slurm; the same command then reuses them).

A usage error (unknown flag or field, a value of the wrong type) is one line and exit status 2;
bad input found while running (a missing image, an invalid setting, a full disk) one line and
exit status 1; a diverged fit (NaN/inf loss) exit status 3; Ctrl-C exit status 130, and running
the same command again resumes.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
import types
import typing
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from experiments._common import REPO
from spectral_lab.cli._common import Parser
from spectral_lab.errors import DivergedError, SpectralLabError

__all__ = ["experiment_cli", "field_parsers", "RESERVED"]

# fields with their own flags (or none: what the preset is called, where it writes)
RESERVED = ("name", "preset", "out_dir", "estimate_only", "workers", "command")
_SCALARS = {bool: "bool", int: "int", float: "float", str: "str"}


def _scalar(tp: type) -> Callable[[str], Any]:
    if tp is bool:
        def parse_bool(text: str) -> bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        return parse_bool
    return tp


def _parser_of(tp: Any) -> tuple[Callable[[str], Any], str] | None:
    """(parse, type name) for a settable annotation, None otherwise."""
    if tp in _SCALARS:
        return _scalar(tp), _SCALARS[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = _parser_of(rest[0]) if len(rest) == 1 and len(args) == 2 else None
        if inner is None:
            return None
        parse, name = inner
        return (lambda text: None if text.lower() == "none" else parse(text)), f"{name} (or none)"
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and args[0] in _SCALARS:
        one = _scalar(args[0])
        return (lambda text: tuple(one(v.strip()) for v in text.split(",") if v.strip())), \
            f"comma-separated {_SCALARS[args[0]]}s"
    return None


def field_parsers(cfg: Any) -> dict[str, tuple[Callable[[str], Any], str]]:
    """The fields of the dataclass ``cfg`` that ``--set`` can change: name -> (parse, type name)."""
    try:
        hints = typing.get_type_hints(type(cfg))
    except (NameError, TypeError):  # an annotation that does not resolve: fall back to the value's type
        hints = {}
    out = {}
    for f in dataclasses.fields(cfg):
        if f.name in RESERVED or f.name.startswith("_"):
            continue
        parser = _parser_of(hints.get(f.name, type(getattr(cfg, f.name))))
        if parser is not None:
            out[f.name] = parser
    return out


def _changes(cfg: Any, items: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``(flag text, FIELD=VALUE)`` pairs as changes of ``cfg``; ValueError in one line."""
    settable = field_parsers(cfg)
    out: dict[str, Any] = {}
    for flag, item in items:
        key, sep, text = item.partition("=")
        if not sep or key not in settable:
            raise ValueError(f"{flag}: expected FIELD=VALUE with FIELD one of {', '.join(sorted(settable))}")
        parse, name = settable[key]
        try:
            out[key] = parse(text)
        except ValueError:
            raise ValueError(f"{flag}: {key} takes a {name}") from None
    return out


def experiment_cli(script: types.ModuleType, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` for the experiment module ``script``, build its configuration and run
    ``script.main(cfg)``; returns the exit status.

    The module provides ``PRESETS`` (name -> ``Config``; the first is the default, one must be
    ``quick``), ``main(cfg)``, its docstring (the first line is the description) and optionally
    ``FLAGS``: its own flags, field name -> help (``{"image": "triangle or a file"}`` adds
    ``--image VALUE``, the same as ``--set image=VALUE``).
    """
    presets: Mapping[str, Any] = script.PRESETS
    flags: Mapping[str, str] = getattr(script, "FLAGS", {})
    if "quick" not in presets:
        raise ValueError(f"{script.__name__} needs a 'quick' preset")
    default = next(iter(presets))
    doc = (script.__doc__ or "").strip().splitlines()
    p = Parser(prog=Path(script.__file__).name, description=doc[0] if doc else None)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="the 'quick' preset: minutes on 2 CPU cores")
    g.add_argument("--preset", choices=list(presets), default=None, help=f"named configuration (default: {default})")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="change a number, string, flag or list of numbers of the preset's Config (repeatable; "
                        "see the Config docstring); FIELD one of "
                        + ", ".join(sorted(field_parsers(presets[default]))))
    for name, help_text in flags.items():
        p.add_argument(f"--{name.replace('_', '-')}", dest=f"flag_{name}", metavar=name.upper(), help=help_text)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: on a shared machine more threads spin against other jobs)")
    p.add_argument("--out-dir", type=Path, default=REPO,
                   help="where trajectories/<experiment>/ and figures/<experiment>/ go (default: %(default)s)")
    p.add_argument("--estimate-only", action="store_true", help="print the estimated cost of the recordings and stop")
    p.add_argument("--workers", type=int, default=1,
                   help="record this many files side by side in local worker processes, --threads torch threads "
                        "each (default 1: one after another in this process)")
    p.add_argument("--write-spec", type=Path, metavar="FILE",
                   help="write the recordings as a sweep spec for `spectral-lab sweep FILE --out-dir "
                        "OUT/trajectories/<name>` (Dask, Slurm) and stop; this command with --out-dir OUT then "
                        "reuses the files")
    a = p.parse_args(argv)
    if a.threads < 1:
        p.error(f"--threads must be >= 1, got {a.threads}")
    if a.workers < 1:
        p.error(f"--workers must be >= 1, got {a.workers}")
    cfg = presets["quick" if a.quick else (a.preset or default)]
    items = [(f"--set {item}", item) for item in a.set]
    items += [(f"--{name.replace('_', '-')} {getattr(a, f'flag_{name}')}", f"{name}={getattr(a, f'flag_{name}')}")
              for name in flags if getattr(a, f"flag_{name}") is not None]
    try:
        changes = _changes(cfg, items)
    except ValueError as exc:
        p.error(str(exc))
    command = shlex.join(["python", _script_path(script), *(sys.argv[1:] if argv is None else argv)])
    cfg = dataclasses.replace(cfg, **changes, out_dir=a.out_dir.resolve(), estimate_only=a.estimate_only,
                              workers=a.workers, command=command)
    if a.write_spec is not None:
        return _write_spec(p.prog, script, cfg, a.write_spec)

    import torch

    torch.set_num_threads(a.threads)
    started = time.perf_counter()
    try:
        script.main(cfg)
    except DivergedError as exc:
        print(f"{p.prog}: diverged: {exc}", file=sys.stderr)
        return 3
    except (SpectralLabError, ValueError) as exc:
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{p.prog}: interrupted; the same command resumes the unfinished recording", file=sys.stderr)
        return 130
    print(f"total wall time {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


def _script_path(script: types.ModuleType) -> str:
    """``experiments/<name>.py`` (relative to the repository when it is inside it)."""
    path = Path(script.__file__).resolve()
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def _write_spec(prog: str, script: types.ModuleType, cfg: Any, out: Path) -> int:
    """The experiment's recordings as a sweep spec (`spectral_lab.sweep_spec.jobs_spec`)."""
    from spectral_lab.sweep_spec import jobs_spec

    if not hasattr(script, "jobs"):
        print(f"{prog}: error: this experiment records through its own steps; it has no jobs() to write",
              file=sys.stderr)
        return 1
    try:
        spec = jobs_spec(script.jobs(cfg), description=f"the recordings of: {cfg.command}")
    except (SpectralLabError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    out.write_text(json.dumps(spec, indent=1) + "\n")
    print(f"wrote {out} ({len(spec['points'])} points): spectral-lab sweep {out} --out-dir {cfg.paths.trajectories}")
    return 0
