"""``spectral-lab``: every user error is one line and a nonzero exit; the commands do their job."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from spectral_lab.models import MODELS, build_model
from spectral_lab.trajectory import open_trajectory
from _fakes import run_cli

REPO = Path(__file__).resolve().parents[1]
TINY = ["--length", "32", "--freqs", "2,5", "--width", "8", "--depth", "3", "--quiet", "--device", "cpu"]


@pytest.fixture(autouse=True)
def _restore_signal_handlers():
    # `record` installs SIGINT/SIGTERM handlers; keep them out of the pytest process.
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


run = run_cli


def assert_one_line_error(code, err, *, expected_code=1, match=None):
    assert code == expected_code
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("spectral-lab") and "error" in lines[0]
    assert "Traceback" not in err
    if match is not None:
        assert re.search(match, lines[0]), lines[0]


@pytest.fixture
def tiny_file(tmp_path, capsys):
    path = tmp_path / "tiny.h5"
    code, _, err = run(capsys, "record", *TINY, "--iterations", "10", "--out", path)
    assert code == 0, err
    return path


# --------------------------------------------------------------------------- user errors

def test_missing_image_is_one_line_and_no_file(tmp_path, capsys):
    out = tmp_path / "o.h5"
    code, _, err = run(capsys, "record", "--signal", "image", "--image", tmp_path / "missing.png",
                       "--iterations", "2", "--quiet", "--out", out)
    assert_one_line_error(code, err, match="image file not found: .*missing.png")
    assert not out.exists()


def test_unreadable_image_is_one_line_and_no_file(tmp_path, capsys):
    fake = tmp_path / "x.png"
    fake.write_text("not a picture\n")
    out = tmp_path / "o.h5"
    code, _, err = run(capsys, "record", "--signal", "image", "--image", fake, "--iterations", "2",
                       "--quiet", "--out", out)
    assert_one_line_error(code, err, match="not an image file: .*x.png")
    assert not out.exists()


@pytest.mark.parametrize("freqs", ["5,100", "5,150"])
def test_frequency_at_or_above_nyquist_is_one_line_and_no_file(tmp_path, capsys, freqs):
    out = tmp_path / "o.h5"
    code, _, err = run(capsys, "record", "--freqs", freqs, "--length", "200", "--iterations", "2",
                       "--quiet", "--out", out)
    assert_one_line_error(code, err, match="Nyquist")
    assert not out.exists()


def test_negative_sigma_is_one_line_and_no_file(tmp_path, capsys):
    out = tmp_path / "o.h5"
    code, _, err = run(capsys, "record", *TINY, "--task", "denoise", "--sigma", "-5", "--iterations", "2",
                       "--out", out)
    assert_one_line_error(code, err, match="sigma must be >= 0")
    assert not out.exists()


def test_unknown_model_is_one_line_listing_the_models_and_no_file(tmp_path, capsys):
    out = tmp_path / "o.h5"
    code, _, err = run(capsys, "record", "--model", "unet", "--iterations", "2", "--quiet", "--out", out)
    assert_one_line_error(code, err, match="unknown model 'unet'; choose from (conv|dip|linear|relunet)(, (conv|dip|linear|relunet)){3}$")
    assert not out.exists()


def test_existing_output_without_overwrite_is_one_line_and_left_unchanged(tmp_path, capsys):
    out = tmp_path / "o.h5"
    out.write_bytes(b"an earlier result")
    code, _, err = run(capsys, "record", *TINY, "--iterations", "2", "--out", out)
    assert_one_line_error(code, err, match="exists; pass --overwrite")
    assert out.read_bytes() == b"an earlier result"


def test_malformed_flag_is_one_usage_line(tmp_path, capsys):
    out = tmp_path / "o.h5"
    code, _, err = run(capsys, "record", "--freqs", "five", "--out", out)
    assert_one_line_error(code, err, expected_code=2, match="comma-separated numbers")
    assert not out.exists()


def test_missing_trajectory_is_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "info", tmp_path / "nothing.h5")
    assert_one_line_error(code, err, match="no such file")


def test_image_too_small_for_the_dip_is_one_line_and_no_file(tmp_path, capsys):
    out = tmp_path / "o.h5"
    code, _, err = run(capsys, "record", "--signal", "triangle", "--size", "32", "--levels", "5", "--iterations", "2",
                       "--quiet", "--device", "cpu", "--out", out)
    assert_one_line_error(code, err)
    assert not out.exists()


def test_console_script_reports_an_error_in_one_line(tmp_path, console_script, subprocess_env):
    out = tmp_path / "o.h5"
    proc = subprocess.run([str(console_script), "record", "--freqs", "5,100", "--length", "200", "--out",
                           str(out)], capture_output=True, text=True, env=subprocess_env, timeout=120)
    assert_one_line_error(proc.returncode, proc.stderr, match="Nyquist")
    assert proc.stdout == ""
    assert not out.exists()


def test_record_leaves_the_callers_signal_handlers_in_place(tmp_path, capsys):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    code, _, err = run(capsys, "record", *TINY, "--iterations", "2", "--out", tmp_path / "o.h5")
    assert code == 0, err
    assert {s: signal.getsignal(s) for s in before} == before


# --------------------------------------------------------------------------- commands

def test_record_with_tiny_flags_writes_a_two_run_file(tiny_file):
    with open_trajectory(tiny_file) as traj:
        assert traj.status == "complete" and traj.n_runs == 2
        assert [traj.n_frames(r) for r in range(2)] == [11, 11]
        assert traj.signal_shape == (32,) and traj.config["signal"]["freqs"] == [2, 5]
        model = traj.config["model"]
        given = {"depth": 3, "width": 8, "kernel": 3, "init": "default", "bias": False}
        assert model["name"] == "conv" and {k: model["options"][k] for k in given} == given
        # every other option is stored with its default: the file says everything that ran
        assert model["options"]["padding"] == "zeros" and model["options"]["in_channels"] == 1


def test_record_denoises_a_paper_image_from_the_shared_data(shared_data, tmp_path, capsys):
    image = shared_data / "standard256" / "barbara.png"
    if not image.is_file():
        pytest.skip(f"{image} is absent")
    out = tmp_path / "barbara.h5"
    small_dip = [f"--model-opt={k}={v}" for k, v in {"down": 8, "up": 8, "skip": 2, "in_channels": 4}.items()]
    code, _, err = run(capsys, "record", "--signal", "image", "--image", image, "--downsample", "16",
                       "--levels", "2", *small_dip, "--iterations", "3", "--quiet", "--device", "cpu",
                       "--out", out)
    assert code == 0, err
    with open_trajectory(out) as traj:
        assert traj.config["task"] == "denoise" and traj.signal_shape == (1, 16, 16)
        assert traj.n_runs == 2 and traj.n_frames(0) == 4
        assert not np.array_equal(traj.observed, traj.target)


def test_record_prints_where_it_wrote(tmp_path, capsys):
    out = tmp_path / "o.h5"
    code, stdout, _ = run(capsys, "record", *TINY, "--iterations", "2", "--out", out)
    assert code == 0 and stdout.startswith(f"wrote {out} (3 frames per run")


def test_models_lists_the_four_families_with_their_parameter_counts(capsys):
    code, out, _ = run(capsys, "models", "--length", "64", "--size", "32")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.split()}
    for name in MODELS:
        count = build_model(name, signal_shape=(1, 64)).parameters_per_run()
        assert re.match(rf"{name}\s+{count:,}\s", lines[name])


def test_info_prints_status_and_every_run(tiny_file, capsys):
    code, out, _ = run(capsys, "info", tiny_file)
    assert code == 0
    assert re.search(r"status\s+complete", out) and re.search(r"runs\s+2", out)
    for r in range(2):
        assert re.search(rf"run {r}: seed={r} .* frames 11/11", out)


def test_info_json_parses(tiny_file, capsys):
    code, out, _ = run(capsys, "info", tiny_file, "--json")
    info = json.loads(out)
    assert code == 0 and info["status"] == "complete" and info["frames"] == [11, 11]


def test_check_accepts_a_recorded_file(tiny_file, capsys):
    code, out, _ = run(capsys, "check", tiny_file)
    assert code == 0 and "valid" in out


def _convergence(se, delta):
    """(settle, first crossing) of one SE curve, written out independently of the package."""
    ok = se <= delta
    first = int(np.argmax(ok)) if ok.any() else None
    if not ok[-1]:
        return None, first
    settle = len(ok) - int(np.argmin(ok[::-1])) if not ok.all() else 0
    return settle, first


def test_analyze_amplitudes_json_matches_an_independent_fft(tmp_path, capsys):
    path = tmp_path / "fit.h5"
    code, _, err = run(capsys, "record", *TINY, "--iterations", "60", "--lr", "0.01", "--out", path)
    assert code == 0, err
    delta = 0.05
    code, out, _ = run(capsys, "analyze", "amplitudes", path, "--json", "--delta", delta)
    report = json.loads(out)
    assert code == 0 and report["freqs"] == [2.0, 5.0]

    converged = 0
    with open_trajectory(path) as traj:
        n = traj.signal_shape[0]
        target = 2 * np.abs(np.fft.rfft(traj.target.astype(np.float64)))[[2, 5]] / n
        for r in range(traj.n_runs):
            frames = traj.frames(r)[:].astype(np.float64)
            se = (2 * np.abs(np.fft.rfft(frames, axis=1))[:, [2, 5]] / n - target) ** 2
            expected = [_convergence(se[:, k], delta) for k in range(2)]
            entry = report["runs"][r]
            assert entry["converged_at"] == [e[0] for e in expected]
            assert entry["first_crossing"] == [e[1] for e in expected]
            converged += sum(e[0] is not None for e in expected)
    assert converged > 0  # the comparison covered a real convergence iteration


# --------------------------------------------------------------------------- the demo

def _demo_commands(folder) -> list[list[str]]:
    """The spectral-lab commands ``make demo`` runs when nothing is recorded yet, as argument
    lists without the program (the Makefile's variables expanded by ``make -n``)."""
    from conftest import make_dry_run

    commands = [shlex.split(line) for line in make_dry_run(folder, "demo")]
    commands = [c for c in commands if c and c[0].endswith("spectral-lab")]
    assert commands
    return [c[1:] for c in commands]


def _run_first_demo_command(tmp_path, monkeypatch, capsys, *extra):
    (tmp_path / "make").mkdir()
    argv = _demo_commands(tmp_path / "make")[0]
    assert argv[0] == "record"
    monkeypatch.chdir(tmp_path)  # the demo writes to trajectories/ under the working folder
    code, _, err = run(capsys, *argv, *extra)
    assert code == 0, err
    out = Path(argv[argv.index("--out") + 1])
    code, info, _ = run(capsys, "info", out)
    assert code == 0
    return info


def test_demo_first_command_records_a_two_run_trajectory(tmp_path, monkeypatch, capsys):
    info = _run_first_demo_command(tmp_path, monkeypatch, capsys, "--iterations", "5", "--quiet")
    assert re.search(r"status\s+complete", info) and re.search(r"runs\s+2", info)
    assert "frames 6/6" in info


@pytest.mark.slow
def test_demo_first_command_as_written(tmp_path, monkeypatch, capsys):
    info = _run_first_demo_command(tmp_path, monkeypatch, capsys, "--quiet")
    assert re.search(r"status\s+complete", info) and re.search(r"runs\s+2", info)


def test_readme_names_make_demo_as_the_first_command():
    readme = REPO / "README.md"
    if not readme.exists():
        pytest.skip("README.md is not written yet")
    assert "make demo" in readme.read_text()


def test_the_stop_command_offers_exactly_the_registered_rules():
    from spectral_lab.analyze.stopping import RULES
    from spectral_lab.cli import make_parser

    parser = make_parser(["analyze", "stop", "f.h5", "--rule", "es_wmv"])
    analyze = next(a for a in parser._subparsers._group_actions[0].choices["analyze"]._actions
                   if a.dest == "what").choices["stop"]
    rule = next(a for a in analyze._actions if a.dest == "rule")
    assert sorted(rule.choices) == sorted(RULES)
