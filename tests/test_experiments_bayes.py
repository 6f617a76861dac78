"""The Bayesian experiments (000_...) end to end at a tiny scale: SGD against SGLD (bayes_sgld), the
five schemes of Table 1 (bayes_denoise), the inpainting uncertainty map (bayes_uncertainty) and
the trained DIP against its GP (bayes_dip_gp); the schemes' settings and the experiments' bad
input. Every run here is a 16 x 16 image, a 2-level DIP of 8 channels and a few dozen steps."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the experiments folder is scripts, not an installed package

from experiments import bayes_denoise, bayes_dip_gp, bayes_sgld, bayes_uncertainty  # noqa: E402
from experiments._common import SCHEMES, SamplerExperiment  # noqa: E402
from spectral_lab.errors import SpectralLabError  # noqa: E402
from spectral_lab.sweep import record_jobs  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = dict(size=16, levels=2, channels=8, seeds=1)


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> str:
    """A 32 x 32 colour image: smooth ramps, a bright square and a fine stripe pattern."""
    from PIL import Image

    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    rgb = np.stack([0.2 + 0.6 * xx, 0.3 + 0.4 * yy, 0.5 + 0.3 * np.sin(6 * xx)], axis=-1)
    rgb[8:20, 10:22] = 0.9
    rgb[24:, :] += 0.1 * (np.arange(32) % 2)[None, :, None]
    path = tmp_path_factory.mktemp("img") / "tiny.png"
    Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(path)
    return str(path)


# --------------------------------------------------------------------------- schemes

def test_each_scheme_is_the_optimiser_of_its_name_with_the_papers_options():
    cfg = SamplerExperiment()
    sgd, sgd_input, sgld_adam, sgld = (cfg.scheme(s) for s in SCHEMES)
    assert (sgd.optimizer, sgd.reg_noise_std, sgd.burn_in) == ("adam", 0.0, None)
    assert sgd_input.optimizer == "adam" and sgd_input.reg_noise_std == pytest.approx(1 / 30)
    assert sgld_adam.optimizer == "sgld_adam" and dict(sgld_adam.optimizer_options) == {"noise": 2.0,
                                                                                        "weight_decay": 5e-8}
    assert sgld_adam.reg_noise_std == pytest.approx(1 / 30) and sgld_adam.burn_in == cfg.burn_in
    assert (sgld.optimizer, sgld.lr, sgld.reg_noise_std) == ("sgld", cfg.exact_lr, 0.0)
    with pytest.raises(ValueError, match="unknown scheme"):
        cfg.scheme("sgd_magic")


def test_a_schemes_burn_in_stride_and_options_reach_the_stored_configuration(image):
    cfg = replace(SamplerExperiment(), **TINY, burn_in=7, every=3, iterations=20)
    rc = cfg.image_config(cfg.scheme("sgld"), Path(image))
    assert (rc.record.burn_in, rc.record.every, rc.fit.optimizer) == (7, 3, "sgld")
    assert rc.fit.optimizer_options["temperature"] == 1.0 and rc.signal.downsample == 2


# --------------------------------------------------------------------------- bayes_sgld

@pytest.fixture(scope="module")
def sgld_run(tmp_path_factory, image):
    out = tmp_path_factory.mktemp("sgld")
    cfg = replace(bayes_sgld.QUICK, **TINY, image=image, iterations=60, burn_in=20, sweep_sigmas=(25.0, 50.0),
                  sweep_schemes=("sgd", "sgld"), stride_check=4, out_dir=out)
    return out, cfg, bayes_sgld.main(cfg)


def test_sgd_fits_the_noise_below_sgld_which_stays_near_the_noise_level(sgld_run):
    _, cfg, numbers = sgld_run
    mse = {s: numbers["schemes"][s]["runs"][0]["mse_tail"] for s in SCHEMES}
    # measured at this size (60 steps): sgd 335, sgd_input 641, sgld_adam 1050, sgld 910 (σ² = 625)
    assert mse["sgd"] < cfg.sigma**2 < mse["sgld"]
    assert 1.0 < mse["sgld"] / cfg.sigma**2 < 2.0


def test_only_the_samplers_have_a_posterior_mean_and_the_sgd_files_a_stride_check(sgld_run):
    _, _, numbers = sgld_run
    for s in SCHEMES:
        run = numbers["schemes"][s]["runs"][0]
        assert (run["posterior_psnr"] is not None) == (s in ("sgld_adam", "sgld"))
        assert numbers["schemes"][s]["stride_loss"][0] >= 0  # every file of this run keeps every frame


def test_the_noise_sweep_shares_the_main_files_and_reports_every_sigma(sgld_run):
    out, _, numbers = sgld_run
    assert set(numbers["sweep"]) == {"25", "50"}
    files = sorted(p.name for p in (out / "trajectories" / bayes_sgld.NAME).iterdir())
    assert len(files) == 4 + 2  # four schemes at σ = 25, two at σ = 50
    energy = {s: numbers["sweep"][s]["sgd"]["noise_energy"] for s in ("25", "50")}
    assert energy["25"] < 625 and energy["50"] > 4 * energy["25"] * 0.8  # clipping lowers the noise energy


def test_the_spectrum_table_holds_the_observation_and_every_schemes_estimate(sgld_run):
    out, _, numbers = sgld_run
    labels = [row["image"] for row in numbers["spectrum"]["rows"]]
    assert labels[0] == "observation" and "sgd best frame" in labels and "sgld posterior mean" in labels
    edges = numbers["spectrum"]["band_edges"]
    assert len(edges) == 6 and edges[-1] == pytest.approx(np.sqrt(0.5))
    figures = out / "figures" / bayes_sgld.NAME
    for name in ("curves_tiny.png", "mse_vs_noise_tiny.png", "bands_tiny.png", "outputs_tiny.png"):
        assert (figures / name).read_bytes()[:8] == PNG_MAGIC
    assert json.loads((figures / "results.json").read_text())["schemes"]["sgld"]["burn_in"] == 20


def test_bayes_sgld_refuses_an_unknown_scheme_or_a_burn_in_past_the_end(tmp_path):
    with pytest.raises(SpectralLabError, match="unknown scheme"):
        bayes_sgld.jobs(replace(bayes_sgld.QUICK, schemes=("sgd", "nope"), out_dir=tmp_path))
    with pytest.raises(SpectralLabError, match="burn-in"):
        bayes_sgld.jobs(replace(bayes_sgld.QUICK, burn_in=600, out_dir=tmp_path))


# --------------------------------------------------------------------------- bayes_denoise

def test_the_five_schemes_are_scored_from_three_files_and_the_files_are_reused(tmp_path, image):
    cfg = replace(bayes_denoise.QUICK, **TINY, images=image, sgd_iterations=30, iterations=40, burn_in=10, every=5,
                  out_dir=tmp_path)
    numbers = bayes_denoise.main(cfg)
    assert list(numbers["per_image"]["tiny"]) == list(bayes_denoise.ROWS)
    assert all(np.isfinite(v) for v in numbers["means"].values())
    table = (tmp_path / "figures" / bayes_denoise.NAME / "table.md").read_text()
    assert "30.81" in table and "28.08" in table  # the paper's means beside ours
    messages = []
    recorded = record_jobs(bayes_denoise.jobs(cfg), log=messages.append)
    assert all(r.reused for r in recorded) and len(recorded) == 3


def test_bayes_denoise_refuses_a_sampler_that_is_not_one(tmp_path):
    with pytest.raises(SpectralLabError, match="samplers"):
        bayes_denoise.jobs(replace(bayes_denoise.QUICK, samplers=("sgd",), out_dir=tmp_path))


# --------------------------------------------------------------------------- bayes_uncertainty

def test_the_posterior_spread_of_an_inpainting_run_follows_its_error_and_the_holes(tmp_path, image):
    cfg = replace(bayes_uncertainty.QUICK, **TINY, images=image, iterations=60, burn_in=20,
                  schemes=("sgd", "sgld_adam", "sgld"), out_dir=tmp_path)
    numbers = bayes_uncertainty.main(cfg)
    u = {s: numbers["files"][f"tiny--{s}"]["uncertainty"][0] for s in ("sgld_adam", "sgld")}
    # measured: hole/known std 1.06 (sgld_adam), 1.29 (sgld); Pearson(std, |error|) 0.67, 0.41
    assert all(v["samples"] == 41 and v["corr_error"]["pearson"] > 0.2 for v in u.values())
    assert u["sgld"]["hole_over_known"] > 1.15
    assert "uncertainty" not in numbers["files"]["tiny--sgd"]
    figure = tmp_path / "figures" / bayes_uncertainty.NAME / "uncertainty_tiny--sgld_adam.png"
    assert figure.read_bytes()[:8] == PNG_MAGIC


def test_exact_sgld_for_inpainting_averages_the_likelihood_over_every_pixel(tmp_path, image):
    cfg = replace(bayes_uncertainty.QUICK, **TINY, images=image, out_dir=tmp_path)
    (job,) = [j for j in bayes_uncertainty.jobs(cfg) if j.label == "sgld"]
    opts = job.config.fit.optimizer_options
    assert opts["n_observed"] == 16 * 16 and opts["noise_sigma"] == pytest.approx(5 / 255)


# --------------------------------------------------------------------------- bayes_dip_gp

def test_the_dip_and_both_gps_inpaint_and_are_scored_in_the_holes(tmp_path, image):
    cfg = replace(bayes_dip_gp.QUICK, image=image, size=16, channels=(4, 8), iterations=40, kernel_channels=8,
                  kernel_nets=24, kernel_batch=8, rbf_length_scales=(1.0, 2.0), out_dir=tmp_path)
    numbers = bayes_dip_gp.main(cfg)
    assert sorted(numbers["dip"]) == [4, 8] and set(numbers["gp"]) == {"GP-DIP", "GP-RBF"}
    fill = numbers["mean_fill_hole"]
    for g in numbers["gp"].values():
        assert g["psnr_hole"] > fill  # any smooth prior beats filling with the mean
    assert numbers["gp"]["GP-DIP"]["kernel"]["nets"] == 24
    figures = tmp_path / "figures" / bayes_dip_gp.NAME
    assert (figures / "dip_vs_gp_tiny.png").read_bytes()[:8] == PNG_MAGIC


def test_bayes_dip_gp_refuses_no_channels(tmp_path):
    with pytest.raises(SpectralLabError, match="channels"):
        bayes_dip_gp.jobs(replace(bayes_dip_gp.QUICK, channels=(), out_dir=tmp_path))


def test_a_variant_changes_numeric_fields_of_one_scheme_and_names_its_file(tmp_path):
    cfg = replace(bayes_sgld.QUICK, variants=("sgld:temperature=0;exact_lr=3",), out_dir=tmp_path)
    scheme, label, tag, changed = bayes_sgld.variant(cfg, cfg.variants[0])
    assert (scheme, label, tag) == ("sgld", "sgld (temperature=0, exact_lr=3)", "sgld--temperature0-exact_lr3")
    (job,) = [j for j in bayes_sgld.jobs(cfg) if j.label == label]
    assert job.config.fit.optimizer_options["temperature"] == 0.0 and job.config.fit.lr == 3.0
    for bad in ("nope:temperature=0", "sgld:levels=3", "sgld:temperature=hot", "sgld"):
        with pytest.raises(SpectralLabError, match="variant"):
            bayes_sgld.variant(cfg, bad)
