"""``spectral-lab kernel ntk|gp``, the kernels of a configuration's runs and of a recording's
snapshots (spectral_lab.kernels.configured), and the ntk_prediction experiment on tiny settings."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from _fakes import run_cli
from conftest import REPO
from spectral_lab.config import FitConfig, ModelConfig, RecordConfig, RunConfig, SignalConfig
from spectral_lab.errors import AnalysisError
from spectral_lab.kernels.configured import (flat_parameters, kernel_along_trajectory, kernel_runs, load_parameters,
                                             measure_kernel, predict_ntk, snapshot_runs)
from spectral_lab.kernels.ntk import frequency_energies
from spectral_lab.runner import record

sys.path.insert(0, str(REPO))

TINY = ["--length", "32", "--freqs", "2,5", "--width", "8", "--depth", "3", "--device", "cpu", "--optimizer", "sgd",
        "--lr", "0.05", "--iterations", "20"]


def _json(capsys, *argv):
    code, out, err = run_cli(capsys, "kernel", "ntk", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def _one_line_error(capsys, *argv, match, code=1):
    got, _, err = run_cli(capsys, "kernel", *argv)
    lines = err.strip().splitlines()
    assert got == code and len(lines) == 1 and "Traceback" not in err, err
    assert match in lines[0], lines[0]


def _tiny_config(**fit) -> RunConfig:
    return RunConfig(task="fit", signal=SignalConfig(kind="sines", freqs=(2, 5), amps=(1.0, 1.0), length=32),
                     model=ModelConfig(name="conv", options={"depth": 3, "width": 8}),
                     fit=FitConfig(**{"iterations": 20, "lr": 0.05, "optimizer": "sgd", "runs": 2, "device": "cpu",
                                      **fit}))


# --------------------------------------------------------------------------- the contract

def test_ntk_json_has_the_contract_keys_one_entry_per_frequency(capsys):
    out = _json(capsys, *TINY)
    for key in ("frequencies", "energy", "predicted_convergence", "lambda_max", "stable_lr", "lr_above_stable"):
        assert key in out
    assert out["frequencies"] == [2, 5]
    assert len(out["energy"]) == len(out["predicted_convergence"]) == 2
    assert all(e > 0 for e in out["energy"])
    assert out["stable_lr"] == pytest.approx(32 / out["lambda_max"])


def test_ntk_energy_is_the_rayleigh_quotient_of_the_network_record_builds(capsys):
    from spectral_lab.cli import make_parser
    from spectral_lab.cli.record import build_config

    out = _json(capsys, *TINY, "--seed", "4")
    cfg = build_config(make_parser(["record"]).parse_args(["record", *TINY, "--seed", "4"]))
    _, _, runs = kernel_runs(cfg, seeds=1)  # record's networks: test_single_run_networks_are_...
    expected = frequency_energies(runs[0].net, runs[0].z, [2, 5]).energy
    np.testing.assert_allclose(out["energy"], expected, rtol=1e-6)


def test_a_frequency_that_never_converges_is_null(capsys):
    out = _json(capsys, *TINY, "--lr", "1e-9")  # stable, but far too slow for the horizon
    assert out["predicted_convergence"] == [None, None] and not out["lr_above_stable"]
    above = _json(capsys, *TINY, "--lr", "1e6")  # unstable
    assert above["lr_above_stable"] and above["predicted_convergence"] == [None, None]
    assert any("stable step" in w for w in above["warnings"])


def test_adam_configuration_gets_a_warning_that_the_prediction_is_for_gradient_descent(capsys):
    code, _, err = run_cli(capsys, "kernel", "ntk", *TINY, "--optimizer", "adam")
    assert code == 0 and "plain gradient descent" in err


def test_full_kernel_gives_its_alignment_and_the_same_energies(capsys):
    fourier = _json(capsys, *TINY)
    full = _json(capsys, *TINY, "--approx", "full")
    np.testing.assert_allclose(full["energy"], fourier["energy"], rtol=1e-4)
    assert 0 < full["alignment"]["top_fraction_median"] <= 1 and len(full["alignment"]["slow_weight"]) == 2


def test_images_report_one_energy_and_fit_time_per_band(capsys):
    out = _json(capsys, "--signal", "triangle", "--size", "16", "--model", "dip", "--levels", "1", "--model-opt",
                "down=4", "--model-opt", "up=4", "--bands", "4", "--directions", "3", "--optimizer", "sgd", "--lr",
                "0.5", "--iterations", "10", "--device", "cpu")
    assert out["kind"] == "image" and len(out["energy"]) == len(out["predicted_convergence"]) == 4
    assert len(out["band_edges"]) == 5 and out["frequencies"][0] == 0.0


@pytest.mark.parametrize("argv, match", [
    ([*TINY, "--seeds", "0"], "--seeds must be >= 1"),
    ([*TINY, "--runs", "3"], "use --seeds"),
    ([*TINY, "--at", "5"], "--file and --at go together"),
    ([*TINY, "--freqs", "2.5,5"], "integers"),
    ([*TINY, "--bands", "4"], "--bands is for images"),
    ([*TINY, "--task", "inpaint", "--drop", "0.5"], "mean squared error of the output itself"),
    (["--approx", "full", "--signal", "triangle", "--size", "16", "--model", "dip", "--levels", "1"],
     "the full kernel is for 1D"),
])
def test_bad_ntk_flags_are_one_line_errors(capsys, argv, match):
    _one_line_error(capsys, "ntk", *argv, match=match)


def test_unknown_approximation_is_a_usage_error(capsys):
    _one_line_error(capsys, "ntk", "--approx", "diagonal", match="invalid choice", code=2)


# --------------------------------------------------------------------------- seeds and snapshots

def test_seed_average_is_the_mean_of_the_per_seed_energies(capsys):
    out = _json(capsys, *TINY, "--seeds", "3")
    per_seed = np.array([s["energy"] for s in out["per_seed"]])
    assert [s["seeds"]["seed"] for s in out["per_seed"]] == [0, 1, 2]
    np.testing.assert_allclose(out["energy"], per_seed.mean(axis=0))
    assert out["lambda_max"] == max(s["lambda_max"] for s in out["per_seed"])
    single = _json(capsys, *TINY, "--seed", "2")
    np.testing.assert_allclose(per_seed[2], single["energy"])


def test_single_run_networks_are_the_runs_of_the_stacked_recording():
    from spectral_lab.problem import make_problem
    from spectral_lab.runner import prepare_fit

    cfg = _tiny_config(runs=3)
    state, z, _ = prepare_fit(cfg, make_problem(cfg), torch.device("cpu"))
    _, _, runs = kernel_runs(cfg, seeds=3)
    for r, run in enumerate(runs):
        np.testing.assert_array_equal(flat_parameters(run.net)[0], flat_parameters(state.net)[r])
        np.testing.assert_array_equal(run.z[0], z[r])


def test_load_parameters_refuses_a_vector_of_another_network():
    _, _, runs = kernel_runs(_tiny_config(), seeds=1)
    flat = flat_parameters(runs[0].net)
    load_parameters(runs[0].net, flat * 2)
    np.testing.assert_array_equal(flat_parameters(runs[0].net), flat * 2)
    with pytest.raises(AnalysisError, match="do not fit"):
        load_parameters(runs[0].net, flat[:, :-1])


@pytest.fixture(scope="module")
def snapshot_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("snap") / "s.h5"
    cfg = _tiny_config()
    record(cfg.replace(record=RecordConfig(snapshots=(0, 10, 20))), path, progress=False)
    return path


def test_kernel_at_snapshot_zero_is_the_kernel_at_initialisation(snapshot_file):
    _, _, at_zero = snapshot_runs(snapshot_file, 0, seeds=2)
    _, _, fresh = kernel_runs(_tiny_config(), seeds=2)
    for a, b in zip(at_zero, fresh):
        np.testing.assert_allclose(measure_kernel(a, freqs=[2, 5]).energy, measure_kernel(b, freqs=[2, 5]).energy,
                                   rtol=1e-6)


def test_kernel_at_a_later_snapshot_has_moved_and_counts_iterations_from_there(snapshot_file, capsys):
    at0 = _json(capsys, "--file", snapshot_file, "--at", "0")
    at10 = _json(capsys, "--file", snapshot_file, "--at", "10", "--lr", "0.01")
    assert at10["from_iteration"] == 10 and at10["lr"] == 0.01 and at0["lr"] == 0.05
    assert not np.allclose(at0["energy"], at10["energy"])
    assert all(t is None or t >= 10 for t in at10["predicted_convergence"])


def test_kernel_along_the_trajectory_has_one_row_per_snapshot(snapshot_file):
    along = kernel_along_trajectory(snapshot_file, seeds=2, full_seeds=1)
    assert along.iterations.tolist() == [0, 10, 20]
    assert along.energy.shape == (3, 2, 2) and along.lambda_max.shape == (3, 2)
    assert along.kernel_change[0, 0] == 0 and along.kernel_change[-1, 0] > 0


@pytest.mark.parametrize("argv, match", [
    (["--at", "7"], "no snapshot at iteration 7; it has 0, 10, 20"),
    (["--at", "0", "--width", "16"], "cannot change it"),
    (["--at", "0", "--seeds", "3"], "the recording holds 2"),
])
def test_bad_snapshot_requests_are_one_line_errors(snapshot_file, capsys, argv, match):
    _one_line_error(capsys, "ntk", "--file", snapshot_file, *argv, match=match)


def test_a_file_without_snapshots_is_one_line(tmp_path, capsys):
    path = tmp_path / "plain.h5"
    record(_tiny_config(), path, progress=False)
    _one_line_error(capsys, "ntk", "--file", path, "--at", "0", match="holds no parameter snapshots")


# --------------------------------------------------------------------------- predict_ntk

def test_predict_ntk_per_seed_entries_use_each_seeds_own_kernel():
    cfg, problem, runs = kernel_runs(_tiny_config(), seeds=2)
    ms = [measure_kernel(r, freqs=[2, 5]) for r in runs]
    both = predict_ntk(ms, problem.observed, lr=0.05, horizon=200, delta=0.01, freqs=[2, 5])
    for m, entry in zip(ms, both["per_seed"]):
        alone = predict_ntk([m], problem.observed, lr=0.05, horizon=200, delta=0.01, freqs=[2, 5])
        assert entry["predicted_convergence"] == alone["predicted_convergence"]


# --------------------------------------------------------------------------- kernel gp

def test_gp_json_puts_analytic_beside_sampled_for_conv(capsys):
    code, out, err = run_cli(capsys, "kernel", "gp", "--length", "32", "--width", "16", "--depth", "3",
                             "--nets", "40", "--max-lag", "4", "--json", "--device", "cpu")
    assert code == 0, err
    got = json.loads(out)
    assert got["lags"] == [0, 1, 2, 3, 4] and got["sampled"][0] == pytest.approx(1.0)
    assert got["analytic"][0] == pytest.approx(1.0) and got["max_gap"] is not None
    np.testing.assert_allclose(sum(got["power"]["sampled"]), 1.0)
    np.testing.assert_allclose(sum(got["power"]["analytic"]), 1.0)


def test_gp_of_another_family_is_sampled_only(capsys):
    code, out, err = run_cli(capsys, "kernel", "gp", "--length", "32", "--model", "linear", "--width", "16",
                             "--nets", "20", "--max-lag", "3", "--json")
    assert code == 0, err
    got = json.loads(out)
    assert got["analytic"] is None and got["power"]["analytic"] is None and len(got["sampled"]) == 4


def test_gp_bad_network_count_is_one_line(capsys):
    _one_line_error(capsys, "gp", "--nets", "1", match="--nets must be >= 2")


# --------------------------------------------------------------------------- the experiment, tiny

def test_experiment_quick_path_on_tiny_settings(tmp_path):
    from experiments import ntk_prediction as exp

    cfg = replace(exp.QUICK, out_dir=tmp_path, seeds=2, length=32, freqs=(2, 5),
                  families=(exp.Family("conv4", "conv", {"width": 8, "depth": 3}, 40, (0.5,), 1e-3),),
                  snapshot_families=("conv4",), snapshot_iterations=(0, 20, 40), full_kernel_seeds=1, size=16,
                  image_channels=4, strides=(2,), upsamples=("nearest",), image_runs=1, image_iterations=10,
                  image_sgd_iterations=10, n_bands=3, directions=2)
    numbers = exp.main(cfg)
    entry = numbers["one_d"]["conv4-sgd0.5"]
    assert entry["lr"] == pytest.approx(0.5 * entry["stable_lr"])
    assert len(entry["measured"]) == 2 and len(entry["predicted"]["full"]["per_seed"]) == 2
    assert numbers["trajectory"]["conv4 SGD 0.5×"]["iterations"].tolist() == [0, 20, 40]
    assert "sgd" in numbers["images"]["bands"]["nearest stride 2"]
    assert (tmp_path / "figures" / exp.NAME / "table.md").exists()
    assert json.loads((tmp_path / "figures" / exp.NAME / "results.json").read_text())["one_d"]
