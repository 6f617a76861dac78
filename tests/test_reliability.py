"""Reliability under faults: SIGKILL at random moments and at chosen points inside the file's
creation, a block write, a flush, a checkpoint and a resume; Ctrl-C and SIGTERM; divergence;
a second writer and live readers; bad files; write errors (full disk, I/O error).

Recordings that get killed run in child processes forked from a forkserver that already has
torch and spectral_lab imported (a fresh Python costs ~2 s, a fork a few ms), on one torch
thread like this process (conftest), so a killed-and-resumed run is compared bitwise with an
uninterrupted one. Every test adds its outcomes to ``FAULTS``; with
``SPECTRAL_LAB_FAULT_TABLE=path`` they are added there as JSON when the module ends (the
README's fault table is filled from it).
"""

from __future__ import annotations

import contextlib
import errno
import faulthandler
import hashlib
import io
import json
import multiprocessing as mp
import multiprocessing.forkserver as forkserver_module
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from spectral_lab import cli, runner
from spectral_lab.cli import record as cli_record
from spectral_lab.trajectory import create as traj_create
from spectral_lab.trajectory import writer as traj_writer
from spectral_lab.trajectory import schema as S
from spectral_lab.fit import Callback
from spectral_lab.trajectory import check_trajectory, open_trajectory

ITERATIONS = 200
RUNS = 3
# Three runs recorded together, the input perturbation on (so the checkpoint's generator
# state matters), a flush every 20 ms and a checkpoint at every flush: kills land in many states.
RECORD = ["record", "--quiet", "--device", "cpu", "--signal", "sines", "--length", "32", "--freqs", "2,7",
          "--amps", "1,0.5", "--model", "conv", "--depth", "3", "--width", "8", "--iterations", str(ITERATIONS),
          "--runs", str(RUNS), "--lr", "3e-3", "--reg-noise-std", "0.05", "--flush-seconds", "0.02",
          "--checkpoint-seconds", "0"]
EXIT_DIVERGED, EXIT_INTERRUPTED = 3, 130


# --------------------------------------------------------------------------- the fault table

FAULTS: dict[str, dict] = {}


def note(fault: str, *, injected: str = "", outcome: str | None = None, frames_kept: int | None = None,
         frames_lost: int | None = None, resumed_identical: bool | None = None, message: str = "") -> None:
    """Add one trial of a fault to the table (``outcome`` None: only the resume of an earlier one).
    ``frames_lost``: frames computed before the fault but not in the file after it."""
    row = FAULTS.setdefault(fault, {"fault": fault, "injected": injected, "tried": 0, "outcomes": {},
                                    "frames_kept": [], "frames_lost": [], "resumed": 0,
                                    "resumed_identical": 0, "message": ""})
    if outcome is not None:
        row["tried"] += 1
        row["outcomes"][outcome] = row["outcomes"].get(outcome, 0) + 1
    if frames_kept is not None:
        row["frames_kept"].append(int(frames_kept))
    if frames_lost is not None:
        row["frames_lost"].append(int(frames_lost))
    if resumed_identical is not None:
        row["resumed"] += 1
        row["resumed_identical"] += int(resumed_identical)
    if message and not row["message"]:
        row["message"] = message


@pytest.fixture(scope="module", autouse=True)
def fault_table():
    yield FAULTS
    from _fakes import add_fault_rows  # here: the forkserver's children import this module without tests/ on sys.path

    add_fault_rows(FAULTS.values())


# --------------------------------------------------------------------------- child processes

def _import_lazy_modules() -> None:
    """Import what a recording would import lazily (the CLI's sub-command parsers, torch's
    optimiser and serialisation machinery), so that the forkserver, which imports this module,
    hands out children that start in milliseconds. No tensor arithmetic: a forked child must
    not inherit a started thread pool."""
    import tqdm.auto  # noqa: F401

    cli.make_parser()
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], foreach=True)
    torch.save({"x": torch.zeros(1)}, io.BytesIO())


_import_lazy_modules()


@pytest.fixture(scope="module")
def forkserver():
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["spectral_lab.cli", "spectral_lab.runner", __name__])
    # The forkserver imports this module by name; Python < 3.13 does not pass it sys.path.
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), saved]))
    try:
        forkserver_module.ensure_running()
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    return ctx


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _inject(point: str, nth: int) -> None:
    """Make the child SIGKILL itself inside ``point`` at its ``nth`` call (in the child only)."""
    calls = [0]

    def due() -> bool:
        calls[0] += 1
        return calls[0] == nth

    W = traj_writer._Writer
    if point == "creation":  # half the layout written, not yet renamed into place
        orig_layout = traj_create._write_layout

        def write_layout(f, **kw):
            f.attrs[S.ATTR_FORMAT] = S.FORMAT_NAME
            f.create_group(S.RUNS)
            f.flush()
            _kill_self()
        traj_create._write_layout = write_layout if nth else orig_layout
    elif point == "frames":  # one run's block written, the others' not
        orig_frames = W.write_frames

        def write_frames(self, start, outputs, losses, *rest):
            if due():
                ds = self.outputs[0]
                ds.resize(start + len(outputs), axis=0)
                ds[start:] = torch.stack(outputs).numpy()[:, 0]
                self.f.flush()
                _kill_self()
            orig_frames(self, start, outputs, losses, *rest)
        W.write_frames = write_frames
    elif point == "flush":  # frames flushed, the count that makes them visible not yet
        orig_flush = W.flush

        def flush(self):
            if self.written != self.flushed and due():
                self.f.flush()
                _kill_self()
            orig_flush(self)
        W.flush = flush
    elif point == "checkpoint":  # slot invalidated and half its bytes written
        orig_ckpt = W.write_checkpoint

        def write_checkpoint(self, iteration, blob):
            if due():
                g = self.f[S.CHECKPOINT_SLOTS[self._slot]]
                g[S.SLOT_META][...] = np.array([-1, 0, 0], dtype=np.int64)
                self.f.flush()
                data = np.frombuffer(blob, dtype=np.uint8)
                ds = g[S.SLOT_BLOB]
                if ds.shape[0] < data.size:
                    ds.resize(data.size, axis=0)
                ds[: data.size // 2] = data[: data.size // 2]
                self.f.flush()
                _kill_self()
            orig_ckpt(self, iteration, blob)
        W.write_checkpoint = write_checkpoint
    elif point == "cutback":  # resume: the count cut back and flushed, the datasets not yet
        orig_resize = h5py.Dataset.resize

        def resize(self, size, axis=None):
            if due():
                _kill_self()
            orig_resize(self, size, axis)
        h5py.Dataset.resize = resize
    elif point == "resume-startup":  # resume: file reopened, model still being built
        orig_problem = runner.make_problem

        def make_problem(cfg):
            _kill_self()
            return orig_problem(cfg)
        runner.make_problem = make_problem
    else:  # pragma: no cover
        raise ValueError(point)


def _child(argv, log, inject, started, produced) -> None:
    """Run ``spectral-lab argv`` in this (forked) child, logging what a test needs to judge a kill:
    output to ``log``, the frame count after every completed flush to ``log.flushed``, and the
    frames produced so far to the shared ``produced``."""
    torch.set_num_threads(1)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", 0), write_through=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", 0), write_through=True)
    flushed = os.open(f"{log}.flushed", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    orig_flush, orig_frame = traj_writer._Writer.flush, traj_writer.TrajectoryRecorder.on_frame

    def flush(self):
        orig_flush(self)
        os.write(flushed, f"{self.flushed}\n".encode())

    def on_frame(self, iteration, output, loss):
        orig_frame(self, iteration, output, loss)
        produced.value = iteration + 1

    traj_writer._Writer.flush, traj_writer.TrajectoryRecorder.on_frame = flush, on_frame
    if inject:
        _inject(*inject)
    started.set()
    sys.exit(cli.main([str(a) for a in argv]))


class Child:
    """One ``spectral-lab`` command in a forked child (see ``_child``)."""

    def __init__(self, ctx, argv, log: Path, inject=None) -> None:
        self.log = log
        self.started, self.produced = ctx.Event(), ctx.Value("q", 0, lock=False)
        log.unlink(missing_ok=True)
        Path(f"{log}.flushed").unlink(missing_ok=True)
        self.proc = ctx.Process(target=_child, args=(list(argv), str(log), inject, self.started, self.produced))
        self.proc.start()
        assert self.started.wait(60), "the child did not start"

    def finish(self, timeout: float = 60) -> int:
        self.proc.join(timeout)
        assert self.proc.exitcode is not None, "the child did not finish"
        return self.proc.exitcode

    def kill_after(self, seconds: float) -> bool:
        """SIGKILL after ``seconds`` unless it ended first; True when it was killed."""
        self.proc.join(seconds)
        if self.proc.exitcode is not None:
            return False
        self.proc.kill()
        self.proc.join()
        return True

    def last_flush(self) -> int:
        lines = Path(f"{self.log}.flushed").read_text().split() if Path(f"{self.log}.flushed").exists() else []
        return int(lines[-1]) if lines else 0

    def output(self) -> list[str]:
        return self.log.read_text().strip().splitlines() if self.log.exists() else []


# --------------------------------------------------------------------------- helpers

class Frames:
    """All frames and losses of a file, in memory: ``frames[r]`` ``(T, 32)``, ``losses[r]`` ``(T,)``."""

    def __init__(self, path: Path) -> None:
        with open_trajectory(path) as t:
            self.status = t.status
            self.frames = [t.frames(r)[: t.n_frames(r)] for r in range(t.n_runs)]
            self.losses = [t.losses(r) for r in range(t.n_runs)]

    @property
    def n(self) -> int:
        return min(len(f) for f in self.frames)


def assert_prefix_of(path: Path, ref: Frames) -> int:
    """The file opens, follows the schema and holds a bitwise prefix of ``ref``; returns its length."""
    assert check_trajectory(path) == []
    got = Frames(path)
    for r in range(RUNS):
        n = len(got.frames[r])
        assert np.array_equal(got.frames[r], ref.frames[r][:n])
        assert np.array_equal(got.losses[r], ref.losses[r][:n])
    return got.n


def identical(path: Path, ref: Frames) -> bool:
    got = Frames(path)
    return got.status == "complete" and all(
        np.array_equal(a, b) for a, b in zip(got.frames + got.losses, ref.frames + ref.losses))


def run_cli(argv) -> tuple[int, list[str], list[str]]:
    """``spectral-lab argv`` in this process: exit code, stdout lines, stderr lines."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue().strip().splitlines(), err.getvalue().strip().splitlines()


def resume_to_end(ctx, path: Path, log: Path) -> int:
    return Child(ctx, ["record", "--resume", str(path), "--quiet"], log).finish()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def reference(forkserver, tmp_path_factory):
    """The uninterrupted recording every faulty one must reproduce, and how long it took."""
    folder = tmp_path_factory.mktemp("reference")
    path = folder / "ref.h5"
    child = Child(forkserver, [*RECORD, "--out", path], folder / "ref.log")
    t0 = time.monotonic()
    assert child.finish() == 0, child.output()
    ref = Frames(path)
    ref.path, ref.seconds = path, time.monotonic() - t0
    assert ref.status == "complete" and ref.n == ITERATIONS + 1
    return ref


# --------------------------------------------------------------------------- 1. kill and resume

@pytest.mark.parametrize("seed", range(10))
def test_killed_runs_resume_to_the_uninterrupted_trajectory(seed, forkserver, reference, tmp_path):
    """SIGKILL the recording, then its resumes, at random moments (up to 3 kills a seed); the
    file stays readable with every flushed frame, and the last resume equals the reference."""
    rng = random.Random(seed)
    path = tmp_path / "b.h5"
    kills, left = 0, 1.0  # left: the share of the run still to compute
    while True:
        argv = ["record", "--resume", path, "--quiet"] if path.exists() else [*RECORD, "--out", path]
        child = Child(forkserver, argv, tmp_path / f"attempt{kills}.log")
        delay = rng.uniform(0.1, 0.9) * reference.seconds * max(left, 0.25)
        if kills >= 3 or not child.kill_after(delay):
            assert child.finish() == 0, child.output()
            break
        kills += 1
        if not path.exists():  # killed before the file was in place: nothing half-made is left
            assert not [p for p in tmp_path.iterdir() if p.name.startswith("b.h5")]
            note("SIGKILL at a random moment", injected="kill -9 of a recording or resume process",
                 outcome="killed before the file existed; recorded anew", frames_kept=0)
            continue
        kept = assert_prefix_of(path, reference)
        assert kept >= child.last_flush(), "a frame counted as flushed is missing"
        left = 1.0 - kept / (ITERATIONS + 1)
        with open_trajectory(path) as t:
            assert t.status != "complete" or kept == ITERATIONS + 1
        note("SIGKILL at a random moment", injected="kill -9 of a recording or resume process",
             outcome="file opens, valid, flushed frames kept", frames_kept=kept,
             frames_lost=max(0, child.produced.value - kept))
        if Frames(path).status == "complete":  # killed after the last write
            break
    same = identical(path, reference)
    note("SIGKILL at a random moment", resumed_identical=same)
    assert same


@pytest.mark.parametrize("point, nth", [
    ("creation", 1),
    ("frames", 1), ("frames", 3),
    ("flush", 1), ("flush", 4),
    ("checkpoint", 1), ("checkpoint", 2), ("checkpoint", 5),
])
def test_kill_inside_a_write_keeps_the_file_readable_and_resumable(point, nth, forkserver, reference, tmp_path):
    path = tmp_path / "b.h5"
    child = Child(forkserver, [*RECORD, "--out", path], tmp_path / "rec.log", inject=(point, nth))
    assert child.finish() == -signal.SIGKILL
    fault = f"SIGKILL inside {point}"
    if point == "creation":
        assert not path.exists(), "a half-made file was left in place"
        note(fault, injected="kill -9 with half the layout written", outcome="no file left (old one untouched)")
        assert Child(forkserver, [*RECORD, "--out", path], tmp_path / "again.log").finish() == 0
    else:
        kept = assert_prefix_of(path, reference)
        assert kept >= child.last_flush()
        note(fault, injected=f"kill -9 in the middle of a {point} write",
             outcome="file opens, valid, flushed frames kept", frames_kept=kept,
             frames_lost=max(0, child.produced.value - kept))
        assert resume_to_end(forkserver, path, tmp_path / "resume.log") == 0
    same = identical(path, reference)
    note(fault, resumed_identical=same)
    assert same


@pytest.mark.parametrize("point", ["cutback", "resume-startup"])
def test_kill_during_a_resume_keeps_the_file_resumable(point, forkserver, reference, tmp_path):
    path = tmp_path / "b.h5"
    first = Child(forkserver, [*RECORD, "--out", path], tmp_path / "rec.log", inject=("flush", 5))
    assert first.finish() == -signal.SIGKILL
    child = Child(forkserver, ["record", "--resume", path, "--quiet"], tmp_path / "r1.log", inject=(point, 1))
    assert child.finish() == -signal.SIGKILL
    kept = assert_prefix_of(path, reference)
    assert resume_to_end(forkserver, path, tmp_path / "r2.log") == 0
    same = identical(path, reference)
    note(f"SIGKILL inside a resume ({point})", injected="kill -9 of `record --resume` while it reopens the file",
         outcome="file opens, valid; resumed again", frames_kept=kept, resumed_identical=same)
    assert same


def test_killed_cli_process_resumes_to_the_uninterrupted_trajectory(forkserver, reference, tmp_path, subprocess_env):
    """The real console entry point (a fresh Python), SIGKILLed once frames are on disk."""
    path = tmp_path / "b.h5"
    proc = subprocess.Popen([sys.executable, "-m", "spectral_lab.cli", *RECORD, "--out", str(path)],
                            env=subprocess_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    frames = _wait_for_frames(path, lambda: proc.poll() is None, at_least=20)
    proc.kill()
    proc.communicate(timeout=30)
    kept = assert_prefix_of(path, reference)
    assert kept >= frames
    code, out, _ = run_cli(["info", path])
    assert code == 0 and "no process is writing it" in out[1] and "--resume" in out[1]
    assert resume_to_end(forkserver, path, tmp_path / "resume.log") == 0
    same = identical(path, reference)
    note("SIGKILL of the CLI process", injected="kill -9 of `spectral-lab record` once frames are flushed",
         outcome="file opens, valid, flushed frames kept", frames_kept=kept, resumed_identical=same)
    assert same


def _wait_for_frames(path: Path, alive, at_least: int, timeout: float = 60) -> int:
    """Follow a live file until it holds ``at_least`` frames; returns what it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert alive(), "the recording ended before it could be interrupted"
        if path.exists():
            try:
                with open_trajectory(path) as t:
                    n = min(t.n_frames(r) for r in range(t.n_runs))
                if n >= at_least:
                    return n
            except Exception:  # noqa: BLE001 - the file may be mid-creation
                pass
        time.sleep(0.005)
    raise AssertionError("no frames appeared")


# --------------------------------------------------------------------------- 2. Ctrl-C / SIGTERM

def test_sigterm_stops_after_the_step_marks_resumable_and_exits_130(forkserver, reference, tmp_path,
                                                                       subprocess_env):
    path = tmp_path / "b.h5"
    argv = [*RECORD, "--out", str(path)]
    proc = subprocess.Popen([sys.executable, "-m", "spectral_lab.cli", *argv], env=subprocess_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_frames(path, lambda: proc.poll() is None, at_least=10)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    lines = err.strip().splitlines()
    assert proc.returncode == EXIT_INTERRUPTED
    assert len(lines) == 1 and lines[0].startswith("spectral-lab: SIGTERM:") and "--resume" in lines[0]
    with open_trajectory(path) as t:
        assert t.status == "interrupted"
    kept = assert_prefix_of(path, reference)
    assert resume_to_end(forkserver, path, tmp_path / "resume.log") == 0
    same = identical(path, reference)
    note("SIGTERM", injected="kill -TERM of `spectral-lab record`", outcome="exit 130, status interrupted",
         frames_kept=kept, frames_lost=0, resumed_identical=same, message=lines[0].replace(str(path), "FILE"))
    assert same


@pytest.mark.parametrize("seed", range(2))
def test_ctrl_c_stops_after_the_step_marks_resumable_and_exits_130(seed, forkserver, reference, tmp_path):
    path = tmp_path / "b.h5"
    child = Child(forkserver, [*RECORD, "--out", path], tmp_path / "rec.log")
    deadline = time.monotonic() + 30
    while child.produced.value < 20 + 60 * seed and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(child.proc.pid, signal.SIGINT)
    assert child.finish() == EXIT_INTERRUPTED
    lines = child.output()
    assert len(lines) == 1 and lines[0].startswith("spectral-lab: SIGINT:")
    with open_trajectory(path) as t:
        assert t.status == "interrupted"
    kept = assert_prefix_of(path, reference)
    assert kept == child.produced.value, "frames computed before the stop were not all kept"
    assert resume_to_end(forkserver, path, tmp_path / "resume.log") == 0
    same = identical(path, reference)
    note("SIGINT (Ctrl-C)", injected="kill -INT of a recording", outcome="exit 130, status interrupted",
         frames_kept=kept, frames_lost=0, resumed_identical=same, message=lines[0].replace(str(path), "FILE"))
    assert same


# --------------------------------------------------------------------------- 3. divergence

def test_huge_learning_rate_stops_with_status_diverged_and_exit_3(tmp_path):
    path = tmp_path / "d.h5"
    argv = [*RECORD, "--out", path, "--lr", "1e6", "--optimizer", "sgd"]
    code, _, err = run_cli(argv)
    assert code == EXIT_DIVERGED
    assert len(err) == 1 and err[0].startswith("spectral-lab: diverged: loss is not finite at iteration ")
    iteration = int(err[0].split("at iteration ")[1].split()[0])
    assert "run(s)" in err[0] and str(path) in err[0]
    assert check_trajectory(path) == []
    with open_trajectory(path) as t:
        assert t.status == "diverged" and f"iteration {iteration}" in t.message
        for r in range(t.n_runs):
            assert t.n_frames(r) == iteration
            assert np.isfinite(t.frames(r)[:iteration]).all()
    code, _, err2 = run_cli(["record", "--resume", path])
    assert code == 1 and len(err2) == 1 and "diverged" in err2[0]
    note("Divergence (lr 1e6)", injected="`--lr 1e6 --optimizer sgd`", outcome="exit 3, status diverged",
         frames_kept=iteration, frames_lost=0, message=err[0].replace(str(path), "FILE"))


class PoisonRun(Callback):
    """Sets one run's first-layer weights to NaN before step ``at`` (fault injection)."""

    def __init__(self, run: int, at: int) -> None:
        self.run, self.at, self.net = run, at, None

    def on_start(self, state) -> None:
        self.net = state.net

    def on_step_begin(self, state) -> None:
        if state.iteration == self.at:
            with torch.no_grad():
                next(self.net.parameters())[self.run].fill_(float("nan"))


@pytest.mark.parametrize("run, at", [(1, 1), (0, 57), (2, 150)])
def test_nan_in_one_run_stops_the_batch_and_leaves_the_others_intact(run, at, reference, tmp_path):
    path = tmp_path / "n.h5"
    cfg = cli_record.build_config(cli.make_parser().parse_args([str(a) for a in [*RECORD, "--out", path]]))
    result = runner.record(cfg, path, progress=False, callbacks=[PoisonRun(run, at)])
    assert result.status == "diverged" and result.bad_runs == [run]
    assert f"iteration {at} in run(s) {run};" in result.message
    kept = assert_prefix_of(path, reference)  # every run, the poisoned one too, equals the clean one
    assert kept == at
    with open_trajectory(path) as t:
        assert t.status == "diverged"
    note("NaN in one run of a batch", injected="NaN weights in one of 3 runs", outcome="status diverged, "
         "the other runs' frames identical to a clean run", frames_kept=kept, frames_lost=0,
         message=result.message)


# --------------------------------------------------------------------------- 4. concurrent access

def test_second_writer_is_refused_and_readers_follow_a_live_run(forkserver, tmp_path):
    path = tmp_path / "live.h5"
    argv = [*RECORD, "--out", path]
    argv[argv.index("--iterations") + 1] = "1000000"
    writer = Child(forkserver, argv, tmp_path / "writer.log")
    try:
        _wait_for_frames(path, writer.proc.is_alive, at_least=5)
        for label, second in (("--resume", ["record", "--resume", path, "--quiet"]),
                              ("--overwrite", [*RECORD, "--out", path, "--overwrite"])):
            code, _, err = run_cli(second)
            assert code == 1 and len(err) == 1
            assert err[0].startswith("spectral-lab: error:") and "being written by another process" in err[0]
            note(f"Second writer ({label}) on a live file", injected=f"`spectral-lab record {label}` on it",
                 outcome="refused, exit 1", message=err[0].replace(str(path), "FILE"))
        with open_trajectory(path) as t:  # one reader follows the growing file
            seen = [t.n_frames(0)]
            for _ in range(3):
                time.sleep(0.1)
                seen.append(t.n_frames(0))
            assert seen == sorted(seen) and seen[-1] > seen[0]
            block = t.frames(0)[: seen[-1]]
            assert np.isfinite(block).all()
        code, out, _ = run_cli(["info", "--json", path])
        assert code == 0 and json.loads("\n".join(out))["writer_alive"] is True
        readers = [["info", path], *[["check", path]] * 5, ["analyze", "amplitudes", path],
                   ["plot", "amplitudes", path, "-o", tmp_path / "live.png"]]
        for reader in readers:
            code, out, err = run_cli(reader)
            assert code == 0 and err == [], (reader, err)
            note("Reading a live file", injected="info, check (x5), analyze, plot during the recording",
                 outcome="works, sees the flushed frames")
        assert writer.proc.exitcode is None, "the live writer was disturbed"
    finally:
        os.kill(writer.proc.pid, signal.SIGTERM)
        assert writer.finish() == EXIT_INTERRUPTED
    assert check_trajectory(path) == []


# --------------------------------------------------------------------------- 5. bad files

TRUNCATIONS = (0.001, 0.01, 0.05, 0.3, 0.9)  # fractions of the file kept
# objects every reading command opens (a damaged checkpoint slot only stops check and resume)
DAMAGED_OBJECTS = ("/", "status/frames", "runs/0/output", "runs/2/loss")


def _header_address(path: Path, name: str) -> int:
    with h5py.File(path, "r", swmr=True, locking=False) as f:
        return h5py.h5o.get_info(f[name].id).addr


def _flip(data: bytes, start: int, n: int = 8) -> bytes:
    b = bytearray(data)
    for i in range(start, start + n):
        b[i] ^= 0xFF
    return bytes(b)


@pytest.fixture(scope="module")
def bad_files(forkserver, reference, tmp_path_factory):
    """Every kind of bad file, made from a complete file and from a killed one."""
    folder = tmp_path_factory.mktemp("bad")
    killed = folder / "killed-source.h5"
    child = Child(forkserver, [*RECORD, "--out", killed], folder / "killed.log", inject=("flush", 5))
    assert child.finish() == -signal.SIGKILL
    made: dict[str, Path] = {}

    def file_for(name: str) -> Path:
        return folder / (re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-") + ".h5")

    def put(name: str, data: bytes) -> None:
        made[name] = file_for(name)
        made[name].write_bytes(data)

    for label, source in (("complete", reference.path), ("killed", killed)):
        data = source.read_bytes()
        for frac in TRUNCATIONS:
            put(f"truncated {label} file ({frac:.1%})", data[: int(len(data) * frac)])
        put(f"corrupted superblock ({label})", _flip(data, 20))
        for obj in DAMAGED_OBJECTS:
            addr = _header_address(reference.path if label == "complete" else killed, obj)
            put(f"corrupted object header of {obj} ({label})", _flip(data, addr + 6))
    put("non-HDF5 file (text)", b"iteration,loss\n0,1.0\n")
    put("non-HDF5 file (empty)", b"")
    put("non-HDF5 file (random bytes)", np.random.default_rng(0).bytes(4096))
    put("HDF5 signature only", b"\x89HDF\r\n\x1a\n")
    other = folder / "other.h5"
    with h5py.File(other, "w") as f:
        f["images"] = np.zeros((2, 4, 4))
        f.attrs["format"] = "something else"
    made["HDF5 file of another layout"] = other

    def edited(name: str, edit) -> None:
        made[name] = file_for(name)
        shutil.copy(reference.path, made[name])
        with h5py.File(made[name], "r+") as f:
            edit(f)

    edited("newer format version", lambda f: f.attrs.__setitem__(S.ATTR_VERSION, S.FORMAT_VERSION + 1))
    edited("trajectory missing a dataset", lambda f: f.__delitem__(S.STATUS_FRAMES))
    edited("trajectory with a wrongly typed attribute", lambda f: f.attrs.__setitem__(S.ATTR_N_RUNS, "three"))
    edited("trajectory with an invalid config", lambda f: f.attrs.__setitem__(S.ATTR_CONFIG, '{"fit": 3}'))
    return made


BAD_FILE_KINDS = [
    *(f"truncated {label} file ({frac:.1%})" for label in ("complete", "killed") for frac in TRUNCATIONS),
    *(f"corrupted superblock ({label})" for label in ("complete", "killed")),
    *(f"corrupted object header of {obj} ({label})" for label in ("complete", "killed")
      for obj in DAMAGED_OBJECTS),
    "non-HDF5 file (text)", "non-HDF5 file (empty)", "non-HDF5 file (random bytes)", "HDF5 signature only",
    "HDF5 file of another layout", "newer format version", "trajectory missing a dataset",
    "trajectory with a wrongly typed attribute", "trajectory with an invalid config",
]
READERS = {
    "info": lambda p, tmp: ["info", p],
    "info --json": lambda p, tmp: ["info", "--json", p],
    "check": lambda p, tmp: ["check", p],
    "analyze amplitudes": lambda p, tmp: ["analyze", "amplitudes", p],
    "plot amplitudes": lambda p, tmp: ["plot", "amplitudes", p, "-o", tmp / "figure.png"],
    "record --resume": lambda p, tmp: ["record", "--resume", p, "--quiet"],
}


@pytest.fixture
def hang_guard():
    """A damaged file must fail fast: dump the stacks and stop if HDF5 retries for minutes."""
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.mark.parametrize("kind", BAD_FILE_KINDS)
def test_bad_file_gets_one_line_and_nonzero_exit_from_every_reader(kind, bad_files, tmp_path, hang_guard):
    path = bad_files[kind]
    before = sha(path)
    for name, make in READERS.items():
        code, out, err = run_cli(make(path, tmp_path))
        assert code != 0, (kind, name, out, err)
        if name == "check" and not err:  # a file check can open: one line per problem, on stdout
            assert out and all(line.startswith(f"{path}: ") for line in out), (kind, out)
            message = out[0]
        else:
            assert len(err) == 1 and err[0].startswith("spectral-lab: error: "), (kind, name, err)
            message = err[0]
        note(f"Bad file: {kind}", injected="info, info --json, check, analyze, plot, record --resume",
             outcome="one line, exit 1, file unchanged", message=message.replace(str(path), "FILE"))
    assert sha(path) == before, "a command changed the bad file"
    assert not (tmp_path / "figure.png").exists()


def test_damaged_checkpoint_stops_check_and_resume_but_not_reading(bad_files, tmp_path, hang_guard):
    killed = bad_files["truncated killed file (90.0%)"].parent / "killed-source.h5"
    path = tmp_path / "slot.h5"
    slot = S.CHECKPOINT_SLOTS[0] + "/" + S.SLOT_META
    path.write_bytes(_flip(killed.read_bytes(), _header_address(killed, slot) + 6))
    before = sha(path)
    code, out, _ = run_cli(["check", path])
    assert code == 1 and any(S.CHECKPOINT_SLOTS[0] in line for line in out)
    code, _, err = run_cli(["record", "--resume", path, "--quiet"])
    assert code == 1 and len(err) == 1 and err[0].startswith("spectral-lab: error: ")
    code, _, err2 = run_cli(["analyze", "amplitudes", path])
    assert code == 0 and err2 == []
    assert sha(path) == before
    note("Bad file: corrupted checkpoint slot (killed)", injected="check, record --resume, analyze",
         outcome="check and resume: one line, exit 1; the frames stay readable",
         message=err[0].replace(str(path), "FILE"))


def test_check_accepts_complete_and_killed_files(bad_files, reference, tmp_path):
    killed = bad_files["truncated killed file (90.0%)"].parent / "killed-source.h5"
    for path in (reference.path, killed):
        code, out, err = run_cli(["check", path])
        assert code == 0 and out == [f"{path}: valid spectral_lab trajectory"] and err == []


# --------------------------------------------------------------------------- 7. write errors

WRITE_FAULTS = [
    ("write_frames", errno.ENOSPC, 1), ("write_frames", errno.ENOSPC, 2), ("write_frames", errno.ENOSPC, 5),
    ("write_frames", errno.EIO, 9), ("flush", errno.EIO, 2), ("flush", errno.ENOSPC, 6),
    ("write_checkpoint", errno.ENOSPC, 1), ("write_checkpoint", errno.EIO, 4),
]


@pytest.mark.parametrize("method, code, nth", WRITE_FAULTS)
def test_write_error_stops_cleanly_keeps_flushed_frames_and_resumes(method, code, nth, reference, tmp_path,
                                                                     monkeypatch):
    path = tmp_path / "w.h5"
    original = getattr(traj_writer._Writer, method)
    calls = [0]

    def failing(self, *args):
        calls[0] += 1
        if calls[0] >= nth:
            raise OSError(code, os.strerror(code))
        return original(self, *args)

    with monkeypatch.context() as m:
        m.setattr(traj_writer._Writer, method, failing)
        exit_code, _, err = run_cli([*RECORD, "--out", path])
    assert exit_code == 1 and len(err) == 1, err
    assert err[0].startswith("spectral-lab: error: writing ") and os.strerror(code) in err[0]
    claimed = int(err[0].split("the file keeps the ")[1].split()[0])
    kept = assert_prefix_of(path, reference)
    assert kept == claimed
    with open_trajectory(path) as t:
        assert t.status == "failed" and os.strerror(code) in t.message
    exit_code, _, err2 = run_cli(["record", "--resume", path, "--quiet"])
    assert exit_code == 0, err2
    same = identical(path, reference)
    note(f"{errno.errorcode[code]} from the writer ({method})", injected=f"OSError({errno.errorcode[code]}) "
         f"from _Writer.{method}", outcome="exit 1, one line, file readable", frames_kept=kept,
         resumed_identical=same, message=err[0].replace(str(path), "FILE"))
    assert same
