"""Sweep specification files: one base configuration and the points that differ from it.

A spec is JSON or TOML (by its suffix; ``.toml`` is TOML, anything else JSON)::

    {"base":   {...a RunConfig dict, as a file stores it (``record --dry-run`` prints one);
                 fields left out take their defaults...},
     "grid":   {"model.options.depth": [2, 4], "fit.seed": [0, 1]},
     "points": [{"label": "wide", "model.options.width": 512}],
     "name":   "{model.name}-d{model.options.depth}-seed{fit.seed}"}

- ``grid``: dotted field -> list of values; the points are the product of the lists, the
  first field varying slowest. Fields are set in the order given, so ``"model"`` (a whole
  ``{"name", "options"}`` dict) may come before ``"model.options.depth"``;
- ``points``: further points, each a dict of dotted fields set on the base (beside the grid's
  points, or instead of a grid); a point's ``label`` names its file;
- ``name``: a template for the file names, ``{dotted.field}`` read from each point's
  resolved configuration (default: the fields that vary, ``depth-2_seed-0``);
- relative paths of image files (``signal.image``, ``signal.observed``,
  ``fit.input_image``, ``operator.options.mask``) are relative to the spec's folder.

Every point is checked (`spectral_lab.config.validate`) before anything runs; a bad one is a
one-line `ConfigError` naming it. `spec_jobs` gives one `Job` per point, ``<out_dir>/<label>.h5``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

from .config import RunConfig, validate
from .errors import ConfigError, SpectralLabError
from .sweep import Job

__all__ = ["Point", "load_spec", "spec_points", "spec_jobs", "jobs_spec", "set_dotted", "get_dotted"]

SPEC_KEYS = ("base", "grid", "points", "name", "description")
PATH_FIELDS = ("signal.image", "signal.observed", "fit.input_image", "operator.options.mask")
_TOP = tuple(f.name for f in fields(RunConfig))


@dataclass(frozen=True)
class Point:
    """One point of a sweep: its file label, the dotted fields it sets and its configuration."""

    label: str
    overrides: Mapping[str, Any]
    config: RunConfig


def load_spec(path: str | Path) -> dict:
    """Read a spec file (JSON, or TOML for ``.toml``); a one-line `ConfigError` for a missing
    or malformed file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the sweep spec {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib
            spec = tomllib.loads(text)
        else:
            spec = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path} is not a valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'} "
                          f"sweep spec: {exc}") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: a sweep spec is a mapping with keys {', '.join(SPEC_KEYS)}")
    return spec


def get_dotted(d: Mapping[str, Any], key: str) -> Any:
    """``d["a"]["b"]`` for ``"a.b"``; KeyError when a part is missing."""
    value: Any = d
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(key)
        value = value[part]
    return value


def set_dotted(d: dict, key: str, value: Any) -> None:
    """Set ``d["a"]["b"] = value`` for ``"a.b"`` (in place; missing inner dicts are made).
    The first part must be a field of `RunConfig` (``task`` or a section)."""
    parts = key.split(".")
    if parts[0] not in _TOP or not all(parts):
        raise ConfigError(f"unknown field {key!r}: a dotted field starts with one of {', '.join(_TOP)}")
    inner = d
    for i, part in enumerate(parts[:-1]):
        nxt = inner.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"field {key!r}: {'.'.join(parts[:i + 1])} is a value, not a section")
        inner = nxt
    inner[parts[-1]] = copy.deepcopy(value)


def _short(key: str) -> str:
    parts = key.split(".")
    return parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, (list, tuple)):
        text = ",".join(_fmt(v) for v in value)
    elif isinstance(value, Mapping):
        text = str(value["name"]) if "name" in value else hashlib.sha1(
            json.dumps(value, sort_keys=True).encode()).hexdigest()[:8]
    elif isinstance(value, str) and "/" in value:
        text = Path(value).stem
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9.,=+-]", "_", text)


def _auto_label(overrides: Mapping[str, Any], keys: Sequence[str]) -> str:
    shorts = [_short(k) for k in keys]
    names = [s if shorts.count(s) == 1 else k.replace(".", "-") for s, k in zip(shorts, keys)]
    return "_".join(f"{n}-{_fmt(overrides[k])}" for n, k in zip(names, keys) if k in overrides) or "point"


def _template_label(template: str, config: dict, where: str) -> str:
    def value(m: re.Match) -> str:
        try:
            return _fmt(get_dotted(config, m.group(1)))
        except KeyError:
            raise ConfigError(f"name template {template!r}: {where} has no field {m.group(1)!r}") from None
    return re.sub(r"\{([A-Za-z0-9_.]+)\}", value, template)


def _resolve_paths(d: dict, root: Path | None) -> None:
    if root is None:
        return
    for key in PATH_FIELDS:
        try:
            value = get_dotted(d, key)
        except KeyError:
            continue
        if isinstance(value, str) and not Path(value).expanduser().is_absolute():
            set_dotted(d, key, str((root / value).resolve()))


def spec_points(spec: Mapping[str, Any], *, root: str | Path | None = None) -> list[Point]:
    """Every point of ``spec`` (grid product first, then ``points``), each validated; labels
    unique. ``root``: the folder relative image paths are read from (the spec's folder)."""
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(f"the sweep spec has unknown key(s) {', '.join(unknown)}; known: {', '.join(SPEC_KEYS)}")
    base = spec.get("base", {})
    grid = spec.get("grid", {})
    extra = spec.get("points", [])
    template = spec.get("name")
    if not isinstance(base, Mapping):
        raise ConfigError("the spec's base is a RunConfig mapping ({'task': ..., 'model': {...}, ...})")
    if not isinstance(grid, Mapping) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError("the spec's grid maps dotted fields to non-empty lists of values")
    if not isinstance(extra, list) or not all(isinstance(p, Mapping) for p in extra):
        raise ConfigError("the spec's points are a list of mappings of dotted fields")
    if template is not None and not isinstance(template, str):
        raise ConfigError("the spec's name is a template string such as '{model.name}-d{model.options.depth}'")
    overrides: list[dict[str, Any]] = []
    if grid:
        keys = list(grid)
        overrides += [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    overrides += [dict(p) for p in extra]
    if not overrides:
        overrides = [{}]
    varying = list(grid) + [k for p in extra for k in p if k != "label" and k not in grid]
    varying = list(dict.fromkeys(varying))
    root = None if root is None else Path(root)
    points, labels = [], {}
    for i, o in enumerate(overrides):
        label = o.pop("label", None)
        where = f"point {i} ({label or _auto_label(o, varying)})"
        d = copy.deepcopy(dict(base))
        for key, value in o.items():
            set_dotted(d, key, value)
        _resolve_paths(d, root)
        try:
            cfg = validate(RunConfig.from_dict(d))
        except SpectralLabError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if label is None:
            label = _template_label(template, cfg.to_dict(), where) if template else _auto_label(o, varying)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._,=+-]*", str(label)):
            raise ConfigError(f"{where}: label {label!r} is not a plain file name (letters, digits, . _ , = + -)")
        if label in labels:
            raise ConfigError(f"points {labels[label]} and {i} are both named {label!r}: give the points labels "
                              "or a name template that tells them apart")
        labels[label] = i
        points.append(Point(str(label), o, cfg))
    return points


def spec_jobs(spec: Mapping[str, Any], out_dir: str | Path, *, root: str | Path | None = None) -> list[Job]:
    """One `Job` per point of ``spec``: ``<out_dir>/<label>.h5``."""
    out_dir = Path(out_dir)
    return [Job(out_dir / f"{p.label}.h5", p.config, p.label) for p in spec_points(spec, root=root)]


def _two_level(d: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in d.items():
        if isinstance(value, Mapping):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def jobs_spec(jobs: Sequence[Job], *, description: str = "") -> dict:
    """A spec whose points are ``jobs`` (an experiment's recordings): the first job's
    configuration as the base and, per job, its label (the file's stem) and the fields
    (``section.field``, whole option maps) that differ from the base."""
    if not jobs:
        raise ConfigError("no recordings to write as a sweep spec")
    base = jobs[0].config.to_dict()
    flat_base = _two_level(base)
    points = []
    for job in jobs:
        flat = _two_level(job.config.to_dict())
        points.append({"label": job.path.stem, **{k: v for k, v in flat.items() if flat_base.get(k) != v}})
    spec = {"base": base, "points": points}
    if description:
        spec["description"] = description
    return json.loads(json.dumps(spec))
