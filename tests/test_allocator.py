"""spectral_lab.allocator: glibc keeps a fit's large buffers instead of mapping them anew each step."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap

import pytest

# A child process allocates and frees a 64 MB buffer (above glibc's largest mmap threshold,
# 32 MiB) as a fit's step does, and counts its page faults over 4 steps after 20 to settle in
# (the heap first grows to a few such buffers, then serves every request from them).
_CHILD = textwrap.dedent("""
    import resource, sys
    import torch
    from spectral_lab import allocator
    applied = allocator.reuse_freed_memory() if sys.argv[1] == "on" else False
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        torch.ones(16 * 2**20)
    before = faults()
    for _ in range(4):
        torch.ones(16 * 2**20)
    print(int(applied), faults() - before)
""")


def _child(mode: str, env: dict | None = None) -> tuple[int, int]:
    import os

    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    applied, faults = out.stdout.split()
    return int(applied), int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_buffers_are_reused_without_new_page_faults():
    applied, faults_on = _child("on")
    _, faults_off = _child("off")
    if not applied:
        pytest.skip("the C library is not glibc")
    page = resource.getpagesize()
    # without it, each of the 4 allocations maps 64 MB afresh: >= 4 * 64 MB / page faults
    assert faults_off >= 4 * (16 * 2**20 * 4) // page * 0.9
    assert faults_on < faults_off / 20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_environment_can_keep_the_system_defaults():
    applied, _ = _child("on", {"SPECTRAL_LAB_MALLOC": "system"})
    assert applied == 0


def test_prepare_fit_applies_it_once(monkeypatch):
    from spectral_lab import allocator, runner
    from spectral_lab.config import RunConfig, validate

    calls = []
    monkeypatch.setattr(runner, "reuse_freed_memory", lambda: calls.append(1) or True)
    cfg = validate(RunConfig())
    runner.prepare_fit(cfg, runner.make_problem(cfg))
    assert calls == [1]
    assert allocator.reuse_freed_memory() is allocator.reuse_freed_memory()  # idempotent


def test_an_unknown_setting_is_refused_in_one_line_before_any_file(tmp_path):
    import os

    out = tmp_path / "never.h5"
    p = subprocess.run([sys.executable, "-m", "spectral_lab.cli", "record", "--iterations", "1", "--quiet",
                        "--out", str(out)], capture_output=True, text=True,
                       env={**os.environ, "SPECTRAL_LAB_MALLOC": "bogus"})
    assert p.returncode != 0 and not out.exists() and not list(tmp_path.iterdir())
    assert p.stderr.strip().splitlines() == ["spectral-lab: error: SPECTRAL_LAB_MALLOC must be 'keep' or 'system', "
                                             "got 'bogus'"]
