"""Where a sweep's recordings run: any `concurrent.futures.Executor`, and the map over it.

`run_sweep(jobs, executor)` submits `run_point` once per job that is not already complete
and gathers what came back: a `Recorded` per point, or a `Failure` (a diverged fit, a bad
configuration, a worker that died) — one point's failure never stops the others. A tqdm bar
counts the points. What a point does (reuse, resume, record) depends only on its file
(`spectral_lab.sweep.locate`), so running the same sweep again after a crash or a Ctrl-C
resumes what was unfinished and records nothing that is complete.

The executors (`open_executor`), all used through ``submit`` and futures only:

- ``inline`` (`InlineExecutor`): each point in the calling process when it is submitted —
  the experiments' default, and what the tests compare the others with;
- ``local`` (`local_pool`): a `ProcessPoolExecutor` of spawned workers, each with
  ``threads`` torch threads (default: the cores divided among the workers, so that they do
  not oversubscribe them) and, when CUDA devices exist, one device each
  (``CUDA_VISIBLE_DEVICES`` set per worker before torch starts);
- ``dask``: ``distributed.Client(ADDRESS).get_executor()`` for a running Dask cluster, or a
  ``LocalCluster`` of ``workers`` single-threaded worker processes bound to 127.0.0.1
  (the ``dask`` extra);
- ``submitit``: Slurm through submitit (the ``slurm`` extra); its executors submit jobs but
  are not `concurrent.futures.Executor` s, so `SubmititExecutor` adapts one (without Slurm,
  submitit's ``AutoExecutor`` runs the jobs as local processes).

Workers record into a staging folder on their own disk and move finished files into place
(`spectral_lab.staging`: HDF5's single-writer mode needs POSIX semantics that NFS and
Lustre do not give).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

# no torch, no h5py at import: spawned workers import this module (the initializer) and set
# their threads and device before torch starts
from .errors import ConfigError, DivergedError, SpectralLabError

__all__ = ["EXECUTORS", "WorkerSettings", "Failure", "SweepResult", "InlineExecutor", "SubmititExecutor",
           "local_pool", "open_executor", "run_point", "run_sweep", "available_cores", "default_workers",
           "cuda_devices"]

EXECUTORS = ("inline", "local", "dask", "submitit")


# --------------------------------------------------------------------------- what a worker runs

@dataclass(frozen=True)
class WorkerSettings:
    """What every point of a sweep runs with: torch CPU threads (None: leave the process's
    setting) and the staging folder (`spectral_lab.staging.staging_folder`: None records in
    place, ``"auto"`` the worker's temporary folder)."""

    threads: int | None = None
    staging: str | None = None


@dataclass(frozen=True)
class Failure:
    """A point that did not end complete: ``kind`` is ``diverged`` (its loss became NaN/inf),
    ``error`` (bad input, an unreadable file, an exception in the fit), ``interrupted``
    (stopped by SIGINT/SIGTERM, resumable) or ``lost`` (the executor lost it: a killed
    worker, a cancelled job); ``message`` is one line."""

    job: Any
    kind: str
    message: str

    @property
    def path(self) -> Path:
        return self.job.path


class _StopOnSignal:
    """SIGINT/SIGTERM set a flag the fit polls once per step (the file is left interrupted,
    resumable); a second signal raises KeyboardInterrupt. Only the main thread can install
    signal handlers; elsewhere (a Dask worker's task thread) nothing is installed."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict = {}

    def __call__(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> "_StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)


def run_point(job, settings: WorkerSettings = WorkerSettings()):
    """Record one job where this runs (`spectral_lab.sweep.record_job`); returns its
    `Recorded`, or a `Failure` for anything the fit or its file raised (so that every
    executor reports failures the same way)."""
    if settings.threads is not None:
        import torch

        torch.set_num_threads(settings.threads)
    from .sweep import record_job

    with _StopOnSignal() as stop:
        try:
            return record_job(job, staging=settings.staging, should_stop=stop)
        except DivergedError as exc:
            return Failure(job, "diverged", str(exc))
        except SpectralLabError as exc:
            return Failure(job, "interrupted" if stop() else "error", str(exc))
        except Exception as exc:  # noqa: BLE001 - reported per point; the sweep goes on
            reason = (str(exc).splitlines() or [""])[0]
            return Failure(job, "error", f"{job.path.name}: {type(exc).__name__}: {reason}")


# --------------------------------------------------------------------------- executors

class InlineExecutor(Executor):
    """Runs each call when it is submitted, in the calling process and thread (a sequential
    sweep through the same interface as the others)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - delivered through the future
            future.set_exception(exc)
        return future


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cuda_devices() -> list[str]:
    """The CUDA devices a worker can be given, as ``CUDA_VISIBLE_DEVICES`` entries (what is
    already visible, or 0 .. n-1); empty without CUDA."""
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    visible = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return (visible or [str(i) for i in range(n)])[:n]


def default_workers() -> int:
    """One worker per CUDA device when there are any, else one per core."""
    return len(cuda_devices()) or available_cores()


def _init_worker(threads: int | None, devices: Sequence[str], counter) -> None:
    # runs in each spawned worker before it imports torch: threads and device by environment
    # Ctrl-C reaches every process of the terminal: an idle worker ignores it (the pool is shut
    # down by the main process); a busy one stops its fit after the current step (run_point)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    if devices:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices[index % len(devices)]
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)


def local_pool(workers: int, *, threads: int | None = None, devices: Sequence[str] | None = None) -> ProcessPoolExecutor:
    """A process pool of ``workers`` spawned workers (spawn: a fork of a process that already
    runs torch's thread pools can hang), each with ``threads`` torch threads and, given
    ``devices`` (default `cuda_devices`), worker i pinned to ``devices[i % len(devices)]``."""
    import multiprocessing

    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    ctx = multiprocessing.get_context("spawn")
    devices = cuda_devices() if devices is None else list(devices)
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(threads, devices, ctx.Value("i", 0)))


class SubmititExecutor(Executor):
    """A `concurrent.futures.Executor` over a submitit executor (``submitit.AutoExecutor``
    for Slurm, ``submitit.LocalExecutor`` for tests): each ``submit`` is one submitit job
    whose `Future` a watcher thread completes when the job is done (submitit caches the
    scheduler's answers, so polling every ``poll_seconds`` costs no extra ``sacct`` call)."""

    def __init__(self, executor, *, poll_seconds: float = 0.5) -> None:
        self._executor = executor
        self._poll = poll_seconds
        self._pending: list[tuple[Any, Future]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="submitit-watcher", daemon=True)
        self._watcher.start()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if self._closed.is_set():
            raise RuntimeError("cannot submit after shutdown")
        job = self._executor.submit(fn, *args, **kwargs)
        future: Future = Future()
        future.set_running_or_notify_cancel()
        future.job = job  # the submitit job (its id, logs: job.paths)
        with self._lock:
            self._pending.append((job, future))
        return future

    def _watch(self) -> None:
        while not self._closed.is_set() or self._pending:
            with self._lock:
                pending = list(self._pending)
            for job, future in pending:
                if not job.done():
                    continue
                try:
                    exc = job.exception()
                    if exc is None:
                        future.set_result(job.result())
                    else:
                        future.set_exception(exc)
                except Exception as err:  # noqa: BLE001 - an unreadable result: the point is lost, not the sweep
                    future.set_exception(err)
                with self._lock:
                    self._pending.remove((job, future))
            if self._closed.is_set() and not self._pending:
                return
            time.sleep(self._poll)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            with self._lock:
                pending, self._pending = list(self._pending), []
            for job, future in pending:
                with contextlib.suppress(Exception):
                    job.cancel(check=False)
                future.set_exception(RuntimeError(f"submitit job {job.job_id} cancelled"))
        self._closed.set()
        if wait:
            self._watcher.join()


@contextlib.contextmanager
def open_executor(kind: str, *, workers: int | None = None, threads: int | None = None,
                  scheduler: str | None = None, folder: str | Path | None = None,
                  options: Mapping[str, Any] | None = None) -> Iterator[Executor]:
    """An executor of ``kind`` (one of `EXECUTORS`), closed (its cluster too) on exit.

    ``workers``: processes for ``local`` and a local Dask cluster (default `default_workers`),
    Slurm's array parallelism for ``submitit``; ``threads``: torch threads per worker
    (default: the cores divided among the workers, at least 1); ``scheduler``: the address of
    a running Dask scheduler (``tcp://host:8786``; without it a ``LocalCluster`` on
    127.0.0.1); ``folder``: submitit's folder of job scripts and logs; ``options``:
    ``update_parameters`` of the submitit executor (``timeout_min``, ``slurm_partition``,
    ``gpus_per_node``, ``mem_gb``, ...).
    """
    if kind not in EXECUTORS:
        raise ConfigError(f"unknown executor {kind!r}; choose from {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if scheduler is not None and kind != "dask":
        raise ConfigError(f"--scheduler is the address of a Dask scheduler; it needs --executor dask, not {kind}")
    if options and kind != "submitit":
        raise ConfigError("executor options are submitit's parameters; they need --executor submitit")
    n = workers or default_workers()
    if kind == "inline":
        yield InlineExecutor()
    elif kind == "local":
        pool = local_pool(n, threads=threads)
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    elif kind == "dask":
        with _dask_executor(n, threads, scheduler) as ex:
            yield ex
    else:
        ex = _submitit_executor(n, threads, folder, dict(options or {}))
        try:
            yield ex
        finally:
            ex.shutdown(wait=True)


def _needs(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"this executor needs {module.split('.')[0]}: pip install 'spectral_lab[{extra}]'") from None


@contextlib.contextmanager
def _dask_executor(workers: int, threads: int | None, scheduler: str | None) -> Iterator[Executor]:
    distributed = _needs("distributed", "dask")
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise SpectralLabError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            yield client.get_executor(pure=False)
        finally:
            client.close()
        return
    # one single-threaded worker process per point at a time; torch's threads come from
    # WorkerSettings (Dask's nanny already sets OMP_NUM_THREADS=1 in its workers)
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, silence_logs=40)
    try:
        client = distributed.Client(cluster)
        try:
            yield client.get_executor(pure=False)
        finally:
            client.close()
    finally:
        cluster.close()


def _submitit_executor(workers: int, threads: int | None, folder: str | Path | None,
                       options: dict[str, Any]) -> SubmititExecutor:
    submitit = _needs("submitit", "slurm")
    if folder is None:
        raise ConfigError("the submitit executor needs a folder for its job scripts and logs")
    ex = submitit.AutoExecutor(folder=str(folder))
    params = {"timeout_min": 60, "cpus_per_task": threads or 1, "nodes": 1, "tasks_per_node": 1,
              "slurm_array_parallelism": workers}
    params.update(options)
    try:
        ex.update_parameters(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"submitit refused the executor options: {exc}") from None
    return SubmititExecutor(ex)


# --------------------------------------------------------------------------- the sweep

@dataclass
class SweepResult:
    """What `run_sweep` gathered, in the order of the jobs: a `Recorded` or a `Failure` per
    job (None for points not run because the sweep was interrupted), the sweep's wall time."""

    jobs: list
    outcomes: list
    seconds: float = 0.0
    executor: str = ""  # the executor's class name

    @property
    def recorded(self) -> list:
        return [o for o in self.outcomes if o is not None and not isinstance(o, Failure)]

    @property
    def failures(self) -> list[Failure]:
        return [o for o in self.outcomes if isinstance(o, Failure)]

    def counts(self) -> dict[str, int]:
        """Points per outcome: reuse, resume, record, failed."""
        out = {"reuse": 0, "resume": 0, "record": 0, "failed": 0}
        for o in self.outcomes:
            if o is not None:
                out["failed" if isinstance(o, Failure) else o.action] += 1
        return out

    def raise_for_failures(self) -> None:
        """One line naming the failed points: `DivergedError` when every failure is a
        divergence, `SpectralLabError` otherwise."""
        failures = self.failures
        if not failures:
            return
        shown = "; ".join(f.message if f.path.name in f.message else f"{f.path.name}: {f.message}"
                          for f in failures[:3])
        more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
        message = f"{len(failures)} of {len(self.jobs)} point(s) failed: {shown}{more}"
        if all(f.kind == "diverged" for f in failures):
            raise DivergedError(message)
        raise SpectralLabError(message + "; the same command resumes unfinished points")


def _describe(outcome) -> str:
    from .sweep import describe

    if isinstance(outcome, Failure):
        return f"  FAILED {outcome.path.name} ({outcome.kind}): {outcome.message}"
    return describe(outcome)


def run_sweep(jobs: Sequence, executor: Executor | None = None, *, settings: WorkerSettings = WorkerSettings(),
              progress: bool = True, log: Callable[[str], None] = print,
              cost: Sequence[float] | None = None) -> SweepResult:
    """Bring every job's file to a complete recording of its configuration on ``executor``
    (default `InlineExecutor`).

    ``cost`` (one number per job, e.g. the estimate's seconds): points are submitted most
    costly first, so that on several workers the longest one does not start last
    (`spectral_lab.sweep.wall_seconds`); the result lists them in the order of ``jobs``.

    Complete files are reused here, without submitting anything; every other job is one
    ``executor.submit(run_point, job, settings)``. Failures are gathered per point. On Ctrl-C
    (or a point stopped by a signal) nothing more is submitted, pending points are
    cancelled, running ones stop after their current step (their files stay resumable) and
    KeyboardInterrupt is raised.
    """
    from tqdm.auto import tqdm

    from .sweep import action_of, inspect_file, record_job

    jobs = list(jobs)
    if cost is not None and len(cost) != len(jobs):
        raise ConfigError(f"cost: {len(cost)} numbers for {len(jobs)} points")
    seen: dict[Path, int] = {}
    for i, job in enumerate(jobs):
        key = Path(job.path).absolute()
        if key in seen:
            raise ConfigError(f"points {seen[key]} and {i} of the sweep write the same file {job.path}")
        seen[key] = i
    executor = executor or InlineExecutor()
    started = time.perf_counter()
    outcomes: list = [None] * len(jobs)
    lock = threading.Lock()
    bar = tqdm(total=len(jobs), desc="sweep", unit="point", disable=not progress, dynamic_ncols=True, leave=True)
    stopping = threading.Event()

    def note(i: int, outcome) -> None:
        with lock:
            outcomes[i] = outcome
            with tqdm.external_write_mode():
                log(_describe(outcome))
            bar.update(1)
            failed = sum(isinstance(o, Failure) for o in outcomes)
            if failed:
                bar.set_postfix(failed=failed, refresh=True)
        if isinstance(outcome, Failure) and outcome.kind == "interrupted":
            stopping.set()

    def done(i: int) -> Callable[[Future], None]:
        def callback(future: Future) -> None:
            if future.cancelled():
                return
            exc = future.exception()
            if exc is None:
                note(i, future.result())
            else:  # the executor lost the point: a killed worker, a cancelled or failed job
                reason = (str(exc).strip().splitlines() or [""])[-1] or type(exc).__name__
                note(i, Failure(jobs[i], "lost", f"{type(exc).__name__}: {reason}; the worker did not return"))
        return callback

    futures: dict[int, Future] = {}
    try:
        for i, job in enumerate(jobs):
            if action_of(inspect_file(job.path, job.config)) == "reuse":
                note(i, record_job(job))
        order = range(len(jobs)) if cost is None else sorted(range(len(jobs)), key=lambda i: -cost[i])
        for i in order:
            job = jobs[i]
            if outcomes[i] is not None:
                continue
            if stopping.is_set():
                break
            try:
                futures[i] = executor.submit(run_point, job, settings)
            except Exception as exc:  # noqa: BLE001 - the executor refused it (pickling, sbatch, a closed pool)
                reason = (str(exc).strip().splitlines() or [""])[0]
                note(i, Failure(job, "lost", f"could not submit it: {type(exc).__name__}: {reason}"))
                continue
            futures[i].add_done_callback(done(i))
        wait(list(futures.values()))
    except KeyboardInterrupt:
        stopping.set()
        for f in futures.values():
            f.cancel()
        running = [f for f in futures.values() if not f.done()]
        if running:
            with tqdm.external_write_mode():
                log(f"interrupted: waiting for {len(running)} running point(s) to stop after their current step")
            wait(running, timeout=60)
        raise
    finally:
        bar.close()
    if stopping.is_set():
        raise KeyboardInterrupt
    return SweepResult(jobs, outcomes, time.perf_counter() - started, type(executor).__name__)
