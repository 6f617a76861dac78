"""The restoration-task experiments (inpainting, region inpainting with a loss comparison,
super-resolution, flash / no-flash, the task's spectral view), each ``main`` end to end on tiny
images (a 2-level DIP of 4 channels, a few iterations), and the pieces they add: the task
configurations of `experiments._common`, the score curves figure."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the experiments folder is scripts, not an installed package

from experiments import flash_noflash, inpaint_random, inpaint_regions, superres, task_spectrum  # noqa: E402
from experiments._common import TaskExperiment, task_scores  # noqa: E402
from experiments._cli import experiment_cli  # noqa: E402
from spectral_lab.config import LossConfig  # noqa: E402
from spectral_lab.errors import SpectralLabError  # noqa: E402
from spectral_lab.trajectory import open_trajectory  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = {"size": 16, "levels": 2, "channels": 4, "iterations": 6}


def _smooth(rng, shape):
    """A smooth random image in [0, 1]: white noise low-passed in Fourier space."""
    f = np.fft.fft2(rng.standard_normal(shape[:2]), axes=(0, 1))
    fy, fx = np.meshgrid(np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1]), indexing="ij")
    img = np.real(np.fft.ifft2(f * np.exp(-(fx**2 + fy**2) / 0.01)))
    img = (img - img.min()) / (img.max() - img.min())
    return img if len(shape) == 2 else np.stack([np.roll(img, 3 * c, axis=1) for c in range(shape[2])], axis=-1)


def _png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(255 * array).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """grey/{a,b}.png 32 x 32 and 32 x 40; colour/c.png 32 x 32 with c_mask.png (a 8 x 8 hole)
    and vase.png with its mask; flash.png, noflash.png 32 x 32."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    _png(root / "grey" / "a.png", _smooth(rng, (32, 32)))
    _png(root / "grey" / "b.png", _smooth(rng, (32, 40)))
    mask = np.ones((32, 32))
    mask[12:20, 8:16] = 0
    for name in ("c", "vase"):
        _png(root / "colour" / f"{name}.png", _smooth(rng, (32, 32, 3)))
        _png(root / "colour" / f"{name}_mask.png", mask)
    scene = _smooth(rng, (32, 32, 3))
    _png(root / "flash.png", np.clip(scene * 1.3, 0, 1))
    _png(root / "noflash.png", np.clip(0.6 * scene + 0.05 * rng.standard_normal(scene.shape), 0, 1))
    return root


def written(out_dir: Path, name: str) -> dict:
    """The results.json of an experiment, after checking its table and figures exist."""
    figures = out_dir / "figures" / name
    assert (figures / "table.md").read_text().startswith(f"# {name}")
    pngs = list(figures.glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == PNG_MAGIC for p in pngs)
    return json.loads((figures / "results.json").read_text())


# --------------------------------------------------------------------------- the task configurations

def test_task_config_sets_the_operator_loss_guide_and_stride(data):
    cfg = TaskExperiment(**TINY, every=2)
    rc = cfg.task_config(cfg.setting(), cfg.signal(data / "grey" / "a.png"), "inpaint", operator={"drop": 0.3},
                         loss=LossConfig("multiscale"))
    assert (rc.task, rc.operator.name, rc.operator.options["drop"], rc.loss.name) == ("inpaint", "mask", 0.3,
                                                                                     "multiscale")
    assert rc.loss.options["scales"] == [1, 2, 4] and rc.record.every == 2 and rc.degrade.noise == "none"
    assert (rc.signal.downsample, rc.fit.reg_noise_std, rc.fit.input_dist) == (2, 1.0 / 30, "uniform")
    guided = cfg.task_config(cfg.setting(), cfg.signal(None, observed=data / "noflash.png"), "denoise",
                             input_image=data / "flash.png")
    assert guided.fit.input_image == str(data / "flash.png") and guided.model.options["in_channels"] == 1
    assert guided.signal.image is None and guided.degrade.noise == "none"


# --------------------------------------------------------------------------- end to end

def test_random_inpainting_scores_the_hole_and_the_mean_fill_and_sets_the_paper_beside_its_images(data, tmp_path):
    eleven = tmp_path / "inpainting11"
    eleven.mkdir()
    (eleven / "house.png").write_bytes((data / "grey" / "a.png").read_bytes())
    cfg = replace(inpaint_random.QUICK, **TINY, images=(str(eleven), str(data / "grey")), out_dir=tmp_path)
    result = inpaint_random.main(cfg)
    numbers = written(tmp_path, cfg.name)
    assert sorted(numbers["per_image"]) == ["grey-a", "grey-b", "inpainting11-house"]
    house = numbers["per_image"]["inpainting11-house"]
    assert house["paper_dip"] == 39.16 and numbers["per_image"]["grey-a"]["paper_dip"] is None
    assert 0.35 < house["dropped"] < 0.65 and house["shape"] == [1, 16, 16]
    # the mean fill of the hole, computed here from the file
    with open_trajectory(result["per_image"]["grey-b"]["file"]) as t:
        hole = t.known[0] == 0
        mean = t.observed[0][~hole].mean()
        expected = 10 * np.log10(1 / np.mean((t.target[0][hole] - mean) ** 2))
    assert numbers["per_image"]["grey-b"]["hole"]["baseline"] == pytest.approx(expected, abs=1e-6)
    assert set(numbers["means"]) == {"grey", "inpainting11"}


def test_region_inpainting_fits_both_losses_on_the_same_seeds_and_scores_holes_only_where_they_have_truth(
        data, tmp_path):
    cfg = replace(inpaint_regions.QUICK, **TINY, images=(str(data / "colour"),), scored_holes=("c",),
                  out_dir=tmp_path)
    jobs = inpaint_regions.jobs(cfg)
    assert [j.path.name for j in jobs] == ["c--mse.h5", "c--multiscale.h5", "vase--mse.h5", "vase--multiscale.h5"]
    a, b = jobs[0].config.to_dict(), jobs[1].config.to_dict()
    assert (a.pop("loss")["name"], b.pop("loss")["name"]) == ("mse", "multiscale") and a == b
    inpaint_regions.main(cfg)
    numbers = written(tmp_path, cfg.name)
    c = numbers["per_image"]["c"]["mse"]
    assert c["hole_fraction"] == pytest.approx(16 / 256)  # the 8 x 8 hole, halved with the image
    assert set(c) >= {"psnr", "psnr_masked", "psnr_coarse"}
    table = (tmp_path / "figures" / cfg.name / "table.md").read_text()
    assert "multiscale − mse" in table
    vase_rows = [line for line in table.splitlines() if line.startswith("| vase")]
    assert vase_rows and all(line.count("|") == 6 for line in vase_rows)  # psnr only, no hole columns


def test_region_inpainting_without_a_mask_is_refused_in_one_line(data, tmp_path):
    cfg = replace(inpaint_regions.QUICK, **TINY, images=(str(data / "grey" / "a.png"),), out_dir=tmp_path)
    with pytest.raises(SpectralLabError, match="no mask for .*a_mask.png"):
        inpaint_regions.jobs(cfg)


def test_superres_crops_to_the_factor_and_scores_bicubic_and_nearest(data, tmp_path):
    cfg = replace(superres.QUICK, **TINY, images=(str(data / "grey" / "b.png"),), out_dir=tmp_path)
    superres.main(cfg)
    numbers = written(tmp_path, cfg.name)
    b = numbers["per_image"]["b"]
    assert b["shape"] == [1, 16, 20] and b["observed_shape"] == [1, 4, 5]
    assert b["bicubic"] > 10 and b["nearest"] > 10 and b["best_psnr"] > 0


def test_flash_noflash_fits_the_observation_with_the_guide_and_with_noise(data, tmp_path):
    cfg = replace(flash_noflash.QUICK, **TINY, observed=str(data / "noflash.png"), guide=str(data / "flash.png"),
                  shown=(2, 4), out_dir=tmp_path)
    flash_noflash.main(cfg)
    numbers = written(tmp_path, cfg.name)
    assert set(numbers["files"]) == {"guided", "noise"}
    assert list(numbers["files"]["guided"]["psnr_to_observed"]) == ["2", "4", "6"]
    with open_trajectory(tmp_path / "trajectories" / cfg.name / "guided.h5") as t:
        assert t.config["fit"]["input_image"].endswith("flash.png") and t.config["model"]["options"]["in_channels"] == 3
        assert not t.has_target
    with open_trajectory(tmp_path / "trajectories" / cfg.name / "noise.h5") as t:
        assert t.config["fit"]["input_image"] is None and t.config["model"]["options"]["in_channels"] == 32


def test_flash_noflash_with_a_missing_photograph_is_one_line_and_exit_status_1(tmp_path, capsys):
    code = experiment_cli(flash_noflash, ["--quick", "--observed", str(tmp_path / "nope.jpg"),
                                          "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.endswith("no such file") and len(err.splitlines()) == 1


def test_task_spectrum_reports_the_observations_nyquist_and_a_fill_time_per_band(data, tmp_path):
    cfg = replace(task_spectrum.QUICK, **TINY, image=str(data / "grey" / "a.png"), seeds=1, out_dir=tmp_path)
    task_spectrum.main(cfg)
    numbers = written(tmp_path, cfg.name)
    assert numbers["superres"]["observed_nyquist"] == 0.125 and numbers["inpaint_hole"]["observed_nyquist"] is None
    assert (numbers["inpaint_hole"]["region"], numbers["inpaint_all"]["region"]) == ("hole", "all")
    bands = len(numbers["superres"]["band_edges"]) - 1
    assert all(len(numbers["superres"]["fill_times"][t][0]) == bands for t in ("0.5", "0.1"))
    assert {p.name for p in (tmp_path / "figures" / cfg.name).glob("*.png")} == {
        "inpaint_hole.png", "inpaint_all.png", "superres.png"}


def test_task_scores_keys_views_by_region_and_scale(data, tmp_path):
    cfg = replace(inpaint_random.QUICK, **TINY, images=(str(data / "grey" / "a.png"),), out_dir=tmp_path)
    from spectral_lab.sweep import record_jobs

    (rec,) = record_jobs(inpaint_random.jobs(cfg), log=lambda _: None)
    scores = task_scores(rec.path, (("all", 1), ("hole", 2)))
    assert list(scores) == ["all@1", "hole@2"]
    assert scores["hole@2"]["curves"].shape == (1, 7) and list(scores["all@1"]["iterations"]) == list(range(7))
    assert scores["all@1"]["best_psnr"] == max(scores["all@1"]["curves"][0])


# --------------------------------------------------------------------------- the figure

def test_task_curves_figure_draws_a_line_per_file_and_a_line_per_baseline():
    from spectral_lab.plot.tasks import task_curves_figure

    x = np.arange(5)
    fig = task_curves_figure({"a": (x, np.ones((2, 5))), "b": (x, np.zeros((1, 5)))}, ylabel="PSNR (dB)",
                             title="t", baselines={"a": {"bicubic": 3.0, "nearest": 2.0}})
    ax = fig.axes[0]
    assert len(ax.lines) == 4 and ax.get_ylabel() == "PSNR (dB)"
    assert "bicubic" in ax.get_xlabel() and "nearest" in ax.get_xlabel()


# --------------------------------------------------------------------------- the cost estimate of a task

def test_estimate_probes_superres_through_its_operator_and_an_observed_image_without_a_clean_one(data, tmp_path):
    from spectral_lab.sweep import Job, estimate_jobs

    cfg = TaskExperiment(**TINY)
    sr = cfg.task_config(cfg.setting(), cfg.signal(data / "grey" / "a.png", crop_multiple=4), "superres",
                         operator={"factor": 4})
    colour = replace(cfg, grey=False)
    observed = colour.task_config(colour.setting(), colour.signal(None, observed=data / "noflash.png"), "denoise")
    est = estimate_jobs([Job(tmp_path / "sr.h5", sr), Job(tmp_path / "obs.h5", observed)])
    # the output's shape (the observation of super-resolution is 4 times smaller per axis)
    assert est.shapes == [(1, 16, 16), (3, 16, 16)]
    assert all(s > 0 for s in est.seconds_per_iteration) and all(b > 0 for b in est.bytes)
    assert not (tmp_path / "sr.h5").exists() and not (tmp_path / "obs.h5").exists()


def test_estimate_probes_a_blend_through_its_data_term(tmp_path):
    import argparse

    from PIL import Image

    from spectral_lab.cli.record import add_config_arguments, build_config
    from spectral_lab.sweep import Job, estimate_jobs

    rng = np.random.default_rng(0)
    for name in ("fg", "bg"):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 5:11] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    cfg = build_config(parser.parse_args([
        "--task", "blend", "--foreground", str(tmp_path / "fg.png"), "--background", str(tmp_path / "bg.png"),
        "--mask", str(tmp_path / "mask.png"), "--model", "dip", "--levels", "2", "--model-opt", "down=4",
        "--model-opt", "up=4", "--iterations", "6", "--downsample", "1"]))
    est = estimate_jobs([Job(tmp_path / "blend.h5", cfg)])
    assert est.shapes == [(3, 16, 16)] and est.seconds_per_iteration[0] > 0
    assert not (tmp_path / "blend.h5").exists()
