"""The blend task: record --task blend, its trajectory, analyze blend, rules without a clean image."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _fakes import run_cli
from PIL import Image

from spectral_lab.losses import make_loss
from spectral_lab.operators import build_operator
from spectral_lab.problem import place_foreground
from spectral_lab.errors import ConfigError
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
