"""Many recordings, planned before any is made: estimate, then record, reuse or resume each file.

A sweep is a list of `Job` s, one trajectory file each (its `RunConfig` and its path):

- `plan(jobs)`: time a few optimisation steps of every distinct setting
  (`probe_seconds_per_iteration`), print the cost and storage of every file
  (`estimate_jobs`, `estimate_table`) and refuse what the disk cannot hold (`check_storage`);
- `record_jobs(jobs)`: `record_job` for each, in order. What `record_job` does depends only on
  what the job's file holds (`inspect_file`): a complete recording of the same configuration is
  *reused* (nothing fitted), an unfinished one (``running`` / ``interrupted`` / ``failed``: a
  killed or stopped process) is *resumed* from its last checkpoint, anything else (no file,
  another configuration, a diverged run, an unreadable file) is *recorded* anew, overwriting it.

"Same configuration" compares the file's stored configuration, read back through `RunConfig`
(so a file written before a field existed reads with that field's default), with the job's as
`record` stores it (through `validate`), as JSON. `record_job` is a module-level function of one picklable `Job` that returns a plain
`Recorded`, so that a `concurrent.futures.Executor` can run jobs side by side
(`spectral_lab.executors.run_sweep`); `record_jobs` is that map done sequentially. With a
``staging`` folder a job records on the worker's own disk and its file is moved into place
when the fit ends (`spectral_lab.staging`; `locate` decides between the two copies).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np

from .config import RunConfig, validate
from .errors import DivergedError, SpectralLabError
from .fit import Callback, FitState

__all__ = ["Job", "FileState", "Recorded", "Estimate", "inspect_file", "action_of", "locate", "record_job", "record_jobs", "describe",
           "network_info", "probe_seconds_per_iteration", "wall_seconds", "estimate_jobs", "estimate_table", "check_storage",
           "plan", "markdown_table", "fmt_seconds", "fmt_bytes"]

Action = Literal["reuse", "resume", "record"]
#: statuses of a file whose recording stopped before its last iteration and can be resumed
UNFINISHED = ("running", "interrupted", "failed")


@dataclass(frozen=True)
class Job:
    """One trajectory file to record: its configuration, where it goes, and a free label."""

    path: Path
    config: RunConfig
    label: str = ""


# --------------------------------------------------------------------------- what a file holds

@dataclass(frozen=True)
class FileState:
    """What a job's file holds: whether its configuration is the job's, its status
    (``""`` when there is no readable file) and the frames of run 0."""

    same: bool
    status: str = ""
    frames: int = 0
    live: bool = False


def _canonical(config: Mapping[str, Any]) -> str:
    # through RunConfig and JSON: tuples and lists, and fields added since, compare equal
    return json.dumps(json.loads(json.dumps(RunConfig.from_dict(config).to_dict())), sort_keys=True)


def inspect_file(path: str | Path, cfg: RunConfig) -> FileState:
    """`FileState` of ``path`` against ``cfg``; ``FileState(False)`` when there is no file or
    it cannot be read (it will then be recorded anew). ``live``: a process is writing it."""
    from .trajectory import open_trajectory

    path = Path(path)
    if not path.exists():
        return FileState(False)
    try:
        with open_trajectory(path) as t:
            stored, status, frames = _canonical(t.config), t.status, t.n_frames(0)
            live = status == "running" and t.writer_alive
    except SpectralLabError:
        return FileState(False)
    # the job's configuration as `record` stores it: checked and with what it leaves open resolved
    return FileState(stored == _canonical(validate(cfg).to_dict()), status, frames, live)


def action_of(state: FileState) -> Action:
    """``reuse`` a complete file of the same configuration, ``resume`` an unfinished one,
    ``record`` otherwise."""
    if state.same and state.status == "complete":
        return "reuse"
    if state.same and state.status in UNFINISHED:
        return "resume"
    return "record"


# --------------------------------------------------------------------------- recording

@dataclass(frozen=True)
class Recorded:
    """A job after `record_job`: what was done (``reuse`` / ``resume`` / ``record``), the wall
    time it took (0 when reused) and the network of its configuration (`network_info`)."""

    job: Job
    action: Action
    seconds: float
    network: Mapping[str, Any]

    @property
    def path(self) -> Path:
        return self.job.path

    @property
    def reused(self) -> bool:
        return self.action == "reuse"

    @property
    def parameters_per_run(self) -> int:
        return int(self.network["parameters_per_run"])


def network_info(net, runs: int | None = None) -> dict[str, Any]:
    """What a network is: class, runs, parameters per run and every parameter's per-run shape
    (which tells depth and width apart directly)."""
    return {"class": type(net).__name__, "runs": int(net.runs if runs is None else runs),
            "parameters_per_run": int(net.parameters_per_run()),
            "parameter_shapes": [list(p.shape[1:]) for p in net.parameters()]}


class _NetProbe(Callback):
    """Notes what the fit loop really trains: the network it was handed, not a config's claim."""

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}

    def on_start(self, state: FitState) -> None:
        self.info = network_info(state.net)


def _built_network(cfg: RunConfig) -> dict[str, Any]:
    """`network_info` of ``cfg``'s network, from a one-run build (no fit, no optimiser state)."""
    from .config import run_seeds
    from .runner import build_net, make_problem

    net = build_net(cfg, make_problem(cfg), run_seeds(cfg.fit)[:1])
    return network_info(net, runs=cfg.fit.runs)


def _completed(job: Job, result, what: str) -> None:
    if result.status == "complete":
        return
    if result.status == "diverged":
        raise DivergedError(f"{job.path.name}: {what} fit diverged: {result.message}")
    raise SpectralLabError(f"{job.path.name}: {what} fit ended as {result.status}: {result.message}; "
                           f"run the same command again to resume it")


@dataclass(frozen=True)
class _Where:
    """What `record_job` will do with a job (`locate`): ``action`` (``publish``: a finished
    staged file only needs its move into place), the `FileState` of the file it continues, the
    file it works on, and whether the destination's unfinished file must first be copied there."""

    action: Literal["reuse", "publish", "resume", "record"]
    state: FileState
    work: Path
    copy_in: bool = False


def locate(job: Job, staging: str | Path | None = None) -> _Where:
    """Decide between the destination and its staged copy (`spectral_lab.staging`): reuse a
    complete destination; publish a complete staged file; resume whichever unfinished file of
    the same configuration holds more frames (the staged one on ties: it is the newer);
    record anew otherwise (in the staging folder when there is one)."""
    from .staging import staged_path, staging_folder

    dest = inspect_file(job.path, job.config)
    folder = staging_folder(staging)
    if action_of(dest) == "reuse" or folder is None:
        return _Where(action_of(dest), dest, job.path)
    work = staged_path(job.path, folder)
    staged = inspect_file(work, job.config)
    if action_of(staged) == "reuse":
        return _Where("publish", staged, work)
    dest_frames = dest.frames if action_of(dest) == "resume" else -1
    if action_of(staged) == "resume" and staged.frames >= dest_frames:
        return _Where("resume", staged, work)
    if action_of(dest) == "resume":
        return _Where("resume", dest, work, copy_in=True)
    return _Where("record", FileState(False), work)


def record_job(job: Job, *, log: Callable[[str], None] | None = None, staging: str | Path | None = None,
               should_stop: Callable[[], bool] | None = None) -> Recorded:
    """Make ``job.path`` hold a complete recording of ``job.config``: reuse, resume or record
    (see the module docstring). Raises `DivergedError` or `SpectralLabError` when the fit
    does not complete (an interrupted file is left resumable).

    ``staging``: None records in place; a folder (or ``"auto"``, the machine's temporary
    folder: `spectral_lab.staging.staging_folder`) records there and moves the file into
    place when the fit ends — complete, stopped or diverged, so that any machine can resume
    or inspect it; a killed process leaves its staged file, which `locate` resumes on the
    next run on the same machine. ``should_stop``: polled once per step (a stop leaves the
    file ``interrupted``)."""
    from .runner import record, resume
    from .staging import copy_in, publish

    say = log or (lambda message: None)
    where = locate(job, staging)
    name = job.path.name
    if where.action == "reuse":
        say(f"  reusing {name} (complete, same configuration)")
        return Recorded(job, "reuse", 0.0, _built_network(job.config))
    if where.action == "publish":
        say(f"  moving the finished staged copy of {name} into place")
        publish(where.work, job.path)
        return Recorded(job, "reuse", 0.0, _built_network(job.config))
    if where.state.live:
        raise SpectralLabError(f"{name} is being written by another process")
    staged = where.work != job.path
    probe = _NetProbe()
    started = time.perf_counter()
    try:
        if where.action == "resume":
            if where.copy_in:
                copy_in(job.path, where.work)
            say(f"  resuming {name} ({where.state.status})")
            result = resume(where.work, progress=False, callbacks=[probe], should_stop=should_stop)
        else:
            where.work.parent.mkdir(parents=True, exist_ok=True)
            result = record(job.config, where.work, overwrite=True, progress=False, callbacks=[probe],
                            should_stop=should_stop)
    finally:
        # the fit started (the file is this job's and closed): move it into place however it ended
        if staged and probe.info and where.work.exists():
            publish(where.work, job.path)
    seconds = time.perf_counter() - started
    _completed(job, result, "resumed" if where.action == "resume" else "the")
    rec = Recorded(job, where.action, seconds, probe.info)
    if where.action == "record":
        say(describe(rec))
    return rec


def describe(rec: Recorded) -> str:
    """One line saying what `record_job` did: ``  recorded NAME: model {options}, R runs x N it,
    lr (optimiser), parameters per run, seconds`` (``resumed``, ``reused`` alike)."""
    name = rec.path.name
    if rec.reused:
        return f"  reused {name} (complete, same configuration)"
    c = rec.job.config
    verb = "recorded" if rec.action == "record" else "resumed"
    return (f"  {verb} {name}: {c.model.name} {dict(c.model.options)}, {c.fit.runs} runs x {c.fit.iterations} it, "
            f"lr {c.fit.lr:g} ({c.fit.optimizer}), {rec.parameters_per_run:,} params/run, {rec.seconds:.1f} s")


def record_jobs(jobs: Sequence[Job], *, log: Callable[[str], None] = print) -> list[Recorded]:
    """`record_job` for every job, one after the other, in order."""
    return [record_job(job, log=log) for job in jobs]


# --------------------------------------------------------------------------- estimates

@dataclass
class Estimate:
    """Probe-based cost of a list of jobs: seconds per iteration of every job (all its runs
    together), its remaining seconds and bytes (frames and checkpoint slots; 0 when reused),
    its signal shape, and the free space where the files go."""

    seconds_per_iteration: list[float]
    seconds: list[float]
    bytes: list[int]
    shapes: list[tuple[int, ...]]
    free_bytes: int

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds))

    @property
    def total_bytes(self) -> int:
        return int(sum(self.bytes))


class _StepTimer(Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_frame(self, iteration, output, loss) -> None:
        self.times.append(time.perf_counter())


#: untimed steps before the probe's timed ones: the first steps of a big net fault in the pages of
#: the heap its buffers settle into (`spectral_lab.allocator`); from the third on a step is steady
PROBE_WARMUP_STEPS = 2


def probe_seconds_per_iteration(cfg: RunConfig, steps: int = 3) -> tuple[float, int]:
    """Time ``steps`` optimisation steps of ``cfg`` (after `PROBE_WARMUP_STEPS` untimed ones)
    through the same fit loop, without recording. Returns (seconds per iteration for all runs, checkpoint bytes:
    parameters and Adam's two moments of all runs, float32)."""
    from .fit import fit
    from .losses import make_loss
    from .runner import fit_options, make_problem, prepare_fit, select_device

    cfg = validate(cfg)  # the task's defaults (its data term), as `runner.record` resolves them
    problem = make_problem(cfg)
    state, z, y = prepare_fit(cfg, problem, select_device(cfg.fit.device))
    timer = _StepTimer()
    # through the task's operator and data term, as `runner.record` fits (super-resolution's
    # observation is smaller than the output: no operator, no fit)
    loss = make_loss(cfg.loss.name, cfg.loss.options, operator=problem.operator, iterations=cfg.fit.iterations)
    fit(state, z, y, iterations=steps + PROBE_WARMUP_STEPS, callbacks=[timer], **fit_options(cfg, problem, loss))
    # frame i follows step i - 1; the warm-up steps' intervals are left out
    per_step = (timer.times[-1] - timer.times[PROBE_WARMUP_STEPS]) / steps
    n_params = sum(p.numel() for p in state.net.parameters())
    return per_step, 3 * 4 * n_params


def checkpoint_slots_written(seconds: float, checkpoint_seconds: float) -> int:
    """How many of a file's two checkpoint slots a run of ``seconds`` fills when it checkpoints
    every ``checkpoint_seconds`` (0: at every flush). A run shorter than its interval writes no
    checkpoint unless it is interrupted (one slot then, with fewer frames than planned)."""
    if checkpoint_seconds <= 0:
        return 2
    return int(min(2, seconds // checkpoint_seconds))


def estimate_jobs(jobs: Sequence[Job], *, staging: str | Path | None = None) -> Estimate:
    """Probe every distinct (signal shape, model, runs, input perturbation) once and scale by
    the iterations left: a file to reuse costs nothing, one to resume only its missing frames
    (``staging``: where `record_job` will look for staged copies, see `locate`)."""
    from .runner import make_problem

    cache: dict[str, tuple[float, int]] = {}
    per_it, secs, sizes, shapes = [], [], [], []
    for job in jobs:
        c = job.config
        where = locate(job, staging)
        act, state = where.action, where.state
        # the cost depends on the signal's shape, not on its pixels: one probe per shape
        shape = tuple(int(n) for n in make_problem(c).shape)  # the output's: a blend has no clean image
        shapes.append(shape)
        if act in ("reuse", "publish"):
            per_it.append(0.0)
            secs.append(0.0)
            sizes.append(0)
            continue
        remaining = c.fit.iterations + 1 - state.frames if act == "resume" else c.fit.iterations
        key = json.dumps({"shape": shape, "model": c.to_dict()["model"], "runs": c.fit.runs,
                          "reg": c.fit.reg_noise_std}, sort_keys=True)
        if key not in cache:
            cache[key] = probe_seconds_per_iteration(c)
        s, checkpoint = cache[key]
        per_it.append(s)
        secs.append(s * remaining)
        itemsize = np.dtype(c.record.dtype).itemsize
        # frames, plus the checkpoint slots the run will fill (parameters + optimiser state of every run)
        slots = 0 if act == "resume" else checkpoint_slots_written(s * remaining, c.record.checkpoint_seconds)
        sizes.append(c.fit.runs * remaining * int(np.prod(shape)) * itemsize + slots * checkpoint)
    probe_dir = jobs[0].path.parent if jobs else Path.cwd()
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    return Estimate(per_it, secs, sizes, shapes, shutil.disk_usage(probe_dir).free)


def estimate_table(jobs: Sequence[Job], est: Estimate) -> str:
    """One markdown row per job: file, signal shape, runs, iterations, speed, time, storage."""
    rows = [{"file": j.path.name, "signal shape": "×".join(map(str, shape)), "runs": j.config.fit.runs,
             "iterations": j.config.fit.iterations, "s/it (all runs)": f"{s:.3f}" if s else "—",
             "est. time": fmt_seconds(t) if s else "reused", "storage": fmt_bytes(b)}
            for j, s, t, b, shape in zip(jobs, est.seconds_per_iteration, est.seconds, est.bytes, est.shapes)]
    return markdown_table(rows)


def check_storage(est: Estimate) -> None:
    """Refuse to start a recording that cannot fit on the disk (frames are stored every iteration)."""
    if est.total_bytes > 0.9 * est.free_bytes:
        raise SpectralLabError(
            f"the recordings need {fmt_bytes(est.total_bytes)} but only {fmt_bytes(est.free_bytes)} are free: "
            "every iteration's frame is stored (float32); lower the iterations or the image size, "
            "or record fewer seeds")


def wall_seconds(seconds: Sequence[float], workers: int) -> float:
    """When the last of these jobs ends if ``workers`` take them most costly first, each the
    next one when it is free (what `spectral_lab.executors.run_sweep` does given their cost)."""
    free = [0.0] * max(1, workers)
    for s in sorted(seconds, reverse=True):
        i = free.index(min(free))
        free[i] += s
    return max(free)


def plan(jobs: Sequence[Job], *, estimate_only: bool = False, log: Callable[[str], None] = print,
         staging: str | Path | None = None, workers: int = 1) -> Estimate:
    """Print the probe estimate of the jobs (and, for ``workers`` > 1, the wall time when they
    take the points longest first, `wall_seconds`); unless ``estimate_only``, refuse what the disk cannot hold."""
    log(f"estimating the cost of {len(jobs)} recording(s) (a few timed steps of each distinct setting) ...")
    est = estimate_jobs(jobs, staging=staging)
    log(estimate_table(jobs, est))
    spread = "" if workers <= 1 else (f" (about {fmt_seconds(wall_seconds(est.seconds, workers))} of wall time on "
                                      f"{workers} workers, longest first, if each has a core of its own)")
    log(f"estimated total: {fmt_seconds(est.total_seconds)} of fitting at the probed speed{spread}, "
        f"{fmt_bytes(est.total_bytes)} of trajectories ({fmt_bytes(est.free_bytes)} free)")
    if not estimate_only:
        check_storage(est)
    return est


# --------------------------------------------------------------------------- formatting

def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A GitHub markdown table of dicts; columns in first-seen order, missing cells empty."""
    cols: list[str] = []
    for row in rows:
        cols += [c for c in row if c not in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def fmt_seconds(s: float) -> str:
    """``"42 s"``, ``"17 min"``, ``"3.5 h"``."""
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def fmt_bytes(n: float) -> str:
    """Decimal units: ``"950 kB"``, ``"12 GB"``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000:
            return f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.0f} PB"
