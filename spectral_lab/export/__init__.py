"""Take-away outputs of a trajectory: one frame as an image or a signal, the whole file as a labelled array.

- `choose_frame`: the stored frame of a run that ``best`` (the oracle-best PSNR; needs the
  clean target), ``last``, an iteration N or ``stop:RULE`` (a stopping rule of
  `spectral_lab.analyze.stopping.RULES`, which reads no target) names;
- `write_frame`: an image as a 16-bit (or 8-bit) PNG or ``.npy``, a 1D signal as ``.npy`` or ``.csv``;
- `export_trajectory`: every run's outputs and losses as one labelled array, dims (run,
  iteration, channel, y, x) or (run, iteration, sample), with the configuration as attributes,
  to netCDF-4 (``.nc``, needs h5netcdf), Zarr (``.zarr``, needs xarray and zarr) or ``.npz``
  (needs nothing). Frames are read a block at a time: memory stays near one block (one run
  for Zarr).

Every output is written to a hidden sibling and renamed into place when complete, so a failure
leaves no half-written file; an existing output is replaced only with ``overwrite``, and a
trajectory file never (`check_output`).
"""

from __future__ import annotations

from .frame import FRAME_SUFFIXES, FrameChoice, choose_frame, parse_frame, png_bytes, write_frame
from .labelled import TRAJECTORY_FORMATS, check_export, export_trajectory, labelled_dims
from ..outputs import check_output

__all__ = ["FRAME_SUFFIXES", "TRAJECTORY_FORMATS", "FrameChoice", "parse_frame", "choose_frame", "check_output",
           "check_export", "write_frame", "export_trajectory", "png_bytes", "labelled_dims"]
