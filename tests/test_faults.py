"""The faults of issue 18, generated: full devices of random sizes (a small tmpfs), write
errors inside HDF5, concurrent creators, outputs aimed at inputs, configurations that do not
fit in memory or overflow, hand-edited files, long names, a full stdout.

Every case must end as the README's fault table says: one line on stderr, a nonzero exit where
the command failed, no traceback, no crash of the process (no negative return code), no hidden
file left behind, and every file that exists valid (``check``). The outcomes are tallied in
``FAULTS``; with ``SPECTRAL_LAB_FAULT_TABLE=path`` they are added to that JSON file (the
reliability tests add theirs too) when the module ends.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
from _fakes import add_fault_rows, run_cli

from spectral_lab.trajectory import check_trajectory, open_trajectory
from spectral_lab.trajectory import schema as S

FAULTS: dict[str, dict] = {}
RECORD = ("record", "--quiet", "--threads", "1")


def tally(name: str, outcome: str, message: str = "") -> None:
    row = FAULTS.setdefault(name, {"fault": name, "tried": 0, "outcomes": {}, "message": ""})
    row["tried"] += 1
    row["outcomes"][outcome] = row["outcomes"].get(outcome, 0) + 1
    if message and not row["message"]:
        row["message"] = message


@pytest.fixture(scope="module", autouse=True)
def fault_table():
    yield FAULTS
    add_fault_rows(FAULTS.values())


def _cli(env, *argv, timeout=300, patch_space_check=False):
    """``spectral-lab argv`` in a child Python; ``patch_space_check``: without the writer's
    free-space check, so that a full device fails inside HDF5 itself."""
    code = "import sys\n"
    if patch_space_check:
        code += "import spectral_lab.trajectory.writer as w\nw.check_space = lambda *a, **k: None\n"
    code += "from spectral_lab.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", code, *map(str, argv)], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _one_line(proc) -> bool:
    return proc.stderr.count("\n") <= 1 and "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------- a full device

@pytest.fixture
def small_disk(tmp_path):
    """Mount a tmpfs of a given size (KiB) at a fresh folder; skip where mounting is not allowed."""
    mounted = []

    def mount(kib: int) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(where)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {out.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], capture_output=True)


@pytest.mark.parametrize("through_hdf5", [False, True], ids=["space checked", "HDF5 fails"])
def test_a_full_device_at_random_sizes_ends_in_one_line_with_a_valid_file(small_disk, subprocess_env, through_hdf5):
    rng = random.Random(18 + through_hdf5)
    for _ in range(3):
        kib = rng.choice([48, 160, 400, 900, 1600])
        disk = small_disk(kib)
        out = disk / "run.h5"
        proc = _cli(subprocess_env, *RECORD, "--iterations", "3000", "--flush-seconds", "0.05",
                    "--checkpoint-seconds", str(rng.choice([0, 0.2, 30])), "--out", out,
                    patch_space_check=through_hdf5)
        name = f"full device ({'HDF5 itself fails' if through_hdf5 else 'the writer checks the space first'})"
        assert proc.returncode in (0, 1), proc.stderr  # never a crash (negative: a signal)
        assert _one_line(proc), proc.stderr
        assert _hidden(disk) == []
        if out.exists():
            assert check_trajectory(out) == []
            with open_trajectory(out) as t:
                assert t.status in ("complete", "failed")
                state, frames = t.status, t.n_frames(0)
            tally(name, f"{state}, {frames} frames kept", proc.stderr.strip())
            if state == "failed":  # resuming on the same full device changes nothing
                before = hashlib.sha256(out.read_bytes()).hexdigest()
                again = _cli(subprocess_env, "record", "--resume", out, "--quiet")
                assert again.returncode == 1 and _one_line(again), again.stderr
                assert hashlib.sha256(out.read_bytes()).hexdigest() == before
                tally("--resume on the full device", "refused, file unchanged", again.stderr.strip())
        else:
            assert proc.returncode == 1
            tally(name, "refused at creation, no file", proc.stderr.strip())


# --------------------------------------------------------------------------- concurrent creators

def test_of_two_processes_creating_one_path_exactly_one_records(tmp_path, subprocess_env):
    for round_ in range(3):
        out = tmp_path / f"same{round_}.h5"
        procs = [subprocess.Popen([sys.executable, "-m", "spectral_lab.cli", *RECORD, "--iterations", "20",
                                   "--out", str(out)], env=subprocess_env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
        codes = sorted(code for code, _ in results)
        assert codes == [0, 1], results
        refused = next(err for code, err in results if code == 1)
        assert refused.count("\n") == 1 and ("exists" in refused or "created by another process" in refused
                                             or "being created" in refused)
        assert check_trajectory(out) == [] and _hidden(tmp_path) == []
        tally("two processes create one new file", "one records, the other is refused", refused.strip())


def test_of_many_threads_creating_one_path_exactly_one_gets_the_file(tmp_path):
    from spectral_lab.errors import TrajectoryError
    from spectral_lab.trajectory import create_trajectory

    out, wins, refusals = tmp_path / "threads.h5", [], []

    def create():
        try:
            f = create_trajectory(out, config={}, kind="1d", target=np.zeros(8), observed=np.zeros(8),
                                  run_seeds=[{"seed": 0, "weight_seed": 0, "input_seed": 0}], iterations=1)
            wins.append(f)
        except TrajectoryError as exc:
            refusals.append(str(exc))

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(refusals) == 5
    wins[0].close()
    assert _hidden(tmp_path) == []


# --------------------------------------------------------------------------- outputs never destroy inputs

@pytest.fixture
def recorded(tmp_path, capsys):
    out = tmp_path / "traj.h5"
    assert run_cli(capsys, *RECORD, "--iterations", "5", "--out", out)[0] == 0
    return out


@pytest.mark.parametrize("name", ["figure.png", "traj.png", "copy.h5"])
def test_a_figure_never_replaces_a_trajectory_even_with_overwrite(recorded, capsys, name):
    target = recorded.with_name(name)
    target.write_bytes(recorded.read_bytes())
    before = target.read_bytes()
    code, _, err = run_cli(capsys, "plot", "amplitudes", recorded, "-o", target, "--overwrite")
    assert code == 1 and err.count("\n") == 1 and target.read_bytes() == before
    tally("a figure aimed at a trajectory file (any extension, --overwrite)", "refused, file unchanged", err.strip())


def test_an_existing_figure_needs_overwrite_and_bad_extensions_fail_before_any_work(recorded, capsys):
    fig = recorded.with_name("fig.png")
    fig.write_bytes(b"old")
    code, _, err = run_cli(capsys, "plot", "amplitudes", recorded, "-o", fig)
    assert code == 1 and "--overwrite" in err and fig.read_bytes() == b"old"
    assert run_cli(capsys, "plot", "amplitudes", recorded, "-o", fig, "--overwrite")[0] == 0
    assert fig.read_bytes()[:4] == b"\x89PNG"
    code, _, err = run_cli(capsys, "plot", "amplitudes", recorded, "-o", recorded.with_name("fig.xyz"))
    assert code == 1 and not recorded.with_name("fig.xyz").exists()
    assert _hidden(recorded.parent) == []
    tally("a figure onto an existing figure without --overwrite, or an unknown extension", "refused before any work",
          err.strip())


# --------------------------------------------------------------------------- resources and overflow

@pytest.mark.parametrize("argv, message", [
    (("--amps=1e30,1",), "amplitude must be at most"),
    (("--input-scale", "1e25"), "input scale must be at most"),
    (("--task", "denoise", "--sigma", "1e40"), "sigma must be at most"),
    (("--runs", "4096", "--width", "256", "--depth", "10"), "GB of memory"),
])
def test_overflowing_or_oversized_configurations_are_refused_before_a_file_exists(tmp_path, capsys, argv, message):
    out = tmp_path / "big.h5"
    code, _, err = run_cli(capsys, *RECORD, *argv, "--out", out)
    assert code == 1 and err.count("\n") == 1 and message in err, err
    assert not out.exists() and _hidden(tmp_path) == []
    tally("overflowing inputs, or more memory than the machine has", "refused before any file", err.strip())


def test_running_out_of_memory_during_a_run_is_one_line_and_a_failed_file(tmp_path, capsys, monkeypatch):
    from spectral_lab import fit as fit_module

    original = fit_module._noise
    calls = [0]

    def exhausted(generators, z):
        calls[0] += 1
        if calls[0] > 3:
            raise MemoryError
        return original(generators, z)

    monkeypatch.setattr(fit_module, "_noise", exhausted)
    out = tmp_path / "oom.h5"
    code, _, err = run_cli(capsys, *RECORD, "--iterations", "50", "--reg-noise-std", "0.01", "--out", out)
    assert code == 1 and err.count("\n") == 1 and "out of memory at iteration" in err
    with open_trajectory(out) as t:
        assert t.status == "failed"
    assert check_trajectory(out) == []
    tally("out of memory during the run", "one line, the file marked failed", err.strip())


# --------------------------------------------------------------------------- hand-edited files

EDITS = {
    "n_runs 0": lambda f: f.attrs.__setitem__(S.ATTR_N_RUNS, 0),
    "n_runs -1": lambda f: f.attrs.__setitem__(S.ATTR_N_RUNS, -1),
    "format_version -3": lambda f: f.attrs.__setitem__(S.ATTR_VERSION, -3),
    "a non-integer seed": lambda f: f[S.run_group(0)].attrs.__setitem__("seed", 1.5),
    "a non-numeric learning rate": lambda f: f.attrs.__setitem__(
        S.ATTR_CONFIG, json.dumps({**json.loads(f.attrs[S.ATTR_CONFIG]), "fit": {
            **json.loads(f.attrs[S.ATTR_CONFIG])["fit"], "lr": "fast"}})),
    "an all-NaN target": lambda f: f[S.TARGET].__setitem__(..., np.nan),
    "a config whose signal contradicts the kind": lambda f: f.attrs.__setitem__(S.ATTR_KIND, "image"),
    "a signal shape of the wrong rank": lambda f: f.attrs.__setitem__(S.ATTR_SIGNAL_SHAPE, np.array([2, 3])),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_check_rejects_a_hand_edited_file_and_every_reader_refuses_it(recorded, capsys, edit):
    with h5py.File(recorded, "r+") as f:
        EDITS[edit](f)
    assert check_trajectory(recorded) != []
    for argv in (["info", recorded], ["info", "--json", recorded], ["analyze", "amplitudes", recorded],
                 ["plot", "amplitudes", recorded, "-o", recorded.with_name("f.png")]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    assert not recorded.with_name("f.png").exists()
    tally("hand-edited attributes (n_runs, version, seeds, lr, NaN target, kind, shape)",
          "check rejects; every reader refuses in one line", "")


def test_an_iterations_list_shorter_than_the_frames_is_refused_not_an_index_error(recorded, capsys):
    with h5py.File(recorded, "r+") as f:
        f[S.ITERATIONS].resize(1, axis=0)
    assert any("/iterations" in p for p in check_trajectory(recorded))
    for argv in (["analyze", "psnr", recorded], ["analyze", "amplitudes", recorded]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    tally("a /iterations dataset shorter than the frames", "check rejects; the analyzers refuse in one line",
          err.strip())


# --------------------------------------------------------------------------- names, links, stdout, options

def test_a_long_name_is_accepted_and_a_too_long_one_refused_in_one_line(tmp_path, capsys):
    ok = tmp_path / ("n" * 245 + ".h5")
    code, _, err = run_cli(capsys, *RECORD, "--iterations", "2", "--out", ok)
    assert code == 0, err
    too_long = tmp_path / ("n" * 300 + ".h5")
    code, _, err = run_cli(capsys, *RECORD, "--iterations", "2", "--out", too_long)
    assert code == 1 and err.count("\n") == 1 and "bytes long" in err
    tally("a 248-character name; a 300-character name", "recorded; refused in one line", err.strip())


def test_a_symlink_is_replaced_only_with_overwrite(tmp_path, capsys, recorded):
    link = tmp_path / "link.h5"
    link.symlink_to(recorded)
    code, _, err = run_cli(capsys, *RECORD, "--iterations", "2", "--out", link)
    assert code == 1 and "exists" in err and link.is_symlink()
    tally("recording onto a symlink without --overwrite", "refused", err.strip())


def test_output_to_a_full_device_is_one_line(recorded, subprocess_env):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "spectral_lab.cli", "info", str(recorded)], stdout=full,
                              stderr=subprocess.PIPE, text=True, env=subprocess_env, timeout=120)
    assert proc.returncode == 1 and _one_line(proc) and "No space left" in proc.stderr
    tally("stdout to a full device (> /dev/full)", "one line, exit 1", proc.stderr.strip())


@pytest.mark.parametrize("argv, message", [(("--width", "0"), "width must be an integer >= 1"),
                                           (("--kernel", "0"), "kernel must be an integer >= 1"),
                                           (("--model-opt", "width=abc"), "width must be an integer")])
def test_bad_model_options_name_the_option(tmp_path, capsys, argv, message):
    code, _, err = run_cli(capsys, *RECORD, *argv, "--out", tmp_path / "x.h5")
    assert code == 1 and err.count("\n") == 1 and message in err
    tally("bad model options (--width 0, --kernel 0, width=abc)", "one line naming the option", err.strip())


def test_a_sixteen_bit_colour_png_keeps_its_sixteen_bits(tmp_path):
    from spectral_lab.signals import load_image

    pixels = ((np.arange(12 * 10 * 3).reshape(12, 10, 3) * 181) % 65536).astype(np.uint16)
    path = tmp_path / "rgb16.png"
    from spectral_lab.export.frame import png_bytes

    path.write_bytes(png_bytes(pixels))
    loaded = load_image(path)
    np.testing.assert_allclose(loaded, np.moveaxis(pixels, -1, 0) / 65535.0, atol=1e-6)
    tally("a 16-bit colour PNG", "read at 16 bits", "")


def _filtered_png(pixels: np.ndarray) -> bytes:
    """A 16-bit RGB PNG whose rows use the filters 0–4 in turn (how other encoders write)."""
    import struct
    import zlib

    h, w, c = pixels.shape
    raw = pixels.astype(">u2").tobytes()
    stride, bpp = w * c * 2, c * 2
    rows = [np.frombuffer(raw[y * stride:(y + 1) * stride], np.uint8).astype(np.int64) for y in range(h)]
    out = bytearray()
    for y, row in enumerate(rows):
        kind = y % 5
        prior = rows[y - 1] if y else np.zeros(stride, np.int64)
        filtered = np.empty(stride, np.int64)
        for x in range(stride):
            left = row[x - bpp] if x >= bpp else 0
            up, up_left = prior[x], prior[x - bpp] if x >= bpp else 0
            p = left + up - up_left
            paeth = left if abs(p - left) <= abs(p - up) and abs(p - left) <= abs(p - up_left) else (
                up if abs(p - up) <= abs(p - up_left) else up_left)
            pred = [0, left, up, (left + up) // 2, paeth][kind]
            filtered[x] = (row[x] - pred) & 255
        out += bytes([kind]) + bytes(filtered.astype(np.uint8))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(out))) + chunk(b"IEND", b"")


def test_every_png_row_filter_of_a_sixteen_bit_image_is_undone(tmp_path):
    from spectral_lab.signals import load_image

    pixels = np.random.default_rng(7).integers(0, 65536, size=(11, 9, 3)).astype(np.uint16)
    path = tmp_path / "filtered.png"
    path.write_bytes(_filtered_png(pixels))
    np.testing.assert_allclose(load_image(path), np.moveaxis(pixels, -1, 0) / 65535.0, atol=1e-6)


def test_the_readme_fault_table_is_rendered_from_the_tally_alone():
    from fault_table import render

    rows = [{"fault": "Bad file: truncated complete file (1.0%)", "injected": "info", "tried": 6,
             "outcomes": {"one line": 6}, "message": "spectral-lab: error: /tmp/x/run.h5 is truncated"},
            {"fault": "Bad file: truncated killed file (5.0%)", "injected": "info", "tried": 6,
             "outcomes": {"one line": 5, "other": 1}, "message": ""},
            {"fault": "SIGKILL", "tried": 2, "outcomes": {"kept": 2}, "frames_lost": [3, 0], "resumed": 2,
             "resumed_identical": 1, "message": ""}]
    lines = render(rows).splitlines()
    assert len(lines) == 4  # header, rule, the two truncations summed, the kill
    assert "| 12 | one line: 11; other: 1 |" in lines[2] and "`spectral-lab: error: FILE is truncated`" in lines[2]
    assert "| 2 | kept: 2 | 0–3 | 1/2 |" in lines[3]
