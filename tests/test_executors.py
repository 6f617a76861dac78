"""Sweeps on executors: the local process pool, a Dask LocalCluster and submitit give the files
of a sequential run; a killed worker's file is resumed; a finished sweep records nothing;
failures are per point; staged files move into place atomically. Tiny 1D conv fits."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from spectral_lab import staging as staging_mod
from spectral_lab.config import RecordConfig
from spectral_lab.errors import DivergedError
from spectral_lab.executors import (Failure, InlineExecutor, SubmititExecutor, WorkerSettings, local_pool,
                                    open_executor, run_sweep)
from spectral_lab.staging import staged_path
from spectral_lab.sweep import inspect_file, locate, record_job
from spectral_lab.sweep_spec import spec_jobs
from spectral_lab.trajectory import check_trajectory, open_trajectory


def grid_spec(tiny_config) -> dict:
    """2 depths x 2 widths x 2 seeds of the tiny conv fit, one run a file."""
    base = replace(tiny_config, fit=replace(tiny_config.fit, runs=1)).to_dict()
    return {"base": base, "grid": {"model.options.depth": [2, 3], "model.options.width": [4, 8],
                                   "fit.seed": [0, 1]}}


def contents(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """Every run's frames and losses, and the stored configuration."""
    with open_trajectory(path) as t:
        assert t.status == "complete"
        frames = [np.asarray(t.frames(r)[: t.n_frames(r)]) for r in range(t.n_runs)]
        losses = [np.asarray(t.losses(r)) for r in range(t.n_runs)]
        return frames, losses, t.config


def assert_same_files(a: Path, b: Path) -> None:
    fa, la, ca = contents(a)
    fb, lb, cb = contents(b)
    assert ca == cb
    for x, y in zip(fa + la, fb + lb):
        np.testing.assert_array_equal(x, y)  # bitwise, on the CPU


@pytest.fixture(scope="module")
def sequential(tmp_path_factory, request):
    """The grid recorded one point after another in this process: the reference."""
    from spectral_lab.config import FitConfig, ModelConfig, RunConfig, SignalConfig

    tiny = RunConfig(task="fit", signal=SignalConfig(kind="sines", freqs=(2, 5), amps=(1.0, 1.0), length=32),
                     model=ModelConfig(name="conv", options={"depth": 3, "width": 8}),
                     fit=FitConfig(iterations=20, lr=1e-2, runs=2, device="cpu"))
    out = tmp_path_factory.mktemp("sequential")
    jobs = spec_jobs(grid_spec(tiny), out)
    result = run_sweep(jobs, InlineExecutor(), progress=False, log=lambda m: None)
    assert result.counts() == {"reuse": 0, "resume": 0, "record": 8, "failed": 0}
    return tiny, out


def test_the_grid_gives_readable_file_names(sequential):
    _, out = sequential
    names = sorted(p.name for p in out.glob("*.h5"))
    assert len(names) == 8 and "depth-2_width-4_seed-0.h5" in names


@pytest.fixture(scope="module")
def pool():
    """Two spawned local workers (one torch thread each; fake CUDA devices 5 and 7 to see the
    pinning; the fits run on the CPU), shared by the tests of this file: starting Python and
    torch costs seconds per worker."""
    with local_pool(2, threads=1, devices=["5", "7"]) as p:
        yield p


def test_a_grid_on_the_local_pool_gives_the_files_of_a_sequential_run(sequential, pool, tmp_path):
    tiny, ref = sequential
    jobs = spec_jobs(grid_spec(tiny), tmp_path / "pool")
    result = run_sweep(jobs, pool, settings=WorkerSettings(threads=1, staging=str(tmp_path / "stage")),
                       progress=False, log=lambda m: None)
    assert result.counts()["record"] == 8 and not result.failures
    for job in jobs:
        assert_same_files(job.path, ref / job.path.name)
    assert not list((tmp_path / "stage").glob("*.h5"))  # every staged file moved into place


def test_a_grid_on_a_dask_local_cluster_gives_the_files_of_a_sequential_run(sequential, tmp_path):
    pytest.importorskip("distributed")
    tiny, ref = sequential
    jobs = spec_jobs(grid_spec(tiny), tmp_path / "dask")
    with open_executor("dask", workers=2) as ex:
        result = run_sweep(jobs, ex, settings=WorkerSettings(threads=1, staging=str(tmp_path / "stage")),
                           progress=False, log=lambda m: None)
    assert result.counts()["record"] == 8 and not result.failures
    for job in jobs:
        assert_same_files(job.path, ref / job.path.name)


def test_submitit_jobs_give_the_files_of_a_sequential_run(sequential, tmp_path):
    submitit = pytest.importorskip("submitit")
    tiny, ref = sequential
    jobs = spec_jobs(grid_spec(tiny), tmp_path / "submitit")[:1]
    ex = SubmititExecutor(submitit.LocalExecutor(folder=str(tmp_path / "logs")), poll_seconds=0.2)
    try:
        result = run_sweep(jobs, ex, settings=WorkerSettings(threads=1, staging="auto"), progress=False,
                           log=lambda m: None)
    finally:
        ex.shutdown()
    assert result.counts()["record"] == 1, result.failures
    for job in jobs:
        assert_same_files(job.path, ref / job.path.name)


class _Refusing(Executor):
    def submit(self, fn, /, *args, **kwargs):
        raise AssertionError("a finished sweep submitted a point")


def test_a_rerun_of_a_finished_sweep_records_nothing(sequential):
    tiny, out = sequential
    jobs = spec_jobs(grid_spec(tiny), out)
    before = {j.path: (j.path.stat().st_mtime_ns, j.path.read_bytes()) for j in jobs}
    result = run_sweep(jobs, _Refusing(), progress=False, log=lambda m: None)
    assert result.counts() == {"reuse": 8, "resume": 0, "record": 0, "failed": 0}
    assert {j.path: (j.path.stat().st_mtime_ns, j.path.read_bytes()) for j in jobs} == before


def test_a_failed_point_is_reported_and_the_others_complete(tiny_config, tmp_path):
    spec = grid_spec(tiny_config)
    spec["grid"] = {"fit.lr": [1e-2, 1e6]}
    spec["base"]["fit"]["optimizer"] = "sgd"
    jobs = spec_jobs(spec, tmp_path)
    messages = []
    result = run_sweep(jobs, InlineExecutor(), progress=False, log=messages.append)
    (failure,) = result.failures
    assert isinstance(failure, Failure) and failure.kind == "diverged" and failure.path.name == "lr-1e+06.h5"
    assert result.counts()["record"] == 1 and inspect_file(jobs[0].path, jobs[0].config).status == "complete"
    assert any(m.startswith("  FAILED lr-1e+06.h5 (diverged)") for m in messages)
    with pytest.raises(DivergedError, match="1 of 2 point"):
        result.raise_for_failures()


def test_two_points_writing_one_file_are_refused_before_anything_runs(tiny_config, tmp_path):
    from spectral_lab.errors import ConfigError
    from spectral_lab.sweep import Job

    jobs = [Job(tmp_path / "a.h5", tiny_config), Job(tmp_path / "a.h5", tiny_config)]
    with pytest.raises(ConfigError, match="same file"):
        run_sweep(jobs, _Refusing(), progress=False)


def _slow_job(tiny_config, path: Path, iterations: int = 600):
    """A point long enough to be killed in the middle: a flush and a checkpoint every 20 ms."""
    cfg = replace(tiny_config, fit=replace(tiny_config.fit, iterations=iterations),
                  record=RecordConfig(flush_seconds=0.02, checkpoint_seconds=0.0))
    return spec_jobs({"base": cfg.to_dict(), "points": [{"label": "slow"}]}, path)[0]


def test_a_worker_killed_mid_sweep_leaves_a_file_the_rerun_resumes(tiny_config, pool, tmp_path):
    job = _slow_job(tiny_config, tmp_path / "out")
    stage = tmp_path / "stage"
    settings = WorkerSettings(threads=1, staging=str(stage))
    staged = staged_path(job.path, stage)
    doomed = local_pool(1, threads=1)
    box = {}
    runner = threading.Thread(target=lambda: box.update(result=run_sweep([job], doomed, settings=settings,
                                                                         progress=False, log=lambda m: None)))
    runner.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and inspect_file(staged, job.config).frames < 30:
        time.sleep(0.02)
    for process in list(doomed._processes.values()):  # the worker, SIGKILLed mid-fit
        os.kill(process.pid, signal.SIGKILL)
    runner.join(60)
    doomed.shutdown()
    (failure,) = box["result"].failures
    assert failure.kind == "lost" and "BrokenProcessPool" in failure.message
    left = inspect_file(staged, job.config)
    assert left.same and left.status == "running" and 30 <= left.frames < 601
    assert not job.path.exists() and check_trajectory(staged) == []
    assert locate(job, stage).action == "resume"
    result = run_sweep([job], pool, settings=settings, progress=False, log=lambda m: None)
    assert result.counts()["resume"] == 1 and not staged.exists()
    straight = record_job(replace(job, path=tmp_path / "straight.h5"))
    assert straight.action == "record"
    assert_same_files(job.path, tmp_path / "straight.h5")


def test_a_stopped_point_is_moved_into_place_and_resumed_from_there(tiny_config, tmp_path):
    job = _slow_job(tiny_config, tmp_path / "out", iterations=30)
    steps = iter(range(1000))
    with pytest.raises(Exception, match="interrupted"):
        record_job(job, staging=str(tmp_path / "stage"), should_stop=lambda: next(steps) >= 10)
    assert inspect_file(job.path, job.config).status == "interrupted"  # in place: any machine resumes it
    assert not list((tmp_path / "stage").glob("*.h5"))
    assert locate(job, tmp_path / "other-machine").action == "resume"
    assert record_job(job, staging=str(tmp_path / "other-machine")).action == "resume"
    record_job(replace(job, path=tmp_path / "straight.h5"))
    assert_same_files(job.path, tmp_path / "straight.h5")


def test_a_half_moved_file_is_replaced_by_the_finished_staged_copy(tiny_config, tmp_path):
    job = _slow_job(tiny_config, tmp_path / "out", iterations=30)
    stage = tmp_path / "stage"
    staged = staged_path(job.path, stage)
    stage.mkdir()
    record_job(replace(job, path=staged))  # finished in staging ...
    job.path.parent.mkdir()
    job.path.write_bytes(staged.read_bytes()[: staged.stat().st_size // 3])  # ... cut off by a killed `mv`
    assert not inspect_file(job.path, job.config).same
    assert locate(job, stage).action == "publish"
    rec = record_job(job, staging=str(stage))
    assert rec.action == "reuse" and not staged.exists() and check_trajectory(job.path) == []
    record_job(replace(job, path=tmp_path / "straight.h5"))
    assert_same_files(job.path, tmp_path / "straight.h5")


def test_publishing_across_file_systems_never_leaves_a_partial_destination(tmp_path, monkeypatch):
    staged, dest = tmp_path / "stage" / "x.h5", tmp_path / "out" / "x.h5"
    staged.parent.mkdir()
    staged.write_bytes(b"new" * 1000)
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    monkeypatch.setattr(staging_mod, "_same_filesystem", lambda a, b: False)

    def dies_half_way(src, dst):
        Path(dst).write_bytes(b"ne")
        raise KeyboardInterrupt  # killed in the middle of the copy

    with monkeypatch.context() as m:
        m.setattr(staging_mod, "_copy_durably", dies_half_way)
        with pytest.raises(KeyboardInterrupt):
            staging_mod.publish(staged, dest)
    assert dest.read_bytes() == b"old" and staged.exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["x.h5"]
    staging_mod.publish(staged, dest)
    assert dest.read_bytes() == b"new" * 1000 and not staged.exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["x.h5"]


def _worker_environment(_):
    import torch

    time.sleep(0.5)  # keep this worker busy so that the other one takes the next call
    return torch.get_num_threads(), os.environ.get("CUDA_VISIBLE_DEVICES")


def test_local_workers_get_their_threads_and_one_device_each(pool):
    seen = list(pool.map(_worker_environment, range(2)))
    assert sorted(seen) == [(1, "5"), (1, "7")]


class _Broken(Executor):
    def submit(self, fn, /, *args, **kwargs):
        raise RuntimeError("sbatch: error: invalid partition")


def test_a_point_the_executor_refuses_is_a_failure_not_a_crash(tiny_config, tmp_path):
    jobs = spec_jobs(grid_spec(tiny_config), tmp_path)[:2]
    result = run_sweep(jobs, _Broken(), progress=False, log=lambda m: None)
    assert [f.kind for f in result.failures] == ["lost", "lost"]
    assert "could not submit it: RuntimeError: sbatch: error: invalid partition" in result.failures[0].message


def test_points_are_submitted_most_costly_first_and_listed_in_their_own_order(sequential, tmp_path):
    tiny, _ = sequential
    jobs = spec_jobs(grid_spec(tiny), tmp_path)[:4]
    submitted = []

    class Spy(InlineExecutor):
        def submit(self, fn, /, *args, **kwargs):
            submitted.append(args[0].path.name)
            return super().submit(fn, *args, **kwargs)

    result = run_sweep(jobs, Spy(), progress=False, log=lambda m: None, cost=[1.0, 5.0, 2.0, 5.0])
    names = [j.path.name for j in jobs]
    assert submitted == [names[1], names[3], names[2], names[0]]  # ties keep their order
    assert [r.job.path.name for r in result.recorded] == names
    submitted.clear()
    with pytest.raises(Exception, match="3 numbers for 4 points"):
        run_sweep(jobs, Spy(), progress=False, log=lambda m: None, cost=[1.0, 2.0, 3.0])
    assert submitted == []  # refused before anything ran


def test_the_wall_time_of_longest_first_on_workers():
    from spectral_lab.sweep import wall_seconds

    assert wall_seconds([9.0, 5.0, 2.0, 0.2], 2) == 9.0  # the longest job bounds it: not 16.2 / 2
    assert wall_seconds([3.0, 3.0, 2.0, 2.0, 2.0], 2) == 7.0
    assert wall_seconds([1.0, 2.0, 3.0], 1) == 6.0 and wall_seconds([], 4) == 0.0
    assert wall_seconds([4.0, 4.0], 8) == 4.0
