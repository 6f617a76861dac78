"""The experiments' one command line (experiments/_cli.py): presets, --set, the scripts' own
flags, one-line errors; and every command line the README and experiments/results/ give still
parses (the experiment's ``main`` replaced by a recorder: nothing is fitted)."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the experiments folder is scripts, not an installed package

from experiments import denoise_architectures as arch  # noqa: E402
from experiments import upsampling_stride  # noqa: E402
from experiments._cli import experiment_cli  # noqa: E402

SCRIPTS = sorted(p.stem for p in (REPO / "experiments").glob("[a-z]*.py"))


@pytest.fixture
def seen(monkeypatch):
    """Replace ``main`` of the experiments: the configurations it would have run."""
    configs = []

    def patch(module):
        monkeypatch.setattr(module, "main", configs.append)
        return module
    patch.configs = configs
    return patch


def test_a_missing_images_path_is_one_line_and_exit_status_1(tmp_path, capsys):
    code = experiment_cli(arch, ["--quick", "--images", str(tmp_path / "nope"), "--out-dir", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("no such file or folder") and len(err.splitlines()) == 1


def test_set_overrides_scalar_fields_of_the_preset_with_their_types(tmp_path, seen):
    argv = ["--quick", "--set", "downsample=8", "--set", "sigma=15", "--estimate-only", "--out-dir", str(tmp_path)]
    assert experiment_cli(seen(arch), argv) == 0
    (cfg,) = seen.configs
    assert (cfg.downsample, cfg.sigma, cfg.preset) == (8, 15.0, "quick")
    assert isinstance(cfg.sigma, float) and cfg.estimate_only and cfg.out_dir == tmp_path.resolve()


@pytest.mark.parametrize("item, message", [("nonsense=1", "FIELD one of"), ("downsample=2.5", "takes a int"),
                                           ("models=1", "FIELD one of"), ("downsample", "FIELD=VALUE"),
                                           ("out_dir=x", "FIELD one of"), ("grey=maybe", "takes a bool")])
def test_set_rejects_unknown_fields_and_bad_values_in_one_line(capsys, seen, item, message):
    with pytest.raises(SystemExit) as exc:
        experiment_cli(seen(arch), ["--quick", "--set", item])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not seen.configs


def test_set_parses_optional_and_tuple_fields(seen):
    argv = ["--quick", "--set", "downsample=none", "--set", "strides=2,8", "--set", "upsample=nearest"]
    assert experiment_cli(seen(upsampling_stride), argv) == 0
    (cfg,) = seen.configs
    assert cfg.downsample is None and cfg.strides == (2, 8) and cfg.upsample == "nearest"


def test_a_scripts_own_flag_is_the_set_of_its_field(seen):
    experiment_cli(seen(upsampling_stride), ["--quick", "--image", "triangle"])
    experiment_cli(upsampling_stride, ["--quick", "--set", "image=triangle"])
    a, b = seen.configs
    assert a == b and a.image == "triangle"
    with pytest.raises(SystemExit):  # a flag of another script
        experiment_cli(upsampling_stride, ["--quick", "--images", "x"])


def test_the_first_preset_is_the_default_and_quick_and_preset_exclude_each_other(seen, capsys):
    experiment_cli(seen(arch), [])
    experiment_cli(arch, ["--preset", "hour"])
    assert [c.preset for c in seen.configs] == ["paper", "hour"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        experiment_cli(arch, ["--quick", "--preset", "hour"])
    assert exc.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_experiment_has_a_quick_preset_named_as_its_key(script):
    module = importlib.import_module(f"experiments.{script}")
    assert "quick" in module.PRESETS
    assert all(cfg.preset == name and cfg.name == module.NAME for name, cfg in module.PRESETS.items())


def _documented_commands() -> list[tuple[str, str, list[str]]]:
    """(file, script, argv) of every ``python experiments/<script>.py ...`` in the README and
    experiments/results/*.md (inline code up to its closing backtick, code blocks up to the end of
    the line, comments cut; usage lines with [optional] parts left out)."""
    found = []
    for doc in [REPO / "README.md", *sorted((REPO / "experiments" / "results").glob("*.md"))]:
        text = doc.read_text()
        for m in re.finditer(r"python experiments/(\w+)\.py", text):
            rest = text[m.end():]
            inline = text[:m.start()].count("`") % 2 == 1
            cmd = rest[:rest.index("`")] if inline and "`" in rest else rest.split("\n", 1)[0]
            cmd = re.split(r"#|\(|\|", cmd)[0]
            if "[" not in cmd:
                found.append((doc.name, m.group(1), cmd.split()))
    return found


DOCUMENTED = _documented_commands()


def test_the_documents_give_commands_for_every_experiment():
    assert {script for _, script, _ in DOCUMENTED} == set(SCRIPTS)


@pytest.mark.parametrize("doc, script, argv", DOCUMENTED, ids=[f"{d}:{s} {' '.join(a)}" for d, s, a in DOCUMENTED])
def test_documented_command_lines_still_parse(doc, script, argv, seen):
    module = seen(importlib.import_module(f"experiments.{script}"))
    assert experiment_cli(module, argv) == 0
    (cfg,) = seen.configs
    assert cfg.preset == ("quick" if "--quick" in argv else argv[argv.index("--preset") + 1] if "--preset" in argv
                          else next(iter(module.PRESETS)))


@pytest.mark.parametrize("script, argv", [
    ("denoise_architectures", ["--quick", "--images", "DIR", "--seeds", "2", "--out-dir", "OUT", "--estimate-only"]),
    ("lowfreq_failure", ["--preset", "quick", "--images", "DIR", "--seeds", "1", "--estimate-only"]),
    ("stopping_rules", ["--preset", "paper", "--seeds", "6", "--set", "probe=2.5", "--set", "probe=0"]),
    ("pattern_extent", ["--quick", "--image", "/work/shared/data/triangle", "--out-dir", "OUT"]),
    ("image_divergence", ["--quick", "--image", "photo", "--threads", "1"]),
])
def test_the_flags_of_the_usage_lines_still_parse(script, argv, seen, tmp_path):
    module = seen(importlib.import_module(f"experiments.{script}"))
    argv = [str(tmp_path) if a == "OUT" else a for a in argv]
    assert experiment_cli(module, argv) == 0
    (cfg,) = seen.configs
    if "--seeds" in argv:
        assert cfg.seeds == int(argv[argv.index("--seeds") + 1])
    if "--out-dir" in argv:
        assert cfg.out_dir == tmp_path.resolve()


def test_threads_below_one_are_a_usage_error(seen, capsys):
    with pytest.raises(SystemExit) as exc:
        experiment_cli(seen(arch), ["--quick", "--threads", "0"])
    assert exc.value.code == 2 and "--threads" in capsys.readouterr().err
