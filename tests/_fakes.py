"""Test doubles shared by the analyzer tests (importable: ``from _fakes import FakeTrajectory``)."""

from __future__ import annotations

import numpy as np


class FakeTrajectory:
    """The documented reader API of `spectral_lab.trajectory`, backed by float32 arrays.

    Parameters
    ----------
    runs : list of arrays ``(T_r, *signal_shape)``
        The frames of each run (runs may differ in length, as after a kill).
    target : array ``signal_shape``, optional
        The clean signal; zeros when omitted.
    observed : array, optional
        What was fitted; the target when omitted.
    kind : str, optional
        ``"1d"`` or ``"image"``; from the target's rank when omitted.
    config : dict, optional
        The stored configuration; ``{}`` when omitted.
    seeds : list of dict, optional
        ``run_seeds(r)``; by default ``{"seed": r, "weight_seed": 100 + r, "input_seed": 200 + r}``.
    operator : dict, optional
        ``{"name", "options"}`` of the forward operator; the identity when omitted.
    known : array ``(1, *spatial)``, optional
        The inpainting mask (1 = known); None when every sample is observed.
    operator_arrays : dict, optional
        ``operator_arrays()``: the operator's arrays (a blend's foreground, background, mask);
        ``{}`` when omitted.

    Reads are observable: ``blocks_read`` lists the size of every block ``iter_frames``
    handed out and ``frames_read`` is the largest slice taken from ``frames(r)``, so tests
    can check that an analyzer streams.
    """

    def __init__(self, runs, target=None, *, observed=None, kind=None, config=None, seeds=None, operator=None,
                 known=None, operator_arrays=None):
        self.arrays = [np.asarray(r, dtype=np.float32) for r in runs]
        shape = self.arrays[0].shape[1:]
        self.target = np.zeros(shape, np.float32) if target is None else np.asarray(target, np.float32)
        self.observed = self.target if observed is None else np.asarray(observed, dtype=np.float32)
        self.signal_shape = self.target.shape
        self.kind = kind if kind is not None else ("1d" if self.target.ndim == 1 else "image")
        self.config = {} if config is None else config
        self.n_runs = len(self.arrays)
        self.operator = operator or {"name": "identity", "options": {}}
        self.known = None if known is None else np.asarray(known, dtype=np.float64)
        self._operator_arrays = dict(operator_arrays or {})
        self._seeds = seeds
        self.blocks_read: list[int] = []
        self.frames_read = 0

    def run_seeds(self, r):
        if self._seeds is not None:
            return self._seeds[r]
        return {"seed": r, "weight_seed": 100 + r, "input_seed": 200 + r}

    def operator_arrays(self):
        return dict(self._operator_arrays)

    def n_frames(self, r):
        return len(self.arrays[r])

    def frames(self, r):
        return _CountingFrames(self, self.arrays[r])

    def iter_frames(self, r, chunk=None, start=0, stop=None):
        chunk = chunk or 16
        stop = len(self.arrays[r]) if stop is None else min(stop, len(self.arrays[r]))
        for a in range(start, stop, chunk):
            block = self.arrays[r][a : min(a + chunk, stop)]
            self.blocks_read.append(len(block))
            yield a, block


class _CountingFrames:
    """Slices like an h5py dataset and remembers the largest block read."""

    def __init__(self, owner, frames):
        self._owner, self._frames = owner, frames
        self.shape, self.dtype = frames.shape, frames.dtype

    def __len__(self):
        return len(self._frames)

    def __getitem__(self, index):
        block = self._frames[index]
        if block.ndim == self._frames.ndim:
            self._owner.frames_read = max(self._owner.frames_read, len(block))
        return block


def run_cli(capsys, *argv):
    """(exit code, stdout, stderr) of ``spectral-lab argv`` run in this process."""
    from spectral_lab.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def add_fault_rows(rows) -> None:
    """Append fault-table rows to the JSON file named by ``SPECTRAL_LAB_FAULT_TABLE`` (the
    README's fault table is filled from it; delete the file before a run to start anew)."""
    import json
    import os
    from pathlib import Path

    target = os.environ.get("SPECTRAL_LAB_FAULT_TABLE")
    if target:
        path = Path(target)
        old = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps(old + list(rows), indent=2))
