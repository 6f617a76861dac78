"""Tests of spectral_lab.signals: exact values where math gives them, physical properties else."""

import numpy as np
import pytest
from conftest import SHARED_DATA  # $SPECTRAL_LAB_SHARED or ../shared/data
from PIL import Image

from spectral_lab.errors import SignalError
from spectral_lab.signals import (
    add_lowfreq_noise,
    amplitude_profile,
    random_phases,
    add_white_noise,
    degrade,
    load_image,
    lowfreq_noise,
    sample_image_path,
    sines,
    triangle_image,
    white_noise,
)

IMAGE_SHAPE = (3, 37, 31)


def _radius(shape_hw):
    """(H, W) frequency radius in cycles per pixel, np.fft.fftn layout."""
    fy, fx = np.meshgrid(np.fft.fftfreq(shape_hw[0]), np.fft.fftfreq(shape_hw[1]), indexing="ij")
    return np.hypot(fy, fx)


# ----------------------------------------------------------------------------- sines


def test_sines_has_the_requested_length_and_float32():
    x = sines(freqs=(3, 7), amps=(1.0, 0.5), length=51)
    assert x.shape == (51,)
    assert x.dtype == np.float32


def test_sines_samples_the_formula_on_n_points_of_the_unit_interval():
    x = sines(freqs=(1,), amps=(2.0,), length=4)
    np.testing.assert_allclose(x, [0.0, 2.0, 0.0, -2.0], atol=1e-6)


def test_sines_phase_shifts_a_sine_into_a_cosine():
    x = sines(freqs=(2,), amps=(1.0,), phases=(np.pi / 2,), length=9)
    np.testing.assert_allclose(x, np.cos(2 * np.pi * 2 * np.arange(9) / 9), atol=1e-6)


def test_sines_puts_an_integer_frequency_in_its_fft_bin():
    spectrum = np.abs(np.fft.rfft(sines(freqs=(5, 50), amps=(1.0, 0.5), length=201)))
    assert set(np.flatnonzero(spectrum > 1.0)) == {5, 50}


def test_sines_refuses_a_frequency_at_the_nyquist_limit():
    with pytest.raises(SignalError, match=r"frequency 100 .*Nyquist.*100"):
        sines(freqs=(5, 100), amps=(1.0, 1.0), length=200)


def test_sines_refuses_mismatched_lengths():
    with pytest.raises(SignalError, match="same length"):
        sines(freqs=(5, 50), amps=(1.0,), length=200)


def test_sines_refuses_a_non_finite_amplitude():
    with pytest.raises(SignalError, match="finite"):
        sines(freqs=(5,), amps=(np.inf,), length=200)


# ----------------------------------------------------------------------------- images


def test_sample_image_path_is_an_existing_file():
    assert sample_image_path().is_file()


def test_load_image_reads_the_sample_as_float32_colour_in_unit_range():
    x = load_image(sample_image_path())
    assert x.shape == (3, 600, 512)
    assert x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_load_image_grey_gives_one_channel():
    assert load_image(sample_image_path(), grey=True).shape == (1, 600, 512)


def test_load_image_downsample_two_halves_both_sides():
    assert load_image(sample_image_path(), downsample=2).shape == (3, 300, 256)


def test_load_image_crops_to_a_multiple():
    x = load_image(sample_image_path(), crop_multiple=7)
    assert x.shape == (3, 595, 511)


def test_load_image_reads_a_grey_png_exactly(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(13, 11), dtype=np.uint8)
    path = tmp_path / "grey.png"
    Image.fromarray(pixels).save(path)
    np.testing.assert_array_equal(load_image(path), pixels[None] / np.float32(255))


def test_load_image_drops_alpha_from_rgba(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, size=(13, 11, 4), dtype=np.uint8)
    path = tmp_path / "rgba.png"
    Image.fromarray(pixels).save(path)
    with Image.open(path) as written:
        assert written.mode == "RGBA"
    expected = np.moveaxis(pixels[..., :3], -1, 0) / np.float32(255)
    np.testing.assert_array_equal(load_image(path), expected)


def test_load_image_scales_sixteen_bit_png_by_65535(tmp_path):
    pixels = np.array([[0, 65535, 32768]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(pixels).save(path)
    np.testing.assert_allclose(load_image(path), pixels[None] / 65535.0, rtol=1e-6)


def test_load_image_grey_uses_bt601_luminance(tmp_path):
    path = tmp_path / "red.png"
    Image.fromarray(np.full((3, 5, 3), [255, 0, 0], dtype=np.uint8)).save(path)
    np.testing.assert_allclose(load_image(path, grey=True), 0.299, rtol=1e-6)


def test_load_image_names_a_missing_path(tmp_path):
    path = tmp_path / "absent.png"
    with pytest.raises(SignalError, match="absent.png"):
        load_image(path)


def test_load_image_names_a_file_that_is_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    with pytest.raises(SignalError, match="notes.png"):
        load_image(path)


def test_load_image_refuses_an_image_smaller_than_crop_multiple(tmp_path):
    path = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((5, 9), dtype=np.uint8)).save(path)
    with pytest.raises(SignalError, match="crop_multiple"):
        load_image(path, crop_multiple=8)


def test_load_image_reads_the_papers_triangle_file():
    path = SHARED_DATA / "triangle" / "triangle-0.2.png"
    if not path.is_file():
        pytest.skip(f"shared data absent: {path}")
    x = load_image(path)
    assert x.shape == (1, 256, 256)
    assert 0.0 <= x.min() and x.max() <= 1.0


# ----------------------------------------------------------------------------- triangle


def test_triangle_image_is_one_channel_in_unit_range():
    x = triangle_image((45, 61), 0.5)
    assert x.shape == (1, 45, 61)
    assert x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_triangle_image_with_more_pattern_has_more_high_frequency_energy():
    def energy_above(x, f0=0.2):
        power = np.abs(np.fft.fftn(x[0].astype(np.float64))) ** 2
        return power[_radius(x.shape[1:]) > f0].sum()

    assert energy_above(triangle_image((45, 61), 1.0)) > 10 * energy_above(
        triangle_image((45, 61), 0.0)
    )


def test_triangle_pattern_fraction_is_a_fraction_of_the_area():
    changed = triangle_image((45, 61), 0.25)[0] != triangle_image((45, 61), 0.0)[0]
    # sqrt(0.25) = half of each side: 22.5 -> 23 rows, 30.5 -> 31 columns.
    assert np.flatnonzero(changed.any(axis=0)).tolist() == list(range(31))
    assert np.flatnonzero(changed.any(axis=1)).max() < 23


def test_triangle_image_refuses_a_fraction_above_one():
    with pytest.raises(SignalError, match="pattern_fraction"):
        triangle_image((45, 61), 1.5)


# ----------------------------------------------------------------------------- white noise


def test_white_noise_std_is_sigma_over_255():
    noise = white_noise((201, 199), 25.0, seed=0)
    assert noise.std() == pytest.approx(25.0 / 255, rel=0.02)


def test_white_noise_refuses_a_negative_sigma():
    with pytest.raises(SignalError, match="sigma"):
        white_noise((5,), -1.0, seed=0)


def test_white_noise_refuses_a_non_finite_sigma():
    with pytest.raises(SignalError, match="sigma"):
        white_noise((5,), float("nan"), seed=0)


def test_add_white_noise_is_clipped_float32():
    noisy = add_white_noise(np.full(IMAGE_SHAPE, 0.95), 50.0, seed=0)
    assert noisy.dtype == np.float32
    assert noisy.max() == 1.0 and noisy.min() >= 0.0


# ----------------------------------------------------------------------------- low-frequency noise


def test_lowfreq_noise_std_is_exactly_sigma_over_255_per_channel():
    noise = lowfreq_noise(IMAGE_SHAPE, 25.0, 0.1, seed=0)
    np.testing.assert_allclose(noise.std(axis=(1, 2)), 25.0 / 255, rtol=1e-6)


def test_lowfreq_noise_has_no_power_above_the_cutoff():
    noise = lowfreq_noise(IMAGE_SHAPE, 25.0, 0.1, seed=0)
    power = np.abs(np.fft.fftn(noise, axes=(1, 2))) ** 2
    above = power[:, _radius(IMAGE_SHAPE[1:]) > 0.1]
    assert above.max() < 1e-20 * power.sum()


def test_lowfreq_noise_has_zero_mean_per_channel():
    noise = lowfreq_noise(IMAGE_SHAPE, 25.0, 0.1, seed=0)
    np.testing.assert_allclose(noise.mean(axis=(1, 2)), 0.0, atol=1e-15)


def test_lowfreq_noise_works_on_a_1d_shape():
    noise = lowfreq_noise((201,), 25.0, 0.05, seed=0)
    power = np.abs(np.fft.fft(noise)) ** 2
    assert noise.shape == (201,)
    assert power[np.abs(np.fft.fftfreq(201)) > 0.05].max() < 1e-20 * power.sum()


def test_lowfreq_noise_is_reproducible_with_a_seed():
    np.testing.assert_array_equal(
        lowfreq_noise(IMAGE_SHAPE, seed=3), lowfreq_noise(IMAGE_SHAPE, seed=3)
    )


def test_lowfreq_noise_differs_between_seeds():
    assert not np.allclose(lowfreq_noise(IMAGE_SHAPE, seed=3), lowfreq_noise(IMAGE_SHAPE, seed=4))


def test_lowfreq_noise_refuses_a_cutoff_that_keeps_no_frequency():
    with pytest.raises(SignalError, match="no nonzero frequency"):
        lowfreq_noise(IMAGE_SHAPE, 25.0, 0.01, seed=0)


def test_lowfreq_noise_refuses_a_2d_shape():
    with pytest.raises(SignalError, match=r"\(C, H, W\)"):
        lowfreq_noise((37, 31), seed=0)


def test_add_lowfreq_noise_is_clipped_float32():
    noisy = add_lowfreq_noise(np.full(IMAGE_SHAPE, 0.5), 200.0, 0.1, seed=0)
    assert noisy.dtype == np.float32
    assert noisy.min() == 0.0 and noisy.max() == 1.0


# ----------------------------------------------------------------------------- degrade


def test_degrade_white_equals_add_white_noise():
    x = np.full(IMAGE_SHAPE, 0.5)
    np.testing.assert_array_equal(
        degrade(x, noise="white", sigma=25.0, seed=2), add_white_noise(x, 25.0, seed=2)
    )


def test_degrade_lowfreq_equals_add_lowfreq_noise():
    x = np.full(IMAGE_SHAPE, 0.5)
    np.testing.assert_array_equal(
        degrade(x, noise="lowfreq", sigma=25.0, cutoff=0.1, seed=2),
        add_lowfreq_noise(x, 25.0, 0.1, seed=2),
    )


def test_degrade_none_returns_the_signal_as_float32():
    x = sines(length=51, freqs=(3,), amps=(1.0,))
    np.testing.assert_array_equal(degrade(x, noise="none"), x)


def test_degrade_lists_the_choices_for_an_unknown_noise():
    with pytest.raises(SignalError, match="none, white, lowfreq"):
        degrade(np.zeros(5), noise="pink")


# ----------------------------------------------------------------------------- amplitude profiles, phases


def test_phases_are_seeded_per_draw_and_in_range():
    a = random_phases(10, seed=0, draw=1)
    assert a == random_phases(10, seed=0, draw=1) and a != random_phases(10, seed=0, draw=2)
    assert all(0 <= p < 2 * np.pi for p in a)


def test_amplitude_profiles_follow_their_shape_at_the_given_power():
    amps = np.array(amplitude_profile("increasing", (5, 25, 50), power=2.0))
    np.testing.assert_allclose(amps / amps[-1], [0.1, 0.5, 1.0])
    np.testing.assert_allclose(np.sum(amps ** 2) / 2, 2.0)  # the signal's mean square
    np.testing.assert_allclose(amplitude_profile("equal", (5, 50)), (1.0, 1.0))


@pytest.mark.parametrize("profile, power", [("decreasing", 1.0), ("equal", 0.0), ("equal", float("nan"))])
def test_an_unknown_profile_or_a_bad_power_is_refused(profile, power):
    with pytest.raises(ValueError):
        amplitude_profile(profile, (5, 50), power)
