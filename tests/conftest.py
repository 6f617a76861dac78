"""Shared fixtures: tiny configurations, the fake reader, the shared data folder, --runslow."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _fakes import FakeTrajectory

from spectral_lab.config import FitConfig, ModelConfig, RunConfig, SignalConfig

# Tiny tensors run fastest on one thread, and on a shared 2-core machine more threads
# spin against other processes (a 20-step fit took 7 s instead of 0.05 s). Subprocesses
# get the same setting through `subprocess_env`.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir(environ=os.environ) -> Path:
    """The papers' test images: ``$SPECTRAL_LAB_SHARED`` (the shared folder, or its ``data``
    folder itself) when set, else ``../shared/data`` next to this checkout (a git worktree
    elsewhere sets the variable)."""
    given = environ.get("SPECTRAL_LAB_SHARED")
    if given:
        folder = Path(given).expanduser()
        return folder / "data" if (folder / "data").is_dir() else folder
    return REPO.parent / "shared" / "data"


SHARED_DATA = shared_data_dir()


def make_dry_run(folder: Path, target: str = "demo") -> list[str]:
    """The commands ``make -n TARGET`` would run, in a copy of the Makefile in ``folder`` with
    the environment already set up (so that only the target's own commands are listed);
    skips when there is no ``make``."""
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    shutil.copy(REPO / "Makefile", folder / "Makefile")
    for name in ("setup.cfg", "pyproject.toml"):
        (folder / name).touch()
    (folder / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    (folder / ".venv" / "bin" / "python").touch()
    (folder / ".venv" / ".spectral_lab-installed").touch()
    out = subprocess.run(["make", "-n", target], cwd=folder, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


# --------------------------------------------------------------------------- --runslow

def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow; run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture
def fake_trajectory():
    """The `FakeTrajectory` class: ``fake_trajectory(runs, target, observed=..., kind=...)``."""
    return FakeTrajectory


@pytest.fixture
def tiny_config() -> RunConfig:
    """A 1D fit that records in well under a second: conv depth 3, width 8, 32 samples,
    frequencies 2 and 5, 20 iterations, 2 runs, on the CPU."""
    return RunConfig(
        task="fit",
        signal=SignalConfig(kind="sines", freqs=(2, 5), amps=(1.0, 1.0), length=32),
        model=ModelConfig(name="conv", options={"depth": 3, "width": 8}),
        fit=FitConfig(iterations=20, lr=1e-2, runs=2, device="cpu"),
    )


@pytest.fixture
def tiny_image_path(tmp_path) -> Path:
    """A seeded RGB PNG of 16 x 20 pixels (odd aspect on purpose: C, H, W = 3, 16, 20)."""
    from PIL import Image

    pixels = np.random.default_rng(3).integers(0, 256, size=(16, 20, 3), dtype=np.uint8)
    path = tmp_path / "tiny.png"
    Image.fromarray(pixels, mode="RGB").save(path)
    return path


@pytest.fixture
def tiny_image_config(tiny_image_path) -> RunConfig:
    """Denoising a 3 x 16 x 20 PNG with a 2-level DIP (8 channels down/up, 2 skip, 4 input
    channels), the DIP's input perturbation on, 10 iterations, 2 runs, on the CPU."""
    return RunConfig(
        task="denoise",
        signal=SignalConfig(kind="image", image=str(tiny_image_path)),
        model=ModelConfig(name="dip", options={"levels": 2, "down": 8, "up": 8, "skip": 2, "in_channels": 4}),
        fit=FitConfig(iterations=10, lr=1e-2, runs=2, reg_noise_std=1.0 / 30, device="cpu"),
    )


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder (`shared_data_dir`), or skip when there is none."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"no shared test data at {SHARED_DATA} (set SPECTRAL_LAB_SHARED to the shared folder)")
    return SHARED_DATA


@pytest.fixture
def subprocess_env() -> dict:
    """Environment for child Pythons: one torch thread, the package importable, no bar."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def console_script() -> Path:
    """The installed ``spectral-lab`` entry point next to this Python, or skip."""
    path = Path(sys.executable).parent / "spectral-lab"
    if not path.exists():
        pytest.skip(f"the spectral-lab console script is not installed next to {sys.executable}")
    return path
