"""Generated parameters: every input to ``spectral-lab record`` (values, types, sizes and their
combinations) and every configuration handed to ``runner.record`` is either accepted and
yields a valid file, or refused with one clear line — never a traceback, never a partial file.

The hypothesis profile 'spectral_lab-ci' below (loaded here; deterministic, no deadline) runs
about 1100 cases; ``HYPOTHESIS_PROFILE=spectral_lab-dev`` explores more with fresh seeds.
Accepted cases stay tiny (1-3 iterations, <= 64 samples, width <= 8) so most of the time goes
to validation, which is what is under test.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from spectral_lab import cli, runner
from spectral_lab.config import RunConfig
from spectral_lab.errors import SpectralLabError
from spectral_lab.trajectory import check_trajectory, open_trajectory

settings.register_profile("spectral_lab-ci", deadline=None, derandomize=True, database=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.filter_too_much])
settings.register_profile("spectral_lab-dev", parent=settings.get_profile("spectral_lab-ci"),
                          derandomize=False, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "spectral_lab-ci"))

# examples per test in the CI profile (total 1100); the dev profile multiplies them
CLI_EXAMPLES, CONFIG_EXAMPLES, MODEL_EXAMPLES = 600, 300, 200
_SCALE = max(1, settings.default.max_examples // 100)  # 1 in CI (100 is hypothesis' default)

ERROR_PREFIXES = ("spectral-lab: error: ", "spectral-lab record: error: ")


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder with a tiny PNG (3 x 12 x 10), a text file, a regular file in place of a folder
    and an existing folder, for the ``--image`` and ``--out`` cases."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("properties")
    pixels = np.random.default_rng(5).integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
    Image.fromarray(pixels, mode="RGB").save(folder / "tiny.png")
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "a-file").write_text("a regular file where a folder is expected\n")
    (folder / "a-folder").mkdir()
    return folder


_case = itertools.count()


def run_cli(argv) -> tuple[int, list[str], list[str], list[str]]:
    """``spectral-lab argv`` in this process: exit code, stdout and stderr lines, and warnings
    (each of which a user would see as one more stderr line)."""
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as caught, \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        warnings.simplefilter("always")
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, out.getvalue().splitlines(), err.getvalue().splitlines(), [str(w.message) for w in caught]


def assert_valid_recording(path: Path, status: str) -> None:
    assert check_trajectory(path) == []
    with open_trajectory(path) as t:
        assert t.status == status
        for r in range(t.n_runs):
            n = t.n_frames(r)
            assert n == t.iterations + 1 if status == "complete" else n <= t.iterations + 1
            assert np.isfinite(t.frames(r)[:n]).all() and np.isfinite(t.losses(r)).all()


def no_leftovers(folder: Path) -> bool:
    """No half-made file left beside the output (the layout is written to a hidden sibling)."""
    return not [p for p in folder.rglob("*") if ".creating-" in p.name]


# --------------------------------------------------------------------------- CLI strategies

def _text(values):
    return st.sampled_from([str(v) for v in values])


GARBAGE = st.sampled_from(["", "x", "1e", "--", "nan", "inf", "-inf", "1.5", "0x10", "1,2", "None", "é"])


def option(valid, invalid=(), garbage=True, omit=True):
    """An option as (a valid value or None for left out, a faulty value: invalid or not a number)."""
    ok = _text(valid) if not omit else st.one_of(_text(valid), st.none())
    faults = [s for s in ([_text(invalid)] if invalid else []) + ([GARBAGE] if garbage else [])]
    return ok, st.one_of(*faults) if faults else ok


def _numbers(items, n):
    return st.lists(st.sampled_from(items), min_size=n, max_size=n).map(lambda xs: ",".join(map(str, xs)))


JSON_VALUES = st.one_of(st.integers(-3, 9), st.sampled_from([0.5, 2.0, -1.5, 1e300]), st.booleans(), st.none(),
                        st.sampled_from(["nearest", "zeros", "reflect", "xavier", "linear", "sigmoid", "bogus", ""]),
                        st.lists(st.integers(-1, 6), max_size=3))
MODEL_KEYS = ["depth", "width", "kernel", "in_channels", "output", "padding", "init", "bias", "levels", "down",
              "up", "skip", "kernel_down", "kernel_up", "kernel_skip", "stride", "upsample", "colour"]


@st.composite
def record_argv(draw, folder: Path):
    """``spectral-lab record`` argv over every flag: valid tiny values (or the flag left out),
    then 0-3 faults (a bad value, a bad type, a bad model option, a stray argument)."""
    signal = draw(st.sampled_from(["sines"] * 6 + ["triangle", "image"]))
    model = draw(st.sampled_from(["conv"] * 4 + ["linear", "relunet", "dip"]))
    n = draw(st.integers(1, 3))  # frequencies (amplitudes and phases must match)
    specs = {
        "--signal": (st.sampled_from([signal] if signal != "sines" else ["sines", None]), _text(["square", 3])),
        "--model": (st.just(model), _text(["unet", "", "DIP"])),
        # sizes are always given (the quick preset's are too large for a property test)
        "--iterations": option([1, 2, 3], [0, -1, 10**8], omit=False),
        "--runs": option([1, 2, 3], [0, -2, 5000], omit=False),
        "--seed": option([0, 3, 2**62], [-1, 2**62 + 1]),
        "--lr": option([1e-3, 0.01, 0.5, 1e6], [0, -1e-3, 1e31, "nan", "inf"]),
        "--optimizer": option(["adam", "sgd"], ["lbfgs"], garbage=False),
        "--reg-noise-std": option([0, 0.03, 1e30], [-0.1, "nan"]),
        "--input-dist": option(["uniform", "normal"], ["cauchy"], garbage=False),
        "--input-scale": option([0.1, 1, 1e30], [0, -1, "inf"]),
        "--vary": option(["both", "weights", "input"], ["neither"], garbage=False),
        "--device": option(["cpu", "auto"], ["tpu", "cuda:99", "cpu:0x"], garbage=False),
        "--preset": option(["quick", "paper"], ["fast"], garbage=False),
        "--task": option(["fit", "denoise"], ["inpaint"], garbage=False),
        "--noise": option(["white", "lowfreq", "none"], ["pink"], garbage=False),
        "--sigma": option([0, 25, 1e300], [-5, "nan"]),
        "--noise-cutoff": option([0.05, 0.5], [0, 0.6, -1]),
        "--noise-seed": option([0, 11], [-1]),
        "--dtype": option(["float32", "float16"], ["uint8"], garbage=False),
        "--compression": option(["none", "gzip", "lzf"], ["zstd"], garbage=False),
        "--flush-seconds": option([0.01, 2], [0, -1, "nan"]),
        "--checkpoint-seconds": option([0, 30], [-1, "inf"]),
    }
    if signal == "sines":
        specs["--length"] = option([16, 31, 64], [3, 0, -8, 2**23], omit=False)
        specs["--freqs"] = (_numbers([1, 2, 3, 7, 2.5], n), st.one_of(_numbers([0, -1, 40, "nan"], n), GARBAGE))
        specs["--amps"] = (st.one_of(st.none(), _numbers([1, 0.5, 1e308], n)),
                           st.one_of(_numbers(["nan", "inf"], n), _numbers([1], n + 1), GARBAGE))
        specs["--phases"] = (st.one_of(st.none(), _numbers([0, 1.5], n)),
                             st.one_of(_numbers(["nan"], n), _numbers([0], n + 1), GARBAGE))
    elif signal == "triangle":
        specs["--size"] = option([8, 12, 16], [7, 0, -16, 5000], omit=False)
        specs["--pattern-fraction"] = option([0, 0.6, 1], [-0.5, "nan"])
    else:
        specs["--image"] = (st.just(str(folder / "tiny.png")), _text([folder / "notes.txt", folder / "missing.png",
                                                                      folder / "a-folder"]))
        specs["--downsample"] = option([1, 2], [0, 65, -2])
    if model == "dip":  # a 1-2 level DIP of a few channels; sides must be multiples of 2**levels
        specs["--levels"] = option([1, 2], [0, -1])
    else:
        specs["--depth"] = option([2, 3], [1, 0, -1], omit=False)
        specs["--width"] = option([1, 4, 8], [0, -4], omit=False)
        if model == "conv":
            specs["--kernel"] = option([1, 3, 5], [0, -3])
    values = {flag: draw(ok) for flag, (ok, _) in specs.items()}
    extra = ["--model-opt", "down=4", "--model-opt", "up=4", "--model-opt", "skip=2",
             "--model-opt", "in_channels=2"] if model == "dip" else []
    if draw(st.booleans()):
        extra.append("--grey")
    for _ in range(draw(st.sampled_from([0] * 7 + [1] * 5 + [2] * 3 + [3]))):  # the faults
        kind = draw(st.sampled_from(["value"] * 6 + ["model option", "stray"]))
        if kind == "value":
            flag = draw(st.sampled_from(sorted(specs)))
            values[flag] = draw(specs[flag][1])
        elif kind == "model option":  # any option name, any JSON value
            extra += ["--model-opt", f"{draw(st.sampled_from(MODEL_KEYS))}={json.dumps(draw(JSON_VALUES))}"]
        else:  # an unknown flag, or one missing its value
            extra.append(draw(st.sampled_from(["--bogus", "--iterations", "--resume", "-x"])))
    argv = ["record", "--quiet"]
    for flag, value in values.items():
        if value is not None:
            argv += [flag, value]
    out_kind = draw(st.sampled_from(["fresh"] * 6 + ["exists", "folder", "under-a-file", "nested"]))
    return argv + extra, out_kind, draw(st.booleans())


@settings(max_examples=CLI_EXAMPLES * _SCALE)
@given(case=st.data())
def test_record_command_line_is_accepted_with_a_valid_file_or_refused_in_one_line(case, workdir):
    argv, out_kind, overwrite = case.draw(record_argv(workdir))
    folder = workdir / f"case{next(_case)}"
    folder.mkdir()
    out = {"fresh": folder / "out.h5", "exists": folder / "out.h5", "nested": folder / "new" / "out.h5",
           "folder": workdir / "a-folder", "under-a-file": workdir / "a-file" / "out.h5"}[out_kind]
    if out_kind == "exists":
        out.write_bytes(b"an older file\n")
    argv = [*argv, "--out", out] + (["--overwrite"] if overwrite else [])

    code, stdout, stderr, warned = run_cli(argv)
    event({0: "accepted", 3: "accepted, diverged"}.get(code, f"refused (exit {code})"))

    assert not any("Traceback" in line for line in stdout + stderr)
    assert warned == [], warned
    if code == 0:
        assert stderr == [] and len(stdout) == 1 and stdout[0].startswith("wrote ")
        assert_valid_recording(out, "complete")
    elif code == 3:
        assert len(stderr) == 1 and stderr[0].startswith("spectral-lab: diverged: loss is not finite at iteration")
        assert_valid_recording(out, "diverged")
    elif code == 1 and stderr and stderr[0].startswith("spectral-lab: error: writing "):
        # accepted, then stopped by the recorder (float16 frames out of range): the file is valid
        assert len(stderr) == 1 and "--dtype float32" in stderr[0]
        assert_valid_recording(out, "failed")
    else:
        assert code in (1, 2), (code, stderr)
        assert len(stderr) == 1 and stderr[0].startswith(ERROR_PREFIXES), stderr
        if out_kind == "exists":
            assert out.read_bytes() == b"an older file\n", "a refused command changed an existing file"
        elif out_kind in ("fresh", "nested"):
            assert not out.exists(), "a refused command left a file"
        assert no_leftovers(folder)


# --------------------------------------------------------------------------- configurations

ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 70), st.sampled_from([2**62 + 1, -(2**40)]),
    st.floats(allow_nan=True, allow_infinity=True, width=64).filter(lambda x: not (0 < abs(x) < 1e-300)),
    st.text(max_size=4), st.lists(st.one_of(st.integers(-2, 20), st.floats(-3, 3), st.text(max_size=2)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(0, 3), max_size=2),
)

TINY = {
    "task": "fit",
    "signal": {"kind": "sines", "freqs": [2, 5], "amps": [1.0, 1.0], "length": 32, "size": 16},
    "degrade": {"noise": "white", "sigma": 25.0},
    "model": {"name": "conv", "options": {"depth": 2, "width": 4}},
    "fit": {"iterations": 2, "runs": 2, "lr": 0.01, "device": "cpu"},
    "record": {"flush_seconds": 0.05},
}
FIELDS = {
    "": ["task", "unknown_section"],
    "signal": ["kind", "freqs", "amps", "phases", "length", "image", "grey", "downsample", "size",
               "pattern_fraction", "colour"],
    "degrade": ["noise", "sigma", "cutoff", "seed"],
    "model": ["name", "options"],
    "fit": ["iterations", "lr", "optimizer", "reg_noise_std", "input_dist", "input_scale", "runs", "seed", "vary",
            "device", "epochs", "precision", "noise_device"],
    "record": ["dtype", "compression", "flush_seconds", "checkpoint_seconds"],
}
SIZE_FIELDS = {("signal", "length"), ("signal", "size"), ("fit", "iterations"), ("fit", "runs")}
SIZES = st.one_of(st.integers(-3, 64), st.sampled_from([2**40, 1.5, "8", None, True, [8]]))


CHOICES = {("", "task"): ["fit", "denoise"], ("signal", "kind"): ["sines", "triangle", "image"],
           ("degrade", "noise"): ["white", "lowfreq", "none"], ("model", "name"): ["conv", "linear", "relunet"],
           ("fit", "optimizer"): ["adam", "sgd"], ("fit", "input_dist"): ["uniform", "normal"],
           ("fit", "vary"): ["both", "weights", "input"], ("fit", "device"): ["cpu", "auto"],
           ("fit", "precision"): ["fp32", "bf16"], ("fit", "noise_device"): ["cpu", "device"],
           ("record", "dtype"): ["float32", "float16"], ("record", "compression"): ["none", "gzip", "lzf"]}


@st.composite
def config_dict(draw):
    """The tiny configuration with 1-4 of its fields replaced by values of any type."""
    d = json.loads(json.dumps(TINY))
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from(sorted(FIELDS)))
        key = draw(st.sampled_from(FIELDS[section]))
        if (section, key) in SIZE_FIELDS:
            value = draw(SIZES)
            if key == "iterations" and isinstance(value, int) and not isinstance(value, bool):
                value = min(value, 3)  # accepted runs stay tiny
        elif (section, key) in CHOICES and draw(st.booleans()):
            value = draw(st.sampled_from(CHOICES[section, key]))
        else:
            value = draw(ANY_VALUE)
        if section == "":
            d[key] = value
        else:
            d.setdefault(section, {})[key] = value
    return d


def assert_accepted_or_refused(cfg_dict: dict, folder: Path) -> None:
    out = folder / "out.h5"
    try:
        cfg = RunConfig.from_dict(cfg_dict)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning would be one more stderr line
            result = runner.record(cfg, out, progress=False)
    except SpectralLabError as exc:
        event(f"refused: {type(exc).__name__}")
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message
        assert not out.exists(), "a refused configuration left a file"
        assert no_leftovers(folder)
        return
    event(f"accepted: {result.status}")
    assert result.status in ("complete", "diverged"), result
    assert_valid_recording(out, result.status)


@settings(max_examples=CONFIG_EXAMPLES * _SCALE)
@given(cfg=config_dict())
def test_configuration_is_accepted_with_a_valid_file_or_refused_with_one_error(cfg, workdir):
    folder = workdir / f"case{next(_case)}"
    folder.mkdir()
    assert_accepted_or_refused(cfg, folder)


@st.composite
def model_config(draw):
    """Any model family with any options (keys of every family, values of any type)."""
    name = draw(st.sampled_from(["conv", "linear", "relunet", "dip"]))
    keys = draw(st.lists(st.sampled_from(MODEL_KEYS), max_size=4, unique=True))
    options = {k: draw(JSON_VALUES) for k in keys}
    if name == "dip":  # keep an accepted DIP tiny
        options = {"levels": 1, "down": 2, "up": 2, "skip": 1, "in_channels": 2, **options}
    else:
        options.setdefault("width", 4)
        options.setdefault("depth", 2)
    kind = draw(st.sampled_from(["sines", "sines", "triangle"]))
    d = json.loads(json.dumps(TINY))
    d["model"] = {"name": name, "options": options}
    d["signal"]["kind"] = kind
    return d


@settings(max_examples=MODEL_EXAMPLES * _SCALE)
@given(cfg=model_config())
def test_model_options_are_accepted_with_a_valid_file_or_refused_with_one_error(cfg, workdir):
    folder = workdir / f"case{next(_case)}"
    folder.mkdir()
    assert_accepted_or_refused(cfg, folder)
