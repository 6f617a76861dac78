"""The sweep engine: a job is recorded, reused, resumed or recorded anew depending only on what
its file holds; estimates cost what is left to fit. Tiny 1D conv fits (fractions of a second)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest

from spectral_lab.config import RecordConfig
from spectral_lab.errors import DivergedError
from spectral_lab.runner import record
from spectral_lab.sweep import (FileState, Job, action_of, estimate_jobs, estimate_table, fmt_bytes, fmt_seconds,
                                inspect_file, markdown_table, plan, record_job, record_jobs)
from spectral_lab.trajectory import open_trajectory


# conv depth 3, width 8, kernel 3 with biases: 1->8, 8->8, 8->1
PARAMS = (3 * 8 + 8) + (3 * 8 * 8 + 8) + (3 * 8 + 1)


@pytest.fixture
def job(tiny_config, tmp_path) -> Job:
    """20 iterations, 2 runs; a flush and a checkpoint at every frame, so that a killed
    recording leaves frames and a checkpoint behind."""
    cfg = replace(tiny_config, record=RecordConfig(flush_seconds=1e-6, checkpoint_seconds=0.0))
    return Job(tmp_path / "sub" / "tiny.h5", cfg, "tiny")


def frames(path) -> list[np.ndarray]:
    with open_trajectory(path) as t:
        return [np.asarray(t.frames(r)[: t.n_frames(r)]) for r in range(t.n_runs)]


def test_a_job_without_a_file_is_recorded_with_its_network_noted(job):
    messages = []
    rec = record_job(job, log=messages.append)
    assert rec.action == "record" and not rec.reused and rec.path == job.path and rec.job is job
    assert messages[0].startswith("  recorded tiny.h5: conv")
    assert rec.network["class"] == "ConvNet" and rec.network["runs"] == 2
    assert rec.parameters_per_run == PARAMS
    assert inspect_file(job.path, job.config) == FileState(True, "complete", 21)


def test_a_complete_file_of_the_same_configuration_is_reused_untouched(job):
    first = record_job(job)
    before = job.path.read_bytes()
    messages = []
    again = record_job(job, log=messages.append)
    assert again.action == "reuse" and again.reused and again.seconds == 0.0
    assert messages == ["  reusing tiny.h5 (complete, same configuration)"]
    assert job.path.read_bytes() == before
    assert again.network == first.network  # from a one-run build: the same per-run network


def test_an_interrupted_file_is_resumed_to_the_uninterrupted_trajectory(job, tmp_path):
    straight = record_job(replace(job, path=tmp_path / "straight.h5"))
    steps = iter(range(100))
    job.path.parent.mkdir(parents=True)
    assert record(job.config, job.path, progress=False, should_stop=lambda: next(steps) >= 7).status == "interrupted"
    assert action_of(inspect_file(job.path, job.config)) == "resume"
    messages = []
    rec = record_job(job, log=messages.append)
    assert rec.action == "resume" and messages == ["  resuming tiny.h5 (interrupted)"]
    assert rec.network == straight.network
    for a, b in zip(frames(job.path), frames(straight.path)):
        np.testing.assert_array_equal(a, b)


def test_a_killed_recording_is_resumed_to_the_uninterrupted_trajectory(job, tmp_path, subprocess_env):
    # a separate Python SIGKILLs itself after frame 12: the file stays "running", no process writes it
    script = textwrap.dedent(f"""
        import os, signal, torch
        from spectral_lab.config import RunConfig
        from spectral_lab.fit import Callback
        from spectral_lab.runner import record
        torch.set_num_threads(1)
        class Kill(Callback):
            def on_frame(self, iteration, output, loss):
                if iteration == 12:
                    os.kill(os.getpid(), signal.SIGKILL)
        cfg = RunConfig.from_dict({job.config.to_dict()!r})
        record(cfg, {str(job.path)!r}, progress=False, callbacks=[Kill()])
        """)
    job.path.parent.mkdir(parents=True)
    done = subprocess.run([sys.executable, "-c", script], env=subprocess_env, capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    state = inspect_file(job.path, job.config)
    assert state.same and state.status == "running" and 0 < state.frames < 21
    est = estimate_jobs([job])
    # only the missing frames of 2 runs x 32 samples x float32 are left (the checkpoint slots exist)
    assert est.bytes == [2 * (21 - state.frames) * 32 * 4]
    rec = record_job(job)
    assert rec.action == "resume"
    straight = record_job(replace(job, path=tmp_path / "straight.h5"))
    for a, b in zip(frames(job.path), frames(straight.path)):
        np.testing.assert_array_equal(a, b)


def test_a_changed_configuration_is_recorded_anew(job):
    record_job(job)
    changed = replace(job, config=replace(job.config, fit=replace(job.config.fit, iterations=5)))
    assert inspect_file(job.path, changed.config) == FileState(False, "complete", 21)
    rec = record_job(changed)
    assert rec.action == "record"
    with open_trajectory(job.path) as t:
        assert t.n_frames(0) == 6 and t.config["fit"]["iterations"] == 5


def test_an_unreadable_file_is_recorded_anew(job):
    job.path.parent.mkdir(parents=True)
    job.path.write_bytes(b"not a trajectory")
    assert inspect_file(job.path, job.config) == FileState(False)
    assert record_job(job).action == "record"


def test_a_diverged_fit_raises_and_is_not_taken_for_done(job):
    bad = replace(job, config=replace(job.config, fit=replace(job.config.fit, lr=1e6, optimizer="sgd")))
    with pytest.raises(DivergedError, match="tiny.h5"):
        record_job(bad)
    assert action_of(inspect_file(bad.path, bad.config)) == "record"


def test_estimate_only_probes_without_writing_any_file(job, tmp_path):
    other = replace(job, path=tmp_path / "sub" / "other.h5")
    messages = []
    est = plan([job, other], estimate_only=True, log=messages.append)
    assert not job.path.exists() and not job.path.parent.exists()
    assert len(est.seconds) == 2 and all(s > 0 for s in est.seconds_per_iteration)
    # identical settings share one probe; frames of 2 runs x 21 iterations + two checkpoint slots
    assert est.seconds_per_iteration[0] == est.seconds_per_iteration[1]
    frames_bytes = 2 * 20 * 32 * 4
    checkpoint = 3 * 4 * 2 * PARAMS  # parameters and Adam's two moments, float32, 2 runs
    assert est.bytes == [frames_bytes + 2 * checkpoint] * 2 and est.shapes == [(32,), (32,)]
    assert "tiny.h5" in messages[1] and "other.h5" in messages[1] and messages[2].startswith("estimated total")


def test_the_estimate_counts_only_the_checkpoint_slots_a_run_will_fill(job):
    from spectral_lab.sweep import checkpoint_slots_written

    assert checkpoint_slots_written(10.0, 0.0) == 2  # at every flush
    assert [checkpoint_slots_written(t, 60.0) for t in (59.0, 60.0, 150.0, 1e6)] == [0, 1, 2, 2]
    rare = replace(job, config=replace(job.config, record=replace(job.config.record, checkpoint_seconds=3600.0)))
    est_every, est_rare = estimate_jobs([job]), estimate_jobs([rare])
    frames_bytes = 2 * 20 * 32 * 4
    assert est_rare.bytes == [frames_bytes]  # a run of milliseconds writes no hourly checkpoint
    assert est_every.bytes == [frames_bytes + 2 * 3 * 4 * 2 * PARAMS]


def test_the_probe_fits_as_the_recording_does(job, monkeypatch):
    """The estimate's probe times the loop the file will run: bf16 autocast, the input
    perturbation and compilation as configured (an earlier probe timed fp32 for a bf16 file)."""
    import spectral_lab.fit as fit_module
    from spectral_lab.sweep import probe_seconds_per_iteration

    seen, real_fit = [], fit_module.fit

    def spy(*args, **kwargs):
        seen.append({k: kwargs.get(k) for k in ("precision", "compile", "reg_noise_std")})
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(fit_module, "fit", spy)
    cfg = replace(job.config, fit=replace(job.config.fit, precision="bf16", reg_noise_std=0.01))
    per_step, _ = probe_seconds_per_iteration(cfg)
    assert per_step > 0 and seen == [{"precision": "bf16", "compile": False, "reg_noise_std": 0.01}]


def test_a_file_to_reuse_costs_nothing_in_the_estimate(job):
    record_job(job)
    est = estimate_jobs([job])
    assert est.seconds == [0.0] and est.bytes == [0] and est.total_seconds == 0
    assert "reused" in estimate_table([job], est)


def test_jobs_run_the_same_through_an_executor(job, tmp_path):
    # the shape a later parallel sweep takes: record_job mapped over jobs by an Executor
    jobs = [job, replace(job, path=tmp_path / "b.h5")]
    with ThreadPoolExecutor(max_workers=1) as pool:
        mapped = list(pool.map(record_job, jobs))
    assert [r.action for r in mapped] == ["record", "record"]
    assert [r.action for r in record_jobs(jobs, log=lambda m: None)] == ["reuse", "reuse"]


def test_formatting_of_tables_times_and_sizes():
    assert markdown_table([{"a": 1}, {"b": 2, "a": 3}]) == "| a | b |\n|---|---|\n| 1 |  |\n| 3 | 2 |"
    assert [fmt_seconds(s) for s in (42, 1020, 12600)] == ["42 s", "17 min", "3.5 h"]
    assert [fmt_bytes(n) for n in (950, 12e9)] == ["950 B", "12 GB"]
