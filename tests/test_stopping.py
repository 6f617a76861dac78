import json

import numpy as np
import pytest
from _fakes import FakeTrajectory

from spectral_lab.analyze.psnr import psnr
from spectral_lab.analyze.stopping import (
    RULES,
    clipped_noise_variance,
    discrepancy_rule,
    es_wmv,
    first_valley,
    pair_disagreement,
    pair_discrepancy_rule,
    pair_divergence_rule,
    probe_dof,
    stop_file,
    sure,
    sure_curve,
    sure_rule,
    sure_score,
    wmv_variance,
)
from spectral_lab.errors import AnalysisError

SHAPE = (3, 37, 31)


def steps(n_frames):
    return np.arange(n_frames).reshape(-1, 1, 1, 1)


def denoising_like_run(seed=0, n_frames=300):
    """Frames that converge to the clean image (slowing down), then fit noise (speeding up).

    Returns the clean image and the frames; the PSNR optimum is near iteration 130.
    """
    rng = np.random.default_rng(seed)
    clean = rng.uniform(size=SHAPE)
    noise = 0.2 * rng.standard_normal(SHAPE)
    t = steps(n_frames)
    fitted_noise = np.clip((t - 120) / 150, 0, None) ** 2 * noise
    frames = clean + np.exp(-t / 30) * (0.5 - clean) + fitted_noise
    return clean, frames


def paired_runs(seed=1, n_frames=300):
    """Two runs of one noisy observation: seed-specific start decays, the same noise is
    fitted at iterations ~150 and ~190. Returns the clean image and the two runs."""
    rng = np.random.default_rng(seed)
    clean = rng.uniform(size=SHAPE)
    noise = 0.2 * rng.standard_normal(SHAPE)
    t = steps(n_frames)

    def run(start_pattern, noise_time):
        fitted_noise = noise / (1 + np.exp(-(t - noise_time) / 15))
        start = np.exp(-t / 25) * start_pattern
        return clean + np.exp(-t / 20) * (0.5 - clean) + start + fitted_noise

    pattern_a, pattern_b = 0.3 * rng.standard_normal((2, *SHAPE))
    return clean, run(pattern_a, 150), run(pattern_b, 190)


def counting(frames, seen):
    for frame in frames:
        seen.append(1)
        yield frame


# --- ES-WMV ----------------------------------------------------------------------------


def test_wmv_variance_matches_the_direct_formula():
    frames = np.random.default_rng(0).normal(size=(23, *SHAPE)).cumsum(axis=0)
    window = 5
    got = dict(wmv_variance(frames, window))
    for t in range(window - 1, len(frames)):
        w = frames[t - window + 1 : t + 1]
        direct = np.mean((w - w.mean(axis=0)) ** 2)
        assert got[t] == pytest.approx(direct, rel=1e-12)
    assert sorted(got) == list(range(window - 1, len(frames)))


def test_wmv_variance_of_a_still_stream_is_zero():
    frames = np.full((9, *SHAPE), 0.3)
    assert [v for _, v in wmv_variance(frames, 4)] == [0.0] * 6


def test_es_wmv_stops_near_the_best_frame_of_a_denoising_like_run():
    clean, frames = denoising_like_run()
    best = int(np.argmax(psnr(frames, clean)))
    assert abs(es_wmv(frames, window=20, patience=60) - best) <= 5


def test_es_wmv_stops_reading_once_patience_runs_out():
    clean, frames = denoising_like_run()
    seen = []
    chosen = es_wmv(counting(frames, seen), window=20, patience=60)
    assert len(seen) == chosen + 60 + 1


def test_es_wmv_without_running_out_of_patience_returns_the_argmin():
    clean, frames = denoising_like_run()
    variance = dict(wmv_variance(frames, 20))
    assert es_wmv(frames, window=20, patience=10_000) == min(variance, key=variance.get)


def test_es_wmv_on_fewer_frames_than_the_window_raises():
    with pytest.raises(AnalysisError, match="window"):
        es_wmv(np.zeros((4, *SHAPE)), window=5)


def test_es_wmv_rejects_a_window_of_one():
    with pytest.raises(AnalysisError, match="window"):
        es_wmv(np.zeros((4, *SHAPE)), window=1)


# --- SURE ------------------------------------------------------------------------------


def test_sure_score_of_known_numbers():
    assert sure_score(0.5, 10.0, 0.1, 100) == pytest.approx(0.5 - 0.01 + 2 * 0.01 * 10 / 100)


def linear_smoother_case(n=100_000, sigma=0.1, seed=0):
    """y = x + noise; frames a * y for shrinkage factors a, whose divergence is a * n."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=n)
    y = x + sigma * rng.standard_normal(n)
    factors = np.linspace(0.5, 1.0, 51)
    return x, y, factors, factors[:, None] * y[None, :], factors * n


def test_sure_of_a_linear_smoother_matches_its_mse():
    x, y, factors, frames, divergence = linear_smoother_case()
    mse = np.mean((frames - x) ** 2, axis=1)
    sure_values = sure_curve(frames, y, sigma=0.1, dof=divergence)
    np.testing.assert_allclose(sure_values, mse, atol=1e-3)  # error ~ sigma / sqrt(n) ~ 3e-4


def test_sure_picks_the_shrinkage_factor_of_near_minimal_mse():
    x, y, factors, frames, divergence = linear_smoother_case()
    mse = np.mean((frames - x) ** 2, axis=1)
    chosen = sure(frames, y, sigma=0.1, dof=divergence)
    assert abs(chosen - np.argmin(mse)) <= 1


def test_sure_without_degrees_of_freedom_raises_and_says_why():
    x, y, factors, frames, divergence = linear_smoother_case(n=101)
    with pytest.raises(AnalysisError, match="degrees of freedom.*--probe"):
        sure(frames, y, sigma=0.1)


def test_sure_with_one_dof_value_too_few_raises():
    x, y, factors, frames, divergence = linear_smoother_case(n=101)
    with pytest.raises(AnalysisError, match="frames"):
        sure(frames, y, sigma=0.1, dof=divergence[:-1])


# --- pair rule -------------------------------------------------------------------------


def test_pair_disagreement_is_the_summed_squared_difference():
    a = np.zeros((2, *SHAPE))
    b = a + np.array([0.1, 0.3]).reshape(-1, 1, 1, 1)
    n = np.prod(SHAPE)
    assert list(pair_disagreement(a, b)) == pytest.approx([0.01 * n, 0.09 * n])


def test_pair_rule_stops_near_the_best_average_of_the_pair():
    clean, a, b = paired_runs()
    best = int(np.argmax(psnr((a + b) / 2, clean)))
    assert abs(pair_divergence_rule(a, b) - best) <= 5


def test_first_valley_ignores_wiggles_smaller_than_the_rise_factor():
    values = [8, 4, 2, 2.5, 1, 1.5, 0.5, 0.9, 3, 9]
    assert first_valley(values, rise=2.0) == 6


def test_first_valley_with_a_median_ignores_a_one_iteration_spike():
    values = [8, 4, 2, 1, 5, 1, 0.5, 0.4, 1, 3, 9]
    assert (first_valley(values, smooth=1), first_valley(values, smooth=3)) == (3, 7)


def test_first_valley_of_a_falling_stream_is_its_last_value():
    assert first_valley([5, 4, 3, 2, 1], rise=2.0) == 4


def test_first_valley_of_identical_runs_never_confirms():
    assert first_valley([0.0] * 6, rise=2.0) == 0


# --- discrepancy rules -----------------------------------------------------------------


def image_then_noise(n_frames=201, sigma=0.1, seed=2):
    """A run that fits the image's missing detail m by frame 100, then the noise n by frame 200,
    with m and n orthogonal and mean(n^2) = sigma^2 exactly: the residual is
    (1 - a_t)^2 mean(m^2) + (1 - b_t)^2 sigma^2, the error (1 - a_t)^2 mean(m^2) + b_t^2 sigma^2,
    so the best frame is 100, the last one whose residual is >= sigma^2. Also returns two
    seed-specific patterns s_a, s_b orthogonal to both. Returns clean, y, frames, s_a, s_b."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(SHAPE))
    q, _ = np.linalg.qr(rng.standard_normal((size, 4)))
    detail, noise, s_a, s_b = (np.sqrt(size) * q[:, k].reshape(SHAPE) for k in range(4))
    noise *= sigma
    clean = rng.uniform(0.3, 0.7, size=SHAPE)
    t = np.arange(n_frames).reshape(-1, 1, 1, 1)
    a = np.clip(t / 100, 0, 1)
    b = np.clip((t - 100) / 100, 0, 1)
    frames = clean + (1 - a) * 0.3 * detail + b * noise
    return clean, clean + noise, frames, 0.05 * s_a, 0.05 * s_b


def test_clipped_noise_variance_far_from_the_bounds_is_sigma_squared():
    assert clipped_noise_variance(np.full(SHAPE, 0.5), 0.01) == pytest.approx(1e-4, rel=1e-12)


def test_clipped_noise_variance_matches_clipping_monte_carlo_noise():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=SHAPE)
    noise = 0.1 * rng.standard_normal((200, *SHAPE))
    empirical = np.mean((np.clip(x + noise, 0, 1) - x) ** 2)
    assert clipped_noise_variance(x, 0.1) == pytest.approx(empirical, rel=0.01)  # ~0.2 % MC error


def test_clipped_noise_variance_of_a_saturated_signal_is_half_sigma_squared():
    # at a bound, the noise that points out of the range is clipped to 0
    assert clipped_noise_variance(np.zeros(SHAPE), 0.01) == pytest.approx(0.5e-4, rel=1e-12)


def test_discrepancy_rule_stops_at_the_best_frame_of_a_run_that_fits_image_then_noise():
    clean, y, frames, _, _ = image_then_noise()
    assert int(np.argmax(psnr(frames, clean))) == 100
    assert discrepancy_rule(frames, y, sigma=0.1, clip=None) in (100, 101)  # 100: residual = sigma^2 to rounding


def test_discrepancy_rule_that_never_reaches_the_noise_level_returns_the_last_frame():
    clean, y, frames, _, _ = image_then_noise()
    assert discrepancy_rule(frames[:60], y, sigma=0.1, clip=None) == 59


def test_discrepancy_rule_rejects_a_sigma_of_zero():
    clean, y, frames, _, _ = image_then_noise(n_frames=3)
    with pytest.raises(AnalysisError, match="sigma"):
        discrepancy_rule(frames, y, sigma=0.0)


def test_pair_discrepancy_rule_stops_near_the_best_average_and_the_average_beats_each_run():
    clean, y, frames, s_a, s_b = image_then_noise()
    decay = np.exp(-np.arange(len(frames)) / 30).reshape(-1, 1, 1, 1)
    a, b = frames + decay * s_a, frames + decay * s_b
    average = psnr((a + b) / 2, clean)
    chosen = pair_discrepancy_rule(a, b, y, sigma=0.1, clip=None)
    assert abs(chosen - int(np.argmax(average))) <= 2
    assert average[chosen] > max(psnr(a, clean)[chosen], psnr(b, clean)[chosen])


# --- registry and files ----------------------------------------------------------------


def test_registry_holds_the_five_rules():
    assert {name: RULES[name].obj for name in RULES} == {
        "es_wmv": es_wmv, "sure": sure_rule, "discrepancy": discrepancy_rule,
        "pair_divergence": pair_divergence_rule, "pair_discrepancy": pair_discrepancy_rule}


def test_unknown_rule_raises():
    clean, frames = denoising_like_run(n_frames=30)
    with pytest.raises(AnalysisError, match="unknown stopping rule"):
        stop_file(FakeTrajectory([frames], clean), "oracle")


def test_stop_file_scores_the_rule_choice_against_the_oracle():
    clean, frames = denoising_like_run()
    traj = FakeTrajectory([frames, frames[::-1]], clean)
    result = stop_file(traj, "es_wmv", chunk=7, window=20, patience=60)
    entry = result.entries[0]
    scores = psnr(frames.astype(np.float32), clean.astype(np.float32))
    assert entry.iteration == es_wmv(frames.astype(np.float32), window=20, patience=60)
    assert entry.psnr == pytest.approx(scores[entry.iteration])
    assert entry.best_iteration == int(np.argmax(scores))
    assert entry.best_psnr == pytest.approx(scores.max())
    assert 0 <= entry.gap < 0.5
    assert max(traj.blocks_read) == 7


def test_stop_file_json_is_valid_and_keeps_scalar_params_only():
    clean, frames = denoising_like_run(n_frames=60)
    out = stop_file(FakeTrajectory([frames], clean), "es_wmv", window=20, patience=30).to_json()
    json.dumps(out, allow_nan=False)
    assert out["params"] == {"window": 20, "patience": 30}
    assert set(out["results"][0]) == {
        "runs", "seeds", "iteration", "psnr", "run_psnr", "best_psnr", "best_iteration", "gap"
    }


def test_stop_file_pairs_runs_and_scores_their_average():
    clean, a, b = paired_runs()
    out = stop_file(FakeTrajectory([a, b, a], clean), "pair_divergence", chunk=7).to_json()
    (entry,) = out["results"]  # the odd third run is left out
    assert entry["runs"] == [0, 1]
    assert entry["iteration"] == pair_divergence_rule(a.astype(np.float32), b.astype(np.float32))
    assert entry["psnr"] > max(entry["run_psnr"])  # averaging removes part of the error
    assert 0 <= entry["gap"] < 0.5


def test_pair_rule_on_a_single_run_raises():
    clean, frames = denoising_like_run(n_frames=30)
    with pytest.raises(AnalysisError, match="two runs"):
        stop_file(FakeTrajectory([frames], clean), "pair_divergence")


def test_stop_file_sure_takes_sigma_from_the_config_in_units_of_1_over_255():
    x, y, factors, frames, divergence = linear_smoother_case(n=3 * 37 * 31)
    shape = (len(frames), *SHAPE)
    config = {"degrade": {"noise": "white", "sigma": 25.5}}
    traj = FakeTrajectory(
        [frames.reshape(shape)], x.reshape(SHAPE), observed=y.reshape(SHAPE), config=config
    )
    entry = stop_file(traj, "sure", dof=[divergence]).entries[0]
    observed32 = y.astype(np.float32).astype(np.float64)
    expected = sure(frames.astype(np.float32), observed32, sigma=0.1, dof=divergence)
    assert entry.iteration == expected


def test_stop_file_sure_on_low_frequency_noise_raises():
    clean, frames = denoising_like_run(n_frames=30)
    config = {"degrade": {"noise": "lowfreq", "sigma": 25.0}}
    with pytest.raises(AnalysisError, match="white"):
        stop_file(FakeTrajectory([frames], clean, config=config), "sure", dof=[np.ones(30)])


# --- SURE from a twin file (Monte-Carlo divergence) ---------------------------------------


def test_probe_divergence_of_a_linear_map_is_the_quadratic_form_of_the_probe():
    # f_t = A_t y with A_t diagonal: the twin gives A_t (y + eps b), so the estimate is
    # b^T A_t b exactly, whose mean over b is trace(A_t)
    rng = np.random.default_rng(3)
    n, eps = 5000, 0.01
    y = rng.uniform(size=n)
    b = rng.standard_normal(n)
    diagonals = [np.full(n, 0.5), rng.uniform(size=n)]
    frames = [a * y for a in diagonals]
    twin = [a * (y + eps * b) for a in diagonals]
    values = list(probe_dof(frames, twin, eps * b, epsilon=eps))
    for value, a in zip(values, diagonals):
        assert value == pytest.approx(float(np.sum(a * b * b)), rel=1e-9)
        assert value == pytest.approx(float(a.sum()), rel=0.05)  # ~ sqrt(2/n) relative spread


def twin_files(probe=2.55, n_frames=51):
    """A linear-smoother 'file' and its twin fitted to y + eps b: SURE from the twin must
    equal SURE from the exact divergence (factor * n)."""
    n = 3 * 37 * 31
    x, y, factors, frames, _ = linear_smoother_case(n=n)
    # frame 0 is the untrained network's output: it does not depend on the observation
    factors = np.concatenate([[0.0], factors])
    frames = np.concatenate([np.full((1, n), 0.5), frames])
    eps = probe / 255.0
    b = np.random.default_rng(9).standard_normal(n)
    config = {"task": "denoise", "degrade": {"noise": "white", "sigma": 25.5, "probe": 0.0},
              "fit": {"runs": 1}, "record": {"dtype": "float32"}}
    twin_config = {**config, "degrade": {**config["degrade"], "probe": probe}, "record": {"dtype": "float16"}}
    shape = (len(factors), *SHAPE)
    file = FakeTrajectory([frames.reshape(shape)], x.reshape(SHAPE), observed=y.reshape(SHAPE), config=config)
    twin_frames = np.concatenate([frames[:1], factors[1:, None] * (y + eps * b)[None, :]])
    twin = FakeTrajectory([twin_frames.reshape(shape)], x.reshape(SHAPE),
                          observed=(y + eps * b).reshape(SHAPE), config=twin_config)
    return x, y, factors, file, twin


def test_stop_file_sure_with_a_twin_matches_sure_with_the_exact_divergence():
    x, y, factors, file, twin = twin_files()
    mse = np.mean((factors[:, None] * y[None, :] - x) ** 2, axis=1)
    entry = stop_file(file, "sure", twin=twin).entries[0]
    assert abs(entry.iteration - int(np.argmin(mse))) <= 1
    exact = stop_file(file, "sure", dof=[factors * y.size]).entries[0]
    assert abs(entry.iteration - exact.iteration) <= 1


def test_a_twin_must_be_the_same_configuration_with_a_probe():
    x, y, factors, file, twin = twin_files()
    with pytest.raises(AnalysisError, match="without a probe"):
        stop_file(file, "sure", twin=file)
    with pytest.raises(AnalysisError, match="itself recorded with a probe"):
        stop_file(twin, "sure", twin=twin)
    twin.config = {**twin.config, "fit": {"runs": 1, "lr": 0.5}}
    with pytest.raises(AnalysisError, match="differs from the file's in fit"):
        stop_file(file, "sure", twin=twin)
    with pytest.raises(AnalysisError, match="twin file is used by the sure rule only"):
        stop_file(file, "es_wmv", twin=twin)


def test_twin_with_another_untrained_output_is_refused():
    x, y, factors, file, twin = twin_files()
    twin.arrays[0][0] += 0.01
    with pytest.raises(AnalysisError, match="frame 0"):
        stop_file(file, "sure", twin=twin)


def test_twin_with_other_seeds_is_refused():
    x, y, factors, file, twin = twin_files()
    twin._seeds = [{"seed": 7, "weight_seed": 7, "input_seed": 7}]
    with pytest.raises(AnalysisError, match="seeds"):
        stop_file(file, "sure", twin=twin)


def test_stop_file_runs_the_discrepancy_rules_with_the_files_sigma_and_clip():
    clean, y, frames, s_a, s_b = image_then_noise()
    config = {"task": "denoise", "degrade": {"noise": "white", "sigma": 25.5}}
    traj = FakeTrajectory([frames, frames], clean, observed=y, config=config, kind="1d")
    single = stop_file(traj, "discrepancy").to_json()
    y32 = y.astype(np.float32)
    assert single["params"]["sigma"] == pytest.approx(0.1)
    assert single["results"][0]["iteration"] == discrepancy_rule(frames.astype(np.float32), y32, sigma=0.1,
                                                                 clip=None)
    decay = np.exp(-np.arange(len(frames)) / 30).reshape(-1, 1, 1, 1)
    a, b = frames + decay * s_a, frames + decay * s_b
    paired = stop_file(FakeTrajectory([a, b], clean, observed=y, config=config, kind="1d"),
                       "pair_discrepancy", chunk=5).to_json()
    (entry,) = paired["results"]
    assert entry["iteration"] == pair_discrepancy_rule(a.astype(np.float32), b.astype(np.float32), y32,
                                                       sigma=0.1, clip=None)
    assert entry["psnr"] > max(entry["run_psnr"])


def test_rules_that_need_sigma_refuse_a_file_without_noise():
    clean, frames = denoising_like_run(n_frames=30)
    with pytest.raises(AnalysisError, match="clean signal"):
        stop_file(FakeTrajectory([frames], clean, config={"task": "fit"}), "discrepancy")


# --------------------------------------------------------------------------- curves for figures

def test_pair_curves_are_what_the_rules_watch_along_two_runs():
    from spectral_lab.analyze.stopping import pair_curves_file

    rng = np.random.default_rng(4)
    clean = rng.uniform(0.2, 0.8, size=SHAPE)
    observed = np.clip(clean + 0.1 * rng.standard_normal(SHAPE), 0, 1)
    a = rng.uniform(size=(6, *SHAPE)).astype(np.float32)
    b = rng.uniform(size=(5, *SHAPE)).astype(np.float32)  # one frame shorter: a killed run
    traj = FakeTrajectory([a, b], clean, observed=observed,
                          config={"task": "denoise", "degrade": {"sigma": 25.5, "noise": "white"}})
    c = pair_curves_file(traj, (0, 1), window=3)
    a64, b64 = a[:5].astype(np.float64), b.astype(np.float64)
    clean32 = clean.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(c["psnr"], np.stack([psnr(a64, clean32), psnr(b64, clean32),
                                                    psnr(0.5 * (a64 + b64), clean32)]))
    np.testing.assert_allclose(c["epsilon"], ((a64 - b64) ** 2).sum(axis=(1, 2, 3)))
    obs32 = observed.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(c["residual"], 0.5 * (((a64 - obs32) ** 2).mean(axis=(1, 2, 3))
                                                     + ((b64 - obs32) ** 2).mean(axis=(1, 2, 3))))
    assert c["sigma"] == pytest.approx(0.1)
    assert c["level"][0] == pytest.approx(clipped_noise_variance(0.5 * (a64[0] + b64[0]), 0.1))
    assert c["wmv"] == dict(wmv_variance(a64, 3)) and c["sure"] is None


def test_pair_curves_need_a_denoising_file():
    from spectral_lab.analyze.stopping import pair_curves_file

    frames = np.zeros((3, *SHAPE), np.float32)
    with pytest.raises(AnalysisError, match="denoising"):
        pair_curves_file(FakeTrajectory([frames, frames], np.zeros(SHAPE), config={"task": "fit"}))
