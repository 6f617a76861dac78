"""The blend task: record --task blend, its trajectory, analyze blend, rules without a clean image, the
blend regions and the task's spectral view."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _fakes import FakeTrajectory, run_cli
from PIL import Image

from spectral_lab.analyze.blend import blend_file, region_weights, soft_map
from spectral_lab.analyze.task_spectrum import task_spectrum_file
from spectral_lab.blend.baselines import soft_alpha
from spectral_lab.losses import make_loss
from spectral_lab.operators import build_operator
from spectral_lab.problem import place_foreground
from spectral_lab.errors import AnalysisError, ConfigError
from spectral_lab.trajectory import check_trajectory, open_trajectory

MODEL = ("--model", "dip", "--levels", "2", "--model-opt", "down=8", "--model-opt", "up=8",
         "--model-opt", "in_channels=4", "--iterations", "6", "--runs", "2", "--quiet", "--downsample", "1")


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(0)
    fg = tmp_path / "fg.png"
    bg = tmp_path / "bg.png"
    mask = tmp_path / "mask.png"
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(fg)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(bg)
    m = np.zeros((16, 16), np.uint8)
    m[4:12, 5:11] = 255
    Image.fromarray(m).save(mask)
    return fg, bg, mask


def test_record_blend_stores_its_inputs_and_analyze_blend_scores_the_four_methods(pair, tmp_path, capsys):
    fg, bg, mask = pair
    out = tmp_path / "blend.h5"
    code, _, err = run_cli(capsys, "record", "--task", "blend", "--foreground", fg, "--background", bg, "--mask",
                           mask, *MODEL, "--out", out)
    assert code == 0, err
    assert check_trajectory(out) == []
    with open_trajectory(out) as t:
        assert t.config["task"] == "blend" and t.config["loss"]["name"] == "blend" and not t.has_target
        arrays = t.operator_arrays()
        assert set(arrays) == {"foreground", "background", "mask"} and arrays["mask"].sum() == 48
        np.testing.assert_allclose(arrays["background"], t.observed)
    code, text, err = run_cli(capsys, "analyze", "blend", out, "--json")
    assert code == 0, err
    result = json.loads(text)
    assert result["iteration"] == 6
    for method in ("dip", "alpha", "poisson", "laplacian"):
        assert set(result[method]) == {"gff", "gfp", "bsi", "ssim"}
    code, text, err = run_cli(capsys, "analyze", "stop", out, "--rule", "pair_divergence", "--json")
    assert code == 0, err
    entry = json.loads(text)["results"][0]
    assert entry["best_psnr"] is None and isinstance(entry["iteration"], int)  # no clean image: no oracle
    code, _, err = run_cli(capsys, "analyze", "psnr", out)
    assert code == 1 and "a blend has no clean reference" in err


@pytest.mark.parametrize("drop, message", [("--mask", "blending needs --foreground"),
                                           ("--foreground", "blending needs --foreground")])
def test_blending_without_a_mask_or_a_foreground_is_refused(pair, tmp_path, capsys, drop, message):
    fg, bg, mask = pair
    flags = {"--foreground": fg, "--background": bg, "--mask": mask}
    del flags[drop]
    argv = [v for kv in flags.items() for v in kv]
    out = tmp_path / "bad.h5"
    code, _, err = run_cli(capsys, "record", "--task", "blend", *argv, *MODEL, "--out", out)
    assert code == 1 and message in err and not out.exists()


def test_a_smaller_foreground_is_centred_on_the_mask_and_one_that_misses_it_refused():
    mask = np.zeros((10, 12))
    mask[4:7, 6:9] = 1
    placed = place_foreground(np.ones((1, 4, 4)), (1, 10, 12), mask)
    assert placed.sum() == 16 and placed[0, 4:7, 6:9].all()
    with pytest.raises(ConfigError, match="does not cover"):
        big_mask = np.zeros((10, 12))
        big_mask[1:9, 1:11] = 1
        place_foreground(np.ones((1, 4, 4)), (1, 10, 12), big_mask)


def test_the_blend_loss_anneals_with_the_iteration_the_fit_loop_gives_it():
    rng = np.random.default_rng(1)
    shape = (1, 12, 14)
    mask = np.zeros((1, 12, 14), np.uint8)
    mask[:, 3:9, 4:10] = 1
    op = build_operator("blend", shape, arrays={"foreground": rng.uniform(size=shape), "background":
                                                 rng.uniform(size=shape), "mask": mask})
    loss = make_loss("blend", {}, operator=op, iterations=10)
    x = torch.rand(2, *shape)
    loss.on_iteration(0)
    early = loss(x, torch.zeros(shape))
    loss.on_iteration(10)
    late = loss(x, torch.zeros(shape))
    assert early.shape == (2,) and not torch.allclose(early, late)
    with pytest.raises(ConfigError, match="needs the blend task"):
        make_loss("blend", {}, operator=build_operator("identity", shape))


# --------------------------------------------------------------------------- regions and the band view

def blend_trajectory(frames, *, loss_options=None):
    """A fake blend recording on a 16×18 canvas with a 9×9 foreground block."""
    shape = (1, 16, 18)
    mask = np.zeros((1, 16, 18), np.uint8)
    mask[:, 4:13, 5:14] = 1
    rng = np.random.default_rng(0)
    arrays = {"foreground": rng.uniform(size=shape), "background": rng.uniform(size=shape), "mask": mask}
    return FakeTrajectory([np.asarray(f) for f in frames], operator={"name": "blend", "options": {}},
                          operator_arrays=arrays, config={"loss": {"name": "blend", "options": loss_options or {}}})


def test_the_transition_region_is_the_objectives_band_weight_of_the_files_soft_map():
    traj = blend_trajectory([np.zeros((2, 1, 16, 18))], loss_options={"soft_size": 3})
    alpha = soft_alpha(traj.operator_arrays()["mask"][0], size=3)
    np.testing.assert_array_equal(soft_map(traj), alpha)
    w = region_weights(traj, "transition")[0]
    np.testing.assert_allclose(w, 4 * alpha * (1 - alpha))
    assert w[8, 0] == 0 and w[8, 9] == 0 and w.max() <= 1  # far outside, deep inside, peak on the boundary
    np.testing.assert_allclose(region_weights(traj, "foreground") + region_weights(traj, "background"), 1.0)
    with pytest.raises(AnalysisError, match="transition, foreground, background"):
        region_weights(traj, "hole")


def test_the_alpha_baseline_uses_the_soft_map_the_recording_used():
    frames = [np.full((2, 1, 16, 18), 0.5)]
    default = blend_file(blend_trajectory(frames)).scores["alpha"]
    narrow = blend_file(blend_trajectory(frames, loss_options={"soft_size": 3})).scores["alpha"]
    assert default["ssim"] != narrow["ssim"]


def test_the_blend_spectral_view_settles_against_each_runs_last_frame():
    rng = np.random.default_rng(1)
    final = rng.uniform(size=(1, 16, 18))
    frames = np.stack([np.zeros_like(final), 0.5 * final, final, final])
    other = frames[::-1].copy()  # a second run ending at zeros + noise: its own reference
    other[-1] = rng.uniform(size=final.shape)
    traj = blend_trajectory([frames, other])
    res = task_spectrum_file(traj, n_bands=3)
    assert res.region == "transition" and res.reference == "final"
    assert np.all(res.errors[0][-1] == 0) and np.all(res.errors[1][-1] == 0)
    assert res.fill_times[0] == [2, 2, 2] and res.fill_times[1] == [3, 3, 3]
    json.dumps(res.to_json(), allow_nan=False)
    assert task_spectrum_file(traj, region="all", n_bands=3).reference == "final"


def test_blend_regions_and_the_hole_are_refused_on_the_wrong_task():
    clean = np.random.default_rng(2).uniform(size=(1, 16, 16))
    with pytest.raises(AnalysisError, match="needs a blend file"):
        task_spectrum_file(FakeTrajectory([clean[None]], clean), region="transition")
    with pytest.raises(AnalysisError, match="region hole needs an inpainting file"):
        task_spectrum_file(blend_trajectory([np.zeros((2, 1, 16, 18))]), region="hole")
