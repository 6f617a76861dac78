"""The tangent kernel (spectral_lab.kernels): against explicit Jacobians, eigh, and exact math."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call

from spectral_lab.analyze.amplitudes import amplitudes
from spectral_lab.errors import AnalysisError
from spectral_lab.kernels.fourier import band_directions, band_modes, fourier_alignment, fourier_modes_1d
from spectral_lab.kernels.ntk import (band_energies, frequency_energies, full_kernel, kernel_energy,
                                      top_eigenpairs)
from spectral_lab.kernels.predict import (complex_amplitudes, predict_band_fit, predict_convergence, predict_from_net,
                                          predict_full_kernel, stable_lr)
from spectral_lab.models import build_model

torch.set_num_threads(1)

TINY_DIP = {"levels": 2, "down": 4, "up": 4, "skip": 2, "in_channels": 3}


def _net(name, shape, runs=1, seeds=None, double=True, **options):
    net = build_model(name, signal_shape=shape, runs=runs, weight_seeds=seeds, **options)
    z = net.make_input(list(range(runs)), dist="normal", scale=1.0)
    return (net.double(), z.double()) if double else (net, z)


def _explicit_kernel(net, z, run=0, logits=False):
    """J Jᵀ from torch.autograd.functional.jacobian: the (M, P) matrix, built in full."""
    names = [n for n, _ in net.named_parameters()]
    if logits:
        saved, net.out_act = net.out_act, torch.nn.Identity()
    try:
        jac = torch.autograd.functional.jacobian(
            lambda *ps: functional_call(net, dict(zip(names, ps)), (z,))[run].reshape(-1),
            tuple(p.detach() for p in net.parameters()))
    finally:
        if logits:
            net.out_act = saved
    j = torch.cat([part.reshape(part.shape[0], -1) for part in jac], dim=1).numpy()
    return j @ j.T


def _rayleigh(theta, directions):
    u = directions.reshape(len(directions), -1)
    return np.einsum("di,ij,dj->d", u, theta, u) / (u * u).sum(axis=1)


# ---------------------------------------------------------------- the kernel itself

@pytest.mark.parametrize("name, shape, options", [
    ("conv", (1, 16), {"depth": 3, "width": 4}),
    ("dip", (1, 12), TINY_DIP),
    ("dip", (3, 8, 12), TINY_DIP),
], ids=["conv_1d", "dip_1d_batchnorm", "dip_2d_batchnorm_sigmoid"])
def test_rayleigh_quotient_matches_the_explicit_jacobian(name, shape, options):
    net, z = _net(name, shape, runs=2, **options)
    theta = _explicit_kernel(net, z, run=1)
    u = np.random.default_rng(0).standard_normal((5, *shape))
    np.testing.assert_allclose(kernel_energy(net, z, u, run=1), _rayleigh(theta, u), rtol=1e-10)


def test_pre_activation_kernel_is_the_kernel_of_the_logits():
    net, z = _net("dip", (3, 8, 12), **TINY_DIP)
    u = np.random.default_rng(1).standard_normal((3, 3, 8, 12))
    logits = kernel_energy(net, z, u, pre_activation=True)
    np.testing.assert_allclose(logits, _rayleigh(_explicit_kernel(net, z, logits=True), u), rtol=1e-10)
    assert np.all(kernel_energy(net, z, u) < logits)  # the sigmoid's slope is at most 1/4


def test_full_kernel_equals_the_explicit_jacobian_gram_matrix():
    net, z = _net("dip", (1, 12), **TINY_DIP)
    np.testing.assert_allclose(full_kernel(net, z), _explicit_kernel(net, z), rtol=1e-9, atol=1e-9)


def test_full_kernel_is_symmetric_positive_semidefinite():
    net, z = _net("conv", (1, 15), double=False, depth=3, width=4)
    theta = full_kernel(net, z)
    assert theta.dtype == np.float64 and theta.shape == (15, 15)
    assert np.array_equal(theta, theta.T)
    eigenvalues = np.linalg.eigvalsh(theta)
    assert eigenvalues.min() >= -1e-6 * eigenvalues.max()


def test_run_kernel_is_unaffected_by_the_other_runs():
    alone, z_alone = _net("dip", (1, 12), runs=1, seeds=[7], **TINY_DIP)
    pair, z_pair = _net("dip", (1, 12), runs=2, seeds=[5, 7], **TINY_DIP)
    z_pair[1] = z_alone[0]
    expected = full_kernel(alone, z_alone)
    np.testing.assert_allclose(full_kernel(pair, z_pair, run=1), expected, atol=1e-10 * np.abs(expected).max())


@pytest.mark.parametrize("method", ["lanczos", "rsvd"])
def test_eigensolver_matches_numpy_eigh_of_the_full_kernel(method):
    net, z = _net("conv", (1, 32), depth=3, width=4)
    values, vectors = np.linalg.eigh(full_kernel(net, z))
    top = top_eigenpairs(net, z, 4, method=method, power_iterations=6, tol=1e-10)
    np.testing.assert_allclose(top.values, values[::-1][:4], rtol=1e-6)
    overlap = np.abs(np.sum(top.vectors.reshape(4, -1) * vectors[:, ::-1][:, :4].T, axis=1))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-4)


def test_frequency_energy_is_the_mean_of_the_cosine_and_sine_quotients():
    net, z = _net("conv", (1, 16), depth=3, width=4)
    theta = _explicit_kernel(net, z)
    modes = fourier_modes_1d(16, [1, 5])
    got = frequency_energies(net, z, [1, 5])
    np.testing.assert_allclose(got.cos, _rayleigh(theta, modes[:, 0]), rtol=1e-10)
    np.testing.assert_allclose(got.energy, 0.5 * (_rayleigh(theta, modes[:, 0]) + _rayleigh(theta, modes[:, 1])),
                               rtol=1e-10)


def test_exact_band_energy_is_the_mean_over_the_band_modes_and_channels():
    net, z = _net("dip", (3, 8, 12), **TINY_DIP)
    theta = _explicit_kernel(net, z)
    got = band_energies(net, z, n_bands=3, max_directions=10 ** 4)
    assert got.exact.all()
    for b in range(3):
        dirs, _ = band_directions((8, 12), b, channels=3, n_bands=3, max_directions=10 ** 4)
        np.testing.assert_allclose(got.energy[b], _rayleigh(theta, dirs).mean(), rtol=1e-10)


def test_kernel_of_a_run_outside_the_stack_is_refused():
    net, z = _net("conv", (1, 16), runs=2, depth=3, width=4)
    with pytest.raises(AnalysisError, match="run must be"):
        kernel_energy(net, z, np.ones((1, 1, 16)), run=2)


# ---------------------------------------------------------------- Fourier directions

def test_fourier_modes_are_orthonormal_cosines_and_sines():
    modes = fourier_modes_1d(17, [1, 3, 8]).reshape(-1, 17)
    np.testing.assert_allclose(modes @ modes.T, np.eye(6), atol=1e-12)


def test_band_modes_are_an_orthonormal_basis_of_the_band():
    shape = (7, 10)
    modes = band_modes(shape, 2, n_bands=4)
    flat = modes.reshape(len(modes), -1)
    np.testing.assert_allclose(flat @ flat.T, np.eye(len(modes)), atol=1e-12)
    from spectral_lab.analyze.spectrum import radial_bands

    band_index, _ = radial_bands(shape, 4)
    assert len(modes) == (band_index == 2).sum()
    outside = np.abs(np.fft.fft2(modes))[:, band_index != 2]
    assert outside.max() < 1e-9


def test_sampled_band_directions_are_orthonormal_and_inside_the_band():
    dirs, exact = band_directions((9, 10), 1, channels=3, n_bands=3, max_directions=5, seed=4)
    assert not exact and dirs.shape == (5, 3, 9, 10)
    flat = dirs.reshape(5, -1)
    np.testing.assert_allclose(flat @ flat.T, np.eye(5), atol=1e-12)
    assert np.all(fourier_alignment(dirs, (3, 9, 10), n_bands=3).dominant == 1)
    np.testing.assert_allclose(fourier_alignment(dirs, (3, 9, 10), n_bands=3).fraction, 1.0)


def test_a_pure_mode_aligns_fully_with_its_frequency():
    mode = fourier_modes_1d(20, [6])[0, 1]
    got = fourier_alignment(mode[None, None], (1, 20))
    assert got.dominant[0] == 6
    np.testing.assert_allclose(got.fraction[0], 1.0)
    np.testing.assert_allclose(got.spectrum.sum(axis=1), 1.0)


# ---------------------------------------------------------------- prediction

def test_halving_residual_converges_when_a_quarter_power_passes_delta():
    # ρ = 1 - 2 η λ / N = 0.5: amplitude 1 - 0.5^t, SE = 0.25^t, first <= 0.01 at t = 4
    pred = predict_convergence([8.0], [1.0], lr=0.5, n_samples=16, iterations_max=10, delta=0.01)
    np.testing.assert_allclose(pred.factors, 0.5)
    np.testing.assert_allclose(pred.curves.amplitudes[:, 0], 1 - 0.5 ** np.arange(11))
    np.testing.assert_allclose(pred.curves.se[:, 0], 0.25 ** np.arange(11))
    assert pred.curves.converged_at == [4] and pred.curves.first_crossing == [4]


def test_mode_at_or_above_the_stable_step_never_converges():
    assert stable_lr(8.0, 16) == 2.0
    for lr in (2.0, 3.0):  # ρ = -1 and -2
        pred = predict_convergence([8.0], [1.0], lr=lr, n_samples=16, iterations_max=50, delta=0.01)
        assert pred.curves.converged_at == [None]


def test_prediction_matches_gradient_descent_on_a_linear_model_with_a_fourier_kernel():
    # f(θ) = B θ with B Bᵀ = Σ λ u uᵀ over unit cosines and sines: GD is exactly the prediction.
    n, freqs = 24, [2, 7]
    modes = fourier_modes_1d(n, freqs).reshape(-1, n)  # cos 2, sin 2, cos 7, sin 7
    lam = np.array([30.0, 20.0, 6.0, 9.0])
    b = modes.T * np.sqrt(lam)
    y = 1.3 * np.sin(2 * np.pi * 2 * np.arange(n) / n + 0.4) + 0.7 * np.cos(2 * np.pi * 7 * np.arange(n) / n)
    theta = np.random.default_rng(2).standard_normal(4)
    lr, frames = 0.3, []
    for _ in range(41):
        f = b @ theta
        frames.append(f)
        theta = theta - lr * b.T @ (2.0 / n * (f - y))
    measured = (amplitudes(np.array(frames), freqs) - np.abs(complex_amplitudes(y, freqs))) ** 2
    pred = predict_convergence(lam.reshape(2, 2), complex_amplitudes(y, freqs), lr=lr, n_samples=n,
                               iterations_max=40, initial_amplitudes=complex_amplitudes(frames[0], freqs))
    np.testing.assert_allclose(pred.curves.se, measured, rtol=1e-9, atol=1e-14)


def test_prediction_for_a_net_starts_from_its_output_and_ends_at_the_target():
    net, z = _net("conv", (1, 16), depth=3, width=4)
    target = np.sin(2 * np.pi * 3 * np.arange(16) / 16)
    pred = predict_from_net(net, z, target, [3, 5], lr=0.1, iterations_max=4000)
    with torch.no_grad():
        start = amplitudes(net(z)[0, 0].numpy(), [3, 5])[0]
    np.testing.assert_allclose(pred.curves.amplitudes[0], start, rtol=1e-10)
    np.testing.assert_allclose(pred.curves.amplitudes[-1], [1.0, 0.0], atol=1e-6)


def _gradient_descent(b, y, lr, steps, theta0):
    """Frames f_t = B θ_t of plain GD on mean((Bθ - y)²): the linear model whose kernel is B Bᵀ."""
    n = b.shape[0]
    theta, frames = theta0.copy(), []
    for _ in range(steps + 1):
        f = b @ theta
        frames.append(f)
        theta = theta - lr * b.T @ (2.0 / n * (f - y))
    return np.array(frames)


def test_full_kernel_prediction_is_gradient_descent_on_a_linear_model_with_any_kernel():
    # a kernel that is not diagonal in the Fourier basis: the full prediction is still exact
    n, freqs = 21, [2, 5]
    rng = np.random.default_rng(3)
    b = rng.standard_normal((n, 9)) * 0.7
    y = np.sin(2 * np.pi * 2 * np.arange(n) / n) + 0.5 * np.cos(2 * np.pi * 5 * np.arange(n) / n + 1.0)
    theta0 = rng.standard_normal(9) * 0.1
    frames = _gradient_descent(b, y, 0.4, 60, theta0)
    pred = predict_full_kernel(b @ b.T, y, lr=0.4, iterations_max=60, initial=frames[0], freqs=freqs)
    measured = (amplitudes(frames, freqs) - np.abs(complex_amplitudes(y, freqs))) ** 2
    np.testing.assert_allclose(pred.curves.se, measured, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(pred.weights.sum(axis=1), 1.0)


def test_full_kernel_prediction_equals_the_fourier_one_for_a_fourier_diagonal_kernel():
    n, freqs = 24, [2, 7]
    modes = fourier_modes_1d(n, freqs).reshape(-1, n)
    lam = np.array([30.0, 20.0, 6.0, 9.0])
    y = 1.3 * np.sin(2 * np.pi * 2 * np.arange(n) / n + 0.4) + 0.7 * np.cos(2 * np.pi * 7 * np.arange(n) / n)
    f0 = np.random.default_rng(0).standard_normal(n) * 0.1
    full = predict_full_kernel((modes.T * lam) @ modes, y, lr=0.3, iterations_max=40, initial=f0, freqs=freqs)
    fourier = predict_convergence(lam.reshape(2, 2), complex_amplitudes(y, freqs), lr=0.3, n_samples=n,
                                  iterations_max=40, initial_amplitudes=complex_amplitudes(f0, freqs))
    np.testing.assert_allclose(full.curves.se, fourier.curves.se, atol=1e-12)
    assert full.curves.converged_at == fourier.curves.converged_at


def test_full_kernel_prediction_never_converges_a_frequency_an_unstable_mode_reaches():
    n = 16
    modes = fourier_modes_1d(n, [3]).reshape(-1, n)
    theta = (modes.T * np.array([10.0, 10.0])) @ modes
    y = np.sin(2 * np.pi * 3 * np.arange(n) / n)
    pred = predict_full_kernel(theta, y, lr=stable_lr(10.0, n) * 1.01, iterations_max=50, freqs=[3])
    assert pred.curves.converged_at == [None]


def test_band_fit_prediction_is_gradient_descent_on_a_model_with_a_kernel_constant_on_each_band():
    from spectral_lab.analyze.spectrum import band_fit_times, radial_bands, spectrum_error

    shape, n_bands = (1, 7, 8), 4
    band_index, _ = radial_bands(shape[1:], n_bands)
    lam = np.array([40.0, 25.0, 9.0, 3.0])
    # K = Σ_b sqrt(λ_b) P_b (P_b: the band's Fourier projection), so Θ = K Kᵀ = Σ_b λ_b P_b
    basis = np.concatenate([band_modes(shape[1:], b, n_bands).reshape(-1, 56) for b in range(n_bands)])
    scale = np.concatenate([np.full((band_index == b).sum(), np.sqrt(lam[b])) for b in range(n_bands)])
    k = basis.T @ (scale[:, None] * basis)
    rng = np.random.default_rng(5)
    clean = rng.random(shape)
    y = clean + 0.1 * rng.standard_normal(shape)
    frames = _gradient_descent(k, y.reshape(-1), 0.5, 80, 0.05 * rng.standard_normal(56))
    measured = spectrum_error(frames.reshape(-1, *shape), clean, n_bands)
    pred = predict_band_fit(lam, y, clean, lr=0.5, iterations_max=80, threshold=0.2, initial=frames[0].reshape(shape),
                            n_bands=n_bands)
    np.testing.assert_allclose(pred.errors, measured, rtol=1e-8, atol=1e-10)
    assert pred.time_to_fit == band_fit_times(measured, 0.2)


def test_band_fit_prediction_refuses_energies_of_other_bands():
    img = np.ones((1, 8, 8))
    with pytest.raises(AnalysisError, match="one per band"):
        predict_band_fit([1.0, 2.0], img, img, lr=0.1, iterations_max=5, n_bands=3)
