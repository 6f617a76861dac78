"""Tests of spectral_lab.kernels.gp and .sampled: closed forms, PSD, inference, sampled vs analytic."""

import math

import numpy as np
import pytest
import scipy.stats
import torch

from spectral_lab.errors import AnalysisError, ConfigError
from spectral_lab.kernels.gp import (average_pool_covariance, box_filter_covariance, centred_lags, conv_gp_covariance,
                                     conv_gp_covariance_matrix, conv_gp_layer_covariances, correlation_matrix,
                                     covariance_matrix_from_lags, erf_expectation, expected_power_spectrum,
                                     normalised_covariance, prior_power_spectrum, relu_expectation)
from spectral_lab.kernels.gp_inputs import gaussian_input_covariance, rbf_covariance, white_input_covariance
from spectral_lab.kernels.gp_inference import (gp_amplitude_mle, gp_log_marginal_likelihood,
                                               gp_log_marginal_likelihood_stationary, gp_posterior,
                                               gp_posterior_stationary)
from spectral_lab.kernels.sampled import (
    conv_layer_variances,
    correlated_input,
    sampled_covariance,
    sampled_power_spectrum,
    stationarity_deviation,
)
from spectral_lab.models import build_model

# (k11, k22, correlation) of the Gaussian pairs the closed forms are checked on
PAIRS = [(2.0, 0.5, 0.3), (1.0, 1.0, -0.6), (0.3, 1.7, 0.95)]


def gaussian_pairs(k11, k22, rho, n=400_000, seed=0):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(n)
    v = rho * u + math.sqrt(1 - rho**2) * rng.standard_normal(n)
    return math.sqrt(k11) * u, math.sqrt(k22) * v


def within_standard_errors(samples, value, k=4.0):
    return abs(samples.mean() - value) <= k * samples.std() / math.sqrt(samples.size)


# --------------------------------------------------------------------- non-linearities


@pytest.mark.parametrize("k11, k22, rho", PAIRS)
def test_relu_expectation_matches_monte_carlo(k11, k22, rho):
    u, v = gaussian_pairs(k11, k22, rho)
    value = relu_expectation(rho * math.sqrt(k11 * k22), k11, k22)
    assert within_standard_errors(np.maximum(u, 0) * np.maximum(v, 0), value)


def test_relu_expectation_closed_forms():
    # theta = 0: E relu(u)^2 = k/2; independent: E relu(u) E relu(v) = sqrt(k11 k22) / (2 pi); anti: 0
    assert relu_expectation(3.0, 3.0, 3.0) == pytest.approx(1.5)
    assert relu_expectation(0.0, 2.0, 0.5) == pytest.approx(1.0 / (2 * math.pi))
    assert relu_expectation(-1.0, 1.0, 1.0) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("k11, k22, rho", PAIRS)
def test_erf_expectation_matches_monte_carlo(k11, k22, rho):
    u, v = gaussian_pairs(k11, k22, rho, seed=1)
    value = erf_expectation(rho * math.sqrt(k11 * k22), k11, k22)
    assert within_standard_errors(scipy.special.erf(u) * scipy.special.erf(v), value)


def test_erf_expectation_tends_to_the_papers_arcsin_of_the_correlation_at_large_variance():
    big = 1e12
    assert erf_expectation(0.4 * big, big, big) == pytest.approx(2 / math.pi * math.asin(0.4), rel=1e-9)
    assert erf_expectation(0.0, 5.0, 7.0) == 0.0


# ---------------------------------------------------------------- windows and pooling


def test_white_input_through_a_box_window_has_the_triangle_kernel():
    window, n = 4, 17
    cov = box_filter_covariance(white_input_covariance(n), window)
    lags = np.minimum(np.arange(n), n - np.arange(n))
    np.testing.assert_allclose(cov, np.clip(window - lags, 0, None) / window**2, atol=1e-15)


def test_average_pooling_white_noise_divides_its_variance_by_the_window():
    np.testing.assert_allclose(average_pool_covariance(white_input_covariance((8, 12)), 4),
                               white_input_covariance((2, 3), 1 / 16), atol=1e-15)


def test_random_conv_window_drops_out_of_a_stationary_kernel():
    input_cov = gaussian_input_covariance(23, 1.5)
    lag = conv_gp_covariance(input_cov, 3, bias_var=0.2)
    for window in (1, 3, 5):
        matrix = conv_gp_covariance_matrix(covariance_matrix_from_lags(input_cov), 3, window=window,
                                           padding="circular", bias_var=0.2)
        np.testing.assert_allclose(matrix, covariance_matrix_from_lags(lag), atol=1e-14)


def test_matrix_recursion_with_circular_padding_and_pooling_equals_the_lag_recursion_in_2d():
    input_cov = gaussian_input_covariance((6, 8), 1.0)
    lag = conv_gp_covariance(input_cov, 3, nonlinearity="erf", weight_var=2.0, bias_var=0.1, pool=[2, 1])
    matrix = conv_gp_covariance_matrix(covariance_matrix_from_lags(input_cov).reshape(6, 8, 6, 8), 3,
                                       nonlinearity="erf", padding="circular", weight_var=2.0, bias_var=0.1,
                                       pool=[2, 1])
    np.testing.assert_allclose(matrix.reshape(12, 12), covariance_matrix_from_lags(lag), atol=1e-14)


def test_zero_padding_changes_only_the_edges():
    depth, window, n = 4, 3, 31
    input_cov = gaussian_input_covariance(n, 2.0)
    stationary = covariance_matrix_from_lags(conv_gp_covariance(input_cov, depth))
    padded = conv_gp_covariance_matrix(covariance_matrix_from_lags(input_cov), depth, window=window)
    inner = slice(depth * (window // 2), n - depth * (window // 2))
    np.testing.assert_allclose(padded[inner, inner], stationary[inner, inner], atol=1e-15)
    assert padded[0, 0] < 0.5 * stationary[0, 0]


def test_one_relu_layer_on_white_input_correlates_every_lag_by_one_over_pi():
    corr = normalised_covariance(conv_gp_covariance(white_input_covariance(9), 2))
    np.testing.assert_allclose(corr[1:], 1 / math.pi, rtol=1e-12)


def test_gaussian_input_covariance_has_the_papers_length_scale_convention():
    cov = gaussian_input_covariance(256, 3.0, variance=2.0)
    r = np.arange(10)
    np.testing.assert_allclose(cov[r], 2.0 * np.exp(-r**2 / (4 * 3.0**2)), atol=1e-12)


@pytest.mark.parametrize("kwargs", [
    dict(nonlinearity="relu"), dict(nonlinearity="erf", weight_var=3.0),
    dict(nonlinearity="relu", bias_var=0.5, pool=[2, 1, 2]),
])
def test_conv_kernels_are_positive_semi_definite(kwargs):
    for input_cov in (white_input_covariance(32), gaussian_input_covariance(32, 2.0),
                      gaussian_input_covariance((16, 12), 1.0)):
        for cov in conv_gp_layer_covariances(input_cov, 4, **kwargs):
            assert np.fft.fftn(cov).real.min() >= -1e-12 * cov.flat[0]
    padded = conv_gp_covariance_matrix(covariance_matrix_from_lags(gaussian_input_covariance(20, 1.0)), 4, **kwargs)
    assert np.linalg.eigvalsh(padded).min() >= -1e-12 * padded.max()


def test_correlation_matrix_has_unit_diagonal():
    padded = conv_gp_covariance_matrix(covariance_matrix_from_lags(white_input_covariance(11)), 3)
    np.testing.assert_allclose(np.diagonal(correlation_matrix(padded)), 1.0)


def test_centred_lags_puts_lag_zero_in_the_middle():
    cov = normalised_covariance(rbf_covariance(16, 2.0))
    centred = centred_lags(cov, 3)
    assert centred[3] == 1.0 and centred[0] == centred[6] == pytest.approx(cov[3])


def test_bad_parameters_raise_one_clear_error():
    with pytest.raises(ConfigError, match="non-linearity"):
        conv_gp_covariance(white_input_covariance(8), 2, nonlinearity="tanh")
    with pytest.raises(ConfigError, match="multiples"):
        average_pool_covariance(white_input_covariance(9), 2)
    with pytest.raises(ConfigError, match="weight_var"):
        conv_gp_covariance(white_input_covariance(8), 3, weight_var=[1.0, 1.0])
    with pytest.raises(AnalysisError, match="lag-0"):
        normalised_covariance(np.zeros(5))
    with pytest.raises(ConfigError, match="odd"):
        conv_gp_covariance_matrix(np.eye(6), 2, window=4)


# ---------------------------------------------------------------------- power spectrum


def test_prior_power_spectrum_obeys_parseval_and_is_flat_for_white_noise():
    cov = conv_gp_covariance(gaussian_input_covariance((10, 14), 1.5), 3, bias_var=0.1)
    spectrum = prior_power_spectrum(cov)
    assert spectrum.sum() == pytest.approx(cov[0, 0]) and spectrum.min() >= -1e-15
    np.testing.assert_allclose(prior_power_spectrum(white_input_covariance(8, 2.0)), 2.0 / 8)


def test_expected_power_spectrum_of_a_circulant_matrix_is_the_prior_power_spectrum():
    cov = conv_gp_covariance(gaussian_input_covariance((6, 10), 1.0), 3, bias_var=0.1)
    np.testing.assert_allclose(expected_power_spectrum(covariance_matrix_from_lags(cov), (6, 10)),
                               prior_power_spectrum(cov), atol=1e-14)


def test_expected_power_spectrum_matches_samples_of_a_non_stationary_process():
    rng = np.random.default_rng(3)
    root = rng.normal(size=(9, 9))
    samples = rng.normal(size=(100_000, 9)) @ root.T
    measured = np.mean(np.abs(np.fft.fft(samples, axis=1)) ** 2, axis=0) / 81
    np.testing.assert_allclose(measured, expected_power_spectrum(root @ root.T, 9), rtol=0.03)


def test_prior_power_spectrum_is_the_expected_power_of_samples():
    cov = rbf_covariance(12, 1.5)
    samples = np.random.default_rng(2).multivariate_normal(np.zeros(12), covariance_matrix_from_lags(cov), 200_000)
    measured = np.mean(np.abs(np.fft.fft(samples, axis=1)) ** 2, axis=0) / 12**2
    np.testing.assert_allclose(measured, prior_power_spectrum(cov), rtol=0.02, atol=1e-5)


# ------------------------------------------------------------------------- inference


def direct_posterior(k, y, o, noise_var):
    a = k[np.ix_(o, o)] + noise_var * np.eye(len(o))
    mean = k[:, o] @ np.linalg.solve(a, y[o])
    var = np.diagonal(k) - np.einsum("ij,ji->i", k[:, o], np.linalg.solve(a, k[o, :]))
    return mean, var


@pytest.mark.parametrize("observed", [1.0, 0.4])
def test_gp_posterior_matches_a_direct_dense_solve(observed):
    rng = np.random.default_rng(5)
    k = covariance_matrix_from_lags(conv_gp_covariance(gaussian_input_covariance(37, 2.0), 3))
    y = rng.normal(size=37)
    mask = rng.random(37) < observed
    post = gp_posterior(k, y, mask, noise_var=0.05, jitter=0.0)
    mean, var = direct_posterior(k, y, np.flatnonzero(mask), 0.05)
    np.testing.assert_allclose(post.mean, mean, atol=1e-10)
    np.testing.assert_allclose(post.var, var, atol=1e-10)


def test_fft_denoising_posterior_equals_the_dense_circulant_one():
    cov = conv_gp_covariance(gaussian_input_covariance((9, 7), 1.0), 3)
    y = np.random.default_rng(6).normal(size=(9, 7))
    fast = gp_posterior_stationary(cov, y, noise_var=0.1)
    dense = gp_posterior(covariance_matrix_from_lags(cov), y, noise_var=0.1, jitter=0.0)
    np.testing.assert_allclose(fast.mean, dense.mean, atol=1e-12)
    np.testing.assert_allclose(fast.var, dense.var, atol=1e-12)


def test_cg_inpainting_mean_equals_the_dense_one():
    cov = rbf_covariance((10, 11), 2.0)
    rng = np.random.default_rng(7)
    y, mask = rng.normal(size=(10, 11)), rng.random((10, 11)) < 0.5
    fast = gp_posterior_stationary(cov, y, mask, noise_var=0.01, variance=False, tol=1e-12)
    dense = gp_posterior(covariance_matrix_from_lags(cov), y, mask, noise_var=0.01, jitter=0.0)
    np.testing.assert_allclose(fast.mean, dense.mean, atol=1e-8)
    assert fast.var is None


def test_log_marginal_likelihood_is_the_gaussian_log_density():
    cov = conv_gp_covariance(gaussian_input_covariance(16, 1.0), 3)
    y = np.random.default_rng(8).normal(size=16)
    k = covariance_matrix_from_lags(cov)
    expected = scipy.stats.multivariate_normal(np.zeros(16), k + 0.2 * np.eye(16)).logpdf(y)
    assert gp_log_marginal_likelihood(k, y, noise_var=0.2, jitter=0.0) == pytest.approx(expected, rel=1e-10)
    assert gp_log_marginal_likelihood_stationary(cov, y, 0.2) == pytest.approx(expected, rel=1e-10)


def test_amplitude_mle_maximises_the_marginal_likelihood():
    c = covariance_matrix_from_lags(rbf_covariance(20, 2.0))
    rng = np.random.default_rng(9)
    y, mask = rng.normal(size=20) * 0.3, rng.random(20) < 0.6
    amplitude, ll = gp_amplitude_mle(c, y, mask, noise_ratio=1e-2)
    assert ll == pytest.approx(gp_log_marginal_likelihood(amplitude * c, y, mask, amplitude * 1e-2, jitter=0.0))
    for factor in (0.8, 1.25):
        a = amplitude * factor
        assert gp_log_marginal_likelihood(a * c, y, mask, a * 1e-2, jitter=0.0) < ll


def test_gp_posterior_rejects_a_mask_of_the_wrong_shape():
    with pytest.raises(AnalysisError, match="observed_mask"):
        gp_posterior(np.eye(4), np.zeros(4), np.ones(3, bool), 0.1)


# ---------------------------------------------------------------- sampled networks


def test_correlated_input_has_the_requested_covariance():
    cov = gaussian_input_covariance(16, 2.0)
    z = torch.randn(4000, 1, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = correlated_input(z, cov)[:, 0].numpy()
    assert x.dtype == np.float64
    np.testing.assert_allclose(np.mean(x * x[:, :1], axis=0), cov, atol=0.06)


def test_layer_variances_follow_the_init_rule():
    net = build_model("conv", signal_shape=(1, 8), runs=1, depth=3, width=16, in_channels=4, kernel=3,
                      init="default", bias=True)
    weight_var, bias_var = conv_layer_variances(net)
    assert weight_var == pytest.approx([1 / 3] * 3)
    assert bias_var == pytest.approx([1 / 36, 1 / 144, 1 / 144])


def test_sampled_covariance_of_a_wide_conv_matches_the_analytic_kernel():
    depth, n, length_scale = 3, 24, 1.5
    options = dict(depth=depth, width=256, kernel=3, in_channels=64, init="xavier", bias=False)
    sampled = sampled_covariance("conv", options, (1, n), 300, runs=50, length_scale=length_scale,
                                 margin=depth, full_matrix=False)
    weight_var, bias_var = conv_layer_variances(build_model("conv", signal_shape=(1, n), **options))
    analytic = conv_gp_covariance(gaussian_input_covariance(n, length_scale), depth,
                                  weight_var=weight_var, bias_var=bias_var)
    half = n - 2 * depth - 1
    lags = slice(half - 8, half + 9)
    gap = sampled.correlation[lags] - centred_lags(normalised_covariance(analytic), 8)
    assert np.all(np.abs(gap) <= 4 * sampled.correlation_se[lags] + 1e-12)
    variance_gap = sampled.lag[half] - analytic[0]
    assert abs(variance_gap) <= 4 * sampled.lag_se[half]


def test_conv_interior_is_stationary_and_nearest_upsampling_dip_is_not():
    conv = sampled_covariance("conv", dict(depth=3, width=64, in_channels=16), (1, 32), 200, runs=50,
                              length_scale=1.0, margin=3, period=4, full_matrix=False)
    dip = sampled_covariance("dip", dict(levels=2, down=32, up=32, skip=4, upsample="nearest", in_channels=16),
                             (1, 32), 200, runs=50, margin=4, period=4, full_matrix=False)
    conv_dev, dip_dev = (stationarity_deviation(s, max_offset=6) for s in (conv, dip))
    assert conv_dev.rms_z < 1.3 < 1.8 < dip_dev.rms_z
    assert dip_dev.max_abs > 4 * dip_dev.max_abs_se


def test_sampled_power_spectrum_sums_to_the_output_variance():
    options = dict(depth=3, width=32, in_channels=8)
    mean, se = sampled_power_spectrum("conv", options, (1, 16), 40, runs=20)
    sampled = sampled_covariance("conv", options, (1, 16), 40, runs=20)
    assert mean.sum() == pytest.approx(np.mean(np.diagonal(sampled.moment)), rel=1e-6)
    assert np.all(se > 0)
