"""Files every tool reads: named dimensions for xarray, `open_xarray` on live and killed files,
`repair` of a killed writer's flags, and what `info` says about them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest
from _fakes import run_cli

from spectral_lab.trajectory import check_trajectory, create_trajectory, open_trajectory, repair_trajectory
from spectral_lab.trajectory import schema as S
from spectral_lab.errors import TrajectoryError

# a 2-level DIP on the 16 x 16 triangle, 2 runs, 6 iterations, a frame every 2
IMAGE = ("record", "--signal", "triangle", "--size", "16", "--model", "dip", "--model-opt", "levels=2",
         "--model-opt", "down=8", "--model-opt", "up=8", "--model-opt", "in_channels=4", "--iterations", "6",
         "--every", "2", "--runs", "2", "--lr", "0.01", "--device", "cpu", "--quiet")
ONED = ("record", "--signal", "sines", "--freqs", "2,5", "--amps", "1,1", "--length", "32", "--model", "conv",
        "--depth", "3", "--width", "8", "--iterations", "5", "--runs", "2", "--lr", "0.01", "--device", "cpu",
        "--quiet")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from spectral_lab.cli import main

    folder = tmp_path_factory.mktemp("interop")
    image, oned = folder / "image.h5", folder / "oned.h5"
    assert main([*IMAGE, "--out", str(image)]) == 0
    assert main([*ONED, "--out", str(oned)]) == 0
    return image, oned


_CHILD = """
import json, sys
from spectral_lab import runner
from spectral_lab.config import RunConfig
runner.record(RunConfig.from_dict(json.loads(sys.argv[1])), sys.argv[2], progress=False)
"""


def _start_recording(path, cfg, env) -> subprocess.Popen:
    """A recording in another process that runs until killed, flushing every 0.05 s; returns
    once it has flushed at least 10 frames."""
    import dataclasses
    import time

    cfg = cfg.replace(fit=dataclasses.replace(cfg.fit, iterations=1_000_000),
                      record=dataclasses.replace(cfg.record, flush_seconds=0.05))
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(cfg.to_dict()), str(path)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the recording exited early: {proc.stderr.read().decode()}")
        try:
            with open_trajectory(path) as t:
                if t.n_frames(0) >= 10:
                    return proc
        except TrajectoryError:
            pass  # still being created
        time.sleep(0.02)
    _kill(proc)
    raise AssertionError("the recording flushed fewer than 10 frames in 60 s")


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def killed(tmp_path_factory, tiny_config_module, subprocess_env_module):
    """A recording SIGKILLed after several flushes (as in test_record.py): flags set, no writer."""
    path = tmp_path_factory.mktemp("killed") / "killed.h5"
    proc = _start_recording(path, tiny_config_module, subprocess_env_module)
    _kill(proc)
    assert proc.returncode == -signal.SIGKILL
    return path


@pytest.fixture(scope="module")
def tiny_config_module():
    from spectral_lab.config import FitConfig, ModelConfig, RunConfig, SignalConfig

    return RunConfig(task="fit", signal=SignalConfig(kind="sines", freqs=(2, 5), amps=(1.0, 1.0), length=32),
                     model=ModelConfig(name="conv", options={"depth": 3, "width": 8}),
                     fit=FitConfig(iterations=20, lr=1e-2, runs=2, device="cpu"))


@pytest.fixture(scope="module")
def subprocess_env_module():
    import os

    from conftest import REPO

    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


# --------------------------------------------------------------------------- named dimensions

def test_every_signal_dataset_carries_named_dimensions_and_units(files):
    image, oned = files
    with h5py.File(image, "r") as f:
        out = f["runs/0/output"]
        assert [d[0].name.rsplit("/", 1)[-1] for d in out.dims] == ["iteration", "channel", "y", "x"]
        assert [d[0].name.rsplit("/", 1)[-1] for d in f["target"].dims] == ["channel", "y", "x"]
        assert f["runs/1/loss"].dims[0][0].name == "/iteration" and f["iterations"].dims[0][0].name == "/iteration"
        assert out.attrs["units"] == "1" and "output" in out.attrs["long_name"]
        assert f["y"].attrs["units"] == "pixel" and list(f["x"][()]) == list(range(16))
    with h5py.File(oned, "r") as f:
        assert [d[0].name for d in f["runs/0/output"].dims] == ["/iteration", "/sample"]


def test_the_dimension_scales_leave_the_file_valid(files):
    for path in files:
        assert check_trajectory(path) == []


def test_a_smaller_observation_gets_its_own_axes(tmp_path, capsys):
    code, _, err = run_cli(capsys, *IMAGE, "--task", "superres", "--factor", "2", "--out", tmp_path / "sr.h5")
    assert code == 0, err
    with h5py.File(tmp_path / "sr.h5", "r") as f:
        assert [d[0].name for d in f["observed"].dims] == ["/observed_channel", "/observed_y", "/observed_x"]
        assert f["observed_y"].shape == (8,)
    assert check_trajectory(tmp_path / "sr.h5") == []


def test_xarray_names_the_axes_of_a_finished_file_without_help(files):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    image, _ = files
    with xr.open_dataset(image, engine="h5netcdf", group="runs/0") as ds:
        assert ds["output"].dims == ("iteration", "channel", "y", "x")
        assert ds["loss"].dims == ("iteration",)


def test_open_xarray_gives_the_stored_iterations_and_unpadded_status(files):
    pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    from spectral_lab import open_xarray

    image, _ = files
    with open_trajectory(image) as t:
        expected = np.asarray(t.frames(1)[:], dtype=np.float32)
        its = t.frame_iterations(1)
    with open_xarray(image) as tree:
        assert tree["status"]["state"].item() == "complete"
        assert list(tree["runs/1"]["iteration"].values) == list(its) == [0, 2, 4, 6]
    with open_xarray(image, "runs/1") as ds:
        np.testing.assert_array_equal(ds["output"].values, expected)
        assert ds["output"].sel(iteration=4).shape == (1, 16, 16)


def test_open_xarray_refuses_an_unknown_group_and_a_non_trajectory(files, tmp_path):
    pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    from spectral_lab import open_xarray

    with pytest.raises(TrajectoryError, match="no group 'runs/7'"):
        open_xarray(files[0], "runs/7")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(TrajectoryError, match="not a spectral_lab trajectory"):
        open_xarray(other)


# --------------------------------------------------------------------------- killed and live files

def test_a_killed_file_opens_through_open_xarray_before_repair_and_with_plain_h5py_after(killed, capsys):
    pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    from spectral_lab import open_xarray

    with open_trajectory(killed) as t:
        n = t.n_frames(0)
        frames = np.asarray(t.frames(0)[:n])
    with pytest.raises(OSError):  # what a user of plain h5py meets first
        h5py.File(killed, "r")
    with open_xarray(killed, "runs/0") as ds:
        assert ds.sizes["iteration"] == n
        np.testing.assert_array_equal(ds["output"].values, frames)

    code, out, _ = run_cli(capsys, "info", killed)
    assert code == 0 and f"spectral-lab repair {killed}" in out
    code, out, _ = run_cli(capsys, "info", killed, "--json")
    info = json.loads(out)
    assert info["killed"] is True and info["needs_repair"] is True and info["writer_alive"] is False

    code, out, err = run_cli(capsys, "repair", killed)
    assert code == 0 and "cleared" in out, err
    with h5py.File(killed, "r") as f:  # plain h5py, no SWMR, no locking tricks
        assert f["status/state"][()].decode().strip() == "running"
        np.testing.assert_array_equal(f["runs/0/output"][:n], frames)
    import xarray as xr

    with xr.open_dataset(killed, engine="h5netcdf", group="runs/0") as ds:
        assert ds["output"].dims == ("iteration", "sample")
    assert check_trajectory(killed) == []
    code, out, _ = run_cli(capsys, "info", killed, "--json")
    assert json.loads(out)["needs_repair"] is False
    code, out, _ = run_cli(capsys, "repair", killed)
    assert code == 0 and "nothing to repair" in out


def test_open_xarray_reads_a_live_recording(tmp_path, tiny_config_module, subprocess_env_module, capsys):
    pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    from spectral_lab import open_xarray

    path = tmp_path / "live.h5"
    proc = _start_recording(path, tiny_config_module, subprocess_env_module)
    try:
        with open_xarray(path) as tree:
            n = tree["runs/0"].sizes["iteration"]
            assert n >= 10 and tree["status"]["state"].item() == "running"
            assert list(tree["runs/0"]["iteration"].values) == list(range(n))
            assert np.isfinite(tree["runs/1"]["output"].values).all()
        code, out, _ = run_cli(capsys, "info", path)
        assert "being written" in out and "swmr=True" in out
        code, _, err = run_cli(capsys, "repair", path)
        assert code == 1 and "being written by another process" in err
        assert proc.poll() is None  # the recording goes on
    finally:
        _kill(proc)


def test_repair_refuses_a_live_file_and_leaves_it_alone(tmp_path, capsys):
    path = tmp_path / "live.h5"
    f = create_trajectory(path, config={"task": "fit"}, kind="1d", target=np.zeros(8, np.float32),
                          observed=np.zeros(8, np.float32),
                          run_seeds=[{"seed": 0, "weight_seed": 0, "input_seed": 0}], iterations=3)
    try:
        before = path.read_bytes()[:64]
        with pytest.raises(TrajectoryError, match="being written by another process"):
            repair_trajectory(path)
        code, _, err = run_cli(capsys, "repair", path)
        assert code == 1 and "being written" in err and err.count("\n") == 1
        assert path.read_bytes()[:64] == before
    finally:
        f.close()


def test_repair_refuses_what_is_not_a_trajectory(tmp_path, capsys):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    code, _, err = run_cli(capsys, "repair", junk)
    assert code == 1 and "not an HDF5 file" in err


# --------------------------------------------------------------------------- info --json

def test_info_json_keeps_numbers_as_numbers(files, capsys):
    code, out, _ = run_cli(capsys, "info", files[0], "--json")
    info = json.loads(out)
    assert code == 0
    assert info["attrs"]["format_version"] == S.FORMAT_VERSION and info["attrs"]["n_runs"] == 2
    assert info["attrs"]["signal_shape"] == [1, 16, 16] and info["attrs"]["iterations"] == 6
    assert info["status"] == "complete" and info["killed"] is False and info["needs_repair"] is False
