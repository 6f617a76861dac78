"""Registries are extension points: a new model, optimiser or stopping rule is one decorated
definition, and the CLI offers it with no list to update elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from _fakes import run_cli

from spectral_lab.analyze.stopping import RULES
from spectral_lab.errors import ConfigError
from spectral_lab.models import MODELS, RunNet
from spectral_lab.models._layers import RunConv, from_runs, to_runs
from spectral_lab.optim import OPTIMIZERS
from spectral_lab.registry import Registry
from spectral_lab.trajectory import open_trajectory


class ToyNet(RunNet):
    """one 1x1 convolution (a toy family, defined in a test)"""

    input_dist, input_scale = "normal", 0.5

    def __init__(self, *, runs, signal_shape, width: int = 3, in_channels: int = 2, output=None):
        super().__init__(runs=runs, signal_shape=signal_shape, in_channels=in_channels, output=output)
        self.width = width
        self.conv = RunConv(runs, self.in_channels, self.out_channels, 1, ndim=self.ndim)

    def forward(self, z):
        return self.out_act(from_runs(self.conv(to_runs(z)), self.runs))


def toy_sgd(params, *, lr, generators, scale: float = 1.0):
    """plain SGD with a scaled step (a toy optimiser)"""
    return torch.optim.SGD(params, lr=lr * scale)


def toy_last_frame(frames, *, offset: int = 0):
    """the last frame minus an offset (a toy rule)"""
    n = sum(1 for _ in frames)
    return max(0, n - 1 - offset)


@pytest.fixture
def toys():
    MODELS.add("toy", ToyNet)
    OPTIMIZERS.add("toy_sgd", toy_sgd)
    RULES.add("toy_last", toy_last_frame, needs=())
    yield
    MODELS.remove("toy")
    OPTIMIZERS.remove("toy_sgd")
    RULES.remove("toy_last")


def test_a_registered_model_optimizer_and_rule_run_through_the_cli(toys, tmp_path, capsys):
    out = tmp_path / "toy.h5"
    code, _, err = run_cli(capsys, "record", "--model", "toy", "--model-opt", "width=5", "--optimizer", "toy_sgd",
                           "--optimizer-opt", "scale=0.5", "--length", "32", "--freqs", "2,5", "--iterations", "4", "--runs", "2",
                           "--out", out, "--quiet")
    assert code == 0, err
    with open_trajectory(out) as t:
        assert t.config["model"] == {"name": "toy", "options": {"width": 5, "in_channels": 2}}  # defaults stored
        assert t.config["fit"]["optimizer"] == "toy_sgd"
        assert t.config["fit"]["optimizer_options"] == {"scale": 0.5}
        assert (t.config["fit"]["input_dist"], t.config["fit"]["input_scale"]) == ("normal", 0.5)  # the family's own
        assert [t.n_frames(r) for r in range(2)] == [5, 5]
    code, text, err = run_cli(capsys, "analyze", "stop", out, "--rule", "toy_last", "--rule-opt", "offset=1",
                              "--json")
    assert code == 0, err
    result = json.loads(text)
    assert result["params"] == {"offset": 1}
    assert [e["iteration"] for e in result["results"]] == [3, 3]
    code, text, _ = run_cli(capsys, "models")
    assert code == 0 and any(line.startswith("toy ") for line in text.splitlines())


def test_a_registered_entry_shows_in_the_cli_help(toys, capsys):
    code, text, _ = run_cli(capsys, "record", "--help")
    text = " ".join(text.split())  # argparse wraps lines
    assert code == 0
    assert "toy (one 1x1 convolution" in text and "toy_sgd (plain SGD with a scaled step" in text


def test_a_model_declares_its_own_input_instead_of_a_special_case(toys):
    from spectral_lab.models import build_model

    net = build_model("toy", signal_shape=(1, 16), runs=1)
    z = net.make_input([0])
    assert z.shape == (1, 2, 16) and 0.3 < float(z.std()) < 0.7  # N(0, 0.5^2)


def test_unknown_options_of_an_entry_are_refused_with_its_options(toys):
    with pytest.raises(ConfigError, match="optimizer 'toy_sgd' has no option momentum; its options are scale"):
        OPTIMIZERS.check_options("toy_sgd", {"momentum": 0.9})


def test_a_second_entry_under_a_taken_name_is_refused():
    reg = Registry("thing")
    reg.add("a", toy_sgd)
    with pytest.raises(ConfigError, match="a thing named 'a' is registered already"):
        reg.add("a", toy_last_frame)


def test_an_unknown_name_lists_the_choices():
    reg = Registry("thing")
    reg.add("a", toy_sgd)
    reg.add("b", toy_last_frame)
    with pytest.raises(ConfigError, match="unknown thing 'c'; choose from a, b"):
        reg.get("c")


def test_a_plugin_module_named_in_the_environment_registers_its_model(tmp_path, subprocess_env):
    (tmp_path / "my_lab_plugin.py").write_text(textwrap.dedent('''
        from spectral_lab.models import MODELS, RunNet

        @MODELS.register("plugged", help="a family from a plugin module")
        class Plugged(RunNet):
            def __init__(self, *, runs, signal_shape, in_channels=1, output=None):
                super().__init__(runs=runs, signal_shape=signal_shape, in_channels=in_channels, output=output)
    '''))
    env = {**subprocess_env, "SPECTRAL_LAB_PLUGINS": "my_lab_plugin",
           "PYTHONPATH": f"{tmp_path}:{subprocess_env['PYTHONPATH']}"}
    out = subprocess.run([sys.executable, "-m", "spectral_lab.cli", "record", "--help"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "plugged (a family from a plugin module)" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "spectral_lab.cli", "models"],
                         env={**env, "SPECTRAL_LAB_PLUGINS": "no_such_plugin_module"},
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no_such_plugin_module" in bad.stderr
