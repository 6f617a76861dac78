"""Tests of spectral_lab.analyze.divergence: epsilon between runs and its dips."""

import json

import numpy as np
import pytest

from _fakes import FakeTrajectory

from spectral_lab.analyze.divergence import (
    convergence_points,
    divergence,
    divergence_file,
    pairwise_divergence,
    seed_difference,
)
from spectral_lab.errors import AnalysisError

SHAPE = (3, 37, 31)
ITERATIONS = np.arange(151)
# log10 epsilon, piecewise linear: falls, rises, dips again, rises: minima at 40 and 110.
DIPS = [40, 110]
LOG_EPS = np.interp(ITERATIONS, [0, 40, 75, 110, 150], [2.0, -1.0, 1.0, -1.5, 0.5])


def runs_with_divergence(eps_by_run, seed=0):
    """Runs base + c_r(i) u with |u| = 1, so that epsilon between runs a and b is (c_a - c_b)^2."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(len(eps_by_run[0]), *SHAPE))
    direction = rng.normal(size=SHAPE)
    direction /= np.linalg.norm(direction)
    return [base + np.asarray(c)[:, None, None, None] * direction for c in eps_by_run]


SEEDS = [
    {"seed": 0, "weight_seed": 1, "input_seed": 1},
    {"seed": 1, "weight_seed": 2, "input_seed": 1},
    {"seed": 2, "weight_seed": 2, "input_seed": 2},
]


def three_run_trajectory():
    offsets = [np.zeros(ITERATIONS.size), np.sqrt(10**LOG_EPS), 2 * np.sqrt(10**LOG_EPS)]
    return FakeTrajectory(runs_with_divergence(offsets), seeds=SEEDS)


# --- epsilon ---------------------------------------------------------------------------


def test_epsilon_sums_squared_differences_over_every_element():
    a, b = np.zeros((2, *SHAPE)), np.ones((2, *SHAPE))
    b[1] *= 2
    np.testing.assert_array_equal(divergence(a, b), [3 * 37 * 31, 4 * 3 * 37 * 31])


def test_constructed_runs_have_the_designed_epsilon():
    eps = 10**LOG_EPS
    run_a, run_b = runs_with_divergence([np.zeros_like(eps), np.sqrt(eps)])
    np.testing.assert_allclose(divergence(run_a, run_b), eps, rtol=1e-9)


def test_runs_of_different_shapes_are_refused():
    with pytest.raises(AnalysisError, match="different shapes"):
        divergence(np.zeros((4, *SHAPE)), np.zeros((5, *SHAPE)))


# --- convergence points ----------------------------------------------------------------


def test_dips_of_a_clean_curve_are_found_exactly():
    assert convergence_points(10**LOG_EPS) == DIPS


@pytest.mark.parametrize("seed", range(20))
def test_dips_under_log_normal_jitter_are_found_within_six_iterations(seed):
    rng = np.random.default_rng(seed)
    noisy = 10 ** (LOG_EPS + rng.normal(0, 0.1, ITERATIONS.size))  # factor 1.26 jitter
    found = convergence_points(noisy)
    assert len(found) == 2
    assert np.all(np.abs(np.subtract(found, DIPS)) <= 6)


def test_noisy_flat_curve_has_no_dips():
    rng = np.random.default_rng(1)
    assert convergence_points(10 ** (0.5 + rng.normal(0, 0.1, ITERATIONS.size))) == []


def test_monotone_decreasing_curve_has_no_dips():
    rng = np.random.default_rng(2)
    falling = 10 ** (np.linspace(2, -2, ITERATIONS.size) + rng.normal(0, 0.1, ITERATIONS.size))
    assert convergence_points(falling) == []


def test_single_iteration_drop_is_not_a_dip():
    eps = np.full(ITERATIONS.size, 10.0)
    eps[70] = 1e-3
    assert convergence_points(eps) == []


def test_dip_shallower_than_the_prominence_is_ignored():
    shallow = 10 ** (LOG_EPS / 20)  # the dips are 0.1 and 0.125 decades deep
    assert convergence_points(shallow, prominence=0.3) == []
    assert convergence_points(shallow, prominence=0.05) == DIPS


def test_identical_runs_have_no_dips():
    assert convergence_points(np.zeros(20)) == []


def test_even_smoothing_window_is_refused():
    with pytest.raises(AnalysisError, match="smooth"):
        convergence_points(10**LOG_EPS, smooth=4)


# --- pairs -----------------------------------------------------------------------------


def test_pairwise_epsilon_mean_and_std_over_three_runs():
    c = np.sqrt(10**LOG_EPS)
    result = pairwise_divergence(runs_with_divergence([0 * c, c, 3 * c]))
    expected = {(0, 1): c**2, (0, 2): 9 * c**2, (1, 2): 4 * c**2}
    assert list(result.pairs) == list(expected)
    for pair, eps in expected.items():
        np.testing.assert_allclose(result.pairs[pair], eps, rtol=1e-9)
    np.testing.assert_allclose(result.mean, 14 / 3 * c**2, rtol=1e-9)
    np.testing.assert_allclose(result.std, np.std([1, 9, 4]) * c**2, rtol=1e-9)
    assert result.points == {pair: DIPS for pair in expected}


def test_pairwise_divergence_needs_two_runs():
    with pytest.raises(AnalysisError, match="at least two runs"):
        pairwise_divergence([np.zeros((3, *SHAPE))])


@pytest.mark.parametrize(
    "a, b, label",
    [
        (SEEDS[0], SEEDS[1], "weights"),
        (SEEDS[1], SEEDS[2], "input"),
        (SEEDS[0], SEEDS[2], "both"),
        (SEEDS[0], SEEDS[0], "none"),
    ],
)
def test_seed_difference_names_what_differs(a, b, label):
    assert seed_difference(a, b) == label


# --- file ------------------------------------------------------------------------------


def test_streamed_file_equals_in_memory_in_chunks_of_seven():
    traj = three_run_trajectory()
    streamed = divergence_file(traj, chunk=7)
    in_memory = pairwise_divergence([traj.frames(r)[:] for r in range(3)])
    for pair in in_memory.pairs:
        np.testing.assert_array_equal(streamed.pairs[pair], in_memory.pairs[pair])
    np.testing.assert_array_equal(streamed.mean, in_memory.mean)
    assert streamed.points == in_memory.points


def test_streaming_reads_one_chunk_at_a_time():
    traj = three_run_trajectory()
    divergence_file(traj, chunk=7)
    assert traj.frames_read == 7


def test_a_reversed_pair_is_read_as_the_ordered_pair():
    result = divergence_file(three_run_trajectory(), pairs=[(2, 0)], chunk=7)
    assert list(result.pairs) == [(0, 2)]


def test_pair_naming_a_missing_run_is_refused():
    with pytest.raises(AnalysisError, match="pair"):
        divergence_file(three_run_trajectory(), pairs=[(0, 3)])


def test_file_with_one_run_is_refused():
    traj = FakeTrajectory([np.zeros((5, *SHAPE))], seeds=SEEDS[:1])
    with pytest.raises(AnalysisError, match="divergence needs at least two runs; this file has 1"):
        divergence_file(traj)


def test_killed_run_shortens_every_curve_to_the_common_iterations():
    runs = [np.zeros((9, *SHAPE)), np.ones((6, *SHAPE))]
    result = divergence_file(FakeTrajectory(runs, seeds=SEEDS[:2]), chunk=4)
    np.testing.assert_array_equal(result.pairs[(0, 1)], np.full(6, 3 * 37 * 31))


def test_json_lists_each_pair_with_seeds_difference_and_dips():
    document = divergence_file(three_run_trajectory(), chunk=7).to_json()
    json.dumps(document, allow_nan=False)
    first = document["pairs"][0]
    assert first["runs"] == [0, 1]
    assert first["seeds"] == {"0": SEEDS[0], "1": SEEDS[1]}
    assert [p["differs"] for p in document["pairs"]] == ["weights", "both", "input"]
    assert first["convergence_iterations"] == DIPS
    assert len(first["epsilon"]) == len(document["mean"]) == document["n_iterations"] == ITERATIONS.size


def test_rebound_finds_the_peak_and_the_second_convergence_of_a_constructed_curve():
    from spectral_lab.analyze.divergence import rebound

    # falls to 1 at iteration 10, rises to 100 at 20, back to 1 at 30, then keeps falling
    eps = np.concatenate([np.logspace(2, 0, 11), np.logspace(0, 2, 11)[1:], np.logspace(2, 0, 11)[1:],
                          np.logspace(0, -1, 6)[1:]])
    summary = rebound(eps, [10])
    assert (summary["first"], summary["peak"], summary["reconverged"]) == (10, 20, 30)
    assert summary["decades"] == pytest.approx(2.0)


# --------------------------------------------------------------------------- rebound summaries (from the image experiments)

def test_rebound_finds_first_convergence_peak_and_reconvergence():
    from spectral_lab.analyze.divergence import rebound

    eps = np.array([10.0, 5, 1, 4, 8, 3, 0.5])
    s = rebound(eps, [2])
    assert (s["first"], s["peak"], s["reconverged"]) == (2, 4, 6)
    assert s["decades"] == pytest.approx(np.log10(8))
    assert s["area_after_first"] == pytest.approx(1 + 4 + 8 + 3 + 0.5)
    # above the running minimum from the largest ε on: 0 0 0 3 7 2 0
    assert s["excess"] == pytest.approx(12.0)


def test_curve_that_never_rises_has_no_excess_and_no_convergence_point():
    from spectral_lab.analyze.divergence import rebound

    s = rebound(np.array([9.0, 4, 2, 1, 0.5]), [])
    assert s["excess"] == 0.0
    assert s["first"] is None and s["reconverged"] is None


def test_rise_before_the_largest_epsilon_is_not_excess():
    from spectral_lab.analyze.divergence import rebound

    # the first update can push untrained runs further apart: that is not a re-divergence
    assert rebound(np.array([5.0, 9, 3, 1]), [])["excess"] == 0.0


def test_runs_still_apart_at_the_end_have_no_reconvergence():
    from spectral_lab.analyze.divergence import rebound

    assert rebound(np.array([10.0, 1, 5, 8, 6]), [1])["reconverged"] is None
