"""The denoising commands on recorded files: analyze psnr, analyze stop (every rule, SURE
from a twin recorded with --probe), plot psnr."""

import json

import numpy as np
import pytest
from _fakes import run_cli

from spectral_lab.analyze.psnr import psnr
from spectral_lab.trajectory import open_trajectory
from spectral_lab.signals import probe_perturbation

# a 2-level DIP on a 3 x 16 x 20 PNG, 4 runs (two pairs), 30 iterations
RECORD = ("record", "--signal", "image", "--noise", "white", "--sigma", "25", "--model", "dip", "--levels", "2",
          "--model-opt", "down=8", "--model-opt", "up=8", "--model-opt", "skip=2", "--runs", "4",
          "--iterations", "30", "--lr", "0.01", "--downsample", "1", "--device", "cpu", "--quiet")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("denoise")
    image = folder / "tiny.png"
    pixels = np.random.default_rng(3).integers(0, 256, size=(16, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels, mode="RGB").save(image)
    from spectral_lab.cli import main

    plain, twin = folder / "plain.h5", folder / "twin.h5"
    assert main([*RECORD, "--image", str(image), "--out", str(plain)]) == 0
    assert main([*RECORD, "--image", str(image), "--out", str(twin), "--probe", "5"]) == 0
    return plain, twin


def test_the_twin_fits_the_observation_plus_the_documented_probe(files):
    plain, twin = files
    with open_trajectory(plain) as a, open_trajectory(twin) as b:
        delta = np.asarray(b.observed, np.float64) - np.asarray(a.observed, np.float64)
        expected = probe_perturbation(a.signal_shape, 5.0, seed=a.config["degrade"]["seed"])
        np.testing.assert_allclose(delta, expected, atol=1e-6)
        assert b.config["degrade"]["probe"] == 5.0 and a.config["degrade"]["probe"] == 0.0
        np.testing.assert_array_equal(a.frames(0)[0], b.frames(0)[0])  # same seeds: same untrained output


def test_analyze_psnr_json_holds_best_iteration_and_observation(files, capsys):
    plain, _ = files
    code, out, err = run_cli(capsys, "analyze", "psnr", plain, "--json")
    assert code == 0, err
    result = json.loads(out)
    with open_trajectory(plain) as t:
        frames = np.asarray(t.frames(2)[:], np.float64)
        target, observed = np.asarray(t.target, np.float64), np.asarray(t.observed, np.float64)
    curve = psnr(frames, target)
    run = result["runs"][2]
    assert run["best_iteration"] == int(np.argmax(curve))
    assert run["best_psnr"] == pytest.approx(curve.max(), abs=1e-6)
    assert result["observed_psnr"] == pytest.approx(float(psnr(observed, target)[0]), abs=1e-6)


@pytest.mark.parametrize("rule, entries", [("es_wmv", 4), ("discrepancy", 4), ("pair_divergence", 2),
                                            ("pair_discrepancy", 2)])
def test_analyze_stop_json_for_every_rule(files, capsys, rule, entries):
    plain, _ = files
    extra = ("--window", "5", "--patience", "10") if rule == "es_wmv" else ()
    code, out, err = run_cli(capsys, "analyze", "stop", plain, "--rule", rule, *extra, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["rule"] == rule and len(result["results"]) == entries
    for e in result["results"]:
        assert 0 <= e["iteration"] <= 30
        assert e["gap"] == pytest.approx(e["best_psnr"] - e["psnr"]) and e["gap"] >= 0


def test_analyze_stop_sure_with_the_twin(files, capsys):
    plain, twin = files
    code, out, err = run_cli(capsys, "analyze", "stop", plain, "--rule", "sure", "--twin", twin, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["params"]["sigma"] == pytest.approx(25 / 255)
    assert result["params"]["twin"] == str(twin)
    assert len(result["results"]) == 4


@pytest.mark.parametrize("argv, message", [
    (("--rule", "sure"), "twin"),
    (("--rule", "es_wmv", "--twin", "TWIN"), "--twin is used by the sure rule only"),
    (("--rule", "es_wmv", "--sigma", "25"), "--sigma is used by"),
])
def test_analyze_stop_bad_combinations_are_one_line(files, capsys, argv, message):
    plain, twin = files
    argv = [str(twin) if a == "TWIN" else a for a in argv]
    code, out, err = run_cli(capsys, "analyze", "stop", plain, *argv)
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1


def test_analyze_stop_with_the_files_swapped_is_refused(files, capsys):
    plain, twin = files
    code, out, err = run_cli(capsys, "analyze", "stop", twin, "--rule", "sure", "--twin", plain)
    assert code == 1 and "itself recorded with a probe" in err


def test_plot_psnr_writes_a_png(files, capsys, tmp_path):
    plain, _ = files
    code, out, err = run_cli(capsys, "plot", "psnr", plain, "-o", tmp_path / "psnr.png")
    assert code == 0, err
    assert (tmp_path / "psnr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analyze_noisefit_json_matches_numpy_on_the_stored_frames(files, capsys):
    plain, _ = files
    code, out, err = run_cli(capsys, "analyze", "noisefit", plain, "--level", "0.2", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["cutoff"] == 0.05 and result["level"] == 0.2  # the file's (default) cut-off
    with open_trajectory(plain) as t:
        clean, observed = np.asarray(t.target, np.float64), np.asarray(t.observed, np.float64)
        frames = np.asarray(t.frames(1)[:], np.float64)
    noise = observed - clean
    nu = np.einsum("tchw,chw->t", frames - clean, noise) / np.sum(noise**2)
    hits = np.flatnonzero(nu >= 0.2)
    run = result["runs"][1]
    assert run["t_noise"] == (int(hits[0]) if hits.size else None)
    assert run["noise_fitted_at_best"] == pytest.approx(nu[run["best_iteration"]], abs=1e-9)


def test_analyze_noisefit_text_names_what_came_first(files, capsys):
    plain, _ = files
    code, out, err = run_cli(capsys, "analyze", "noisefit", plain)
    assert code == 0, err
    assert out.count("run ") == 4 and all(w in out for w in ("t(ν)", "t(η)", "best"))


def test_noisefit_at_the_all_frequencies_cutoff_is_undefined_in_the_analysis_and_refused_on_the_cli(files, capsys):
    """A low-pass noise at the largest radius, sqrt(1/2), keeps every frequency (the low-frequency
    experiment's 'white' end of its sweep): the analysis runs and says η is undefined; an explicit
    --cutoff there is refused in one line."""
    import math

    from spectral_lab.analyze.noise_fit import noise_fit_file

    plain, _ = files
    res = noise_fit_file(plain, cutoff=math.sqrt(0.5))
    assert all(r["t_highfreq"] is None and r["noise_first"] is None for r in res.runs)
    assert all(r["t_noise"] is None or r["t_noise"] >= 0 for r in res.runs)
    code, _, err = run_cli(capsys, "analyze", "noisefit", plain, "--cutoff", "0.75")
    assert code == 1 and "no frequency lies above it" in err and "Traceback" not in err
