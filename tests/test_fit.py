"""The fit loop through the runner: determinism, frame convention, stopping, device choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral_lab import runner
from spectral_lab.config import FitConfig
from spectral_lab.errors import ConfigError
from spectral_lab.fit import Callback, fit, make_fit_state
from spectral_lab.trajectory import open_trajectory


def frames_of(path):
    with open_trajectory(path) as traj:
        return [traj.frames(r)[: traj.n_frames(r)] for r in range(traj.n_runs)]


def losses_of(path):
    with open_trajectory(path) as traj:
        return [traj.losses(r) for r in range(traj.n_runs)]


def with_fit(cfg, **changes):
    return cfg.replace(fit=FitConfig(**{**cfg.to_dict()["fit"], **changes}))


def record(cfg, path, **kw):
    return runner.record(cfg, path, progress=False, **kw)


# --------------------------------------------------------------------------- determinism

def test_same_config_twice_gives_bit_identical_frames(tiny_config, tmp_path):
    record(tiny_config, tmp_path / "a.h5")
    record(tiny_config, tmp_path / "b.h5")
    for a, b in zip(frames_of(tmp_path / "a.h5"), frames_of(tmp_path / "b.h5")):
        assert np.array_equal(a, b)


def test_input_perturbation_with_the_same_seed_is_deterministic(tiny_image_config, tmp_path):
    assert tiny_image_config.fit.reg_noise_std > 0
    record(tiny_image_config, tmp_path / "a.h5")
    record(tiny_image_config, tmp_path / "b.h5")
    for a, b in zip(frames_of(tmp_path / "a.h5"), frames_of(tmp_path / "b.h5")):
        assert np.array_equal(a, b)


def test_input_perturbation_changes_the_trajectory(tiny_config, tmp_path):
    record(tiny_config, tmp_path / "plain.h5")
    record(with_fit(tiny_config, reg_noise_std=0.05), tmp_path / "noisy.h5")
    plain, noisy = frames_of(tmp_path / "plain.h5"), frames_of(tmp_path / "noisy.h5")
    assert not np.array_equal(plain[0][0], noisy[0][0])


def test_another_seed_gives_another_trajectory(tiny_config, tmp_path):
    record(tiny_config, tmp_path / "a.h5")
    record(with_fit(tiny_config, seed=5), tmp_path / "b.h5")
    assert not np.array_equal(frames_of(tmp_path / "a.h5")[0], frames_of(tmp_path / "b.h5")[0])


def test_run_of_a_recorded_batch_equals_its_seed_recorded_alone(tiny_image_config, tmp_path):
    # Weights, input z and the per-step input perturbation all follow the run's own seed.
    record(with_fit(tiny_image_config, runs=3, seed=7), tmp_path / "batch.h5")
    record(with_fit(tiny_image_config, runs=1, seed=8), tmp_path / "alone.h5")
    batch, alone = frames_of(tmp_path / "batch.h5")[1], frames_of(tmp_path / "alone.h5")[0]
    np.testing.assert_allclose(batch, alone, rtol=0, atol=1e-5)  # observed 1.5e-6 (grouped convs)


# --------------------------------------------------------------------------- frame convention

def test_frame_zero_is_the_untrained_network_applied_to_its_input(tiny_config, tmp_path):
    record(tiny_config, tmp_path / "a.h5")
    problem = runner.make_problem(tiny_config)
    state, z, _ = runner.prepare_fit(tiny_config, problem, torch.device("cpu"))
    with torch.no_grad():
        untrained = state.net(z).reshape(tiny_config.fit.runs, *problem.clean.shape).numpy()
    for r, frames in enumerate(frames_of(tmp_path / "a.h5")):
        assert np.array_equal(frames[0], untrained[r])


def test_a_run_of_n_iterations_has_n_plus_one_frames(tiny_config, tmp_path):
    result = record(tiny_config, tmp_path / "a.h5")
    assert result.status == "complete" and result.frames == tiny_config.fit.iterations + 1
    with open_trajectory(tmp_path / "a.h5") as traj:
        for r in range(traj.n_runs):
            assert traj.n_frames(r) == traj.frames(r).shape[0] == len(traj.losses(r)) == 21


def test_loss_falls_on_a_tiny_fit(tiny_config, tmp_path):
    record(tiny_config, tmp_path / "a.h5")
    for loss in losses_of(tmp_path / "a.h5"):
        assert loss[-1] < 0.5 * loss[0]


def test_loss_of_each_frame_is_its_mean_squared_error_to_the_observation(tiny_config, tmp_path):
    record(tiny_config, tmp_path / "a.h5")
    observed = runner.make_problem(tiny_config).observed.astype(np.float64)
    for frames, loss in zip(frames_of(tmp_path / "a.h5"), losses_of(tmp_path / "a.h5")):
        mse = ((frames.astype(np.float64) - observed) ** 2).mean(axis=1)
        np.testing.assert_allclose(loss, mse, rtol=1e-5)


# --------------------------------------------------------------------------- stopping

def test_should_stop_ends_the_fit_as_interrupted_after_the_current_step(tiny_config, tmp_path):
    polls = []

    def should_stop():
        polls.append(1)
        return len(polls) >= 5

    result = record(tiny_config, tmp_path / "a.h5", should_stop=should_stop)
    assert result.status == "interrupted" and result.frames == 5
    with open_trajectory(tmp_path / "a.h5") as traj:
        assert traj.status == "interrupted" and traj.n_frames(0) == 5


class _Count(Callback):
    def __init__(self):
        self.calls = {"start": 0, "step": 0, "frame": 0, "end": 0}

    def on_start(self, state):
        self.calls["start"] += 1

    def on_step_begin(self, state):
        self.calls["step"] += 1

    def on_frame(self, iteration, output, loss):
        self.calls["frame"] += 1

    def on_end(self, state, result):
        self.calls["end"] += 1


def test_callbacks_see_every_frame_once_and_start_and_end_once(tiny_config):
    problem = runner.make_problem(tiny_config)
    state, z, y = runner.prepare_fit(tiny_config, problem, torch.device("cpu"))
    count = _Count()
    fit(state, z, y, iterations=7, callbacks=[count])
    assert count.calls == {"start": 1, "step": 8, "frame": 8, "end": 1}


def test_unknown_optimizer_is_a_config_error(tiny_config):
    state, _, _ = runner.prepare_fit(tiny_config, runner.make_problem(tiny_config), torch.device("cpu"))
    with pytest.raises(ConfigError, match="unknown optimizer 'lbfgs'; choose from adam, sgd"):
        make_fit_state(state.net, lr=1e-3, optimizer="lbfgs")


# --------------------------------------------------------------------------- device

needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@needs_no_cuda
def test_auto_device_is_the_cpu_without_cuda():
    assert runner.select_device("auto") == torch.device("cpu")


@needs_no_cuda
def test_asking_for_cuda_without_it_is_a_config_error():
    with pytest.raises(ConfigError, match="sees no CUDA device"):
        runner.select_device("cuda")


@pytest.mark.parametrize("name", ["bogus", "cuda:x", "mps"])
def test_unknown_or_unsupported_device_is_a_config_error(name):
    with pytest.raises(ConfigError, match="use auto, cpu, cuda or cuda:N"):
        runner.select_device(name)


@needs_no_cuda
def test_record_on_cuda_without_it_fails_before_creating_the_file(tiny_config, tmp_path):
    with pytest.raises(ConfigError):
        record(with_fit(tiny_config, device="cuda"), tmp_path / "a.h5")
    assert not (tmp_path / "a.h5").exists()


def test_a_run_on_the_cpu_records(tiny_config, tmp_path):
    assert tiny_config.fit.device == "cpu"
    assert record(tiny_config, tmp_path / "a.h5").status == "complete"
