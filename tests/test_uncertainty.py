"""The uncertainty map's numbers (spectral_lab.analyze.uncertainty), the running posterior mean's
PSNR curve (analyze.psnr.running_mean_curve) and GP inpainting with chosen hyper-parameters
(kernels.gp.gp_inpaint)."""

from __future__ import annotations

import numpy as np
import pytest
from _fakes import FakeTrajectory

from spectral_lab.analyze.psnr import psnr, running_mean_curve
from spectral_lab.analyze.uncertainty import edge_strength, uncertainty_file, uncertainty_summary
from spectral_lab.errors import AnalysisError, ConfigError
from spectral_lab.kernels.gp import covariance_matrix_from_lags
from spectral_lab.kernels.gp_inputs import rbf_covariance
from spectral_lab.kernels.gp_inference import gp_amplitude_mle, gp_inpaint, gp_posterior

SHAPE = (3, 9, 11)


def _holes(shape=SHAPE[1:], seed=0):
    known = np.random.default_rng(seed).random(shape) >= 0.5
    return known.astype(np.float64)[None]


# --------------------------------------------------------------------------- uncertainty_summary

def test_the_spread_in_the_holes_over_the_known_pixels_is_their_ratio():
    known = _holes()
    variance = np.where(known.astype(bool), 0.01**2, 0.03**2) * np.ones(SHAPE)
    clean = np.zeros(SHAPE)
    out = uncertainty_summary(clean, variance, clean, known)
    assert out["std_hole"] == pytest.approx(0.03) and out["std_known"] == pytest.approx(0.01)
    assert out["hole_over_known"] == pytest.approx(3.0)
    assert out["pixels_hole"] + out["pixels_known"] == 9 * 11 and out["pixels_hole"] == int((known == 0).sum())


def test_a_spread_equal_to_the_error_correlates_perfectly_and_covers_every_hole_within_one_std():
    rng = np.random.default_rng(1)
    clean = rng.uniform(size=SHAPE)
    err = rng.uniform(0.01, 0.2, size=SHAPE[1:])
    mean = clean + err  # the same error in every channel: per-pixel RMS error = err
    out = uncertainty_summary(mean, np.broadcast_to(err**2, SHAPE), clean, _holes())
    assert out["corr_error"]["pearson"] == pytest.approx(1.0) and out["corr_error"]["spearman"] == pytest.approx(1.0)
    wider = uncertainty_summary(mean, np.broadcast_to((err * 1.001) ** 2, SHAPE), clean, _holes())
    assert wider["within_1std_hole"] == 1.0 and wider["within_2std_hole"] == 1.0
    half = uncertainty_summary(mean, np.broadcast_to((err / 1.5) ** 2, SHAPE), clean, _holes())
    assert half["within_1std_hole"] == 0.0 and half["within_2std_hole"] == 1.0


def test_a_spread_that_follows_the_edges_is_larger_on_the_edges_than_in_flat_areas():
    clean = np.zeros((1, 12, 12))
    clean[:, :, 6:] = 1.0  # one vertical edge between columns 5 and 6
    variance = 1e-4 + 0.01 * edge_strength(clean)[None]
    out = uncertainty_summary(clean, variance, clean)
    assert out["edges_over_flat"] > 5 and out["corr_edges"]["spearman"] > 0.8
    assert out["std_hole"] is None and out["hole_over_known"] is None  # every pixel observed


def test_edge_strength_of_a_ramp_is_its_slope():
    ramp = np.tile(np.arange(7.0) * 0.1, (5, 1))[None]
    np.testing.assert_allclose(edge_strength(ramp), 0.1)


@pytest.mark.parametrize("args, message", [
    ((np.zeros((3, 4, 4)), np.zeros((3, 4, 5)), np.zeros((3, 4, 4))), "share one shape"),
    ((np.zeros((3, 4, 4)), -np.ones((3, 4, 4)), np.zeros((3, 4, 4))), ">= 0"),
    ((np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 4))), "share one shape"),
])
def test_bad_inputs_are_one_analysis_error(args, message):
    with pytest.raises(AnalysisError, match=message):
        uncertainty_summary(*args)


def test_a_mask_of_another_size_is_refused():
    with pytest.raises(AnalysisError, match="mask"):
        uncertainty_summary(np.zeros(SHAPE), np.zeros(SHAPE), np.zeros(SHAPE), np.ones((1, 9, 10)))


def test_a_file_without_posterior_statistics_is_refused():
    fake = FakeTrajectory([np.zeros((2, *SHAPE))], np.zeros(SHAPE))
    with pytest.raises(AnalysisError, match="posterior"):
        uncertainty_file(fake)


# --------------------------------------------------------------------------- running_mean_curve

def test_the_running_mean_curve_scores_the_cumulative_mean_from_the_start_iteration():
    rng = np.random.default_rng(2)
    clean = rng.uniform(size=SHAPE)
    frames = clean + 0.3 * rng.standard_normal((7, *SHAPE))
    its, curve = running_mean_curve(FakeTrajectory([frames], clean), 0, 3, lambda b: psnr(b, clean), chunk=2)
    expected = [psnr(frames[3:t + 1].mean(axis=0), clean)[0] for t in range(3, 7)]
    assert its.tolist() == [3, 4, 5, 6]
    np.testing.assert_allclose(curve, expected)
    assert curve[-1] > psnr(frames[3], clean)[0]  # averaging independent noise helps


def test_a_running_mean_from_after_the_last_frame_is_refused():
    fake = FakeTrajectory([np.zeros((3, *SHAPE))])
    with pytest.raises(AnalysisError, match="no stored frame"):
        running_mean_curve(fake, 0, 5, lambda b: b.mean(axis=(1, 2, 3)))


# --------------------------------------------------------------------------- gp_inpaint

def _signal(n=13, seed=3):
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.standard_normal(n)) * 0.1 + 0.5
    mask = rng.random(n) >= 0.4
    return x, mask


def test_gp_inpaint_is_the_maximum_likelihood_choice_of_the_noise_ratio_with_the_mean_added_back():
    x, mask = _signal()
    k = covariance_matrix_from_lags(rbf_covariance(2 * x.size, 2.0), x.size)
    ratios = (1e-4, 1e-2, 1.0)
    fit = gp_inpaint(k, x, mask, ratios)
    mu = x[mask].mean()
    centred = np.where(mask, x - mu, 0.0)
    best = max(ratios, key=lambda r: gp_amplitude_mle(k, centred, mask, r)[1])
    a, ll = gp_amplitude_mle(k, centred, mask, best)
    assert fit.noise_ratio == best and fit.amplitude == pytest.approx(a) and fit.log_ml == pytest.approx(ll)
    np.testing.assert_allclose(fit.posterior.mean, gp_posterior(a * k, centred, mask, a * best).mean + mu)


def test_gp_inpaint_with_a_small_nugget_keeps_the_observed_values():
    x, mask = _signal()
    k = covariance_matrix_from_lags(rbf_covariance(2 * x.size, 1.5), x.size)
    fit = gp_inpaint(k, x, mask, (1e-6,))
    np.testing.assert_allclose(fit.posterior.mean[mask], x[mask], atol=1e-3)
    assert np.all(fit.posterior.var[mask] < fit.posterior.var[~mask].min())


def test_gp_inpaint_refuses_an_empty_mask_or_no_noise_ratio():
    x, mask = _signal()
    k = np.eye(x.size)
    with pytest.raises(AnalysisError, match="observes no position"):
        gp_inpaint(k, x, np.zeros_like(mask))
    with pytest.raises(ConfigError, match="noise_ratios"):
        gp_inpaint(k, x, mask, ())
