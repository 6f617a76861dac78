"""Tests of spectral_lab.analyze.spectrum: Parseval, bands, relative errors, fit times."""

import json
import math

import numpy as np
import pytest

from _fakes import FakeTrajectory

from spectral_lab.analyze.spectrum import (
    band_fit_times,
    band_power,
    luminance,
    magnitude_ratio,
    power_spectrum,
    radial_bands,
    spectrum_error,
    spectrum_file,
)
from spectral_lab.errors import AnalysisError

SHAPE = (3, 37, 31)
N_BANDS = 6


def random_image(seed=0, shape=SHAPE):
    return np.random.default_rng(seed).uniform(size=shape)


def low_pass_trajectory(target, n_bands=N_BANDS):
    """Frame t keeps bands 0..t-1 of the target exactly and nothing above: band k fits at t = k + 1."""
    band_index, _ = radial_bands(target.shape[-2:], n_bands)
    spectrum = np.fft.fft2(target)
    return np.stack([np.fft.ifft2(spectrum * (band_index < t)).real for t in range(n_bands + 2)])


# --- power spectrum and bands ----------------------------------------------------------


def test_parseval_total_power_is_the_mean_square():
    images = np.random.default_rng(1).normal(size=(2, *SHAPE))
    np.testing.assert_allclose(power_spectrum(images).sum(axis=(-2, -1)), np.mean(images**2, axis=(-2, -1)), rtol=1e-13)


def test_dc_power_is_the_squared_mean():
    image = random_image()
    np.testing.assert_allclose(power_spectrum(image)[..., 0, 0], image.mean(axis=(-2, -1)) ** 2, rtol=1e-13)


def test_luminance_uses_bt601_weights():
    image = np.zeros((3, 5, 7))
    image[0], image[1], image[2] = 1.0, 2.0, 4.0
    np.testing.assert_allclose(luminance(image), 0.299 + 2 * 0.587 + 4 * 0.114, rtol=1e-15)


def test_single_channel_is_its_own_luminance():
    image = random_image(shape=(1, 37, 31))
    np.testing.assert_array_equal(luminance(image), image[0])


def test_bands_tile_the_whole_spectrum_with_dc_alone_in_band_zero():
    band_index, edges = radial_bands(SHAPE[1:], N_BANDS)
    assert edges[0] == edges[1] == 0.0 and edges[-1] == math.sqrt(0.5)
    assert np.flatnonzero(band_index == 0).tolist() == [0]
    assert set(np.unique(band_index)) == set(range(N_BANDS))


def test_sinusoid_of_known_frequency_lands_in_its_band():
    fy, fx = 5 / 37, 7 / 31  # on the frequency grid
    y, x = np.mgrid[:37, :31]
    image = np.cos(2 * np.pi * (fy * y + fx * x))[None]
    band_index, edges = radial_bands((37, 31), N_BANDS)
    expected = math.ceil(math.hypot(fy, fx) / edges[2])  # ring k holds (k-1) w < |f| <= k w
    counts = np.bincount(band_index.ravel())
    power = band_power(image[None], N_BANDS)[0]
    # Two bins of power 1/4 each (cos = two half-amplitude exponentials), nothing elsewhere.
    np.testing.assert_allclose(power[expected], 0.5 / counts[expected], rtol=1e-12)
    np.testing.assert_allclose(np.delete(power, expected), 0.0, atol=1e-28)


def test_corner_frequency_is_in_the_last_band():
    y, x = np.mgrid[:36, :30]
    checkerboard = ((-1.0) ** (y + x))[None]  # fx = fy = 1/2 cycles per pixel
    power = band_power(checkerboard[None], N_BANDS)[0]
    assert power[-1] > 0
    np.testing.assert_allclose(power[:-1], 0.0, atol=1e-28)


def test_constant_image_has_power_only_in_the_dc_band():
    power = band_power(np.full((1, *SHAPE), 0.5), N_BANDS, channel="all")[0]
    assert power[0] == 0.25
    np.testing.assert_allclose(power[1:], 0.0, atol=1e-30)  # FFT round-off of odd sizes


def test_band_power_times_band_sizes_sums_to_the_mean_square():
    image = random_image()
    band_index, _ = radial_bands(SHAPE[1:], N_BANDS)
    total = band_power(image[None], N_BANDS, channel="all")[0] @ np.bincount(band_index.ravel())
    np.testing.assert_allclose(total, np.mean(image**2), rtol=1e-13)


def test_default_band_count_leaves_no_band_empty_on_tiny_images():
    for shape in [(2, 2), (3, 37), (37, 31), (64, 5)]:
        band_index, edges = radial_bands(shape)
        assert np.bincount(band_index.ravel()).min() >= 1 and len(edges) == band_index.max() + 2


def test_more_bands_than_the_image_resolves_are_refused():
    with pytest.raises(AnalysisError, match="too many"):
        radial_bands((5, 7), 40)


def test_unknown_channel_is_refused():
    with pytest.raises(AnalysisError, match="channel"):
        band_power(random_image()[None], N_BANDS, channel=3)


# --- errors and fit times --------------------------------------------------------------


def test_perfect_fit_has_zero_error_and_doubling_has_error_three():
    target = random_image()
    error = spectrum_error(np.stack([target, 2 * target]), target, N_BANDS)
    np.testing.assert_array_equal(error[0], 0.0)
    np.testing.assert_allclose(error[1], 3.0, rtol=1e-12)


def test_band_empty_in_the_reference_gives_a_finite_error():
    constant = np.full(SHAPE, 0.5)
    error = spectrum_error(np.stack([constant, random_image()]), constant, N_BANDS)
    assert np.isfinite(error).all()
    np.testing.assert_array_equal(error[0], 0.0)
    assert error[1, 1:].min() > 1e6


def test_fit_time_is_when_the_error_stays_under_the_threshold():
    rel_err = np.array([[1.0, 1.0, 1.0], [0.05, 1.0, 1.0], [0.2, 0.05, 1.0], [0.05, 0.05, 1.0]])
    assert band_fit_times(rel_err, threshold=0.1) == [3, 2, None]


def test_low_pass_trajectory_fits_low_bands_first():
    target = random_image()
    error = spectrum_error(low_pass_trajectory(target), target, N_BANDS)
    assert band_fit_times(error, threshold=0.1) == [1, 2, 3, 4, 5, 6]


def test_magnitude_ratio_is_the_amplitude_scale_clipped_at_one():
    target = random_image()
    frames = np.stack([0.5 * target, 2 * target])
    np.testing.assert_allclose(magnitude_ratio(frames, target, N_BANDS), [[0.5] * N_BANDS, [1.0] * N_BANDS], rtol=1e-12)
    np.testing.assert_allclose(magnitude_ratio(frames, target, N_BANDS, clip=False)[1], 2.0, rtol=1e-12)


# --- file ------------------------------------------------------------------------------


def test_streamed_file_equals_in_memory_in_chunks_of_seven():
    target = random_image(0)
    observed = target + 0.1 * np.random.default_rng(5).normal(size=SHAPE)
    runs = [low_pass_trajectory(target), np.random.default_rng(3).uniform(size=(9, *SHAPE))]
    traj = FakeTrajectory(runs, target, observed=observed)
    result = spectrum_file(traj, n_bands=N_BANDS, reference="observed", channel="all", chunk=7)
    for run, frames in enumerate(traj.arrays):
        expected = spectrum_error(frames, traj.observed, N_BANDS, channel="all")
        np.testing.assert_array_equal(result.errors[run], expected)
        assert result.time_to_fit[run] == band_fit_times(expected, 0.1)


def test_json_holds_edges_errors_and_null_for_never_fitted_bands():
    target = random_image(0)
    runs = [low_pass_trajectory(target)[:3]]  # bands 2.. never fit
    traj = FakeTrajectory(runs, target, observed=target)
    document = spectrum_file(traj, n_bands=N_BANDS, chunk=7).to_json()
    json.dumps(document, allow_nan=False)
    assert document["reference"] == "target" and len(document["band_edges"]) == N_BANDS + 1
    assert np.shape(document["error"]) == (1, 3, N_BANDS)
    assert document["time_to_fit"] == [[1, 2, None, None, None, None]]


def test_one_dimensional_file_is_refused():
    signal = np.zeros(61)
    traj = FakeTrajectory([np.zeros((4, 61))], signal, observed=signal, kind="1d")
    with pytest.raises(AnalysisError, match="needs image trajectories; this file holds a 1D signal"):
        spectrum_file(traj)


# --------------------------------------------------------------------------- fitted front, late error

def test_fitted_front_is_the_top_of_the_fitted_bands_from_dc_up():
    from spectral_lab.analyze.spectrum import fitted_front

    errors = np.array([[0.05, 0.05, 0.5], [0.05, 0.05, 0.05], [0.5, 0.0, 0.0]])
    edges = np.array([0.0, 0.0, 0.3, 0.7])
    np.testing.assert_array_equal(fitted_front(errors, edges, 0.1), [0.3, 0.7, 0.0])


def test_fitted_front_refuses_edges_that_do_not_match_the_bands():
    from spectral_lab.analyze.spectrum import fitted_front

    with pytest.raises(AnalysisError, match="band edges"):
        fitted_front(np.zeros((2, 3)), np.zeros(3), 0.1)


def test_late_error_is_the_median_of_the_last_iterations_averaged_over_runs():
    from spectral_lab.analyze.spectrum import late_error

    run0 = np.array([[9.0, 9.0], [1.0, 4.0], [3.0, 2.0], [2.0, 0.0]])  # last half: medians 2.5, 1
    run1 = np.array([[5.0, 5.0], [0.5, 1.0]])  # last half (1 row): 0.5, 1
    np.testing.assert_allclose(late_error([run0, run1], 0.5), [1.5, 1.0])
    np.testing.assert_allclose(late_error([run0], 0.01), [2.0, 0.0])  # at least the last frame
    with pytest.raises(AnalysisError):
        late_error([run0], 0.0)
