"""Tests of spectral_lab.analyze.upsampling: analytic gains against torch's layers."""

import numpy as np
import pytest

from spectral_lab.analyze.upsampling import MODES, analytic_response, measured_response
from spectral_lab.errors import AnalysisError

# Cycles per output sample over the whole band, off the round values on purpose.
FREQS = np.linspace(-0.5, 0.5, 203)
STRIDES = [1, 2, 3, 4, 5, 8]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stride", STRIDES)
def test_layer_formula_equals_the_measured_torch_layer(mode, stride):
    # Both are exact: the measured kernel's DTFT is a sum of <= 2L float64 terms.
    measured = measured_response(FREQS, stride, mode)
    np.testing.assert_allclose(analytic_response(FREQS, stride, mode, form="layer"), measured, rtol=0, atol=1e-13)


@pytest.mark.parametrize("form", ["paper", "layer"])
@pytest.mark.parametrize("mode", MODES)
def test_every_response_is_one_at_dc(form, mode):
    assert analytic_response(0.0, 4, mode, form=form) == 1.0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stride", [2, 3, 4])
def test_both_forms_vanish_at_multiples_of_the_input_sampling_rate(mode, stride):
    zeros = np.arange(1, stride) / stride  # k = m / L, up to the output's sampling rate
    for form in ("paper", "layer"):
        np.testing.assert_allclose(analytic_response(zeros, stride, mode, form=form), 0.0, atol=1e-15)


@pytest.mark.parametrize("stride", [1, 2, 3, 4, 5])
def test_paper_formula_is_the_layer_times_the_hold_of_one_output_sample(stride):
    k = FREQS[np.abs(FREQS) < 0.5]  # the even-L bilinear factor 1/|cos(pi k)| is infinite at 1/2
    hold = np.sinc(k)
    layer_nearest = analytic_response(k, stride, "nearest", form="layer")
    layer_bilinear = analytic_response(k, stride, "bilinear", form="layer")
    bilinear_factor = hold**2 / (np.abs(np.cos(np.pi * k)) if stride % 2 == 0 else 1.0)
    np.testing.assert_allclose(analytic_response(k, stride, "nearest"), layer_nearest * np.abs(hold), atol=1e-15)
    np.testing.assert_allclose(analytic_response(k, stride, "bilinear"), layer_bilinear * bilinear_factor, atol=1e-15)


def test_paper_bilinear_is_the_appendix_formula_divided_by_the_stride():
    stride, k = 4, np.array([0.03, 0.1, 0.2])
    appendix = np.sin(np.pi * stride * k) ** 2 / (stride * np.pi**2 * k**2)
    np.testing.assert_allclose(analytic_response(k, stride, "bilinear"), appendix / stride, rtol=1e-14)


def test_bilinear_suppresses_high_frequencies_more_than_nearest():
    k = np.linspace(0.01, 0.49, 49)
    for form in ("paper", "layer"):
        assert np.all(analytic_response(k, 4, "bilinear", form=form) <= analytic_response(k, 4, "nearest", form=form))


def test_stride_one_layer_is_the_identity():
    np.testing.assert_allclose(measured_response(FREQS, 1, "bilinear"), 1.0, atol=1e-15)


def test_unknown_mode_is_refused():
    with pytest.raises(AnalysisError, match="mode"):
        analytic_response(FREQS, 2, "bicubic")


@pytest.mark.parametrize("stride", [0, 2.5, True])
def test_non_integer_or_zero_stride_is_refused(stride):
    with pytest.raises(AnalysisError, match="stride"):
        measured_response(FREQS, stride, "nearest")


def test_impulse_on_a_border_is_refused():
    with pytest.raises(AnalysisError, match="length"):
        measured_response(FREQS, 2, "nearest", length=2)


def test_compared_responses_agree_and_summarise_where_the_layer_cuts():
    from spectral_lab.analyze.upsampling import compare_responses

    freqs = np.linspace(0.0, 0.5, 201)
    r = compare_responses(freqs, 2, "nearest")
    np.testing.assert_allclose(r.layer, analytic_response(freqs, 2, "nearest", form="layer"))
    s = r.summary()
    assert s["max_layer_vs_measured"] < 1e-12
    # nearest, L = 2: the layer's gain is |cos(pi k)|, sqrt(1/2) at the input's Nyquist 1/4,
    # 1/2 first at k = 1/3 (on this grid: the first sample at or above it)
    assert s["layer_at_input_nyquist"] == pytest.approx(np.sqrt(0.5))
    assert s["paper_at_input_nyquist"] == pytest.approx(2 / np.pi)
    assert s["half_gain_freq"] == pytest.approx(freqs[np.flatnonzero(freqs >= 1 / 3)[0]])
    assert s["mean_gain_above_input_nyquist"] == pytest.approx(np.mean(np.abs(np.cos(np.pi * freqs[freqs >= 0.25]))))
    with pytest.raises(AnalysisError):
        compare_responses(np.zeros((2, 2)), 2, "nearest")
