"""spectral_lab: record every output of Deep Image Prior runs and measure their spectral bias.

The handful of names a user needs (imported on first use, so that ``import spectral_lab``
stays fast and the CLI does not pay for torch where it does not fit anything):

- configuration: `RunConfig` (and its sections), `preset`, `apply_overrides`;
- recording: `record(cfg, path)`, `resume(path)`;
- reading: `open_trajectory(path)` (live files too), `check_trajectory(path)`,
  `open_xarray(path)` (the file as an xarray DataTree; needs the ``xarray`` extra),
  `repair_trajectory(path)` (a killed recording made readable by every HDF5 tool);
- models: `build_model(name, signal_shape=..., runs=...)`, the registries `MODELS`,
  `OPTIMIZERS`, `OPERATORS`, `LOSSES`, `RULES`;
- analyzers (streamed over a file or an open trajectory): `analyze_amplitudes_file`,
  `divergence_file`, `spectrum_file`, `psnr_file`, `stop_file`, `noise_fit_file`;
- many files: `run_sweep(jobs, executor)` and `open_executor(kind)` (local processes, Dask,
  Slurm), `catalogue(folder)` (a pandas DataFrame of every trajectory under a folder).
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_EXPORTS = {
    "RunConfig": "config", "SignalConfig": "config", "DegradeConfig": "config", "ModelConfig": "config",
    "FitConfig": "config", "RecordConfig": "config", "preset": "config", "apply_overrides": "config",
    "record": "runner", "resume": "runner",
    "open_trajectory": "trajectory", "check_trajectory": "trajectory", "open_xarray": "trajectory",
    "repair_trajectory": "trajectory",
    "build_model": "models", "MODELS": "models", "OPTIMIZERS": "optim", "OPERATORS": "operators",
    "LOSSES": "losses", "RULES": "analyze.stopping",
    "analyze_amplitudes_file": "analyze.amplitudes", "divergence_file": "analyze.divergence",
    "spectrum_file": "analyze.spectrum", "psnr_file": "analyze.psnr", "stop_file": "analyze.stopping",
    "noise_fit_file": "analyze.noise_fit",
    "catalogue": "trajectory_index", "run_sweep": "executors", "open_executor": "executors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
