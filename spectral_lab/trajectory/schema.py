"""The trajectory file's public contract: names, version and checks. See docs/trajectory-format.md.

This module holds only constants (it imports nothing): the rest of the ``trajectory``
package is what opens HDF5 files.
"""

from __future__ import annotations

FORMAT_NAME = "spectral_lab.trajectory"
FORMAT_VERSION = 2
# version 2: the /operator group, /observed of the operator's output shape, /target optional

# root attributes
ATTR_FORMAT = "format"
ATTR_VERSION = "format_version"
ATTR_LAB_VERSION = "spectral_lab_version"
ATTR_TORCH_VERSION = "torch_version"
ATTR_CREATED = "created"
ATTR_GIT = "git_commit"
ATTR_CONFIG = "config"
ATTR_KIND = "kind"
ATTR_SIGNAL_SHAPE = "signal_shape"
ATTR_N_RUNS = "n_runs"
ATTR_ITERATIONS = "iterations"
ROOT_ATTRS = (ATTR_FORMAT, ATTR_VERSION, ATTR_LAB_VERSION, ATTR_TORCH_VERSION, ATTR_CREATED,
              ATTR_CONFIG, ATTR_KIND, ATTR_SIGNAL_SHAPE, ATTR_N_RUNS, ATTR_ITERATIONS)

# datasets
TARGET = "target"  # optional from version 2 (absent: no clean reference, record --observed alone)
OBSERVED = "observed"  # the operator's output shape (smaller than the signal for super-resolution)
OPERATOR = "operator"  # group: attributes name and options (JSON), datasets of its arrays (mask)
OPERATOR_NAME = "name"
OPERATOR_OPTIONS = "options"
RUNS = "runs"
OUTPUT = "output"
LOSS = "loss"
ITERATIONS = "iterations"  # version 2: (T,) int64, the iteration of every stored frame (a frame stride)
POSTERIOR_MEAN = "posterior_mean"  # version 2, with a burn-in: per run, signal_shape float64
POSTERIOR_VAR = "posterior_var"
POSTERIOR_COUNT = "posterior_count"  # scalar int64: iterations averaged so far
SNAPSHOTS = "snapshots"  # version 2, optional group: parameters at chosen iterations
SNAPSHOT_PARAMS = "snapshots/params"  # (S, R, P) float32, every run's parameters flattened
SNAPSHOT_ITERATIONS = "snapshots/iterations"  # (S,) int64; -1 = not reached yet
RUN_ATTRS = ("seed", "weight_seed", "input_seed")
STATUS = "status"
STATUS_STATE = "status/state"
STATUS_FRAMES = "status/frames"
STATUS_MESSAGE = "status/message"
CHECKPOINT = "checkpoint"
CHECKPOINT_SLOTS = ("checkpoint/slot0", "checkpoint/slot1")
SLOT_BLOB = "blob"
SLOT_META = "meta"  # int64 [iteration, nbytes, crc32]; iteration -1 = empty

# dimension scales (HDF5 Dimension Scales, netCDF-4 conventions): what xarray, ncdump and
# other tools name the axes of every signal dataset; created with the layout
DIM_ITERATION = "iteration"  # dimension only (no values; netCDF's "not a variable"), unlimited
DIM_CHANNEL, DIM_Y, DIM_X = "channel", "y", "x"  # images: (C, H, W) coordinate variables 0, 1, 2, ...
DIM_SAMPLE = "sample"  # 1D: (N,) coordinate variable 0 .. N-1
DIM_OBSERVED_PREFIX = "observed_"  # the observation's own spatial axes when it is smaller (superres)
ATTR_UNITS = "units"
ATTR_LONG_NAME = "long_name"

STATES = ("running", "complete", "interrupted", "diverged", "failed")
RESUMABLE_STATES = ("running", "interrupted", "failed")
MESSAGE_BYTES = 512

KINDS = ("1d", "image")

# storage of frames
STORAGE_DTYPES = ("float32", "float16")
COMPRESSIONS = ("none", "gzip", "lzf")


def run_group(r: int) -> str:
    return f"{RUNS}/{r}"
