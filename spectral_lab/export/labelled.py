"""The whole trajectory as one labelled array: `export_trajectory` to netCDF-4, Zarr or npz."""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .. import __version__
from ..errors import ExportError
from ..outputs import atomic, check_output

__all__ = ["TRAJECTORY_FORMATS", "export_trajectory", "check_export", "labelled_dims"]

# the whole trajectory: format -> (suffix, what it needs installed, pip extra)
TRAJECTORY_FORMATS = {"netcdf": (".nc", ("h5netcdf",), "xarray"), "zarr": (".zarr", ("xarray", "zarr"), "zarr"),
                      "npz": (".npz", (), None)}


def labelled_dims(kind: str, shape: tuple[int, ...], prefix: str = "") -> tuple[str, ...]:
    """The dimension names of a signal of ``shape``: ``(sample,)`` or ``(channel, y, x)``."""
    from ..trajectory import schema as S

    names = (S.DIM_SAMPLE,) if len(shape) == 1 else (S.DIM_CHANNEL, S.DIM_Y, S.DIM_X)
    return tuple(prefix + n for n in names)


@dataclass
class _Variable:
    dims: tuple[str, ...]
    data: np.ndarray
    attrs: dict


class _Labelled:
    """What every format writes: dimensions, small variables (everything but the outputs), the
    attributes, and the outputs' shape, read later a block at a time."""

    def __init__(self, traj) -> None:
        from ..analyze._io import frame_iterations
        from ..trajectory import schema as S

        self.traj = traj
        spatial = labelled_dims(traj.kind, traj.signal_shape)
        counts = [traj.n_frames(r) for r in range(traj.n_runs)]
        self.frames = min(counts, default=0)  # every run the same length (a live file's runs may differ by a block)
        its = frame_iterations(traj, 0)[: self.frames] if traj.n_runs else np.zeros(0, dtype=np.int64)
        self.output_dims = ("run", S.DIM_ITERATION, *spatial)
        self.output_shape = (traj.n_runs, self.frames, *traj.signal_shape)
        v: dict[str, _Variable] = {
            "run": _Variable(("run",), np.arange(traj.n_runs, dtype=np.int64), {"long_name": "run"}),
            S.DIM_ITERATION: _Variable((S.DIM_ITERATION,), np.asarray(its, dtype=np.int64),
                                       {"long_name": "iteration of each stored frame", "units": "iteration"}),
        }
        for name, n in zip(spatial, traj.signal_shape):
            v[name] = _Variable((name,), np.arange(n, dtype=np.int64), _axis_attrs(name))
        v["loss"] = _Variable(("run", S.DIM_ITERATION),
                              np.stack([np.asarray(traj.losses(r)[: self.frames], dtype=np.float64)
                                        for r in range(traj.n_runs)]) if traj.n_runs
                              else np.zeros((0, self.frames)), {"long_name": "data term minimised", "units": "1"})
        seeds = [traj.run_seeds(r) for r in range(traj.n_runs)]
        for key in S.RUN_ATTRS:
            v[key] = _Variable(("run",), np.array([s[key] for s in seeds], dtype=np.int64),
                               {"long_name": f"the run's {key.replace('_', ' ')}"})
        if traj.has_target:
            v["target"] = _Variable(spatial, np.asarray(traj.target, dtype=np.float32),
                                    {"long_name": "clean signal x", "units": "1"})
        observed = np.asarray(traj.observed, dtype=np.float32)
        obs_dims = spatial if observed.shape == tuple(traj.signal_shape) else labelled_dims(
            traj.kind, observed.shape, S.DIM_OBSERVED_PREFIX)
        for name, n in zip(obs_dims, observed.shape):
            v.setdefault(name, _Variable((name,), np.arange(n, dtype=np.int64), _axis_attrs(name)))
        v["observed"] = _Variable(obs_dims, observed, {"long_name": "observation y, the data fitted", "units": "1"})
        mask = traj.operator_arrays().get("mask") if hasattr(traj, "operator_arrays") else None
        if mask is not None:
            v["mask"] = _Variable(spatial[-2:], np.asarray(mask, dtype=np.uint8).reshape(traj.signal_shape[-2:]),
                                  {"long_name": "inpainting mask, 1 = known pixel"})
        if getattr(traj, "has_posterior", False):
            posts = [traj.posterior(r) for r in range(traj.n_runs)]
            v["posterior_mean"] = _Variable(("run", *spatial), np.stack([p[0] for p in posts]),
                                            {"long_name": "posterior mean of the outputs after the burn-in"})
            v["posterior_var"] = _Variable(("run", *spatial), np.stack([p[1] for p in posts]),
                                           {"long_name": "posterior variance of the outputs after the burn-in"})
            v["posterior_count"] = _Variable(("run",), np.array([p[2] for p in posts], dtype=np.int64),
                                             {"long_name": "iterations averaged"})
        self.variables = v
        self.dims = {"run": traj.n_runs}
        for var in v.values():
            for name, n in zip(var.dims, var.data.shape):
                self.dims.setdefault(name, int(n))
        self.attrs = _attributes(traj)

    def blocks(self, r: int) -> Iterator[tuple[int, np.ndarray]]:
        """``(first frame, float32 block)`` of run r, up to the common length."""
        for a, block in self.traj.iter_frames(r, stop=self.frames):
            yield a, np.asarray(block, dtype=np.float32)


def _axis_attrs(name: str) -> dict:
    base = name.rsplit("_", 1)[-1]
    return {"channel": {"long_name": "colour channel (R, G, B; or grey)", "units": "1"},
            "y": {"long_name": "row (top to bottom)", "units": "pixel"},
            "x": {"long_name": "column (left to right)", "units": "pixel"},
            "sample": {"long_name": "sample index n (t = n / N)", "units": "sample"}}.get(base, {})


def _attributes(traj) -> dict:
    """Root attributes of the file, the status, and the configuration: whole (``config``, JSON)
    and flattened (``config.fit.lr``, ...), in types netCDF, Zarr and JSON all hold."""
    attrs: dict[str, Any] = {}
    for key, value in traj.attrs.items():
        attrs[key] = value
    attrs["config"] = json.dumps(traj.config, sort_keys=True)
    attrs["status"] = traj.status
    attrs["source"] = str(traj.path)
    attrs["exported_by"] = f"spectral_lab {__version__}"

    def flatten(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                flatten(f"{prefix}.{k}", v)
        else:
            attrs[prefix] = value

    flatten("config", traj.config)
    return {k: _attr_value(v) for k, v in attrs.items() if _attr_value(v) is not None}


def _attr_value(value: Any):
    """A value every format stores: str, int, float, a list of numbers; bools as "true"/"false",
    anything else as JSON; None dropped."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and value and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                            for x in value):
        return list(value)
    return json.dumps(value)


def export_trajectory(traj, path: str | os.PathLike, fmt: str, *, overwrite: bool = False) -> tuple[Path, str]:
    """Write the whole trajectory as one labelled array (see the module docstring); returns the
    path and a few words on what was written. ExportError (one line) for an unknown format, a
    suffix that is not the format's, a missing optional dependency or an output that must not
    be replaced (`check_output`)."""
    path = check_export(path, fmt, overwrite=overwrite, source=traj.path)
    data = _Labelled(traj)
    writer = {"netcdf": _write_netcdf, "zarr": _write_zarr, "npz": _write_npz}[fmt]
    with atomic(path, overwrite=overwrite, source=traj.path) as tmp:
        writer(data, tmp)
    shape = "×".join(str(s) for s in data.output_shape)
    return path, f"{fmt}: output ({', '.join(data.output_dims)}) = {shape}, loss, target, observed, the config"


def check_export(path: str | os.PathLike, fmt: str, *, overwrite: bool, source=None) -> Path:
    """The checks of `export_trajectory` that need no work: the format, its suffix, its
    dependencies, the output path."""
    if fmt not in TRAJECTORY_FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose from {', '.join(TRAJECTORY_FORMATS)}")
    suffix, needs, extra = TRAJECTORY_FORMATS[fmt]
    path = check_output(path, (suffix,), overwrite=overwrite, source=source)
    for module in needs:
        try:
            __import__(module)
        except ImportError:
            raise ExportError(f"--to {fmt} needs {' and '.join(needs)} ({module} is not installed): "
                              f"pip install 'spectral_lab[{extra}]'") from None
    return path


def _write_netcdf(data: _Labelled, tmp: Path) -> None:
    import h5netcdf

    with h5netcdf.File(tmp, "w") as f:
        f.dimensions = dict(data.dims)
        for key, value in data.attrs.items():
            f.attrs[key] = value
        for name, var in data.variables.items():
            v = f.create_variable(name, var.dims, data=var.data)
            for key, value in var.attrs.items():
                v.attrs[key] = value
        frame_bytes = 4 * int(np.prod(data.output_shape[2:]))
        chunk_t = max(1, min(data.frames, (1 << 20) // max(frame_bytes, 1))) if data.frames else 1
        out = f.create_variable("output", data.output_dims, dtype=np.float32,
                                chunks=(1, chunk_t, *data.output_shape[2:]) if all(data.output_shape) else None)
        out.attrs["long_name"] = "network output at each stored iteration"
        out.attrs["units"] = "1"
        for r in range(data.output_shape[0]):
            for a, block in data.blocks(r):
                out[r, a:a + len(block)] = block


def _write_zarr(data: _Labelled, tmp: Path) -> None:
    import xarray as xr

    def dataset(r: int | None) -> "xr.Dataset":
        variables = {}
        for name, var in data.variables.items():
            if r is None or "run" in var.dims:
                values = var.data if r is None or var.dims[0] != "run" else var.data[r:r + 1]
                variables[name] = xr.Variable(var.dims, values, var.attrs)
        return xr.Dataset(variables)

    for r in range(data.output_shape[0]):  # one run in memory at a time, appended along run
        frames = np.zeros((1, *data.output_shape[1:]), dtype=np.float32)
        for a, block in data.blocks(r):
            frames[0, a:a + len(block)] = block
        ds = dataset(None if r == 0 else r)
        if r > 0:
            ds = ds.drop_vars([k for k, v in ds.variables.items() if "run" not in v.dims])
        else:
            ds = ds.isel(run=slice(0, 1))
        ds.attrs.update(data.attrs)  # every write: an append replaces the root attributes
        ds["output"] = xr.Variable(data.output_dims, frames,
                                   {"long_name": "network output at each stored iteration", "units": "1"})
        _to_zarr(ds, tmp, **({"mode": "w"} if r == 0 else {"mode": "a", "append_dim": "run"}))
    if data.output_shape[0] == 0:
        ds = dataset(None)
        ds.attrs.update(data.attrs)
        _to_zarr(ds, tmp, mode="w")


def _to_zarr(ds, path: Path, **kwargs) -> None:
    import warnings

    with warnings.catch_warnings():
        # zarr 3 warns that consolidated metadata is not in its format's specification yet;
        # xarray reads it (and falls back, with a warning, where it is absent)
        warnings.filterwarnings("ignore", message="Consolidated metadata")
        ds.to_zarr(path, consolidated=True, **kwargs)


def _write_npz(data: _Labelled, tmp: Path) -> None:
    """An ``.npz`` (``numpy.load`` reads it, no pickle): every variable, ``output`` written a
    block at a time; ``dims`` (JSON: each variable's dimension names), ``attrs`` (JSON)."""
    dims = {name: list(var.dims) for name, var in data.variables.items()}
    dims["output"] = list(data.output_dims)
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
        for name, var in data.variables.items():
            with z.open(f"{name}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.ascontiguousarray(var.data), allow_pickle=False)
        for name, text in (("dims", json.dumps(dims)), ("attrs", json.dumps(data.attrs))):
            with z.open(f"{name}.npy", "w") as fh:
                np.lib.format.write_array(fh, np.array(text), allow_pickle=False)
        with z.open("output.npy", "w", force_zip64=True) as fh:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False,
                      "shape": tuple(int(s) for s in data.output_shape)}
            np.lib.format.write_array_header_2_0(fh, header)
            for r in range(data.output_shape[0]):  # C order: run by run, frame blocks in order
                for _, block in data.blocks(r):
                    fh.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
