"""Sweep spec files and the ``spectral-lab sweep`` command: the grid's product, points beside it,
file names, one-line errors, and the capacity sweep's specs equal to the experiment's jobs."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from spectral_lab.cli import main
from spectral_lab.config import validate
from spectral_lab.errors import ConfigError
from spectral_lab.sweep_spec import jobs_spec, load_spec, spec_jobs, spec_points
from spectral_lab.trajectory import open_trajectory

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "experiments" / "specs"


@pytest.fixture
def spec(tiny_config) -> dict:
    base = json.loads(json.dumps(replace(tiny_config, fit=replace(tiny_config.fit, runs=1)).to_dict()))
    return {"base": base, "grid": {"model.options.depth": [2, 3], "fit.seed": [0, 1]}}


def test_the_grid_is_the_product_of_its_lists_first_field_slowest(spec):
    points = spec_points(spec)
    assert [p.label for p in points] == ["depth-2_seed-0", "depth-2_seed-1", "depth-3_seed-0", "depth-3_seed-1"]
    assert [(p.config.model.options["depth"], p.config.fit.seed) for p in points] == [(2, 0), (2, 1), (3, 0), (3, 1)]
    assert all(p.config == validate(p.config) for p in points)  # as a file stores them


def test_points_come_after_the_grid_and_may_carry_their_labels(spec):
    spec["points"] = [{"label": "wide", "model.options.width": 32}, {"fit.lr": 0.5}]
    points = spec_points(spec)
    assert [p.label for p in points[4:]] == ["wide", "lr-0.5"]
    assert points[4].config.model.options["width"] == 32 and points[4].config.model.options["depth"] == 3
    del spec["grid"]
    assert [p.label for p in spec_points(spec)] == ["wide", "lr-0.5"]


def test_a_name_template_reads_each_points_resolved_configuration(spec):
    spec["name"] = "{model.name}-d{model.options.depth}-k{model.options.kernel}-s{fit.seed}"
    assert spec_points(spec)[0].label == "conv-d2-k3-s0"  # kernel: the family's default, resolved
    spec["name"] = "{fit.nope}"
    with pytest.raises(ConfigError, match="no field 'fit.nope'"):
        spec_points(spec)


def test_a_whole_section_may_be_set_before_its_fields(spec):
    spec["grid"] = {"model": [{"name": "conv", "options": {}}, {"name": "linear", "options": {}}],
                    "model.options.depth": [2]}
    points = spec_points(spec)
    assert [p.label for p in points] == ["model-conv_depth-2", "model-linear_depth-2"]
    assert [p.config.model.name for p in points] == ["conv", "linear"]


@pytest.mark.parametrize("change, message", [
    ({"grid": {"fit.nope": [1]}}, "point 0 (nope-1): config.fit has unknown key"),
    ({"grid": {"nope.x": [1]}}, "a dotted field starts with one of"),
    ({"grid": {"fit.lr": 0.1}}, "non-empty lists"),
    ({"grid": {"fit.lr": [-1.0]}}, "point 0 (lr--1): learning rate must be positive"),
    ({"grid": {"fit.seed": [0, 0]}}, "both named 'seed-0'"),
    ({"points": [{"label": "a b"}]}, "not a plain file name"),
    ({"extra": 1}, "unknown key(s) extra"),
])
def test_a_bad_spec_is_one_line_naming_the_point(spec, change, message):
    spec.update(change)
    with pytest.raises(ConfigError) as exc:
        spec_points(spec)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_relative_image_paths_are_read_from_the_specs_folder(tmp_path, tiny_image_path):
    spec = {"base": {"task": "denoise", "signal": {"kind": "image", "image": tiny_image_path.name},
                     "model": {"name": "dip", "options": {"levels": 2, "down": 8, "up": 8, "skip": 2}},
                     "fit": {"iterations": 3, "runs": 1, "device": "cpu"}}}
    (point,) = spec_points(spec, root=tiny_image_path.parent)
    assert point.config.signal.image == str(tiny_image_path.resolve())


def test_toml_and_json_specs_read_alike_and_a_broken_file_is_one_line(tmp_path):
    (tmp_path / "s.toml").write_text('[base]\ntask = "fit"\n[base.fit]\nruns = 1\n[grid]\n"fit.seed" = [0, 1]\n')
    (tmp_path / "s.json").write_text(json.dumps({"base": {"task": "fit", "fit": {"runs": 1}},
                                                 "grid": {"fit.seed": [0, 1]}}))
    a, b = (spec_points(load_spec(tmp_path / f"s.{ext}")) for ext in ("toml", "json"))
    assert a == b and [p.label for p in a] == ["seed-0", "seed-1"]
    (tmp_path / "bad.toml").write_text("[base\n")
    with pytest.raises(ConfigError, match="not a valid TOML sweep spec"):
        load_spec(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_spec(tmp_path / "missing.json")


@pytest.mark.parametrize("preset, spec_file", [("quick", "capacity_sweep_quick.toml"),
                                                ("paper", "capacity_sweep_paper.toml")])
def test_the_capacity_specs_are_the_capacity_sweeps_recordings(preset, spec_file, tmp_path):
    sys.path.insert(0, str(REPO))
    from experiments import capacity_sweep

    cfg = replace(capacity_sweep.PRESETS[preset], out_dir=tmp_path)
    expected = capacity_sweep.jobs(cfg)
    got = spec_jobs(load_spec(SPECS / spec_file), cfg.paths.trajectories)
    assert [(j.path, j.config) for j in got] == [(j.path, j.config) for j in expected]


def test_an_experiments_jobs_written_as_a_spec_give_the_same_jobs(tmp_path):
    sys.path.insert(0, str(REPO))
    from experiments import capacity_sweep

    jobs = capacity_sweep.jobs(replace(capacity_sweep.QUICK, out_dir=tmp_path))
    again = spec_jobs(json.loads(json.dumps(jobs_spec(jobs))), jobs[0].path.parent)
    assert [(j.path, j.config) for j in again] == [(j.path, j.config) for j in jobs]


def test_the_sweep_command_records_every_point_then_reuses_them(spec, tmp_path, capsys):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    argv = ["sweep", str(path), "--out-dir", str(tmp_path / "out"), "--executor", "inline", "--quiet"]
    assert main(argv) == 0
    record = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert record["counts"] == {"reuse": 0, "resume": 0, "record": 4, "failed": 0}
    assert record["command"].startswith("spectral-lab sweep") and record["spec"] == spec
    assert [p["file"] for p in record["points"]] == [f"{p.label}.h5" for p in spec_points(spec)]
    with open_trajectory(tmp_path / "out" / "depth-3_seed-1.h5") as t:
        assert t.status == "complete" and t.config["fit"]["seed"] == 1
    capsys.readouterr()
    assert main(argv) == 0
    assert "0 recorded, 0 resumed, 4 reused, 0 failed" in capsys.readouterr().out


def test_estimate_only_and_list_write_nothing(spec, tmp_path, capsys):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    for flag in ("--estimate-only", "--list"):
        assert main(["sweep", str(path), "--out-dir", str(tmp_path / "out"), flag]) == 0
    assert not (tmp_path / "out").exists()
    assert "depth-3_seed-1.h5: model.options.depth=3, fit.seed=1" in capsys.readouterr().out


def test_the_sweep_command_refuses_bad_input_in_one_line(spec, tmp_path, capsys):
    path = tmp_path / "spec.json"
    spec["grid"]["fit.lr"] = [-1.0]
    path.write_text(json.dumps(spec))
    assert main(["sweep", str(path), "--out-dir", str(tmp_path / "out")]) == 1
    assert main(["sweep", str(path), "--out-dir", str(tmp_path), "--scheduler", "tcp://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "learning rate must be positive" in err[0]
    assert not (tmp_path / "out").exists()


def test_a_diverged_point_exits_3_after_the_others_are_recorded(spec, tmp_path, capsys):
    spec["base"]["fit"]["optimizer"] = "sgd"
    spec["grid"] = {"fit.lr": [1e-2, 1e6]}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    assert main(["sweep", str(path), "--out-dir", str(tmp_path / "out"), "--executor", "inline", "--quiet"]) == 3
    record = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert [p["outcome"] for p in record["points"]] == ["record", "failed"]
    assert record["points"][1]["kind"] == "diverged"


def test_an_experiment_writes_its_recordings_as_a_spec_and_keeps_its_command(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO))
    from experiments import capacity_sweep
    from experiments._cli import experiment_cli

    out = tmp_path / "spec.json"
    argv = ["--quick", "--workers", "2", "--out-dir", str(tmp_path), "--write-spec", str(out)]
    assert experiment_cli(capacity_sweep, argv) == 0
    cfg = replace(capacity_sweep.QUICK, out_dir=tmp_path)
    got = spec_jobs(load_spec(out), cfg.paths.trajectories)
    assert [(j.path, j.config) for j in got] == [(j.path, j.config) for j in capacity_sweep.jobs(cfg)]
    seen = []
    monkeypatch.setattr(capacity_sweep, "main", seen.append)
    assert experiment_cli(capacity_sweep, ["--quick", "--workers", "2", "--estimate-only"]) == 0
    (ran,) = seen
    assert ran.workers == 2 and ran.command == "python experiments/capacity_sweep.py --quick --workers 2 --estimate-only"
    assert ran == replace(ran, command="another")  # the command is not part of the configuration's identity
