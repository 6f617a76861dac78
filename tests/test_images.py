"""spectral_lab.images: which images a study fits and what they are called."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from spectral_lab.errors import SignalError
from spectral_lab.images import (downsample_for, image_label, image_name, image_paths, image_signal, image_size,
                                 save_png16)
from spectral_lab.signals import load_image, sample_image_path


def test_image_paths_lists_the_image_files_of_a_folder_sorted(tmp_path):
    for name in ("b.png", "a.JPG", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in image_paths(tmp_path)] == ["a.JPG", "b.png"]


def test_image_paths_of_nothing_is_the_sample_photo():
    assert image_paths(None) == [None]


def test_image_paths_of_a_list_joins_its_files_and_folders(tiny_image_path, tmp_path):
    (tmp_path / "other").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "other" / "z.png")
    assert [p.name for p in image_paths((str(tiny_image_path), tmp_path / "other"))] == ["tiny.png", "z.png"]


def test_a_folder_without_images_raises(tmp_path):
    with pytest.raises(SignalError, match="no image files"):
        image_paths(tmp_path)


def test_a_missing_path_raises_naming_it(tmp_path):
    with pytest.raises(SignalError, match="nope: no such file or folder"):
        image_paths(tmp_path / "nope")


def test_names_and_labels():
    assert image_name(None) == "sample_photo" and image_name(sample_image_path()) == "grace_hopper"
    assert [image_label(s) for s in ("triangle", "photo", "/x/barbara.png")] == ["triangle", "photo", "barbara"]


def test_the_down_sampling_brings_the_shorter_side_closest_to_the_size_from_above(tiny_image_path):
    assert image_size(sample_image_path()) == (512, 600)
    assert downsample_for(sample_image_path(), 64) == 8  # 512 // 64
    assert downsample_for(tiny_image_path, 64) == 1  # never below 1
    photo = image_signal("photo", size=100)
    assert (photo.kind, photo.image, photo.downsample, photo.grey) == ("image", None, 5, True)
    assert image_signal(str(tiny_image_path), downsample=2).image == str(tiny_image_path)
    tri = image_signal("triangle", size=32, pattern_fraction=0.25)
    assert (tri.kind, tri.size, tri.pattern_fraction) == ("triangle", 32, 0.25)


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    (tmp_path / "x.png").write_bytes(b"no")
    with pytest.raises(SignalError, match="not an image file"):
        image_signal(str(tmp_path / "x.png"))


def test_a_16_bit_png_reads_back_within_half_a_step(tmp_path):
    image = np.random.default_rng(0).uniform(size=(1, 7, 5))
    path = save_png16(image, tmp_path / "sub" / "x.png")
    back = load_image(path)
    assert back.shape == (1, 7, 5)
    np.testing.assert_allclose(back, image, atol=0.5 / 65535 + 1e-7)
    with pytest.raises(SignalError):
        save_png16(np.zeros((3, 4, 4)), tmp_path / "rgb.png")
