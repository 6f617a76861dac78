"""``spectral-lab sweep SPEC --out-dir DIR``: every point of a sweep spec, one file each, on an executor."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from ._common import EXIT_DIVERGED, EXIT_ERROR, EXIT_INTERRUPTED, key_value

#: what the sweep writes beside its files: the command, the spec and every point's outcome
SWEEP_RECORD = "sweep.json"


def add_parser(sub) -> None:
    from ..executors import EXECUTORS

    s = sub.add_parser("sweep", help="record every point of a grid or list of configurations, on local processes, "
                                     "Dask or Slurm",
                       description="Record every point of a sweep spec (JSON or TOML: {\"base\": {RunConfig}, "
                                   "\"grid\": {\"model.options.depth\": [2, 4], ...}, \"points\": [...]}) into "
                                   "DIR/<label>.h5. Complete files of the same configuration are reused, "
                                   "unfinished ones resumed: the same command continues a stopped sweep.")
    s.add_argument("spec", type=Path, help="the sweep spec file (.json or .toml)")
    s.add_argument("--out-dir", type=Path, required=True, help="where the trajectory files go (one per point)")
    s.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: a process pool on this machine (default); dask: a Dask cluster (--scheduler, or a "
                        "LocalCluster on 127.0.0.1); submitit: Slurm through submitit (local processes without "
                        "Slurm); inline: one point after another in this process")
    s.add_argument("--workers", type=int, help="parallel workers (default: one per CUDA device, else one per core); "
                                               "Slurm: how many array tasks run at once")
    s.add_argument("--threads", type=int,
                   help="torch threads per worker (default: the cores divided among the workers, at least 1)")
    s.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786")
    s.add_argument("--executor-opt", type=key_value, action="append", metavar="KEY=VALUE",
                   help="a submitit parameter, e.g. --executor-opt slurm_partition=gpu --executor-opt timeout_min=120 "
                        "--executor-opt gpus_per_node=1 (repeatable)")
    s.add_argument("--staging", default=None, metavar="DIR",
                   help="where workers record before moving each file into place: a folder on the worker's own "
                        "disk (default 'auto': $SPECTRAL_LAB_STAGING or the worker's temporary folder; 'none': "
                        "write in place, only on a local POSIX file system; inline default: none)")
    s.add_argument("--estimate-only", action="store_true", help="print the estimated cost of every point and stop")
    s.add_argument("--list", action="store_true", help="print the points (label and what they set) and stop")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_sweep)


def _staging(a: argparse.Namespace) -> str | None:
    if a.staging is None:
        return None if a.executor == "inline" else "auto"
    if a.staging.lower() == "none":
        return None
    return a.staging if a.staging == "auto" else str(Path(a.staging).expanduser().resolve())


def cmd_sweep(a: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..executors import WorkerSettings, available_cores, default_workers, open_executor, run_sweep
    from ..sweep import plan
    from ..sweep_spec import load_spec, spec_jobs, spec_points

    if a.workers is not None and a.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {a.workers}")
    if a.threads is not None and a.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {a.threads}")
    spec = load_spec(a.spec)
    root = a.spec.resolve().parent
    out_dir = a.out_dir.expanduser().resolve()
    if a.list:
        for p in spec_points(spec, root=root):
            sets = ", ".join(f"{k}={json.dumps(v)}" for k, v in p.overrides.items()) or "the base"
            print(f"{out_dir / (p.label + '.h5')}: {sets}")
        return 0
    jobs = spec_jobs(spec, out_dir, root=root)
    workers = 1 if a.executor == "inline" else (a.workers or default_workers())
    threads = a.threads or max(1, available_cores() // workers)
    staging = _staging(a)
    import torch

    torch.set_num_threads(threads)  # the estimate's probe runs here, as one worker would
    est = plan(jobs, estimate_only=a.estimate_only, staging=staging, workers=workers)
    if a.estimate_only:
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    command = "spectral-lab " + shlex.join(sys.argv[1:]) if Path(sys.argv[0]).name == "spectral-lab" else \
        "spectral-lab " + shlex.join(["sweep", *_argv_of(a)])
    print(f"{len(jobs)} point(s) on {a.executor}" + ("" if a.executor == "inline" else f" ({workers} workers, "
          f"{threads} torch thread(s) each, staging {staging or 'none: in place'})"), file=sys.stderr)
    settings = WorkerSettings(threads=threads, staging=staging)
    try:
        with open_executor(a.executor, workers=workers, threads=threads, scheduler=a.scheduler,
                           folder=out_dir / ".submitit", options=dict(a.executor_opt or [])) as ex:
            result = run_sweep(jobs, ex, settings=settings, progress=not a.quiet, cost=est.seconds)
    except KeyboardInterrupt:
        print(f"spectral-lab: sweep interrupted; unfinished points are resumable: {command}", file=sys.stderr)
        return EXIT_INTERRUPTED
    _write_record(out_dir, a, spec, command, result, workers, threads)
    counts = result.counts()
    print(f"sweep of {len(jobs)} point(s) in {result.seconds:.1f} s: {counts['record']} recorded, "
          f"{counts['resume']} resumed, {counts['reuse']} reused, {counts['failed']} failed; "
          f"{out_dir / SWEEP_RECORD}")
    if result.failures:
        kinds = {f.kind for f in result.failures}
        print(f"spectral-lab: {counts['failed']} point(s) failed (" + ", ".join(sorted(kinds)) + "); run the same "
              f"command again to resume unfinished ones: {command}", file=sys.stderr)
        return EXIT_DIVERGED if kinds == {"diverged"} else EXIT_ERROR
    return 0


def _argv_of(a: argparse.Namespace) -> list[str]:
    """The flags of this sweep as a command line (when not called through the console script)."""
    argv = [str(a.spec), "--out-dir", str(a.out_dir), "--executor", a.executor]
    for flag in ("workers", "threads", "scheduler", "staging"):
        if getattr(a, flag) is not None:
            argv += [f"--{flag}", str(getattr(a, flag))]
    for key, value in a.executor_opt or []:
        argv += ["--executor-opt", f"{key}={value}"]
    return argv


def _write_record(out_dir: Path, a, spec, command: str, result, workers: int, threads: int) -> None:
    """DIR/sweep.json: the command, the spec and every point's outcome (atomically replaced)."""
    from ..executors import Failure

    points = []
    for job, outcome in zip(result.jobs, result.outcomes):
        row = {"file": job.path.name, "label": job.label}
        if isinstance(outcome, Failure):
            row.update(outcome="failed", kind=outcome.kind, message=outcome.message)
        elif outcome is not None:
            row.update(outcome=outcome.action, seconds=round(outcome.seconds, 3),
                       parameters_per_run=outcome.parameters_per_run)
        points.append(row)
    record = {"command": command, "cwd": os.getcwd(), "spec_file": str(a.spec.resolve()), "spec": spec,
              "executor": a.executor, "workers": workers, "threads": threads, "seconds": round(result.seconds, 3),
              "counts": result.counts(), "points": points}
    tmp = out_dir / f".{SWEEP_RECORD}.{os.getpid()}"
    tmp.write_text(json.dumps(record, indent=1, default=str) + "\n")
    os.replace(tmp, out_dir / SWEEP_RECORD)
