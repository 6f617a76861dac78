"""Trajectory files: round trip, storage options, the documented layout, and a killed writer."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from spectral_lab import runner
from spectral_lab.trajectory import schema as S
from spectral_lab.config import FitConfig, RecordConfig, RunConfig, run_seeds, validate
from spectral_lab.errors import TrajectoryError
from spectral_lab.fit import Callback
from spectral_lab.trajectory import check_trajectory, create_trajectory, open_trajectory

FORMAT_DOC = Path(__file__).resolve().parents[1] / "docs" / "trajectory-format.md"


def with_fit(cfg, **changes):
    return cfg.replace(fit=FitConfig(**{**cfg.to_dict()["fit"], **changes}))


def with_record(cfg, **changes):
    return cfg.replace(record=RecordConfig(**{**cfg.to_dict()["record"], **changes}))


def frames_of(path):
    with open_trajectory(path) as traj:
        return [traj.frames(r)[: traj.n_frames(r)] for r in range(traj.n_runs)]


class _Losses(Callback):
    def __init__(self):
        self.losses = []

    def on_frame(self, iteration, output, loss):
        self.losses.append(loss.numpy().copy())


@pytest.fixture
def recorded(tiny_config, tmp_path):
    """(config, path, the losses the fit reported as (T, R))."""
    losses = _Losses()
    path = tmp_path / "tiny.h5"
    runner.record(tiny_config, path, progress=False, callbacks=[losses])
    return tiny_config, path, np.stack(losses.losses)


# --------------------------------------------------------------------------- round trip

def test_stored_config_is_the_run_config_resolved(recorded):
    cfg, path, _ = recorded
    resolved = validate(cfg)  # the task's operator and noise filled in
    assert resolved.operator.name == "identity" and resolved.degrade.noise == "none"
    with open_trajectory(path) as traj:
        assert traj.config == json.loads(json.dumps(resolved.to_dict()))
        assert RunConfig.from_dict(traj.config) == resolved


def test_target_and_observed_are_the_problem_s_signals(tiny_image_config, tmp_path):
    runner.record(tiny_image_config, tmp_path / "img.h5", progress=False)
    problem = runner.make_problem(tiny_image_config)
    with open_trajectory(tmp_path / "img.h5") as traj:
        assert traj.kind == "image" and traj.signal_shape == (3, 16, 20)
        assert np.array_equal(traj.target, problem.clean)
        assert np.array_equal(traj.observed, problem.observed)
        assert not np.array_equal(traj.observed, traj.target)  # denoising: the noisy image


def test_noisy_1d_observation_is_the_signal_plus_noise(tiny_config, tmp_path):
    cfg = tiny_config.replace(task="denoise")
    runner.record(cfg, tmp_path / "noisy.h5", progress=False)
    with open_trajectory(tmp_path / "noisy.h5") as traj:
        noise = traj.observed.astype(np.float64) - traj.target
    assert np.abs(noise).max() < 6 * cfg.degrade.sigma / 255


def test_each_run_stores_its_seeds(recorded):
    cfg, path, _ = recorded
    with open_trajectory(path) as traj:
        assert [traj.run_seeds(r) for r in range(traj.n_runs)] == run_seeds(cfg.fit)


def test_finished_file_is_complete_with_every_frame(recorded):
    cfg, path, _ = recorded
    with open_trajectory(path) as traj:
        assert traj.status == "complete" and traj.n_runs == 2 and traj.iterations == 20
        assert [traj.n_frames(r) for r in range(2)] == [21, 21]
        assert traj.kind == "1d" and traj.signal_shape == (32,)


def test_stored_losses_are_the_losses_of_the_fit(recorded):
    _, path, losses = recorded
    with open_trajectory(path) as traj:
        for r in range(traj.n_runs):
            assert traj.losses(r).dtype == np.float64
            assert np.array_equal(traj.losses(r), losses[:, r].astype(np.float64))


def test_iter_frames_streams_the_stored_frames_in_order(recorded):
    _, path, _ = recorded
    with open_trajectory(path) as traj:
        blocks = list(traj.iter_frames(1, chunk=6))
        assert [start for start, _ in blocks] == [0, 6, 12, 18]
        assert np.array_equal(np.concatenate([b for _, b in blocks]), traj.frames(1)[:])


@pytest.mark.parametrize("compression", ["gzip", "lzf"])
def test_compressed_float32_frames_are_lossless(tiny_config, tmp_path, compression):
    runner.record(tiny_config, tmp_path / "plain.h5", progress=False)
    runner.record(with_record(tiny_config, compression=compression), tmp_path / "packed.h5", progress=False)
    with open_trajectory(tmp_path / "packed.h5") as traj:
        assert traj.frames(0).compression == compression and traj.frames(0).dtype == np.float32
    for a, b in zip(frames_of(tmp_path / "plain.h5"), frames_of(tmp_path / "packed.h5")):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_float16_frames_are_the_float32_frames_rounded(tiny_config, tmp_path, compression):
    runner.record(tiny_config, tmp_path / "f32.h5", progress=False)
    runner.record(with_record(tiny_config, dtype="float16", compression=compression), tmp_path / "f16.h5",
                  progress=False)
    with open_trajectory(tmp_path / "f16.h5") as traj:
        assert traj.frames(0).dtype == np.float16
        blocks = [b for _, b in traj.iter_frames(0)]
        assert all(b.dtype == np.float32 for b in blocks)  # readers get float32
    for full, half in zip(frames_of(tmp_path / "f32.h5"), frames_of(tmp_path / "f16.h5")):
        assert np.array_equal(half, full.astype(np.float16))
        np.testing.assert_allclose(half, full, rtol=2**-10, atol=2**-24)


def test_good_file_passes_the_check(recorded):
    assert check_trajectory(recorded[1]) == []


# --------------------------------------------------------------------------- refusals

def test_existing_path_is_refused_without_overwrite_and_left_untouched(tmp_path):
    path = tmp_path / "precious.h5"
    path.write_bytes(b"someone else's data")
    with pytest.raises(TrajectoryError, match="exists; pass --overwrite"):
        create_trajectory(path, config={}, kind="1d", target=np.zeros(8), observed=np.zeros(8),
                          run_seeds=[{"seed": 0, "weight_seed": 0, "input_seed": 0}], iterations=3)
    assert path.read_bytes() == b"someone else's data"


def test_record_refuses_an_existing_file_before_fitting(tiny_config, tmp_path):
    path = tmp_path / "precious.h5"
    path.write_bytes(b"someone else's data")
    with pytest.raises(TrajectoryError):
        runner.record(tiny_config, path, progress=False)
    assert path.read_bytes() == b"someone else's data"


def test_overwrite_replaces_an_existing_file(recorded):
    cfg, path, _ = recorded
    result = runner.record(with_fit(cfg, iterations=3), path, overwrite=True, progress=False)
    assert result.status == "complete"
    with open_trajectory(path) as traj:
        assert traj.n_frames(0) == 4


# --------------------------------------------------------------------------- documented layout

def _names_in_file(path) -> set[str]:
    import h5py  # the layout walk needs the raw file; the package reads it only in record.py

    names = set()
    with h5py.File(path, "r") as f:
        names.update(f.attrs)
        f.visititems(lambda name, obj: names.update([*name.split("/"), *obj.attrs]))
    return {n for n in names if not n.isdigit()}


def test_every_name_in_the_file_is_documented(recorded):
    if not FORMAT_DOC.exists():
        pytest.skip(f"{FORMAT_DOC} is not written yet")
    doc = FORMAT_DOC.read_text()
    missing = sorted(n for n in _names_in_file(recorded[1]) if not re.search(rf"\b{re.escape(n)}\b", doc))
    assert missing == []
    assert re.search(rf"\b{S.FORMAT_NAME}\b", doc) and str(S.FORMAT_VERSION) in doc
    for state in S.STATES:
        assert state in doc


def test_every_schema_name_is_in_the_file(recorded):
    import h5py

    with h5py.File(recorded[1], "r") as f:
        assert set(S.ROOT_ATTRS) <= set(f.attrs)
        for name in (S.TARGET, S.OBSERVED, S.STATUS_STATE, S.STATUS_FRAMES, S.STATUS_MESSAGE,
                     *(f"{slot}/{ds}" for slot in S.CHECKPOINT_SLOTS for ds in (S.SLOT_BLOB, S.SLOT_META))):
            assert name in f
        for r in range(2):
            assert set(S.RUN_ATTRS) <= set(f[S.run_group(r)].attrs)
            assert {S.OUTPUT, S.LOSS} <= set(f[S.run_group(r)])


# --------------------------------------------------------------------------- a killed writer

_CHILD = """
import json, sys
from spectral_lab import runner
from spectral_lab.config import RunConfig
runner.record(RunConfig.from_dict(json.loads(sys.argv[1])), sys.argv[2], progress=False)
"""


def _wait_for_flushed_frames(path, proc, at_least, timeout=60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the recording exited early: {proc.stderr.read().decode()}")
        if path.exists():
            try:
                with open_trajectory(path) as traj:
                    if traj.n_frames(0) >= at_least:
                        return traj.n_frames(0)
            except TrajectoryError:
                pass  # still being created
        time.sleep(0.02)
    raise AssertionError(f"fewer than {at_least} frames were flushed to {path} within {timeout} s")


def test_killed_run_keeps_flushed_frames(tiny_config, tmp_path, subprocess_env):
    # Long enough never to finish; a flush every 0.05 s so frames reach the disk early.
    cfg = with_record(with_fit(tiny_config, iterations=1_000_000), flush_seconds=0.05)
    path = tmp_path / "killed.h5"
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(cfg.to_dict()), str(path)],
                            env=subprocess_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        seen = _wait_for_flushed_frames(path, proc, at_least=10)  # several flushes
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    assert check_trajectory(path) == []
    with open_trajectory(path) as traj:
        assert traj.status == "running"
        n = traj.n_frames(0)
        assert n >= seen >= 10 and traj.n_frames(1) == n
        killed = [traj.frames(r)[:n] for r in range(traj.n_runs)]
        stored_cfg = RunConfig.from_dict(traj.config)
    assert stored_cfg == validate(cfg)

    # Frame i does not depend on the total iterations: a short uninterrupted run must
    # reproduce every flushed frame bit for bit.
    runner.record(with_fit(cfg, iterations=n), tmp_path / "whole.h5", progress=False)
    for r, whole in enumerate(frames_of(tmp_path / "whole.h5")):
        assert np.array_equal(killed[r], whole[:n])


def test_writer_under_a_slow_disk_loses_no_frame_and_keeps_order(tiny_config, tmp_path, monkeypatch):
    import dataclasses

    from spectral_lab.trajectory import writer as rec

    cfg = tiny_config.replace(fit=dataclasses.replace(tiny_config.fit, iterations=60),
                              record=dataclasses.replace(tiny_config.record, flush_seconds=0.001))
    original = rec._Writer.write_frames
    starts = []

    def slow_disk(self, start, outputs, losses, *rest):
        time.sleep(0.02)  # every block waits: the bounded queue fills and training has to wait
        starts.append(start)
        return original(self, start, outputs, losses, *rest)

    monkeypatch.setattr(rec._Writer, "write_frames", slow_disk)
    runner.record(cfg, tmp_path / "slow.h5", progress=False)
    monkeypatch.undo()
    runner.record(cfg, tmp_path / "fast.h5", progress=False)
    assert len(starts) > 8 and starts == sorted(starts)  # many blocks, handed over in order
    with open_trajectory(tmp_path / "slow.h5") as slow, open_trajectory(tmp_path / "fast.h5") as fast:
        for r in range(cfg.fit.runs):
            assert slow.n_frames(r) == fast.n_frames(r) == 61
            assert np.array_equal(slow.frames(r)[:], fast.frames(r)[:])
            assert np.array_equal(slow.losses(r), fast.losses(r))
