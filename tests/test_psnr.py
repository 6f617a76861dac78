import contextlib
import json
import sys
import types

import numpy as np
import pytest
from _fakes import FakeTrajectory

from spectral_lab.analyze.psnr import psnr, psnr_file
from spectral_lab.errors import AnalysisError

SHAPE = (3, 37, 31)


def fitting_runs(target, n_runs=2, n_frames=23, seed=0):
    """Frames moving from noise to the target: PSNR rises, frame 0 is the worst."""
    rng = np.random.default_rng(seed)
    weight = np.linspace(0, 1, n_frames).reshape(-1, *([1] * target.ndim))
    return [weight * target + (1 - weight) * rng.normal(size=(n_frames, *target.shape))
            for _ in range(n_runs)]


@pytest.fixture
def target():
    return np.random.default_rng(1).uniform(size=SHAPE)


def test_constant_error_of_a_tenth_is_exactly_twenty_db(target):
    assert psnr(target + 0.1, target)[0] == pytest.approx(20.0, abs=1e-9)


def test_data_range_adds_twenty_log10_of_the_range(target):
    frames = target + 0.1
    gain = psnr(frames, target, data_range=255.0) - psnr(frames, target)
    assert gain[0] == pytest.approx(20 * np.log10(255.0), abs=1e-9)


def test_frame_equal_to_the_reference_has_infinite_psnr(target):
    assert psnr(target, target)[0] == np.inf


def test_single_frame_gives_one_value_and_a_stack_one_per_frame(target):
    stack = np.stack([target + 0.1, target + 0.01])
    assert psnr(target + 0.1, target).shape == (1,)
    np.testing.assert_allclose(psnr(stack, target), [20.0, 40.0], atol=1e-9)


def test_mismatched_shapes_raise_analysis_error(target):
    with pytest.raises(AnalysisError, match="shape"):
        psnr(np.zeros((4, 3, 37, 30)), target)


def test_non_positive_data_range_raises(target):
    with pytest.raises(AnalysisError, match="data_range"):
        psnr(target, target, data_range=0.0)


def test_streaming_psnr_equals_in_memory_psnr(target):
    runs = fitting_runs(target)
    traj = FakeTrajectory(runs, target)
    result = psnr_file(traj, chunk=7)
    assert max(traj.blocks_read) == 7
    for r, run in enumerate(runs):
        expected = psnr(run.astype(np.float32), target.astype(np.float32))
        np.testing.assert_allclose(result.runs[r].psnr, expected, rtol=1e-12)


def test_file_result_reports_the_oracle_best_and_the_final_psnr(target):
    run = fitting_runs(target, n_runs=1)[0][::-1]  # best frame first, then worse
    result = psnr_file(FakeTrajectory([run], target), chunk=7)
    assert result.runs[0].best_iteration == 0
    assert result.runs[0].final_psnr == result.runs[0].psnr[-1] < result.runs[0].best_psnr


def test_observed_psnr_scores_the_observation_against_the_target(target):
    traj = FakeTrajectory(fitting_runs(target), target, observed=target + 0.1)
    assert psnr_file(traj).observed_psnr == pytest.approx(20.0, abs=1e-5)


def test_fit_task_writes_the_infinite_observed_psnr_as_null_in_valid_json(target):
    traj = FakeTrajectory(fitting_runs(target), target, config={"task": "fit"})
    out = psnr_file(traj).to_json()
    assert out["observed_psnr"] is None
    json.dumps(out, allow_nan=False)  # raises on inf or NaN


def test_json_lists_every_run_with_its_seeds_and_curve(target):
    out = psnr_file(FakeTrajectory(fitting_runs(target), target), chunk=7).to_json()
    assert [r["run"] for r in out["runs"]] == [0, 1]
    assert out["runs"][1]["seeds"] == {"seed": 1, "weight_seed": 101, "input_seed": 201}
    assert len(out["runs"][0]["psnr"]) == 23
    keys = {"run", "seeds", "best_psnr", "best_iteration", "final_psnr", "psnr", "ssim_at_best", "final_ssim"}
    assert set(out["runs"][0]) == keys


def test_1d_file_uses_the_peak_to_peak_range_of_the_target():
    target = np.sin(2 * np.pi * 5 * np.arange(61) / 61) * 2.0
    runs = [np.stack([target + 0.1])]
    result = psnr_file(FakeTrajectory(runs, target, kind="1d"))
    assert result.data_range == pytest.approx(np.ptp(target.astype(np.float32)))
    expected = 20 * np.log10(result.data_range / 0.1)
    assert result.runs[0].psnr[0] == pytest.approx(expected, abs=1e-4)


def test_a_path_is_opened_with_the_reader_and_closed(monkeypatch, target):
    opened = []

    @contextlib.contextmanager
    def open_trajectory(path):
        opened.append(path)
        yield FakeTrajectory(fitting_runs(target), target)
        opened.append("closed")

    fake_record = types.SimpleNamespace(open_trajectory=open_trajectory)
    monkeypatch.setitem(sys.modules, "spectral_lab.trajectory", fake_record)
    psnr_file("run.h5")
    assert opened == ["run.h5", "closed"]


def test_ssim_of_images_smaller_than_its_gaussian_window_is_nan_not_an_error():
    from spectral_lab.analyze.psnr import SSIM_WINDOW, ssim

    rng = np.random.default_rng(0)
    small = rng.random((1, SSIM_WINDOW - 1, 15))
    assert np.isnan(ssim(small, small))
    large = rng.random((1, SSIM_WINDOW, 15))
    assert ssim(large, large) == pytest.approx(1.0)
