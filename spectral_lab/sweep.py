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
(``executor.map(record_job, jobs)``); `record_jobs` is that map done sequentially.
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

__all__ = ["Job", "FileState", "Recorded", "Estimate", "inspect_file", "action_of", "record_job", "record_jobs",
           "network_info", "probe_seconds_per_iteration", "estimate_jobs", "estimate_table", "check_storage",
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


def _canonical(config: Mapping[str, Any]) -> str:
    # through RunConfig and JSON: tuples and lists, and fields added since, compare equal
    return json.dumps(json.loads(json.dumps(RunConfig.from_dict(config).to_dict())), sort_keys=True)


def inspect_file(path: str | Path, cfg: RunConfig) -> FileState:
    """`FileState` of ``path`` against ``cfg``; ``FileState(False)`` when there is no file or
    it cannot be read (it will then be recorded anew)."""
    from .trajectory import open_trajectory

    path = Path(path)
    if not path.exists():
        return FileState(False)
    try:
        with open_trajectory(path) as t:
            stored, status, frames = _canonical(t.config), t.status, t.n_frames(0)
    except SpectralLabError:
        return FileState(False)
    # the job's configuration as `record` stores it: checked and with what it leaves open resolved
    return FileState(stored == _canonical(validate(cfg).to_dict()), status, frames)


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


def record_job(job: Job, *, log: Callable[[str], None] | None = None) -> Recorded:
    """Make ``job.path`` hold a complete recording of ``job.config``: reuse, resume or record
    (see the module docstring). Raises `DivergedError` or `SpectralLabError` when the fit
    does not complete (an interrupted file is left resumable)."""
    from .runner import record, resume

    say = log or (lambda message: None)
    state = inspect_file(job.path, job.config)
    act = action_of(state)
    if act == "reuse":
        say(f"  reusing {job.path.name} (complete, same configuration)")
        return Recorded(job, act, 0.0, _built_network(job.config))
    probe = _NetProbe()
    started = time.perf_counter()
    if act == "resume":
        say(f"  resuming {job.path.name} ({state.status})")
        result = resume(job.path, progress=False, callbacks=[probe])
    else:
        job.path.parent.mkdir(parents=True, exist_ok=True)
        result = record(job.config, job.path, overwrite=True, progress=False, callbacks=[probe])
    seconds = time.perf_counter() - started
    _completed(job, result, "resumed" if act == "resume" else "the")
    if act == "record":
        c = job.config
        say(f"  recorded {job.path.name}: {c.model.name} {dict(c.model.options)}, {c.fit.runs} runs x "
            f"{c.fit.iterations} it, lr {c.fit.lr:g} ({c.fit.optimizer}), "
            f"{probe.info['parameters_per_run']:,} params/run, {seconds:.1f} s")
    return Recorded(job, act, seconds, probe.info)


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


def probe_seconds_per_iteration(cfg: RunConfig, steps: int = 3) -> tuple[float, int]:
    """Time ``steps`` optimisation steps of ``cfg`` (after one warm-up step) through the same
    fit loop, without recording. Returns (seconds per iteration for all runs, checkpoint bytes:
    parameters and Adam's two moments of all runs, float32)."""
    from .fit import fit
    from .losses import make_loss
    from .runner import make_problem, prepare_fit, select_device

    problem = make_problem(cfg)
    state, z, y = prepare_fit(cfg, problem, select_device(cfg.fit.device))
    timer = _StepTimer()
    # through the task's operator and data term, as `runner.record` fits (super-resolution's
    # observation is smaller than the output: no operator, no fit)
    loss = make_loss(cfg.loss.name, cfg.loss.options, operator=problem.operator)
    fit(state, z, y, iterations=steps + 1, op=problem.operator, loss=loss, reg_noise_std=cfg.fit.reg_noise_std,
        callbacks=[timer])
    # frames 1 .. steps+1 follow steps 0 .. steps; the first (warm-up) interval is left out
    per_step = (timer.times[-1] - timer.times[1]) / steps
    n_params = sum(p.numel() for p in state.net.parameters())
    return per_step, 3 * 4 * n_params


def estimate_jobs(jobs: Sequence[Job]) -> Estimate:
    """Probe every distinct (signal shape, model, runs, input perturbation) once and scale by
    the iterations left: a file to reuse costs nothing, one to resume only its missing frames."""
    from .runner import make_problem

    cache: dict[str, tuple[float, int]] = {}
    per_it, secs, sizes, shapes = [], [], [], []
    for job in jobs:
        c = job.config
        state = inspect_file(job.path, c)
        act = action_of(state)
        # the cost depends on the signal's shape, not on its pixels: one probe per shape
        shape = tuple(int(n) for n in make_problem(c).shape)
        shapes.append(shape)
        if act == "reuse":
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
        # frames, plus the file's two checkpoint slots (parameters + Adam moments of every run)
        sizes.append(c.fit.runs * remaining * int(np.prod(shape)) * itemsize
                     + (0 if act == "resume" else 2 * checkpoint))
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


def plan(jobs: Sequence[Job], *, estimate_only: bool = False, log: Callable[[str], None] = print) -> Estimate:
    """Print the probe estimate of the jobs; unless ``estimate_only``, refuse what the disk
    cannot hold."""
    log(f"estimating the cost of {len(jobs)} recording(s) (a few timed steps of each distinct setting) ...")
    est = estimate_jobs(jobs)
    log(estimate_table(jobs, est))
    log(f"estimated total: {fmt_seconds(est.total_seconds)} of fitting at the probed speed, "
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
