import json

import numpy as np
import pytest

from _fakes import FakeTrajectory

from spectral_lab.analyze.amplitudes import (
    amplitudes,
    analyze_amplitudes,
    analyze_amplitudes_file,
    convergence_table,
    squared_error,
)
from spectral_lab.analyze.convergence import (
    first_crossing,
    first_crossing_per_column,
    settle_iteration,
    settle_iteration_per_column,
)
from spectral_lab.errors import AnalysisError

N = 61  # odd on purpose: N/2 is not a bin


def sines(freqs, amps, phases, n=N):
    t = np.arange(n) / n
    return sum(a * np.sin(2 * np.pi * k * t + p) for k, a, p in zip(freqs, amps, phases))


def stepped_run(t1, t2, *, k1=2, k2=9, n_frames=80):
    """Frames whose k1 (k2) amplitude jumps from 0 to 1 at iteration t1 (t2): SE 1 then 0."""
    steps = np.arange(n_frames)[:, None]
    a1, a2 = (steps >= t1).astype(float), (steps >= t2).astype(float)
    frames = a1 * sines([k1], [1], [0])[None, :] + a2 * sines([k2], [1], [0])[None, :]
    return analyze_amplitudes(frames, [k1, k2], target_amps=[1.0, 1.0])


def sines_trajectory(runs, target, freqs, kind="1d"):
    """A fake reader of a sines recording: the config names the frequencies."""
    config = {"signal": {"kind": "sines", "freqs": freqs, "length": target.shape[-1]}}
    return FakeTrajectory(runs, target, kind=kind, config=config)


def noisy_fit(seed, target, n_frames=30):
    """A fake fit: frames move from noise towards the target."""
    rng = np.random.default_rng(seed)
    weight = np.linspace(0, 1, n_frames)[:, None]
    return weight * target + (1 - weight) * rng.normal(size=(n_frames, target.size))


# --- stopping points -------------------------------------------------------------------


def test_settle_and_first_crossing_differ_on_an_oscillating_curve():
    err = np.array([5, 0.5, 3, 0.2, 2, 0.1, 0.05, 0.0])
    assert (first_crossing(err, 1.0), settle_iteration(err, 1.0)) == (1, 5)


def test_error_equal_to_threshold_counts_as_converged():
    assert settle_iteration(np.array([2.0, 1.0, 1.0]), 1.0) == 1


def test_curve_below_threshold_from_the_start_settles_at_iteration_zero():
    assert settle_iteration(np.array([0.1, 0.2]), 1.0) == 0


def test_curve_ending_above_threshold_never_settles():
    assert settle_iteration(np.array([0.1, 0.2, 3.0]), 1.0) is None


def test_curve_never_below_threshold_has_no_first_crossing():
    assert first_crossing(np.array([3.0, 2.0]), 1.0) is None


def test_nan_counts_as_above_threshold():
    err = np.array([0.0, np.nan, 0.0])
    assert (first_crossing(np.array([np.nan, 0.0]), 1.0), settle_iteration(err, 1.0)) == (1, 2)


def test_per_column_versions_match_each_column_alone():
    err = np.random.default_rng(0).uniform(0, 2, size=(9, 4))
    assert settle_iteration_per_column(err, 1.0) == [settle_iteration(c, 1.0) for c in err.T]
    assert first_crossing_per_column(err, 1.0) == [first_crossing(c, 1.0) for c in err.T]


def test_empty_curve_is_refused():
    with pytest.raises(AnalysisError):
        settle_iteration(np.array([]), 1.0)


# --- amplitudes -----------------------------------------------------------------------


def test_amplitudes_of_a_sum_of_sines_with_arbitrary_phases_are_exact():
    rng = np.random.default_rng(0)
    freqs, amps = [1, 7, 19, 30], rng.uniform(0.1, 2, size=4)
    frames = np.stack([sines(freqs, amps * s, rng.uniform(0, 2 * np.pi, 4)) for s in (1, 0.5, 2)])
    np.testing.assert_allclose(amplitudes(frames, freqs), np.outer([1, 0.5, 2], amps), rtol=0, atol=1e-10)


def test_a_single_signal_is_one_frame():
    assert amplitudes(sines([3], [1], [0]), [3]).shape == (1, 1)


def test_squared_error_is_zero_for_a_perfect_fit():
    target = sines([2, 9], [1, 0.3], [0.4, 1.1])
    result = analyze_amplitudes(np.stack([target] * 3), [2, 9], target=target)
    assert np.all(result.se == 0) and result.converged_at == [0, 0]


def test_squared_error_is_the_squared_difference():
    np.testing.assert_array_equal(squared_error(np.array([[1.5, 0.0]]), np.array([1.0, 2.0])), [[0.25, 4.0]])


@pytest.mark.parametrize("freq", [0, -1, 30.5, 31, 100])
def test_frequency_outside_zero_to_nyquist_is_refused(freq):
    with pytest.raises(AnalysisError, match="outside 0 < k < N/2"):
        amplitudes(sines([3], [1], [0]), [freq])


def test_non_integer_frequency_is_the_exact_dtft_at_that_frequency():
    frame = np.random.default_rng(0).normal(size=N)
    dtft = np.sum(frame * np.exp(-2j * np.pi * 4.3 * np.arange(N) / N))
    np.testing.assert_allclose(amplitudes(frame, [4.3])[0, 0], 2 * abs(dtft) / N, rtol=1e-12)


def test_non_integer_frequency_of_a_pure_cosine_is_biased_by_its_negative_image():
    n, k = 64, 5.25
    cosine = np.cos(2 * np.pi * k * np.arange(n) / n)
    # X(k) = N/2 + (1/2) sum_n exp(-4 pi i k n / N): the image at -k leaks into k.
    image = (1 - np.exp(-4j * np.pi * k)) / (1 - np.exp(-4j * np.pi * k / n))
    expected = abs(n / 2 + image / 2) * 2 / n
    assert abs(amplitudes(cosine, [k])[0, 0] - expected) < 1e-10 and abs(expected - 1) > 0.01


def test_missing_target_is_refused():
    with pytest.raises(AnalysisError, match="target"):
        analyze_amplitudes(np.zeros((2, N)), [3])


def test_target_signal_wins_over_given_target_amplitudes():
    result = analyze_amplitudes(np.zeros((2, N)), [3], target=sines([3], [0.7], [0]), target_amps=[5.0])
    np.testing.assert_allclose(result.target_amps, [0.7], atol=1e-12)


# --- result and JSON ------------------------------------------------------------------


def test_never_converged_frequency_is_none_and_json_null():
    result = stepped_run(t1=4, t2=1000)
    text = json.dumps(result.to_json(), allow_nan=False)
    assert result.converged_at == [4, None] and json.loads(text)["converged_at"] == [4, None]


def test_diverged_frames_become_json_null():
    frames = np.stack([sines([3], [1], [0]), np.full(N, np.nan)])
    data = analyze_amplitudes(frames, [3], target_amps=[1.0]).to_json()
    json.dumps(data, allow_nan=False)
    assert data["se"][1] == [None] and data["converged_at"] == [None]


# --- streaming ------------------------------------------------------------------------


def test_streaming_in_chunks_of_7_frames_equals_the_in_memory_result():
    target = sines([2, 9], [1, 1], [0, 0])
    runs = [noisy_fit(seed, target) for seed in (0, 1)]
    traj = sines_trajectory(runs, target, freqs=[2, 9])
    streamed = analyze_amplitudes_file(traj, chunk=7, delta=0.05)
    for r, frames in enumerate(traj.arrays):
        in_memory = analyze_amplitudes(frames, [2, 9], target=traj.target, delta=0.05)
        np.testing.assert_array_equal(streamed[r].se, in_memory.se)
        assert streamed[r].converged_at == in_memory.converged_at


def test_image_trajectory_is_refused():
    traj = sines_trajectory([np.zeros((2, 3, 5, 7))], np.zeros((3, 5, 7)), freqs=[2], kind="image")
    with pytest.raises(AnalysisError, match="needs a 1D trajectory"):
        analyze_amplitudes_file(traj)


def test_streaming_refuses_a_frequency_out_of_range():
    target = sines([2], [1], [0])
    with pytest.raises(AnalysisError, match="outside"):
        analyze_amplitudes_file(sines_trajectory([np.zeros((3, N))], target, freqs=[2]), freqs=[2, 45])


def test_streaming_over_a_real_file_equals_the_in_memory_result(tiny_config, tmp_path):
    from spectral_lab.trajectory import open_trajectory
    from spectral_lab.runner import record

    path = tmp_path / "t.h5"
    record(tiny_config, path, progress=False)
    with open_trajectory(path) as traj:
        streamed = analyze_amplitudes_file(traj, chunk=7)
        for r in range(traj.n_runs):
            frames = traj.frames(r)[: traj.n_frames(r)]
            direct = analyze_amplitudes(frames, [2, 5], target=traj.target)
            assert np.array_equal(streamed[r].amplitudes, direct.amplitudes)
            assert streamed[r].converged_at == direct.converged_at


# --- across runs ----------------------------------------------------------------------


def test_ratio_confidence_interval_contains_the_true_ratio():
    t1 = np.array([10, 12, 15, 20, 25])
    t2 = 3 * t1 + np.array([-2, 1, 2, -1, 0])  # true ratio 3, small per-run wobble
    ratio = convergence_table([stepped_run(a, b) for a, b in zip(t1, t2)])["ratio"]["converged_at"]
    assert ratio["per_run"] == pytest.approx(list(t2 / t1)) and ratio["ci"][0] < 3 < ratio["ci"][1]


def test_convergence_table_summarises_only_converged_runs():
    table = convergence_table({0: stepped_run(10, 30), 1: stepped_run(20, 1000), 2: stepped_run(30, 40)})
    k2 = table["per_freq"][1]["converged_at"]
    assert k2 == {"per_run": [30, None, 40], "n_converged": 2, "mean": 35.0, "std": pytest.approx(np.sqrt(50))}


def test_run_converged_at_iteration_zero_gives_no_ratio():
    table = convergence_table([stepped_run(0, 30), stepped_run(10, 30)])
    assert table["ratio"]["converged_at"]["per_run"] == [None, 3.0]


def test_convergence_table_is_json_ready():
    table = convergence_table([stepped_run(10, 1000), stepped_run(12, 1000)])
    assert json.loads(json.dumps(table, allow_nan=False))["ratio"]["converged_at"]["ci"] is None


def test_single_frequency_table_has_no_ratio():
    result = analyze_amplitudes(np.zeros((2, N)), [3], target_amps=[0.0])
    assert convergence_table([result])["ratio"] is None


# --------------------------------------------------------------------------- relative amplitudes

def test_relative_threshold_treats_small_and_large_amplitudes_alike():
    from spectral_lab.analyze.amplitudes import relative_results

    n, freqs, amps = 64, [3, 9], np.array([0.05, 1.0])
    t = np.arange(n) / n
    signal = amps[0] * np.sin(2 * np.pi * 3 * t) + amps[1] * np.sin(2 * np.pi * 9 * t)
    # frame i carries fraction f_i of every component; within 10 % of A_k from frame 3 on
    frames = np.stack([f * signal for f in (0.0, 0.5, 0.8, 0.95, 1.0)])
    absolute = analyze_amplitudes(frames, freqs, target_amps=amps, delta=0.01)
    assert absolute.converged_at == [0, 3]  # SE = A² = 0.0025 before any fitting: meaningless
    rel = relative_results({0: absolute})[0]
    assert rel.converged_at == [3, 3]
    np.testing.assert_allclose(rel.amplitudes[[0, 1, -1]], [[0, 0], [0.5, 0.5], [1, 1]], atol=1e-12)


def test_relative_results_refuse_a_zero_target_amplitude():
    from spectral_lab.analyze.amplitudes import relative_results

    res = analyze_amplitudes(np.zeros((2, N)), [3], target_amps=[0.0], delta=0.01)
    with pytest.raises(AnalysisError, match="A_k != 0"):
        relative_results({0: res})
