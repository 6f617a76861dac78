"""Blending pairs built from photographs (spectral_lab.blend.pairs), on tiny synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from spectral_lab.blend.pairs import PairSpec, build_pair, ellipse_mask, resample, seam_mask, write_pair
from spectral_lab.errors import ConfigError
from spectral_lab.signals import load_image, load_mask


def save_png(path, array_hwc):
    Image.fromarray(np.asarray(array_hwc, dtype=np.uint8)).save(path)
    return str(path)


# --------------------------------------------------------------------------- masks and resampling

def test_an_ellipse_mask_holds_the_pixel_centres_inside_it():
    m = ellipse_mask((21, 31), (0.5, 0.5), (0.3, 0.4))
    y, x = np.mgrid[0:21, 0:31]
    inside = (((y + 0.5) / 21 - 0.5) / 0.3) ** 2 + (((x + 0.5) / 31 - 0.5) / 0.4) ** 2 <= 1
    assert m.dtype == np.uint8 and np.array_equal(m.astype(bool), inside)
    assert m[10, 15] == 1 and m[0, 0] == 0


def test_a_seam_mask_is_the_canvas_left_of_the_seam():
    m = seam_mask((5, 10), 0.5)
    assert np.all(m[:, :5] == 1) and np.all(m[:, 5:] == 0)
    with pytest.raises(ConfigError, match="inside the canvas"):
        seam_mask(8, 1.0)


def test_resampling_keeps_a_constant_and_mirrors_beyond_the_border():
    flat = np.full((3, 9, 11), 0.25)
    out = resample(flat, (-4.0, -6.0, 20.0, 25.0), (7, 5))
    assert out.shape == (3, 7, 5) and np.allclose(out, 0.25, atol=1e-6)
    ramp = np.tile(np.linspace(0, 1, 16), (1, 16, 1))  # grows along x
    same = resample(ramp, (0, 0, 16, 16), 16)
    np.testing.assert_allclose(same, ramp, atol=1e-5)  # the whole image at its own size: itself
    left = resample(ramp, (0, -16, 16, 16), 16)[0, 8]  # the mirror image left of the border
    np.testing.assert_allclose(left, ramp[0, 8, ::-1], atol=1e-5)


# --------------------------------------------------------------------------- a pair

@pytest.fixture
def photos(tmp_path):
    """A 40×60 background (a left-to-right ramp) and a 30×30 foreground, grey 60, with a white
    10×10 square at rows 10–19, columns 5–14."""
    ramp = np.tile(np.linspace(0, 255, 60), (40, 1))
    bg = save_png(tmp_path / "bg.png", np.repeat(ramp[..., None], 3, axis=2))
    fg = np.full((30, 30, 3), 60)
    fg[10:20, 5:15] = 255
    return save_png(tmp_path / "fg.png", fg), bg


def test_build_pair_puts_the_object_box_on_the_target_box_and_crops_the_background(photos):
    fg, bg = photos
    spec = PairSpec(fg, bg, background_box=(0.0, 0.5, 1.0, 0.5), object_box=(10 / 30, 5 / 30, 1 / 3, 1 / 3),
                    target_box=(0.25, 0.25, 0.5, 0.5), mask=("ellipse", 0.5, 0.5, 0.3, 0.3))
    pair = build_pair(spec, 20)
    assert pair["foreground"].shape == pair["background"].shape == (3, 20, 20) and pair["mask"].shape == (20, 20)
    square = pair["foreground"][0] > 0.6  # the white square, scaled x1: 10×10 onto the canvas' 5..14
    rows, cols = np.nonzero(square)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (5, 14, 5, 14)
    assert np.allclose(pair["foreground"][:, 0, 0], 60 / 255, atol=0.02)  # mirrored photograph, not black
    # the right half of the ramp, 30 columns -> 20: from ~0.5 up to ~1
    row = pair["background"][0, 10]
    assert 0.45 < row[0] < 0.56 and row[-1] > 0.95 and np.all(np.diff(row) > 0)


def test_build_pair_refuses_a_mask_without_a_boundary_and_images_of_different_channels(photos, tmp_path):
    fg, bg = photos
    with pytest.raises(ConfigError, match="no boundary"):
        build_pair(PairSpec(fg, bg, mask=("ellipse", 0.5, 0.5, 5.0, 5.0)), 16)
    with pytest.raises(ConfigError, match="a mask is"):
        build_pair(PairSpec(fg, bg, mask=("square", 0.5)), 16)
    grey = save_png(tmp_path / "grey.png", np.full((8, 8), 100))
    with pytest.raises(ConfigError, match="channel"):
        build_pair(PairSpec(grey, bg), 16)


def test_a_written_pair_reads_back_as_record_reads_it(photos, tmp_path):
    fg, bg = photos
    pair = build_pair(PairSpec(fg, bg, mask=("left", 0.4)), 12)
    paths = write_pair(pair, tmp_path / "pair")
    for role in ("foreground", "background"):
        np.testing.assert_allclose(load_image(paths[role]), pair[role], atol=0.5 / 255 + 1e-6)
    assert np.array_equal(load_mask(paths["mask"], size=(12, 12))[0], pair["mask"])
