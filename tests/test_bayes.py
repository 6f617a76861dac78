"""SGLD, the posterior statistics in the file, and the frame stride."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from _fakes import FakeTrajectory, run_cli

from spectral_lab import runner
from spectral_lab.analyze.psnr import psnr, psnr_file
from spectral_lab.config import DegradeConfig, validate
from spectral_lab.errors import ConfigError
from spectral_lab.fit import Callback
from spectral_lab.optim import SGLD, make_optimizer
from spectral_lab.trajectory import check_trajectory, open_trajectory


def _with(cfg, **sections):
    return cfg.replace(**{k: dataclasses.replace(getattr(cfg, k), **v) for k, v in sections.items()})


@pytest.fixture
def sgld_config(tiny_config):
    """The tiny 1D fit as a denoising problem sampled with SGLD."""
    return _with(tiny_config.replace(task="denoise", degrade=DegradeConfig(noise="white", sigma=25.0)),
                 fit={"optimizer": "sgld", "lr": 0.05, "iterations": 24},
                 record={"burn_in": 8, "flush_seconds": 0.01})


class _StopAt(Callback):
    def __init__(self, iteration):
        self.iteration, self.stop = iteration, False

    def on_frame(self, iteration, output, loss):
        self.stop = self.stop or iteration >= self.iteration


def _record_interrupted_then_resumed(cfg, path, at):
    stopper = _StopAt(at)
    first = runner.record(cfg, path, progress=False, callbacks=[stopper], should_stop=lambda: stopper.stop)
    assert first.status == "interrupted"
    assert runner.resume(path, progress=False).status == "complete"


def _contents(path):
    with open_trajectory(path) as t:
        frames = [np.asarray(t.frames(r)[: t.n_frames(r)]) for r in range(t.n_runs)]
        post = [t.posterior(r) for r in range(t.n_runs)] if t.has_posterior else []
        return frames, [t.losses(r) for r in range(t.n_runs)], post, [t.frame_iterations(r) for r in range(t.n_runs)]


# --------------------------------------------------------------------------- SGLD

def test_sgld_without_noise_is_gradient_descent():
    torch.manual_seed(0)
    a, b = torch.nn.Parameter(torch.randn(2, 5)), torch.nn.Parameter(torch.randn(2, 5))
    b.data.copy_(a.data)
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    sgld = SGLD([a], lr=0.1, generators=gens, n_observed=10, noise_sigma=0.1, temperature=0.0)
    sgd = torch.optim.SGD([b], lr=0.1)
    for _ in range(3):
        for p in (a, b):
            p.grad = p.detach() ** 2
        sgld.step()
        sgd.step()
    assert torch.allclose(a, b)


def test_sgld_noise_has_the_langevin_variance_and_each_run_its_own_stream():
    n, sigma, lr = 50, 0.2, 0.01
    p = torch.nn.Parameter(torch.zeros(2, 20000, dtype=torch.float64))
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    opt = SGLD([p], lr=lr, generators=gens, n_observed=n, noise_sigma=sigma)
    p.grad = torch.zeros_like(p)
    opt.step()
    expected = 4 * sigma**2 * lr / n  # ε = 2σ²lr/N, and η ~ N(0, 2ε) per step of Δw = −lr∇L + η
    assert float(p[0].detach().var()) == pytest.approx(expected, rel=0.05)
    alone = torch.nn.Parameter(torch.zeros(1, 20000, dtype=torch.float64))
    SGLD([alone], lr=lr, generators=[torch.Generator().manual_seed(1)], n_observed=n, noise_sigma=sigma)
    alone.grad = torch.zeros_like(alone)
    opt2 = SGLD([alone], lr=lr, generators=[torch.Generator().manual_seed(1)], n_observed=n, noise_sigma=sigma)
    opt2.step()
    assert torch.equal(alone[0], p[1])  # run 1's noise does not depend on run 0


def test_sgld_needs_the_likelihood_noise_level_of_the_problem():
    with pytest.raises(ConfigError, match="needs noise_sigma.*--optimizer-opt noise_sigma"):
        make_optimizer("sgld", [torch.nn.Parameter(torch.zeros(1, 3))], lr=0.1,
                       generators=[torch.Generator()], context={"n_observed": 3, "noise_sigma": None})


def test_a_run_sampled_in_a_batch_equals_the_same_run_alone(sgld_config, tmp_path):
    both, alone = tmp_path / "both.h5", tmp_path / "alone.h5"
    runner.record(sgld_config, both, progress=False)
    runner.record(_with(sgld_config, fit={"runs": 1, "seed": 1}), alone, progress=False)
    frames_both, _, post_both, _ = _contents(both)
    frames_alone, _, post_alone, _ = _contents(alone)
    np.testing.assert_allclose(frames_both[1], frames_alone[0], atol=1e-5)
    np.testing.assert_allclose(post_both[1][0], post_alone[0][0], atol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgld", "sgld_adam"])
def test_an_interrupted_sgld_recording_resumes_bitwise_with_its_posterior(sgld_config, tmp_path, optimizer):
    cfg = _with(sgld_config, fit={"optimizer": optimizer}, record={"checkpoint_seconds": 0.0})
    straight, resumed = tmp_path / "straight.h5", tmp_path / "resumed.h5"
    runner.record(cfg, straight, progress=False)
    _record_interrupted_then_resumed(cfg, resumed, at=13)
    a, b = _contents(straight), _contents(resumed)
    for x, y in zip(a[0] + a[1], b[0] + b[1]):
        assert np.array_equal(x, y)
    for (ma, va, ca), (mb, vb, cb) in zip(a[2], b[2]):
        assert ca == cb == 24 + 1 - 8 and np.array_equal(ma, mb) and np.array_equal(va, vb)


# --------------------------------------------------------------------------- posterior statistics

def test_the_posterior_is_the_mean_and_variance_of_the_outputs_after_burn_in(sgld_config, tmp_path):
    path = tmp_path / "post.h5"
    runner.record(sgld_config, path, progress=False)
    assert check_trajectory(path) == []
    frames, _, post, _ = _contents(path)
    for f, (mean, var, count) in zip(frames, post):
        after = f[8:].astype(np.float64)
        assert count == len(after)
        np.testing.assert_allclose(mean, after.mean(axis=0), atol=1e-12)
        np.testing.assert_allclose(var, after.var(axis=0), atol=1e-12)


def test_sgld_resolves_a_burn_in_when_none_is_given(tiny_config):
    cfg = validate(_with(tiny_config, fit={"optimizer": "sgld_adam", "iterations": 200}))
    assert cfg.record.burn_in == 70


def test_a_sampler_is_what_its_registry_entry_declares(tiny_config):
    from spectral_lab.optim import OPTIMIZERS

    def toy(params, *, lr, generators):
        return torch.optim.SGD(params, lr=lr)

    OPTIMIZERS.add("toy_sampler", toy, help="a toy posterior sampler", sampler=True)
    try:
        cfg = validate(_with(tiny_config, fit={"optimizer": "toy_sampler", "iterations": 100}))
        assert cfg.record.burn_in == 35
    finally:
        OPTIMIZERS.remove("toy_sampler")
    assert validate(_with(tiny_config, fit={"optimizer": "adam", "iterations": 100})).record.burn_in is None


def test_record_takes_the_optimisers_own_learning_rate_unless_lr_is_given(capsys):
    from spectral_lab.cli import make_parser
    from spectral_lab.cli.record import build_config

    def lr(*flags):
        return build_config(make_parser().parse_args(["record", "--signal", "triangle", *flags])).fit.lr

    assert lr("--optimizer", "sgld") == 10.0  # its entry's default_lr: the presets' rates are Adam's
    assert lr("--optimizer", "sgld", "--lr", "0.5") == 0.5
    assert lr("--optimizer", "sgld_adam") == lr()  # Adam's scale: the preset's rate


def test_uncertainty_refuses_a_1d_file_and_an_image_without_a_posterior(tmp_path, capsys, tiny_config):
    oned = tmp_path / "oned.h5"
    runner.record(tiny_config, oned, progress=False)
    code, _, err = run_cli(capsys, "analyze", "uncertainty", oned)
    assert code != 0 and "image trajectory" in err and "Traceback" not in err
    image = tmp_path / "image.h5"
    code, _, err = run_cli(capsys, "record", "--signal", "triangle", "--size", "16", "--model", "dip", "--levels",
                           "2", "--model-opt", "down=8", "--model-opt", "up=8", "--model-opt", "in_channels=4",
                           "--iterations", "3", "--runs", "1", "--quiet", "--out", image)
    assert code == 0, err
    code, _, err = run_cli(capsys, "analyze", "uncertainty", image)
    assert code != 0 and "no posterior" in err and "Traceback" not in err


def test_record_sgld_on_the_cli_and_score_its_posterior_mean(tmp_path, capsys):
    out = tmp_path / "cli.h5"
    code, _, err = run_cli(capsys, "record", "--signal", "triangle", "--size", "16", "--model", "dip", "--levels",
                           "2", "--model-opt", "down=8", "--model-opt", "up=8", "--model-opt", "in_channels=4",
                           "--task", "denoise", "--optimizer", "sgld_adam", "--burn-in", "4", "--iterations", "10",
                           "--every", "3", "--quiet", "--out", out)
    assert code == 0, err
    code, text, err = run_cli(capsys, "analyze", "psnr", out, "--json")
    assert code == 0, err
    run0 = json.loads(text)["runs"][0]
    assert run0["posterior_psnr"] is not None and run0["iterations"] == [0, 3, 6, 9, 10]

    # the posterior's uncertainty on the CLI: the numbers of analyze.uncertainty, a map, and refusals
    from spectral_lab.analyze.uncertainty import uncertainty_file

    code, text, err = run_cli(capsys, "analyze", "uncertainty", out, "--json")
    assert code == 0, err
    got, want = json.loads(text), uncertainty_file(out)
    assert got["samples"] == want["samples"] == 7 and got["std_all"] == pytest.approx(want["std_all"])
    assert got["std_hole"] is None  # denoising: no holes
    code, text, err = run_cli(capsys, "analyze", "uncertainty", out)
    assert code == 0 and "posterior of run 0 (7 samples)" in text
    code, text, err = run_cli(capsys, "plot", "uncertainty", out, "-o", tmp_path / "u.png")
    assert code == 0 and (tmp_path / "u.png").stat().st_size > 0
    code, _, err = run_cli(capsys, "analyze", "uncertainty", out, "--run", "3")
    assert code != 0 and "--run 3" in err and "Traceback" not in err


# --------------------------------------------------------------------------- the frame stride

def test_a_frame_stride_keeps_every_kth_frame_and_the_last(tiny_config, tmp_path):
    path = tmp_path / "stride.h5"
    runner.record(_with(tiny_config, record={"every": 6}), path, progress=False)
    every = tmp_path / "every.h5"
    runner.record(tiny_config, every, progress=False)
    frames, losses, _, its = _contents(path)
    full, full_losses, _, _ = _contents(every)
    assert its[0].tolist() == [0, 6, 12, 18, 20]
    assert frames[0].shape[0] == 5 == losses[0].shape[0]
    np.testing.assert_array_equal(frames[0], full[0][its[0]])
    np.testing.assert_array_equal(losses[0], full_losses[0][its[0]])
    assert check_trajectory(path) == []


def test_analyzers_report_real_iterations_with_a_stride(tiny_config, tmp_path):
    from spectral_lab.analyze.amplitudes import analyze_amplitudes_file

    path = tmp_path / "stride.h5"
    runner.record(_with(tiny_config, record={"every": 4}, fit={"iterations": 40}), path, progress=False)
    with open_trajectory(path) as t:
        its = t.frame_iterations(0)
    res = psnr_file(path)
    assert res.runs[0].best_iteration in its.tolist() and res.runs[0].iterations.tolist() == its.tolist()
    amps = analyze_amplitudes_file(path, delta=10.0)  # converged from the start
    assert all(c in its.tolist() for c in amps[0].converged_at)


def test_an_interrupted_strided_recording_resumes_bitwise(tiny_config, tmp_path):
    cfg = _with(tiny_config, record={"every": 3, "checkpoint_seconds": 0.0, "flush_seconds": 0.01})
    straight, resumed = tmp_path / "straight.h5", tmp_path / "resumed.h5"
    runner.record(cfg, straight, progress=False)
    _record_interrupted_then_resumed(cfg, resumed, at=10)
    a, b = _contents(straight), _contents(resumed)
    assert [i.tolist() for i in a[3]] == [i.tolist() for i in b[3]]
    for x, y in zip(a[0] + a[1], b[0] + b[1]):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("flag, value, message", [("--every", "0", "frame stride"), ("--burn-in", "-1", "burn-in"),
                                                  ("--snapshots", "5,5", "repeat")])
def test_bad_stride_burn_in_or_snapshots_are_one_line(tmp_path, capsys, flag, value, message):
    out = tmp_path / "bad.h5"
    code, _, err = run_cli(capsys, "record", "--iterations", "10", flag, value, "--out", out, "--quiet")
    assert code == 1 and err.count("\n") == 1 and message in err and not out.exists()


def test_parameter_snapshots_are_stored_at_the_chosen_iterations(tiny_config, tmp_path):
    path = tmp_path / "snap.h5"
    runner.record(_with(tiny_config, record={"snapshots": (0, 7)}), path, progress=False)
    fresh = runner.prepare_fit(validate(tiny_config), runner.make_problem(tiny_config))[0].net
    with open_trajectory(path) as t:
        its, params = t.snapshots()
    assert its.tolist() == [0, 7] and params.shape[:2] == (2, 2)
    initial = torch.cat([p.detach().reshape(2, -1) for p in fresh.parameters()], dim=1).numpy()
    np.testing.assert_array_equal(params[0], initial)
    assert not np.array_equal(params[1], initial)


# --------------------------------------------------------------------------- moving average

def test_the_moving_average_psnr_scores_the_averaged_outputs():
    rng = np.random.default_rng(0)
    clean = rng.uniform(size=(3, 9, 11))
    frames = clean + 0.2 * rng.standard_normal((6, 3, 9, 11))
    m, expected = None, []
    for x in frames:
        m = x if m is None else 0.7 * m + 0.3 * x
        expected.append(psnr(m, clean)[0])
    res = psnr_file(FakeTrajectory([frames], clean), ema=0.7, chunk=4)
    np.testing.assert_allclose(res.runs[0].psnr, expected)
