"""Figures across files (plot amplitudes / psnr / noisefit over several files, plot stop), titles
and legend labels in words, colour bars on spectra, the SE curves' y-range."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _fakes import run_cli  # noqa: E402

from spectral_lab.config import RunConfig  # noqa: E402
from spectral_lab.plot import labels_of, title_of  # noqa: E402

ONED = ("record", "--signal", "sines", "--freqs", "2,5", "--amps", "1,1", "--length", "32", "--depth", "3",
        "--width", "8", "--iterations", "40", "--runs", "2", "--lr", "0.01", "--device", "cpu", "--quiet")
IMAGE = ("record", "--signal", "triangle", "--size", "16", "--task", "denoise", "--sigma", "25", "--model", "dip",
         "--model-opt", "levels=2", "--model-opt", "down=8", "--model-opt", "up=8", "--model-opt", "in_channels=4",
         "--iterations", "15", "--runs", "2", "--lr", "0.01", "--device", "cpu", "--quiet")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from spectral_lab.cli import main

    folder = tmp_path_factory.mktemp("figures")
    paths = {name: folder / f"{name}.h5" for name in ("conv", "linear", "white", "lowfreq")}
    assert main([*ONED, "--model", "conv", "--out", str(paths["conv"])]) == 0
    assert main([*ONED, "--model", "linear", "--out", str(paths["linear"])]) == 0
    assert main([*IMAGE, "--noise", "white", "--out", str(paths["white"])]) == 0
    assert main([*IMAGE, "--noise", "lowfreq", "--noise-cutoff", "0.1", "--out", str(paths["lowfreq"])]) == 0
    return paths


def _config(**sections) -> dict:
    cfg = RunConfig().to_dict()
    for key, value in sections.items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) else value
    return cfg


# --------------------------------------------------------------------------- words

def test_title_says_what_was_run_in_words_not_option_dumps():
    cfg = _config(task="denoise", signal={"kind": "image", "image": "/x/barbara.png", "downsample": 4},
                  degrade={"noise": "white", "sigma": 25.0},
                  model={"name": "dip", "options": {"levels": 4, "down": 32, "up": 32}},
                  fit={"lr": 0.01, "iterations": 1500, "runs": 2, "optimizer": "adam"})
    title = title_of(cfg)
    assert title == ("DIP (4 levels × 32 channels) denoising barbara (at 1/4 size), white noise, σ = 25; "
                     "Adam, lr 0.01, 1500 iterations, 2 runs")
    assert "=" not in title.replace("σ = ", "")


def test_titles_of_several_files_say_what_differs_with_vs():
    conv = _config(model={"name": "conv", "options": {"depth": 10, "width": 64}})
    linear = _config(model={"name": "linear", "options": {"depth": 10, "width": 64}})
    title = title_of(conv, linear)
    assert title.startswith("conv net (10 layers × 64 channels) vs DIP-Linear (10 layers × 64 units) fitting sines")
    assert title.count(" vs ") == 1


def test_labels_name_what_tells_the_files_apart():
    white = _config(task="denoise", degrade={"noise": "white", "sigma": 25.0})
    low = _config(task="denoise", degrade={"noise": "lowfreq", "sigma": 25.0, "cutoff": 0.06})
    assert labels_of([white, low], ["a.h5", "b.h5"]) == [
        "white noise, σ = 25", "low-frequency noise below 0.06 cycles/px, σ = 25"]
    assert labels_of([white, white], ["seed0.h5", "seed1.h5"]) == ["seed0", "seed1"]


# --------------------------------------------------------------------------- figures across files

def test_plot_amplitudes_draws_conv_and_linear_in_one_figure(files, tmp_path, capsys):
    out = tmp_path / "amp.png"
    code, text, err = run_cli(capsys, "plot", "amplitudes", files["conv"], files["linear"], "-o", out)
    assert code == 0, err
    assert out.stat().st_size > 0 and f"wrote {out}" in text


def test_plot_psnr_draws_white_and_lowfreq_noise_in_one_figure(files, tmp_path, capsys):
    from spectral_lab.analyze.psnr import psnr_file
    from spectral_lab.plot.images import psnr_figure

    out = tmp_path / "psnr.png"
    code, _, err = run_cli(capsys, "plot", "psnr", files["white"], files["lowfreq"], "-o", out)
    assert code == 0 and out.exists(), err
    fig = psnr_figure([psnr_file(files["white"]), psnr_file(files["lowfreq"])], labels=["white", "low"], title="t")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend.count("white") == 1 and legend.count("low") == 1  # one entry a file, not one a run
    plt.close(fig)


def test_plot_psnr_marks_each_run_s_peak(files):
    from spectral_lab.analyze.psnr import psnr_file
    from spectral_lab.plot.images import psnr_figure

    res = psnr_file(files["white"])
    fig = psnr_figure(res, title="t")
    notes = [t.get_text() for t in fig.axes[0].texts]
    assert notes == [f"{r.best_psnr:.2f} dB @ {r.best_iteration}" for r in res.runs]
    plt.close(fig)


def test_plot_noisefit_draws_one_or_several_files(files, tmp_path, capsys):
    for argv in ([files["white"]], [files["white"], files["lowfreq"]]):
        out = tmp_path / f"nf{len(argv)}.png"
        code, _, err = run_cli(capsys, "plot", "noisefit", *argv, "-o", out)
        assert code == 0 and out.exists(), err


def test_plot_stop_marks_every_rule_that_applies(files, tmp_path, capsys):
    out = tmp_path / "stop.png"
    code, text, err = run_cli(capsys, "plot", "stop", files["white"], "-o", out)
    assert code == 0 and out.exists(), err
    code, _, err = run_cli(capsys, "plot", "stop", files["white"], "--rules", "sure", "-o", tmp_path / "s.png")
    assert code == 1 and "twin" in err and not (tmp_path / "s.png").exists()


def test_stopping_figure_puts_each_rule_at_its_stop(files):
    from spectral_lab.analyze.psnr import psnr_file
    from spectral_lab.analyze.stopping import stop_file
    from spectral_lab.plot.denoise import stopping_rules_figure

    stops = {"es_wmv": stop_file(files["white"], "es_wmv", window=4)}
    fig = stopping_rules_figure(psnr_file(files["white"]), stops, title="t")
    points = {(float(line.get_xdata()[0]), float(line.get_ydata()[0])) for line in fig.axes[0].lines
              if len(line.get_xdata()) == 1}
    for e in stops["es_wmv"].entries:
        assert (float(e.iteration), pytest.approx(e.psnr)) in [(x, y) for x, y in points]
    plt.close(fig)


def test_a_plot_of_one_file_takes_no_second_file(files, tmp_path, capsys):
    code, _, err = run_cli(capsys, "plot", "divergence", files["white"], files["lowfreq"], "-o", tmp_path / "d.png")
    assert code == 2 and "unrecognized arguments" in err


# --------------------------------------------------------------------------- axes and colour bars

def test_se_curves_y_range_stops_where_the_curves_cross_delta():
    from spectral_lab.plot.oned import se_range

    se = np.concatenate([np.geomspace(1.0, 1e-9, 50), np.zeros(50)])  # fits exactly after iteration 50
    bottom, top = se_range(se, 0.01)
    assert bottom == pytest.approx(1e-4) and top == pytest.approx(1.5)  # two decades under δ, not 1e-308
    assert se_range(np.geomspace(1.0, 1e-3, 50), 0.01)[0] == pytest.approx(1e-3)  # down to the curves' end
    assert se_range(np.full(10, 0.5), 0.01)[0] == pytest.approx(0.005)  # δ stays visible


def test_spectra_at_iterations_have_a_colour_bar(files):
    from spectral_lab.plot.images import spectra_at_figure
    from spectral_lab.trajectory import open_trajectory

    with open_trajectory(files["white"]) as t:
        fig = spectra_at_figure([(0, t.frames(0)[0])], t.target, title="t")
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert "log10 power (luminance)" in labels
    plt.close(fig)
