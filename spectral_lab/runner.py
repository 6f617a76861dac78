"""From a configuration to a recorded trajectory: signal -> model -> fit -> recorder -> file.

``record(cfg, out)`` and ``resume(path)`` are what the CLI and the experiments call.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .allocator import reuse_freed_memory
from .config import RunConfig, run_seeds, validate
from .errors import ConfigError
from .fit import Callback, FitResult, FitState, fit, make_fit_state
from .losses import make_loss
from .models import build_model
from .models.base import RunNet
from .problem import Problem, make_problem, model_kwargs
from .resources import ResourceError, check_memory, estimate_memory, forward_with_activation_bytes, scale_estimate
from .trajectory import TrajectoryRecorder, chunk_frames, create_trajectory, prepare_resume

__all__ = ["Problem", "make_problem", "select_device", "prepare_fit", "fit_options", "record", "resume", "ProgressBar"]


def select_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when available, else the CPU; asking for CUDA without one is an error."""
    if not isinstance(name, str):
        raise ConfigError(f"device must be a string such as 'cpu' or 'cuda:0', got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but this torch build sees no CUDA device")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


def build_net(cfg: RunConfig, problem: Problem, seeds: Sequence[dict]) -> RunNet:
    return build_model(cfg.model.name, signal_shape=problem.model_shape, runs=len(seeds),
                       weight_seeds=[s["weight_seed"] for s in seeds], **model_kwargs(cfg))


def fit_context(cfg: RunConfig, problem: Problem) -> dict:
    """What an optimiser may need of the problem (`spectral_lab.optim.CONTEXT`): the number of
    observed samples and the noise level in signal units (None without synthetic noise)."""
    known = problem.operator.known
    channels = problem.observed_model_shape[0]
    n = int(known.sum() * channels) if known is not None else int(problem.observed.size)
    noisy = cfg.task != "fit" and cfg.degrade.noise not in (None, "none") and cfg.degrade.sigma > 0
    return {"n_observed": n, "noise_sigma": cfg.degrade.sigma / 255.0 if noisy else None}


def prepare_fit(cfg: RunConfig, problem: Problem, device: torch.device | None = None
                ) -> tuple[FitState, torch.Tensor, torch.Tensor]:
    """Network, optimiser state, input z ``(R, C_in, *spatial)`` and observation y on ``device``.

    Sets up glibc's malloc to reuse the fit's large buffers (`spectral_lab.allocator`)."""
    reuse_freed_memory()
    device = device or select_device(cfg.fit.device)
    seeds = run_seeds(cfg.fit)

    def make(seeds_):
        net = build_net(cfg, problem, seeds_)
        if problem.guide is not None:  # every run sees the guide image
            z = torch.from_numpy(problem.guide).unsqueeze(0).expand(len(seeds_), *problem.guide.shape).clone()
        else:
            # None: the family's own input (RunNet.input_dist / input_scale)
            z = net.make_input([s["input_seed"] for s in seeds_], dist=cfg.fit.input_dist,
                               scale=cfg.fit.input_scale)
        net = net.to(device)
        return net, z, _dry_run(net, z.to(device), (len(seeds_), *problem.model_shape))

    try:
        # one run first: its memory, times R, is checked before R runs are built
        one, z, one_bytes = make(seeds[:1])
        estimate = estimate_memory(one, one_bytes, runs=1, frame_elements=int(np.prod(problem.shape)),
                                   block_frames=chunk_frames(problem.shape, 4),
                                   posterior=cfg.record.burn_in is not None)
        check_memory(scale_estimate(estimate, len(seeds)), device)
        if len(seeds) == 1:
            net = one
        else:
            del one
            net, z, _ = make(seeds)
    except MemoryError:
        raise ResourceError(f"the model does not fit in memory on a signal of shape {problem.model_shape}, not even "
                            "one run") from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    except (ArithmeticError, RuntimeError, MemoryError, TypeError) as exc:
        # options the model family does not check itself (a kernel longer than the signal,
        # ...): refuse them here, before any file exists
        opts = ", ".join(f"{k}={v!r}" for k, v in model_kwargs(cfg).items()) or "defaults"
        reason = (str(exc).splitlines() or [""])[0]
        raise ConfigError(f"model {cfg.model.name!r} ({opts}) does not work on a signal of shape "
                          f"{problem.model_shape}: {type(exc).__name__}: {reason}") from None
    state = make_fit_state(net, lr=cfg.fit.lr, optimizer=cfg.fit.optimizer,
                           optimizer_options=dict(cfg.fit.optimizer_options),
                           noise_seeds=[s["input_seed"] for s in seeds], context=fit_context(cfg, problem),
                           noise_device=device if cfg.fit.noise_device == "device" else None)
    y = torch.from_numpy(problem.observed).reshape(problem.observed_model_shape).to(device)
    return state, z.to(device), y


def _dry_run(net: RunNet, z: torch.Tensor, shape: tuple[int, ...]) -> int:
    """One forward pass in eval mode (no state changes: BatchNorm statistics stay as they are)
    to check that the network maps z to finite outputs of the signal's shape; returns the
    bytes of its layers' outputs (`spectral_lab.resources`)."""
    net.eval()
    try:
        out, activation_bytes = forward_with_activation_bytes(net, z)
    finally:
        net.train()
    if tuple(out.shape) != shape:
        raise ConfigError(f"model output has shape {tuple(out.shape)}, not {shape}")
    if not bool(torch.isfinite(out).all()):
        raise ConfigError("the untrained network's output is not finite; input scale too large?")
    return activation_bytes


class ProgressBar(Callback):
    """A tqdm bar: iterations/s and the mean loss over runs (updated a few times a second)."""

    def __init__(self, total: int, desc: str = "fit", disable: bool = False) -> None:
        self.total, self.desc, self.disable = total, desc, disable
        self.bar = None
        self._last = 0.0

    def on_start(self, state: FitState) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, initial=state.iteration, desc=self.desc, unit="it",
                        disable=self.disable, dynamic_ncols=True, leave=True)

    def on_frame(self, iteration: int, output: torch.Tensor, loss: torch.Tensor) -> None:
        self.bar.update(1)
        if self.disable:
            return
        now = time.monotonic()
        if now - self._last > 0.5:  # reading the loss waits for a GPU: a few times a second, not per step
            self._last = now
            self.bar.set_postfix(loss=f"{float(loss.mean()):.3e}", refresh=False)

    def on_end(self, state: FitState, result: FitResult) -> None:
        if self.bar is not None:
            self.bar.close()


def record(cfg: RunConfig, out: str | Path, *, overwrite: bool = False, progress: bool = True,
           should_stop: Callable[[], bool] | None = None,
           callbacks: Sequence[Callback] = ()) -> FitResult:
    """Record the configured runs into ``out``. Every input is checked before the file exists;
    the file stores the configuration as resolved (task defaults, guide channels)."""
    cfg = validate(cfg)
    problem = make_problem(cfg)
    loss = make_loss(cfg.loss.name, cfg.loss.options, operator=problem.operator, iterations=cfg.fit.iterations)
    device = select_device(cfg.fit.device)
    state, z, y = prepare_fit(cfg, problem, device)
    seeds = run_seeds(cfg.fit)
    op = problem.operator
    _check_initial_loss(state, z, y, op, loss, problem)
    f = create_trajectory(out, config=cfg.to_dict(), kind=problem.kind, target=problem.clean,
                          observed=problem.observed, run_seeds=seeds, iterations=cfg.fit.iterations,
                          dtype=cfg.record.dtype, compression=cfg.record.compression, overwrite=overwrite,
                          operator={"name": op.name, "options": op.options, "arrays": op.arrays},
                          signal_shape=problem.shape, posterior=cfg.record.burn_in is not None,
                          snapshots=cfg.record.snapshots, n_params=state.net.parameters_per_run())
    return _run(cfg, problem, loss, state, z, y, f, 0, 0, {}, progress, should_stop, callbacks)


def resume(path: str | Path, *, progress: bool = True, should_stop: Callable[[], bool] | None = None,
           callbacks: Sequence[Callback] = ()) -> FitResult:
    """Continue an unfinished recording from its last checkpoint (bitwise identical on CPU)."""
    point, f = prepare_resume(path)
    try:
        cfg = RunConfig.from_dict(point.config)
        problem = make_problem(cfg)
        loss = make_loss(cfg.loss.name, cfg.loss.options, operator=problem.operator, iterations=cfg.fit.iterations)
        state, z, y = prepare_fit(cfg, problem)
        extra = state.load_bytes(point.blob) if point.blob is not None else {}
    except BaseException:
        f.close()
        raise
    return _run(cfg, problem, loss, state, z, y, f, point.frames, point.iteration, extra, progress, should_stop,
                callbacks)


def _check_initial_loss(state: FitState, z: torch.Tensor, y: torch.Tensor, op, loss, problem: Problem) -> None:
    """The untrained network's data term must be finite: a signal, an amplitude or a noise level
    too large for float32 would otherwise end as "diverged" at iteration 0, with a file."""
    with torch.no_grad():
        value = loss(op(state.net(z)), y)
    if not bool(torch.isfinite(value).all()):
        peak = float(np.max(np.abs(problem.observed)))
        raise ConfigError(f"the untrained network's loss is not finite: the observation is too large for float32 "
                          f"(max |y| = {peak:.3g}); lower the amplitudes, the noise sigma or the input scale")


def fit_options(cfg: RunConfig, problem: Problem, loss) -> dict:
    """The keyword arguments of `spectral_lab.fit.fit` that ``cfg`` sets: the task's operator and
    data term, the input perturbation, precision and compilation (what a recording and the
    estimate's probe both fit with)."""
    return {"op": problem.operator, "loss": loss, "reg_noise_std": cfg.fit.reg_noise_std,
            "precision": cfg.fit.precision, "compile": cfg.fit.compile}


def _run(cfg, problem, loss, state, z, y, f, frames, iteration, extra, progress, should_stop, callbacks) -> FitResult:
    try:
        r = cfg.record
        recorder = TrajectoryRecorder(f, frames=frames, iteration=iteration, flush_seconds=r.flush_seconds,
                                      checkpoint_seconds=r.checkpoint_seconds, every=r.every, burn_in=r.burn_in,
                                      snapshots=r.snapshots, state=extra)
    except BaseException:
        f.close()
        raise
    bar = ProgressBar(cfg.fit.iterations + 1, desc=f"{cfg.model.name} x{cfg.fit.runs}", disable=not progress)
    try:
        return fit(state, z, y, iterations=cfg.fit.iterations, callbacks=[recorder, bar, *callbacks],
                   should_stop=should_stop, **fit_options(cfg, problem, loss))
    except MemoryError:
        raise _out_of_memory(recorder.path, state) from None
    except RuntimeError as exc:  # torch's allocators: "out of memory", "can't allocate memory"
        if "out of memory" in str(exc) or "allocate memory" in str(exc):
            raise _out_of_memory(recorder.path, state) from None
        raise


def _out_of_memory(name: str, state: FitState) -> ResourceError:
    """The run ran out of memory: the recorder has marked the file failed (it keeps its flushed
    frames); one line says so."""
    return ResourceError(f"out of memory at iteration {state.iteration}; {name} keeps the frames flushed before "
                         f"and is marked failed (record again with fewer runs or a smaller signal)")
