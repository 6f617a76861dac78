"""The denoising experiments: the architecture comparison end to end at a tiny scale (reuse
and resume of its files), the failure case's fitted fractions on constructed frames, the
stopping rules' jobs and end to end. The experiment CLI: tests/test_experiment_cli.py; image
lists: tests/test_images.py; the sweep engine: tests/test_sweep.py."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the experiments folder is scripts, not an installed package

from experiments import denoise_architectures as arch  # noqa: E402
from experiments._common import Setting, dip_setting  # noqa: E402
from experiments import stopping_rules  # noqa: E402
from spectral_lab.analyze.noise_fit import first_reaching, fitted_fractions  # noqa: E402
from spectral_lab.errors import SpectralLabError  # noqa: E402
from spectral_lab.sweep import estimate_jobs, record_jobs  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SHAPE = (3, 37, 31)


# --------------------------------------------------------------------------- architectures

@pytest.fixture(scope="module")
def tiny_comparison(tmp_path_factory):
    """dip (3 levels, 32 channels, 250 iterations) against linear-128 (150 iterations) on the
    sample photograph at 32 x 32 (x16), white noise sigma 25, one seed (seed 0).

    Measured on seeds 0-5 (both models on the same 32 x 32 crop, ~5 s per seed): dip
    23.45-23.66 dB, linear-128 20.97-21.04 dB, margin 2.42-2.66 dB; seed 0: 23.63 vs 20.97."""
    out = tmp_path_factory.mktemp("arch")
    cfg = replace(arch.QUICK, images=None, downsample=16, seeds=1, seed=0, out_dir=out, models=(
        dip_setting("dip", {"levels": 3, "down": 32, "up": 32}, iterations=250),
        Setting("linear-128", "linear", {"depth": 5, "width": 128, "in_channels": 1},
                             iterations=150, lr=1e-4)))
    return out, arch.main(cfg)


def test_dip_beats_dip_linear_by_a_clear_margin_at_a_tiny_scale(tiny_comparison):
    _, result = tiny_comparison
    means = result["model_means"]
    assert means["dip"] - means["linear-128"] > 1.5  # measured 2.38 dB at seed 0


def test_dip_linear_barely_beats_the_observation(tiny_comparison):
    # a model without a frequency bias has no point on its trajectory much better than y
    _, result = tiny_comparison
    linear = result["per_image"]["sample_photo"]["linear-128"]
    assert linear["best_psnr"][0] - linear["observed_psnr"] < 0.5


def test_comparison_writes_its_table_figures_and_json(tiny_comparison):
    out, _ = tiny_comparison
    figures = out / "figures" / arch.NAME
    table = (figures / "table.md").read_text()
    assert "Preset `quick`" in table and "paper (Table 1" in table and "27.47" in table
    for name in ("psnr_curves_sample_photo.png", "grid_sample_photo.png"):
        assert (figures / name).read_bytes()[:8] == PNG_MAGIC
    numbers = json.loads((figures / "results.json").read_text())
    assert numbers["per_image"]["sample_photo"]["dip"]["iterations"] == 250
    assert sorted(p.name for p in (out / "trajectories" / arch.NAME).iterdir()) == [
        "sample_photo--dip.h5", "sample_photo--linear-128.h5"]


def test_a_complete_recording_of_the_same_configuration_is_reused(tiny_comparison):
    out, _ = tiny_comparison
    # the comparison's models as in `tiny_comparison` (they decide the common crop), then its
    # linear-128 file alone
    cfg = replace(arch.QUICK, images=None, downsample=16, seeds=1, out_dir=out, models=(
        dip_setting("dip", {"levels": 3, "down": 32, "up": 32}, iterations=250),
        Setting("linear-128", "linear", {"depth": 5, "width": 128, "in_channels": 1},
                             iterations=150, lr=1e-4),))
    messages = []
    (rec,) = record_jobs(arch.jobs(cfg)[1:], log=messages.append)
    assert rec.reused and messages == ["  reusing sample_photo--linear-128.h5 (complete, same configuration)"]


def test_an_interrupted_recording_of_the_same_configuration_is_resumed_to_completion(tmp_path):
    from spectral_lab.trajectory import open_trajectory
    from spectral_lab.runner import record

    cfg = replace(arch.QUICK, images=None, downsample=16, seeds=2, out_dir=tmp_path, models=(
        Setting("linear-128", "linear", {"depth": 3, "width": 16}, iterations=12, lr=1e-4),))
    (job,) = arch.jobs(cfg)
    steps = iter(range(100))
    record(job.config, job.path, progress=False, should_stop=lambda: next(steps) >= 4)
    est = estimate_jobs([job])
    # 8 frames of 2 runs left; the checkpoint slots exist already
    assert est.seconds_per_iteration[0] > 0 and est.bytes[0] == 2 * (13 - 5) * 3 * 37 * 32 * 4
    messages = []
    (rec,) = record_jobs([job], log=messages.append)
    assert messages == ["  resuming sample_photo--linear-128.h5 (interrupted)"] and not rec.reused
    with open_trajectory(job.path) as t:
        assert t.status == "complete" and t.n_frames(1) == 13


# --------------------------------------------------------------------------- jobs

def test_stopping_rules_pairs_every_white_noise_file_with_its_sure_twin(tmp_path):
    jobs = stopping_rules.jobs(replace(stopping_rules.QUICK, out_dir=tmp_path))
    assert [(j.path.name, j.label) for j in jobs] == [
        ("sample_photo--white.h5", "white"), ("sample_photo--white--twin.h5", "twin"),
        ("sample_photo--lowfreq.h5", "lowfreq")]
    plain, twin = jobs[0].config.to_dict(), jobs[1].config.to_dict()
    assert twin["degrade"].pop("probe") == stopping_rules.QUICK.probe > 0 and plain["degrade"].pop("probe") == 0
    assert plain == twin
    assert len(stopping_rules.jobs(replace(stopping_rules.QUICK, probe=0.0, out_dir=tmp_path))) == 2


def test_every_preset_budgets_each_model_itself():
    for preset in arch.PRESETS.values():
        assert [m.label for m in preset.models] == ["dip", "linear-128", "linear-2048", "relunet"]
        assert len({m.iterations for m in preset.models}) > 1


def test_the_night_preset_runs_its_relunet_in_bf16_and_the_rest_in_fp32(tmp_path):
    night = replace(arch.NIGHT, out_dir=tmp_path)
    precisions = {j.label: j.config.fit.precision for j in arch.jobs(night)}
    assert precisions == {"dip": "fp32", "linear-128": "fp32", "linear-2048": "fp32", "relunet": "bf16"}
    assert night.models[-1].describe().endswith(", bf16") and "bf16" not in night.models[0].describe()
    assert {j.config.fit.precision for j in arch.jobs(replace(arch.QUICK, out_dir=tmp_path))} == {"fp32"}


def test_stopping_rules_refuses_an_odd_number_of_seeds(tmp_path):
    with pytest.raises(ValueError, match="even"):
        stopping_rules.main(replace(stopping_rules.QUICK, seeds=3, out_dir=tmp_path))


# --------------------------------------------------------------------------- failure case

class _Frames:
    """The reader API `fitted_fractions` uses, over arrays (one run)."""

    kind = "image"

    def __init__(self, frames, clean, observed):
        self.frames, self.target, self.observed, self.n_runs = frames, clean, observed, 1

    def iter_frames(self, r, chunk=None):
        yield 0, self.frames


def _lowpass(x, cutoff):
    fy = np.fft.fftfreq(x.shape[-2])[:, None]
    fx = np.fft.fftfreq(x.shape[-1])[None, :]
    return np.real(np.fft.ifft2(np.fft.fft2(x) * (np.hypot(fx, fy) <= cutoff)))


def test_fitted_fractions_are_exact_on_frames_that_mix_image_and_noise():
    rng = np.random.default_rng(0)
    clean = rng.uniform(size=SHAPE)
    noise = 0.1 * rng.standard_normal(SHAPE)
    cutoff = 0.1
    smooth = _lowpass(clean, cutoff)  # the clean image without its content above the cut-off
    alphas = np.array([0.0, 0.3, 1.0])
    betas = np.array([0.0, 0.5, 1.0])
    # frame t: the smooth image, a fraction beta_t of the detail above the cut-off, alpha_t of the noise
    frames = smooth + betas[:, None, None, None] * (clean - smooth) + alphas[:, None, None, None] * noise
    fr = fitted_fractions(_Frames(frames, clean, clean + noise), cutoff)
    # x_t - x* = (beta_t - 1) H x* + alpha_t n: nu also picks up the detail's (chance) correlation with n
    expected_nu = alphas + (betas - 1) * np.sum((clean - smooth) * noise) / np.sum(noise**2)
    np.testing.assert_allclose(fr["noise_fitted"][0], expected_nu, atol=1e-12)
    # eta = <H x_t, H x*>/<H x*, H x*> with H x* = clean - smooth and <H n, H x*> = <n, H x*>
    expected_eta = betas + alphas * np.sum((clean - smooth) * noise) / np.sum((clean - smooth) ** 2)
    np.testing.assert_allclose(fr["highfreq_fitted"][0], expected_eta, atol=1e-10)


def test_fitted_fractions_refuse_a_file_without_noise_or_a_1d_file():
    clean = np.random.default_rng(0).uniform(size=SHAPE)
    with pytest.raises(SpectralLabError, match="no noise"):
        fitted_fractions(_Frames(clean[None], clean, clean), 0.1)
    oned = _Frames(np.zeros((2, 8)), np.zeros(8), np.ones(8))
    oned.kind = "1d"
    with pytest.raises(SpectralLabError, match="images"):
        fitted_fractions(oned, 0.1)


def test_first_reaching_finds_the_first_crossing_or_none():
    assert first_reaching(np.array([0.1, 0.6, 0.2, 0.7]), 0.5) == 1
    assert first_reaching(np.array([0.1, 0.2]), 0.5) is None


def test_models_of_a_comparison_fit_the_same_pixels(tmp_path):
    # the sample photograph down-sampled x16 is 37 x 32: cropped to multiples of 2^3 for every
    # model (`spectral_lab.models.common_crop`, tested in tests/test_models.py)
    jobs = arch.jobs(replace(arch.QUICK, images=None, out_dir=tmp_path))
    from spectral_lab.runner import make_problem

    assert {make_problem(j.config).clean.shape for j in jobs} == {(3, 32, 32)}
    assert {j.config.signal.crop_multiple for j in jobs} == {8}
    # sides that are multiples already: no crop, nothing added to the configuration
    from PIL import Image

    Image.fromarray(np.zeros((64, 48, 3), np.uint8)).save(tmp_path / "m.png")
    cfg = replace(arch.QUICK, images=str(tmp_path / "m.png"), downsample=2, out_dir=tmp_path,
                  models=(dip_setting("dip", {"levels": 3}), Setting("linear", "linear")))
    assert {j.config.signal.crop_multiple for j in arch.jobs(cfg)} == {1}


def test_stopping_rules_end_to_end_at_a_tiny_scale(tmp_path):
    """Three files (white, its SURE twin, low-frequency) of a 2-level DIP, 40 iterations, one
    pair: every rule has an entry per run or pair, SURE only on white noise, and the scores
    are those of `stop_file` on the same file."""
    from spectral_lab.analyze.stopping import stop_file

    cfg = replace(stopping_rules.QUICK, seeds=2, out_dir=tmp_path, window=5, patience=10,
                  model=dip_setting("dip", {"levels": 2, "down": 8, "up": 8}, iterations=40))
    results = stopping_rules.main(cfg)["results"]
    white, lowfreq = (results[tmp_path / "trajectories" / "stopping_rules" / f"sample_photo--{n}.h5"]
                      for n in ("white", "lowfreq"))
    assert len(white["rules"]["sure"]) == 2 and lowfreq["rules"]["sure"] is None
    assert lowfreq["sure_refused"] == "assumes white noise"
    for rule, n in (("es_wmv", 2), ("discrepancy", 2), ("last", 2), ("pair_divergence", 1),
                    ("pair_discrepancy", 1), ("pair_oracle", 1)):
        assert len(white["rules"][rule]) == n
    direct = stop_file(white["file"], "discrepancy").entries
    assert [e["iteration"] for e in white["rules"]["discrepancy"]] == [e.iteration for e in direct]
    (oracle,) = white["rules"]["pair_oracle"]
    # the pair average at its own best is at least as good as wherever a pair rule stopped it
    assert oracle["gap"] == 0
    assert all(oracle["psnr"] >= e["psnr"] for rule in ("pair_divergence", "pair_discrepancy")
               for e in white["rules"][rule])
    assert (tmp_path / "figures" / "stopping_rules" / "gaps.png").read_bytes()[:8] == PNG_MAGIC
