"""The image experiments, each ``main`` end to end on tiny configurations (a 16 x 16 image, a
few channels, a few iterations). Their summaries are package functions, tested with the
package: `rebound` in tests/test_divergence.py, `fitted_front` in tests/test_spectrum.py, the
DIP's level and stride choice in tests/test_models.py."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the experiments folder is scripts, not an installed package

from experiments import image_divergence, pattern_extent, upsampling_response, upsampling_stride  # noqa: E402
from spectral_lab.trajectory import open_trajectory  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def written(out_dir: Path, name: str) -> dict:
    """The results.json of an experiment, after checking its table and figures exist."""
    figures = out_dir / "figures" / name
    assert (figures / "table.md").read_text().startswith(f"# {name}")
    for png in figures.glob("*.png"):
        assert png.read_bytes()[:8] == PNG_MAGIC
    return json.loads((figures / "results.json").read_text())


def test_too_large_a_stride_is_halved_to_what_the_image_allows():
    assert upsampling_stride.usable_strides(replace(upsampling_stride.QUICK, strides=(4, 32), levels=1), 16) == (4, 8)


# --------------------------------------------------------------------------- end to end

TINY = {"size": 16, "levels": 2, "channels": 4}


def test_image_divergence_records_one_file_per_source_with_the_right_seeds(tmp_path):
    cfg = replace(image_divergence.QUICK, **TINY, iterations=12, runs=2, out_dir=tmp_path)
    image_divergence.main(cfg)
    numbers = written(tmp_path, cfg.name)
    for source in ("weights", "input", "both"):
        seeds = numbers["sources"][source]["seeds"]
        differs_in_weights = seeds["0"]["weight_seed"] != seeds["1"]["weight_seed"]
        differs_in_input = seeds["0"]["input_seed"] != seeds["1"]["input_seed"]
        assert (differs_in_weights, differs_in_input) == {"weights": (True, False), "input": (False, True),
                                                          "both": (True, True)}[source]
        assert numbers["sources"][source]["pairs"][0]["differs"] == source
        assert len(numbers["sources"][source]["epsilon_mean"]) == 13
    assert (tmp_path / "figures" / cfg.name / "by_source.png").exists()


def test_pattern_extent_compares_disjoint_pairs_per_extent(tmp_path):
    cfg = replace(pattern_extent.QUICK, **TINY, iterations=10, runs=4, side_fractions=(0.5, 1.0), out_dir=tmp_path)
    pattern_extent.main(cfg)
    numbers = written(tmp_path, cfg.name)
    assert list(numbers["extents"]) == ["0.5", "1"]
    assert numbers["extents"]["0.5"]["area_fraction"] == 0.25
    assert [p["runs"] for p in numbers["extents"]["1"]["pairs"]] == [[0, 1], [2, 3]]
    with open_trajectory(tmp_path / "trajectories" / cfg.name / "side-0.5.h5") as traj:
        assert traj.config["signal"]["pattern_fraction"] == 0.25


def test_pattern_extent_refuses_an_odd_number_of_runs(tmp_path):
    with pytest.raises(ValueError, match="even"):
        pattern_extent.main(replace(pattern_extent.QUICK, runs=3, out_dir=tmp_path))


def test_upsampling_response_tabulates_every_mode_and_stride(tmp_path):
    cfg = replace(upsampling_response.QUICK, strides=(2, 3), n_freqs=101, out_dir=tmp_path)
    numbers = upsampling_response.main(cfg)
    assert [(r["mode"], r["stride"]) for r in numbers["responses"]] == [
        ("nearest", 2), ("nearest", 3), ("bilinear", 2), ("bilinear", 3)]
    written(tmp_path, cfg.name)


def test_upsampling_stride_fits_the_same_pixels_with_each_stride(tmp_path, tiny_image_path):
    # a 16 x 20 colour file: cropped once to a multiple of 2 and 4, stored, read by both
    cfg = replace(upsampling_stride.QUICK, image=str(tiny_image_path), downsample=1, strides=(2, 4),
                  channels=4, iterations=6, runs=1, n_bands=4, out_dir=tmp_path)
    upsampling_stride.main(cfg)
    numbers = written(tmp_path, cfg.name)
    assert list(numbers["strides"]) == ["2", "4"]
    folder = tmp_path / "trajectories" / cfg.name
    with open_trajectory(folder / "stride-2.h5") as a, open_trajectory(folder / "stride-4.h5") as b:
        np.testing.assert_array_equal(a.target, b.target)
        assert a.target.shape == (1, 16, 20)
        assert (a.config["model"]["options"]["stride"], b.config["model"]["options"]["stride"]) == (2, 4)
