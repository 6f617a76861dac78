"""The 1D experiments: the paper's qualitative result on a fixed seed and a distinct network per
capacity point (the frequency ladder's relative threshold and seeded phases are package
functions now: tests/test_amplitudes.py, tests/test_signals.py).

Tolerances come from measurements recorded in experiments/results/oned.md, with margin.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO))

from experiments import capacity_sweep, oned_conv_vs_linear  # noqa: E402
from spectral_lab.trajectory import open_trajectory  # noqa: E402


# --------------------------------------------------------------------------- conv vs linear

@pytest.fixture(scope="module")
def quick_conv_vs_linear(tmp_path_factory):
    """The --quick configuration with 5 instead of 10 seeds and 450 instead of 600 iterations
    (every run's k = 50 converged by iteration 360 in the 600-iteration runs); same code path."""
    quick = oned_conv_vs_linear.QUICK
    cfg = replace(quick, seeds=5, seed=0, settings=tuple(replace(s, iterations=450) for s in quick.settings),
                  out_dir=tmp_path_factory.mktemp("cvl"))
    return oned_conv_vs_linear.main(cfg)


def _table(numbers, label, delta="0.01"):
    return numbers["settings"][label]["tables"][delta]


def test_quick_conv_fits_k1_clearly_before_k2_in_every_run(quick_conv_vs_linear):
    table = _table(quick_conv_vs_linear, "conv")
    for reading in ("converged_at", "first_crossing"):
        t1 = table["per_freq"][0][reading]["per_run"]
        t2 = table["per_freq"][1][reading]["per_run"]
        assert None not in t1 and None not in t2
        assert all(a < b for a, b in zip(t1, t2)), (reading, t1, t2)
    ratio = table["ratio"]["first_crossing"]
    # measured: per-run ratios 1.3-4.9, mean 2.5 [1.7, 3.2] over 10 seeds; the paper's 151/45 = 3.4
    assert ratio["mean"] > 1.5 and ratio["ci"][0] > 1.0, ratio


def test_quick_linear_fits_both_frequencies_together(quick_conv_vs_linear):
    ratio = _table(quick_conv_vs_linear, "linear")["ratio"]["first_crossing"]
    # measured for every linear setting tried (depth 2-10, width 16-256): means 0.99-1.08, CIs in [0.93, 1.11]
    assert abs(ratio["mean"] - 1.0) < 0.15, ratio
    assert 0.85 < ratio["ci"][0] and ratio["ci"][1] < 1.2, ratio


def test_quick_conv_vs_linear_writes_figure_table_and_json(quick_conv_vs_linear):
    path = quick_conv_vs_linear["settings"]["conv"]["file"]
    figures = path.parents[2] / "figures" / "oned_conv_vs_linear"
    for name in ("se_and_outputs.png", "table.md", "results.json"):
        assert (figures / name).stat().st_size > 0
    with open_trajectory(path) as traj:
        assert traj.n_runs == 5 and traj.config["model"]["name"] == "conv"


# --------------------------------------------------------------------------- capacity sweep

TINY_SWEEP = replace(
    capacity_sweep.QUICK, freqs=(2, 5), length=32, seeds=2, depths=(2, 3), widths=(4, 8),
    families=tuple(replace(f, iterations=4) for f in capacity_sweep.QUICK.families))


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    return capacity_sweep.main(replace(TINY_SWEEP, out_dir=tmp_path_factory.mktemp("sweep")))


def test_capacity_grid_gives_every_point_its_own_label_and_options():
    points = capacity_sweep.grid(capacity_sweep.PAPER)
    assert len(points) == 2 * len(capacity_sweep.PAPER.depths) * len(capacity_sweep.PAPER.widths)
    assert len({s.label for _, s, _, _ in points}) == len(points)
    for _, s, depth, width in points:
        assert (s.options["depth"], s.options["width"]) == (depth, width)


def test_capacity_sweep_trains_a_distinct_network_at_every_point(tiny_sweep):
    points = tiny_sweep["points"]
    assert len(points) == 2 * 2 * 2
    shapes = {repr(p["network"]["parameter_shapes"]) for p in points}
    files = {p["file"] for p in points}
    assert len(shapes) == len(points) and len(files) == len(points)


def test_capacity_sweep_network_matches_its_point(tiny_sweep):
    for p in tiny_sweep["points"]:
        d, w, n = p["depth"], p["width"], p["network"]
        assert len(n["parameter_shapes"]) == d  # one weight per layer, no biases
        assert n["parameter_shapes"][0][0 if p["family"] == "conv" else 1] == w
        if p["family"] == "conv":  # 1->w, (d-2) x w->w, w->1, kernel 3
            assert n["parameters_per_run"] == 3 * w + (d - 2) * 3 * w * w + 3 * w
        else:  # 32->w, (d-2) x w->w, w->32, no biases
            assert n["parameters_per_run"] == 32 * w + (d - 2) * w * w + w * 32
        with open_trajectory(p["file"]) as traj:
            assert traj.config["model"]["options"]["depth"] == d
            assert traj.config["model"]["options"]["width"] == w
