"""The catalogue (`spectral_lab.catalogue`): one table of every trajectory file under a folder.

One row per ``*.h5`` file (hidden files and folders — staged copies, a sweep's submitit
logs — are left out): where it is, its status, runs and frames, every field of its stored
configuration flattened to a dotted column (``model.options.depth``, ``fit.seed``: the
names a sweep spec uses), and the summary numbers of the analyzers that apply:

- every file: ``final_loss`` (mean over runs of the last loss);
- 1D signals (`spectral_lab.analyze.amplitudes`, δ = 0.01): per frequency k, the mean
  iteration from which SE(k) stays below δ (``settle[k=5]``), the mean first crossing
  (``first[k=5]``) and how many runs converged (``converged[k=5]``), and the mean per-run
  ratios t(k2)/t(k1) of the first two frequencies (``settle_ratio``, ``first_ratio``);
- images with a clean target (`spectral_lab.analyze.psnr`): ``observed_psnr``, the best
  PSNR along the trajectory (mean and max over runs, ``best_psnr``, ``best_psnr_max``), its
  iteration (``best_iteration``) and the last frame's (``final_psnr``);
- denoising files with noise and a target (`spectral_lab.analyze.stopping`; one more pass
  over the frames each): the loss in dB against the oracle of the discrepancy principle and
  of ES-WMV (``stop_loss[discrepancy]``, ``stop_loss[es_wmv]``), mean over runs.

An analysis that cannot run on a file (too few frames, ...) leaves its columns empty and
says why in ``analysis_error``; an unreadable file is a row with status ``unreadable`` and
the reason in ``error``. Nothing here stops at one bad file.

The table is cached in ``<folder>/.spectral-lab-catalogue.json`` and updated
incrementally: a file whose size and modification time have not changed is not opened
again (a file that a live process is writing is never cached).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from . import __version__
from .errors import SpectralLabError

__all__ = ["CACHE_NAME", "trajectory_files", "describe_file", "flatten_config", "catalogue_rows", "catalogue",
           "is_config_column", "varying_columns", "write_table"]

CACHE_NAME = ".spectral-lab-catalogue.json"
_CACHE_FORMAT = 1
DELTA = 0.01
#: the columns every row starts with, in this order
FILE_COLUMNS = ("path", "status", "writer_alive", "runs", "frames", "iterations", "kind", "signal_shape",
                "size_bytes", "modified", "created", "spectral_lab_version", "error")


def trajectory_files(directory: str | Path) -> list[Path]:
    """Every ``*.h5`` file under ``directory`` (sorted), none inside a hidden file or folder."""
    directory = Path(directory)
    out = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(root) / f for f in sorted(files) if f.endswith(".h5") and not f.startswith(".")]
    return out


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted field, value)`` of a stored configuration; lists become JSON text (one cell),
    empty option maps are left out."""
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten_config(value, name + ".")
        elif isinstance(value, (list, tuple)):
            yield name, json.dumps(list(value))
        else:
            yield name, value


def _mean(values) -> float | None:
    values = [float(v) for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _convergence(t) -> dict[str, Any]:
    from .analyze.amplitudes import analyze_amplitudes_file, convergence_table

    table = convergence_table(analyze_amplitudes_file(t, delta=DELTA))
    out: dict[str, Any] = {"delta": DELTA}
    for pf in table["per_freq"]:
        k = f"{pf['freq']:g}"
        out[f"settle[k={k}]"] = pf["converged_at"]["mean"]
        out[f"first[k={k}]"] = pf["first_crossing"]["mean"]
        out[f"converged[k={k}]"] = pf["converged_at"]["n_converged"]
    if table["ratio"] is not None:
        out["settle_ratio"] = table["ratio"]["converged_at"]["mean"]
        out["first_ratio"] = table["ratio"]["first_crossing"]["mean"]
    return out


def _psnr(t) -> dict[str, Any]:
    from .analyze._io import json_float
    from .analyze.psnr import psnr_file

    res = psnr_file(t, with_ssim=False)
    best = [json_float(r.best_psnr) for r in res.runs]
    return {"observed_psnr": json_float(res.observed_psnr), "best_psnr": _mean(best),
            "best_psnr_max": max((b for b in best if b is not None), default=None),
            "best_iteration": _mean(r.best_iteration for r in res.runs),
            "final_psnr": _mean(json_float(r.final_psnr) for r in res.runs)}


def _stop_losses(t) -> dict[str, Any]:
    from .analyze._io import json_float
    from .analyze.stopping import stop_file

    out = {}
    for rule in ("discrepancy", "es_wmv"):
        res = stop_file(t, rule)
        out[f"stop_loss[{rule}]"] = _mean(json_float(e.gap) for e in res.entries)
    return out


def _analyses(t, config: Mapping[str, Any]) -> Iterator[tuple[str, Callable]]:
    """The analyzers that apply to this file."""
    if t.kind == "1d" and config.get("signal", {}).get("freqs") and t.has_target:
        yield "convergence", _convergence
    if t.kind == "image" and t.has_target:
        yield "psnr", _psnr
        degrade = config.get("degrade", {})
        if config.get("task") == "denoise" and degrade.get("noise") not in (None, "none") and degrade.get("sigma"):
            yield "stopping", _stop_losses


def describe_file(path: str | Path, *, analyses: bool = True) -> dict[str, Any]:
    """One catalogue row of a trajectory file (without its path, size and time): status,
    runs, frames, the summary numbers of the analyzers that apply (``analyses``), and the
    flattened configuration."""
    from .trajectory import open_trajectory

    try:
        with open_trajectory(path) as t:
            frames = [t.n_frames(r) for r in range(t.n_runs)]
            row: dict[str, Any] = {
                "status": t.status, "writer_alive": t.writer_alive, "runs": t.n_runs,
                "frames": min(frames, default=0), "iterations": t.iterations, "kind": t.kind,
                "signal_shape": "x".join(map(str, t.signal_shape)), "created": t.attrs.get("created"),
                "spectral_lab_version": t.attrs.get("spectral_lab_version")}
            losses = [t.losses(r)[-1] for r, n in enumerate(frames) if n > 0]
            row["final_loss"] = _mean(losses)
            problems = []
            if analyses and row["frames"] > 1:
                for name, analysis in _analyses(t, t.config):
                    try:
                        row.update(analysis(t))
                    except SpectralLabError as exc:
                        problems.append(f"{name}: {exc}")
            if problems:
                row["analysis_error"] = "; ".join(problems)
            row.update(flatten_config(t.config))
            return row
    except SpectralLabError as exc:
        return {"status": "unreadable", "error": str(exc)}


def _load_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if data.get("format") != _CACHE_FORMAT or data.get("spectral_lab_version") != __version__:
        return {}  # the analyses may have changed: read every file again
    return data.get("files", {})


def _save_cache(path: Path, files: dict) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}")
    try:
        tmp.write_text(json.dumps({"format": _CACHE_FORMAT, "spectral_lab_version": __version__, "files": files}))
        os.replace(tmp, path)
    except OSError:  # a read-only folder: the catalogue still works, uncached
        tmp.unlink(missing_ok=True)


def catalogue_rows(directory: str | Path, *, cache: bool = True, analyses: bool = True,
                   stats: dict | None = None) -> list[dict[str, Any]]:
    """The catalogue of ``directory`` as a list of rows (dicts), in path order.

    ``cache``: read and update ``<directory>/.spectral-lab-catalogue.json`` (files whose size
    and modification time are unchanged are not opened); ``analyses``: compute the summary
    numbers; ``stats``: a dict that receives ``{"files", "read", "cached"}``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise SpectralLabError(f"{directory}: no such folder")
    cache_path = directory / CACHE_NAME
    cached = _load_cache(cache_path) if cache else {}
    fresh: dict[str, Any] = {}
    rows, read = [], 0
    for path in trajectory_files(directory):
        key = path.relative_to(directory).as_posix()
        try:
            st = path.stat()
        except OSError:  # removed while we looked
            continue
        entry = cached.get(key)
        if (entry is not None and entry["size"] == st.st_size and entry["mtime_ns"] == st.st_mtime_ns
                and entry["analyses"] >= analyses):
            row = entry["row"]
        else:
            row = describe_file(path, analyses=analyses)
            read += 1
        if not row.get("writer_alive"):
            fresh[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "analyses": analyses, "row": row}
        modified = dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc).isoformat(timespec="seconds")
        rows.append({"path": key, "size_bytes": st.st_size, "modified": modified, **row})
    if cache and (read or set(fresh) != set(cached)):
        _save_cache(cache_path, fresh)
    if stats is not None:
        stats.update(files=len(rows), read=read, cached=len(rows) - read)
    return rows


def catalogue(directory: str | Path, *, cache: bool = True, analyses: bool = True, stats: dict | None = None):
    """The catalogue of every trajectory under ``directory`` as a `pandas.DataFrame` (one row
    per file; see the module docstring for the columns): file columns, then summary numbers,
    then the dotted configuration fields. Cached and updated incrementally
    (`catalogue_rows`, which also explains ``stats``)."""
    import pandas as pd

    rows = catalogue_rows(directory, cache=cache, analyses=analyses, stats=stats)
    columns: list[str] = [c for c in FILE_COLUMNS if any(c in r for r in rows)]
    config: list[str] = []
    for row in rows:
        for key in row:
            if key in columns or key in config:
                continue
            (config if is_config_column(key) else columns).append(key)
    return pd.DataFrame(rows, columns=columns + config)


def is_config_column(name: str) -> bool:
    """True for a column holding a configuration field (``task`` or a dotted field)."""
    return name == "task" or "." in name


#: file columns left out of a printed table when every file has the same value
_QUIET = ("writer_alive", "kind", "signal_shape", "iterations", "spectral_lab_version", "delta", "runs", "error")


def varying_columns(df) -> tuple[list[str], dict[str, Any]]:
    """What a reader of a catalogue wants to see first: the columns to show (path, status,
    frames, the summary numbers, and the configuration fields that differ between files;
    sizes and times left out) and the configuration fields equal in every file."""
    constant: dict[str, Any] = {}
    shown = []
    for col in df.columns:
        values = df[col].dropna()
        same = values.astype(str).nunique() <= 1
        if col in ("size_bytes", "modified", "created") or (col in _QUIET and same):
            continue
        if is_config_column(col) and same and len(values) == len(df):
            constant[col] = values.iloc[0] if len(values) else None
            continue
        if len(values) or col in ("path", "status"):
            shown.append(col)
    return shown, constant


def write_table(df, path: str | Path, *, overwrite: bool = True) -> Path:
    """Write a catalogue as CSV (``.csv``) or Parquet (``.parquet``, needs pyarrow); an existing
    file only with ``overwrite``, atomically (`spectral_lab.outputs`)."""
    from .outputs import check_output, write_atomically

    path = check_output(path, (".csv", ".parquet"), overwrite=overwrite)
    if path.suffix.lower() == ".csv":
        return write_atomically(path, lambda tmp: df.to_csv(tmp, index=False), overwrite=overwrite)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise SpectralLabError("writing Parquet needs pyarrow: pip install 'spectral_lab[parquet]' "
                               "(or write .csv)") from None
    out = df.copy()
    for col in out.columns:  # a column of mixed Python types (an option that is a number here, text there)
        if out[col].dtype == object and len({type(v) for v in out[col].dropna()}) > 1:
            out[col] = out[col].map(lambda v: None if v is None else str(v))
    return write_atomically(path, lambda tmp: out.to_parquet(tmp, index=False), overwrite=overwrite)
