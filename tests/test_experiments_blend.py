"""experiments/blending.py: the pairs it builds and its quick path at a tiny size."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the experiments folder is scripts, not an installed package

from experiments import blending  # noqa: E402
from spectral_lab.errors import SpectralLabError  # noqa: E402
from spectral_lab.signals import load_image, load_mask  # noqa: E402


def fake_data(root: Path, pairs) -> Path:
    """Random photographs at the relative paths the pairs name (48 × 64, colour)."""
    rng = np.random.default_rng(0)
    for pair in pairs:
        spec = blending.PAIR_SPECS[pair]
        for rel in (spec.foreground, spec.background):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path)
    return root


def test_build_inputs_writes_each_pairs_images_and_mask_at_the_canvas_size(tmp_path):
    pairs = tuple(blending.PAIR_SPECS)
    cfg = replace(blending.QUICK, pairs=pairs, size=24, data=str(fake_data(tmp_path / "data", pairs)),
                  out_dir=tmp_path)
    inputs = blending.build_inputs(cfg)
    assert set(inputs) == set(pairs)
    for pair, files in inputs.items():
        assert files["mask"].parent == tmp_path / "figures" / "blending" / "pairs" / f"{pair}-24"
        mask = load_mask(files["mask"], size=(24, 24))[0]
        assert 0 < mask.sum() < mask.size
        for role in ("foreground", "background"):
            assert load_image(files[role]).shape == (3, 24, 24)
    assert load_mask(inputs["peppers-baboon"]["mask"], size=(24, 24))[0, :, :12].all()  # the seam at x = ½


def test_unknown_pairs_variants_and_a_missing_data_folder_are_one_line_errors(tmp_path):
    with pytest.raises(SpectralLabError, match="unknown pair"):
        blending.build_inputs(replace(blending.QUICK, pairs=("nope",), data=str(tmp_path), out_dir=tmp_path))
    with pytest.raises(SpectralLabError, match="pass --data"):
        blending.build_inputs(replace(blending.QUICK, data=str(tmp_path / "missing"), out_dir=tmp_path))
    data = fake_data(tmp_path / "data", ("jet-beach",))
    with pytest.raises(SpectralLabError, match="unknown variant"):
        blending.jobs(replace(blending.QUICK, pairs=("jet-beach",), variants=("loud",), data=str(data),
                              out_dir=tmp_path))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_quick_path_at_a_tiny_size_writes_its_tables_and_figures(tmp_path):
    pairs = ("jet-beach",)
    cfg = replace(blending.QUICK, pairs=pairs, size=32, levels=2, channels=8, iterations=8, seeds=2, window=3,
                  patience=2, n_bands=4, variants=("paper", "narrow"), variant_pairs=("jet-beach",),
                  data=str(fake_data(tmp_path / "data", pairs)), out_dir=tmp_path)
    out = blending.main(cfg)
    figures = tmp_path / "figures" / "blending"
    for name in ("table.md", "results.json", "pairs.png", "results.png", "variants.png",
                 "curves_jet-beach.png", "bands_jet-beach.png"):
        assert (figures / name).is_file(), name
    assert sorted(p.name for p in (tmp_path / "trajectories" / "blending" / "quick").glob("*.h5")) == [
        "jet-beach-32--narrow.h5", "jet-beach-32--paper.h5"]
    numbers = json.loads((figures / "results.json").read_text())
    jet = numbers["files"]["jet-beach"]["paper"]
    assert set(jet["baselines"]) == {"alpha", "poisson", "laplacian"}
    assert len(jet["dip"]["last"]) == 2 and set(jet["frames"]) == {"last", "es_wmv", "best_ssim"}
    assert all(it == 8 for it in jet["frames"]["last"])
    assert sorted(map(float, jet["gfp_noise"])) == sorted(cfg.gfp_noise)
    assert all(len(v) == len(cfg.gfp_eps) for v in jet["gfp_noise"].values())
    res = out["results"]["jet-beach"]["paper"]
    # the DIP's scores at its last frame are the curve's last entries, and a baseline is scored once
    assert res["dip"]["last"][0]["ssim"] == pytest.approx(float(res["curves"][0]["ssim"][-1]))
    table = (figures / "table.md").read_text()
    assert "DIP, ES-WMV stop" in table and "Table 6 (bear and penguin)" in table and "narrow" in table
    assert "alpha + white noise σ=0.01" in table


def test_the_estimate_of_a_blend_recording_takes_the_output_shape_since_a_blend_has_no_clean_image(tmp_path):
    from spectral_lab.sweep import estimate_jobs

    pairs = ("hat-zebra",)
    cfg = replace(blending.QUICK, pairs=pairs, size=24, levels=2, channels=4, iterations=5, seeds=2,
                  data=str(fake_data(tmp_path / "data", pairs)), out_dir=tmp_path)
    est = estimate_jobs(blending.jobs(cfg))
    assert est.shapes == [(3, 24, 24)]
    assert est.seconds[0] > 0 and est.bytes[0] > 0
    assert not list((tmp_path / "trajectories").rglob("*.h5"))  # an estimate writes no recording
