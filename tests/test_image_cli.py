"""``spectral-lab analyze|plot divergence|spectrum`` on real recorded image trajectories.

One tiny recording (a 16 x 16 triangle, dip with 2 levels of 8 channels, 20 iterations, 2 runs)
is shared by the module; its numbers are checked against independent numpy computations.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from spectral_lab.analyze.divergence import divergence_file, pairwise_divergence
from spectral_lab.analyze.spectrum import band_fit_times, spectrum_error, spectrum_file
from spectral_lab.config import FitConfig, ModelConfig, RunConfig, SignalConfig
from spectral_lab.trajectory import open_trajectory
from spectral_lab.runner import record
from _fakes import run_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _image_config(runs: int, iterations: int) -> RunConfig:
    return RunConfig(
        task="fit",
        signal=SignalConfig(kind="triangle", size=16, pattern_fraction=0.5),
        model=ModelConfig(name="dip", options={"levels": 2, "down": 8, "up": 8, "skip": 2, "in_channels": 4}),
        fit=FitConfig(iterations=iterations, lr=1e-2, runs=runs, device="cpu"),
    )


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("image") / "triangle.h5"
    assert record(_image_config(runs=2, iterations=20), path, progress=False).status == "complete"
    return path


@pytest.fixture(scope="module")
def one_run_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("one") / "one-run.h5"
    assert record(_image_config(runs=1, iterations=3), path, progress=False).status == "complete"
    return path


@pytest.fixture(scope="module")
def oned_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("oned") / "sines.h5"
    cfg = RunConfig(task="fit", signal=SignalConfig(kind="sines", freqs=(2, 5), length=32),
                    model=ModelConfig(name="conv", options={"depth": 3, "width": 8}),
                    fit=FitConfig(iterations=3, lr=1e-2, runs=2, device="cpu"))
    assert record(cfg, path, progress=False).status == "complete"
    return path


def stored_frames(path) -> tuple[list[np.ndarray], np.ndarray]:
    """Every run's frames (T, C, H, W) float64 and the target, read whole."""
    with open_trajectory(path) as traj:
        return ([np.asarray(traj.frames(r)[: traj.n_frames(r)], dtype=np.float64) for r in range(traj.n_runs)],
                np.asarray(traj.target, dtype=np.float64))


run = run_cli


def assert_one_line_error(code, err, match):
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("spectral-lab") and match in lines[0], lines[0]
    assert "Traceback" not in err


# --------------------------------------------------------------------------- streaming == in memory

def test_streamed_divergence_equals_in_memory_on_a_recorded_file(image_file):
    frames, _ = stored_frames(image_file)
    streamed = divergence_file(image_file, chunk=3)
    in_memory = pairwise_divergence(frames)
    np.testing.assert_array_equal(streamed.pairs[(0, 1)], in_memory.pairs[(0, 1)])
    assert streamed.points == in_memory.points
    assert len(streamed.pairs[(0, 1)]) == 21


def test_streamed_spectrum_equals_in_memory_on_a_recorded_file(image_file):
    frames, target = stored_frames(image_file)
    streamed = spectrum_file(image_file, n_bands=6, threshold=0.5, chunk=3)
    for run_frames, errors, times in zip(frames, streamed.errors, streamed.time_to_fit):
        expected = spectrum_error(run_frames, target, n_bands=6)
        np.testing.assert_allclose(errors, expected, rtol=1e-12, atol=0)
        assert times == band_fit_times(expected, 0.5)


# --------------------------------------------------------------------------- --json against numpy

def test_analyze_divergence_json_matches_numpy_on_the_stored_frames(image_file, capsys):
    code, out, err = run(capsys, "analyze", "divergence", image_file, "--json")
    assert code == 0, err
    report = json.loads(out)
    frames, _ = stored_frames(image_file)
    expected = ((frames[0] - frames[1]) ** 2).sum(axis=(1, 2, 3))
    (pair,) = report["pairs"]
    assert pair["runs"] == [0, 1] and pair["differs"] == "both"
    np.testing.assert_allclose(pair["epsilon"], expected, rtol=1e-12)


def _independent_band_errors(frames: np.ndarray, target: np.ndarray, n_bands: int) -> np.ndarray:
    """Relative error of the mean power per radial band, written out from the definition."""
    height, width = target.shape[-2:]
    fy, fx = np.meshgrid(np.fft.fftfreq(height), np.fft.fftfreq(width), indexing="ij")
    ring = math.sqrt(0.5) / (n_bands - 1)
    band = np.minimum(np.ceil(np.hypot(fy, fx) / ring).astype(int), n_bands - 1)  # DC -> 0

    def band_means(image):  # image (H, W): mean of |FFT|^2 / (HW)^2 over each band
        power = np.abs(np.fft.fft2(image)) ** 2 / (height * width) ** 2
        return np.array([power[band == b].mean() for b in range(n_bands)])

    ref = band_means(target[0])
    floor = np.maximum(ref, 1e-12 * np.mean(target[0] ** 2))
    return np.array([np.abs(band_means(frame[0]) - ref) / floor for frame in frames])


def _independent_fit_times(errors: np.ndarray, threshold: float) -> list:
    times = []
    for column in errors.T:
        above = np.flatnonzero(column > threshold)
        times.append(0 if above.size == 0 else None if above[-1] == len(column) - 1 else int(above[-1]) + 1)
    return times


def test_analyze_spectrum_json_matches_an_independent_computation(image_file, capsys):
    # 6 bands on 16 x 16: no frequency sample lies on a ring edge, so ceil() and the
    # analyzer's searchsorted agree without rounding ties.
    code, out, err = run(capsys, "analyze", "spectrum", image_file, "--json", "--bands", "6",
                         "--threshold", "0.5")
    assert code == 0, err
    report = json.loads(out)
    frames, target = stored_frames(image_file)
    for r, run_frames in enumerate(frames):
        expected = _independent_band_errors(run_frames, target, 6)
        np.testing.assert_allclose(report["error"][r], expected, rtol=1e-9, atol=1e-12)
        assert report["time_to_fit"][r] == _independent_fit_times(expected, 0.5)
    np.testing.assert_allclose(report["band_edges"], [0, 0, *np.linspace(0, math.sqrt(0.5), 6)[1:]])


# --------------------------------------------------------------------------- bad input

def test_divergence_of_a_one_run_file_is_one_line_and_nonzero(one_run_file, capsys):
    code, _, err = run(capsys, "analyze", "divergence", one_run_file)
    assert_one_line_error(code, err, "at least two runs")


@pytest.mark.parametrize("command", [["analyze", "spectrum"], ["plot", "spectrum", "-o", "x.png"]])
def test_spectrum_of_a_1d_file_is_one_line_and_nonzero(oned_file, capsys, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *command[:2], oned_file, *command[2:])
    assert_one_line_error(code, err, "1D signal")
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------- plots

@pytest.mark.parametrize("what", ["divergence", "spectrum"])
def test_plot_writes_a_png(image_file, tmp_path, capsys, what):
    out = tmp_path / f"{what}.png"
    code, stdout, err = run(capsys, "plot", what, image_file, "-o", out)
    assert code == 0, err
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert str(out) in stdout


def test_shi_view_streams_the_same_ratios_as_the_array_function(image_file, capsys):
    from spectral_lab.analyze.spectrum import magnitude_ratio

    frames, target = stored_frames(image_file)
    code, out, _ = run(capsys, "analyze", "spectrum", str(image_file), "--view", "shi", "--json")
    assert code == 0
    got = json.loads(out)["ratio"]
    for r, f in enumerate(frames):
        expected = magnitude_ratio(f, target)
        assert np.allclose(np.array(got[r], dtype=float), expected, equal_nan=True)


def test_plot_spectrum_at_iterations_writes_the_spectra_figure(image_file, tmp_path, capsys):
    code, out, _ = run(capsys, "plot", "spectrum", str(image_file), "-o", str(tmp_path / "s.png"), "--at", "0,5")
    assert code == 0 and (tmp_path / "s-at.png").stat().st_size > 0


def test_plot_spectrum_at_an_unrecorded_iteration_is_one_line(image_file, tmp_path, capsys):
    code, _, err = run(capsys, "plot", "spectrum", str(image_file), "-o", str(tmp_path / "s.png"), "--at", "9999")
    assert_one_line_error(code, err, "outside the recorded iterations")
    assert not (tmp_path / "s-at.png").exists()
