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


# --------------------------------------------------------------------------- host-device synchronisation

class SyncCounter(Callback):
    """Counts, on the training thread while the fit runs (from its ``on_start`` to its
    ``on_end``), the tensor calls that make the host wait for the device on a GPU: ``item``,
    ``bool``, ``float``, ``int``, ``tolist``, ``numpy``, ``cpu`` and ``to`` the CPU without
    ``non_blocking``. On the CPU they cost nothing, but the same code runs on a GPU, so the
    count is what a GPU run would wait for."""

    NAMES = ("item", "__bool__", "__float__", "__int__", "tolist", "numpy", "cpu")

    def __init__(self, monkeypatch) -> None:
        import threading

        self.count, self.thread, self.active = 0, threading.get_ident(), False
        for name in self.NAMES:
            monkeypatch.setattr(torch.Tensor, name, self._counted(getattr(torch.Tensor, name)))
        monkeypatch.setattr(torch.Tensor, "to", self._counted(torch.Tensor.to, only=self._to_host_blocking))

    @staticmethod
    def _to_host_blocking(args, kwargs) -> bool:
        if kwargs.get("non_blocking") or (len(args) > 1 and args[1] is True):
            return False
        dest = kwargs.get("device", args[0] if args else None)
        return isinstance(dest, (str, torch.device)) and torch.device(dest).type == "cpu"

    def _counted(self, method, only=None):
        import threading

        def wrapper(t, *args, **kwargs):
            if self.active and threading.get_ident() == self.thread and (only is None or only(args, kwargs)):
                self.count += 1
            return method(t, *args, **kwargs)

        return wrapper

    def on_start(self, state) -> None:
        self.active = True

    def on_end(self, state, result) -> None:
        self.active = False


def test_a_recorded_fit_synchronises_once_per_checked_block_not_per_step(tiny_image_config, tmp_path, monkeypatch):
    from spectral_lab import fit as fit_module

    cfg = with_fit(tiny_image_config, iterations=48)  # input perturbation on: noise drawn every step
    cfg = cfg.replace(record=cfg.record.__class__(checkpoint_seconds=1e6, flush_seconds=1e6))
    counts = {}
    for every in (1, 16):  # 1: the CPU default (a check per step); 16: as on a GPU (64 there)
        monkeypatch.setattr(fit_module, "default_check_every", lambda device, every=every: every)
        counter = SyncCounter(monkeypatch)
        assert record(cfg, tmp_path / f"c{every}.h5", callbacks=[counter]).status == "complete"
        counts[every] = counter.count
        monkeypatch.undo()
    steps = 49
    assert counts[1] >= steps  # the counter sees the per-step check
    assert counts[16] <= steps // 16 + 2  # a check per 16 steps and one at the end
    for a, b in zip(frames_of(tmp_path / "c1.h5"), frames_of(tmp_path / "c16.h5")):
        assert np.array_equal(a, b)


class PoisonRun(Callback):
    """Sets run ``run``'s first weights to NaN before step ``at``."""

    def __init__(self, run: int, at: int) -> None:
        self.run, self.at = run, at

    def on_step_begin(self, state) -> None:
        if state.iteration == self.at:
            with torch.no_grad():
                next(state.net.parameters())[self.run].fill_(float("nan"))


def test_checking_every_few_steps_diverges_at_the_same_step_and_keeps_the_same_frames(
        tiny_config, tmp_path, monkeypatch):
    from spectral_lab import fit as fit_module

    cfg = with_fit(tiny_config, iterations=30)
    results = {}
    for every in (1, 7):
        monkeypatch.setattr(fit_module, "default_check_every", lambda device, every=every: every)
        results[every] = record(cfg, tmp_path / f"d{every}.h5", callbacks=[PoisonRun(1, 11)])
    for r in results.values():
        assert r.status == "diverged" and r.frames == 11 and r.bad_runs == [1]
    assert results[1].message == results[7].message
    for a, b in zip(frames_of(tmp_path / "d1.h5"), frames_of(tmp_path / "d7.h5")):
        assert a.shape[0] == 11 and np.array_equal(a, b)


def test_state_check_finite_raises_diverged_for_a_pending_bad_step(tiny_config):
    from spectral_lab.fit import Diverged

    seen = []

    class Checker(Callback):
        def on_frame(self, iteration, output, loss):
            seen.append(iteration)
            if iteration == 4:
                self.state.check_finite()

        def on_start(self, state):
            self.state = state

    state, z, y = runner.prepare_fit(tiny_config, runner.make_problem(tiny_config), torch.device("cpu"))
    result = fit(state, z, y, iterations=10, callbacks=[PoisonRun(0, 2), Checker()], check_every=100)
    assert result.status == "diverged" and result.frames == 2 and result.bad_runs == [0]
    assert seen == [0, 1, 2, 3, 4]  # frames 2..4 arrived unchecked; the check at 4 found step 2
    assert issubclass(Diverged, Exception)


# --------------------------------------------------------------------------- precision, noise device, compile

def test_bf16_records_float32_frames_near_the_fp32_ones(tiny_image_config, tmp_path):
    record(tiny_image_config, tmp_path / "fp32.h5")
    record(with_fit(tiny_image_config, precision="bf16"), tmp_path / "bf16.h5")
    for a, b in zip(frames_of(tmp_path / "fp32.h5"), frames_of(tmp_path / "bf16.h5")):
        assert a.dtype == b.dtype == np.float32 and np.isfinite(b).all()
        assert not np.array_equal(a, b)
        assert np.abs(a[0] - b[0]).max() < 0.1  # bf16 keeps ~3 significant digits of a 0-1 output


def test_an_unknown_precision_is_one_config_error(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match="unknown precision 'fp8'; choose from fp32, bf16"):
        record(with_fit(tiny_config, precision="fp8"), tmp_path / "a.h5")
    assert not (tmp_path / "a.h5").exists()


def test_noise_on_the_device_is_the_cpu_noise_when_the_device_is_the_cpu(tiny_image_config, tmp_path):
    record(tiny_image_config, tmp_path / "a.h5")
    record(with_fit(tiny_image_config, noise_device="device"), tmp_path / "b.h5")
    for a, b in zip(frames_of(tmp_path / "a.h5"), frames_of(tmp_path / "b.h5")):
        assert np.array_equal(a, b)


@pytest.mark.slow
def test_compiled_fit_stays_close_to_eager(tiny_config, tmp_path):
    record(tiny_config, tmp_path / "eager.h5")
    record(with_fit(tiny_config, compile=True), tmp_path / "compiled.h5")
    for a, b in zip(frames_of(tmp_path / "eager.h5"), frames_of(tmp_path / "compiled.h5")):
        np.testing.assert_allclose(a, b, atol=1e-4)
