"""Tasks as forward operators: the operators, the losses, the CLI contracts, format 2, task metrics."""

from __future__ import annotations

import json
import sys

import h5py
import numpy as np
import pytest
import torch
from _fakes import FakeTrajectory, run_cli
from PIL import Image

from spectral_lab.analyze.baselines import bm3d_denoise, mean_fill, upsample
from spectral_lab.analyze.psnr import average_pool, psnr, psnr_file
from spectral_lab.analyze.task_spectrum import missing_band_error, task_spectrum_file
from spectral_lab.errors import AnalysisError, ConfigError
from spectral_lab.losses import make_loss, mse
from spectral_lab.operators import OPERATORS, build_operator, lanczos_kernel
from spectral_lab.trajectory import check_trajectory, open_trajectory

SHAPE = (3, 24, 36)


# --------------------------------------------------------------------------- operators

def test_a_bernoulli_mask_drops_about_the_rate_the_same_for_every_channel_and_is_seeded():
    op = build_operator("mask", (3, 64, 80), options={"drop": 0.3}, seed=5)
    assert op.mask.shape == (1, 64, 80) and op.mask.dtype == np.uint8
    assert abs(1 - op.mask.mean() - 0.3) < 0.02
    again = build_operator("mask", (3, 64, 80), options={"drop": 0.3}, seed=5)
    other = build_operator("mask", (3, 64, 80), options={"drop": 0.3}, seed=6)
    assert np.array_equal(op.mask, again.mask) and not np.array_equal(op.mask, other.mask)
    x = torch.rand(2, *(3, 64, 80))
    out = op(x)
    assert torch.equal(out[:, :, op.mask[0] == 0], torch.zeros_like(out[:, :, op.mask[0] == 0]))
    assert torch.equal(out[:, :, op.mask[0] == 1], x[:, :, op.mask[0] == 1])


@pytest.mark.parametrize("drop", [0, 1, -0.1, 1.5, "half"])
def test_a_drop_rate_outside_the_open_unit_interval_is_refused(drop):
    with pytest.raises(ConfigError, match=r"drop rate must be in \(0, 1\)"):
        build_operator("mask", SHAPE, options={"drop": drop})


def test_a_mask_array_of_another_size_is_refused():
    with pytest.raises(ConfigError, match="must have the signal's size"):
        build_operator("mask", SHAPE, options={"mask": "m.png"}, arrays={"mask": np.ones((1, 24, 35))})


@pytest.mark.parametrize("kernel", ["lanczos", "box"])
@pytest.mark.parametrize("shape", [(1, 48), (3, 24, 36)])
def test_downsampling_keeps_constants_divides_the_size_and_passes_gradients(kernel, shape):
    op = build_operator("downsample", shape, options={"factor": 3, "kernel": kernel})
    x = torch.full((2, *shape), 0.7, dtype=torch.float64, requires_grad=True)
    y = op(x)
    assert y.shape == (2, shape[0], *(s // 3 for s in shape[1:])) and y.dtype == torch.float64
    assert torch.allclose(y, torch.full_like(y, 0.7))
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert op.output_shape(shape) == tuple(y.shape[1:])


def test_the_box_kernel_is_average_pooling():
    op = build_operator("downsample", (2, 8, 12), options={"factor": 4, "kernel": "box"})
    x = torch.rand(3, 2, 8, 12, dtype=torch.float64)
    assert torch.allclose(op(x), torch.nn.functional.avg_pool2d(x, 4))


def test_lanczos_stops_what_would_alias_and_box_lets_more_through():
    n, factor = 256, 4
    t = np.arange(n)
    # well above the new Nyquist frequency (1/8 cycles/sample): aliases after decimation
    for freq in (0.3, 0.375):
        wave = torch.from_numpy(np.cos(2 * np.pi * freq * t)).view(1, 1, n)
        passed = {k: float(build_operator("downsample", (1, n), options={"factor": factor, "kernel": k})(wave)
                           [..., 4:-4].abs().max()) for k in ("lanczos", "box")}
        assert passed["lanczos"] < 0.01 and passed["box"] > 0.15
    taps = lanczos_kernel(factor)
    assert taps.size == 16 and np.isclose(taps.sum(), 1.0) and np.allclose(taps, taps[::-1])


def test_a_factor_that_does_not_divide_the_signal_is_refused():
    with pytest.raises(ConfigError, match="factor 5 does not divide"):
        build_operator("downsample", SHAPE, options={"factor": 5})


def test_operators_follow_the_input_device_and_dtype():
    op = build_operator("mask", SHAPE, options={"drop": 0.5})
    for dtype in (torch.float32, torch.float64):
        assert op(torch.rand(1, *SHAPE, dtype=dtype)).dtype == dtype


def test_the_operator_registry_lists_the_three_operators():
    assert {"identity", "mask", "downsample"} <= set(OPERATORS)


# --------------------------------------------------------------------------- losses

def test_multiscale_at_scale_one_is_the_known_sample_mse():
    op = build_operator("mask", SHAPE, options={"drop": 0.4}, seed=2)
    x, y = torch.rand(2, *SHAPE, dtype=torch.float64), torch.rand(*SHAPE, dtype=torch.float64)
    loss = make_loss("multiscale", {"scales": [1], "weights": [1.0]}, operator=op)
    m = torch.from_numpy(op.known)
    expected = ((x - y) ** 2 * m).flatten(1).sum(1) / (SHAPE[0] * m.sum())
    assert torch.allclose(loss(op(x), op(y[None])[0]), expected)


def test_multiscale_with_every_sample_known_is_the_mse_of_the_pooled_images():
    x, y = torch.rand(2, *SHAPE, dtype=torch.float64), torch.rand(*SHAPE, dtype=torch.float64)
    loss = make_loss("multiscale", {"scales": [1, 2, 4], "weights": [1.0, 0.5, 0.25]})
    pool = torch.nn.functional.avg_pool2d
    expected = mse(x, y) + 0.5 * mse(pool(x, 2), pool(y[None], 2)[0]) + 0.25 * mse(pool(x, 4), pool(y[None], 4)[0])
    assert torch.allclose(loss(x, y), expected)


def test_multiscale_defaults_are_the_papers_and_gradients_flow():
    loss = make_loss("multiscale")
    assert loss.scales == [1, 2, 4] and loss.weights == [1.0, 0.5, 0.25]
    x = torch.rand(2, *SHAPE, requires_grad=True)
    loss(x, torch.rand(*SHAPE)).sum().backward()
    assert x.grad is not None


@pytest.mark.parametrize("options, message", [({"scales": [1, 2], "weights": [1.0]}, "as many weights"),
                                              ({"scales": [0, 2, 4]}, "scales must be integers"),
                                              ({"weights": [1, -1, 1]}, "weights must be finite"),
                                              ({"gamma": 2}, "has no option gamma")])
def test_bad_multiscale_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        make_loss("multiscale", options)


# --------------------------------------------------------------------------- CLI contracts

MODEL = ("--model", "dip", "--model-opt", "levels=2", "--model-opt", "down=8", "--model-opt", "up=8",
         "--iterations", "3", "--runs", "2", "--lr", "0.01", "--quiet")
RECORD = ("record", "--signal", "triangle", "--size", "16", *MODEL, "--model-opt", "in_channels=4")
IMAGE_RECORD = ("record", "--downsample", "1", *MODEL)


def _png(path, array):
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def image16(tmp_path):
    rng = np.random.default_rng(0)
    return _png(tmp_path / "clean.png", rng.integers(0, 256, (16, 16, 3)))


def test_record_inpaint_with_a_drop_rate_stores_the_mask_and_fits_the_known_pixels(tmp_path, capsys):
    out = tmp_path / "inp.h5"
    code, _, err = run_cli(capsys, *RECORD, "--task", "inpaint", "--drop", "0.5", "--out", out)
    assert code == 0, err
    assert check_trajectory(out) == []
    with open_trajectory(out) as t:
        assert t.format_version == 2 and t.config["task"] == "inpaint"
        assert t.operator == {"name": "mask", "options": {"drop": 0.5, "seed": 0}}
        mask = t.operator_arrays()["mask"]
        assert mask.shape == (1, 16, 16) and 0.3 < mask.mean() < 0.7
        assert np.all(t.observed[:, mask[0] == 0] == 0)
        np.testing.assert_allclose(t.observed[:, mask[0] == 1], t.target[:, mask[0] == 1])


def test_record_inpaint_with_a_mask_image(tmp_path, image16, capsys):
    keep = np.full((16, 16), 255, np.uint8)
    keep[4:9, 3:12] = 0
    mask = _png(tmp_path / "mask.png", keep)
    out = tmp_path / "m.h5"
    code, _, err = run_cli(capsys, *IMAGE_RECORD, "--image", image16, "--task",
                           "inpaint", "--mask", mask, "--out", out)
    assert code == 0, err
    with open_trajectory(out) as t:
        assert np.array_equal(t.operator_arrays()["mask"][0], keep > 0)
    code, text, err = run_cli(capsys, "analyze", "psnr", out, "--region", "hole", "--json")
    assert code == 0, err
    result = json.loads(text)
    assert result["region"] == "hole" and result["observed_psnr"] is None and "mean fill" in result["baselines"]


def test_record_superres_observes_a_factor_smaller_image_and_outputs_the_full_size(tmp_path, capsys):
    out = tmp_path / "sr.h5"
    code, _, err = run_cli(capsys, *RECORD, "--task", "superres", "--factor", "4", "--out", out)
    assert code == 0, err
    with open_trajectory(out) as t:
        assert t.signal_shape == (1, 16, 16) and t.observed.shape == (1, 4, 4)
        assert t.frames(0).shape[1:] == (1, 16, 16)
        assert t.operator["options"] == {"factor": 4, "kernel": "lanczos"}
    code, text, _ = run_cli(capsys, "analyze", "psnr", out, "--json")
    result = json.loads(text)
    assert set(result["baselines"]) == {"bicubic", "nearest"} and result["observed_psnr"] is None


def test_record_observed_fits_the_given_image_and_metrics_without_a_reference_say_so(tmp_path, image16, capsys):
    out = tmp_path / "obs.h5"
    code, _, err = run_cli(capsys, *IMAGE_RECORD, "--observed", image16, "--out", out)
    assert code == 0, err
    with open_trajectory(out) as t:
        assert not t.has_target and t.config["degrade"]["noise"] == "none"
        np.testing.assert_allclose(t.observed, np.moveaxis(np.asarray(Image.open(image16)), -1, 0) / 255, atol=1e-6)
    assert check_trajectory(out) == []
    code, _, err = run_cli(capsys, "analyze", "psnr", out)
    assert code == 1 and err.count("\n") == 1 and "has no clean signal" in err
    code, _, err = run_cli(capsys, "info", out)
    assert code == 0


def test_record_observed_with_a_clean_image_scores_against_it(tmp_path, image16, capsys):
    noisy = _png(tmp_path / "noisy.png", np.asarray(Image.open(image16)) // 2)
    out = tmp_path / "obs2.h5"
    code, _, err = run_cli(capsys, *IMAGE_RECORD, "--observed", noisy, "--image",
                           image16, "--out", out)
    assert code == 0, err
    code, text, _ = run_cli(capsys, "analyze", "psnr", out, "--json")
    assert code == 0 and json.loads(text)["observed_psnr"] < 15


def test_a_guide_image_is_the_network_input(tmp_path, image16, capsys):
    out = tmp_path / "guide.h5"
    code, _, err = run_cli(capsys, *IMAGE_RECORD, "--image", image16, "--input-image", image16, "--out", out)
    assert code == 0, err
    with open_trajectory(out) as t:
        assert t.config["model"]["options"]["in_channels"] == 3
        assert t.config["fit"]["input_image"] == str(image16)


def test_the_multiscale_loss_is_what_the_file_stores_as_loss(tmp_path, capsys):
    out = tmp_path / "ms.h5"
    code, _, err = run_cli(capsys, *RECORD, "--task", "inpaint", "--drop", "0.3", "--loss", "multiscale",
                           "--loss-opt", "scales=[1,2]", "--loss-opt", "weights=[1,0.5]", "--out", out)
    assert code == 0, err
    with open_trajectory(out) as t:
        assert t.config["loss"] == {"name": "multiscale", "options": {"scales": [1, 2], "weights": [1, 0.5]}}
        op = build_operator("mask", (1, 16, 16), arrays=t.operator_arrays(), options=t.operator["options"])
        loss = make_loss("multiscale", t.config["loss"]["options"], operator=op)
        frame0 = torch.from_numpy(np.asarray(t.frames(0)[0], dtype=np.float32))[None]
        expected = loss(op(frame0), torch.from_numpy(t.observed))
        assert float(t.losses(0)[0]) == pytest.approx(float(expected[0]), rel=1e-5)


@pytest.mark.parametrize("extra, message", [
    (("--task", "inpaint", "--drop", "1.5"), "drop rate must be in"),
    (("--task", "superres", "--factor", "3"), "does not divide"),
    (("--task", "inpaint"), "needs either --drop"),
    (("--drop", "0.5"), "--drop is for --task inpaint"),
    (("--factor", "2"), "--factor is for --task superres"),
])
def test_bad_task_input_is_one_line_and_no_file(tmp_path, capsys, extra, message):
    out = tmp_path / "bad.h5"
    code, _, err = run_cli(capsys, *RECORD, *extra, "--out", out)
    assert code == 1 and err.count("\n") == 1 and message in err, err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_mask_image_of_another_size_and_observed_superres_without_a_clean_image_are_refused(tmp_path, image16,
                                                                                              capsys):
    mask = _png(tmp_path / "mask.png", np.full((15, 16), 255, np.uint8))
    out = tmp_path / "bad.h5"
    code, _, err = run_cli(capsys, *IMAGE_RECORD, "--image", image16, "--task",
                           "inpaint", "--mask", mask, "--out", out)
    assert code == 1 and "must have the image's size" in err and not out.exists()
    code, _, err = run_cli(capsys, *IMAGE_RECORD, "--observed", image16, "--task",
                           "superres", "--factor", "2", "--out", out)
    assert code == 1 and "needs the clean high-resolution image" in err and not out.exists()


def test_rules_derived_for_denoising_refuse_an_inpainting_file(tmp_path, capsys):
    out = tmp_path / "inp.h5"
    assert run_cli(capsys, *RECORD, "--task", "inpaint", "--drop", "0.5", "--out", out)[0] == 0
    code, _, err = run_cli(capsys, "analyze", "stop", out, "--rule", "discrepancy", "--sigma", "25")
    assert code == 1 and err.count("\n") == 1 and "assumes identity as the forward operator" in err
    code, _, err = run_cli(capsys, "analyze", "stop", out, "--rule", "es_wmv", "--window", "2", "--patience", "2")
    assert code == 0, err  # ES-WMV reads the outputs only


# --------------------------------------------------------------------------- format 2 reads format 1

def test_a_format_1_file_reads_as_the_identity_task(tmp_path, capsys):
    out = tmp_path / "v1.h5"
    assert run_cli(capsys, *RECORD, "--out", out)[0] == 0
    with h5py.File(out, "r+") as f:  # what version 1 wrote: no operator group
        del f["operator"]
        f.attrs["format_version"] = 1
    assert check_trajectory(out) == []
    with open_trajectory(out) as t:
        assert t.format_version == 1 and t.operator == {"name": "identity", "options": {}} and t.known is None
    code, _, err = run_cli(capsys, "analyze", "psnr", out)
    assert code == 0, err


def test_a_format_2_file_without_its_operator_group_is_refused_by_check(tmp_path, capsys):
    out = tmp_path / "v2.h5"
    assert run_cli(capsys, *RECORD, "--out", out)[0] == 0
    with h5py.File(out, "r+") as f:
        del f["operator"]
    assert any("operator" in p for p in check_trajectory(out))


# --------------------------------------------------------------------------- task metrics

def test_region_psnr_scores_only_the_hole_or_the_known_pixels():
    rng = np.random.default_rng(1)
    clean = rng.uniform(size=(1, 8, 10))
    known = (rng.uniform(size=(1, 8, 10)) > 0.5).astype(float)
    frame = clean + 0.1 * (1 - known)  # exact where known, off by 0.1 in the hole
    traj = FakeTrajectory([np.stack([frame, frame])], clean, observed=clean * known, known=known,
                          operator={"name": "mask", "options": {"drop": 0.5}})
    hole = psnr_file(traj, region="hole", with_ssim=False)
    assert hole.runs[0].best_psnr == pytest.approx(20.0)  # MSE 0.01 in the hole
    assert np.isinf(psnr_file(traj, region="known", with_ssim=False).runs[0].best_psnr)
    with pytest.raises(AnalysisError, match="needs an inpainting file"):
        psnr_file(FakeTrajectory([np.stack([frame])], clean), region="hole")


def test_coarse_psnr_pools_both_images_before_scoring():
    rng = np.random.default_rng(2)
    clean = rng.uniform(size=(3, 8, 12))
    frame = clean + rng.choice([-0.1, 0.1], size=clean.shape)
    traj = FakeTrajectory([frame[None]], clean)
    coarse = psnr_file(traj, scale=4, with_ssim=False).runs[0].best_psnr
    expected = psnr(average_pool(frame, 4, spatial_dims=2), average_pool(clean, 4, spatial_dims=2))[0]
    assert coarse == pytest.approx(expected) and coarse > psnr(frame, clean)[0]


def test_ssim_is_one_for_an_exact_frame_and_reported_next_to_psnr():
    rng = np.random.default_rng(3)
    clean = rng.uniform(size=(3, 16, 18))
    res = psnr_file(FakeTrajectory([np.stack([0.5 * clean, clean])], clean))
    assert res.runs[0].ssim_at_best == pytest.approx(1.0) and res.runs[0].final_ssim == pytest.approx(1.0)


def test_baselines_upsample_and_fill():
    y = np.arange(12, dtype=float).reshape(1, 3, 4)
    assert upsample(y, 2, "nearest").shape == (1, 6, 8) and upsample(y, 2, "nearest")[0, 1, 1] == y[0, 0, 0]
    assert upsample(np.full((2, 3, 4), 0.3), 3, "bicubic") == pytest.approx(0.3, abs=1e-6)
    known = np.array([[[1, 0], [0, 1]]])
    filled = mean_fill(np.array([[[2.0, 0.0], [0.0, 4.0]]]), known)
    assert np.array_equal(filled, [[[2.0, 3.0], [3.0, 4.0]]])


def test_the_task_spectrum_is_one_for_an_empty_hole_and_zero_once_restored():
    rng = np.random.default_rng(4)
    clean = rng.uniform(size=(1, 16, 16))
    known = np.ones((1, 16, 16))
    known[:, 4:12, 4:12] = 0
    empty = clean * known  # the hole still 0
    e = missing_band_error(np.stack([empty, clean]), clean, 1 - known)
    assert np.allclose(e[0], 1.0) and np.allclose(e[1], 0.0)
    traj = FakeTrajectory([np.stack([empty, empty, clean, clean])], clean, known=known,
                          operator={"name": "mask", "options": {}})
    res = task_spectrum_file(traj)
    assert res.region == "hole" and all(t == 2 for t in res.fill_times[0])
    json.dumps(res.to_json(), allow_nan=False)


def test_the_task_spectrum_reports_the_observations_nyquist_for_superresolution():
    clean = np.random.default_rng(5).uniform(size=(1, 16, 16))
    traj = FakeTrajectory([clean[None]], clean, operator={"name": "downsample", "options": {"factor": 4}})
    assert task_spectrum_file(traj).observed_nyquist == pytest.approx(0.125)


def test_bm3d_without_its_optional_package_is_one_analysis_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)  # import bm3d raises ImportError
    with pytest.raises(AnalysisError, match="pip install bm3d"):
        bm3d_denoise(np.zeros((3, 8, 8)), 0.1)


def test_bm3d_removes_most_of_white_noise_from_a_smooth_image():
    pytest.importorskip("bm3d")
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    clean = np.stack([0.2 + 0.6 * xx, 0.3 + 0.4 * yy, 0.5 + 0.2 * xx * yy])
    noisy = clean + 0.1 * np.random.default_rng(0).standard_normal(clean.shape)
    out = bm3d_denoise(noisy, 0.1)
    assert out.shape == clean.shape and psnr(out, clean)[0] > psnr(noisy, clean)[0] + 6
    with pytest.raises(AnalysisError, match="BM3D takes"):
        bm3d_denoise(np.zeros((2, 8, 8)), 0.1)
