"""From a configuration to a recorded trajectory: signal -> model -> fit -> recorder -> file.

``record(cfg, out)`` and ``resume(path)`` are what the CLI and the experiments call.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from . import signals
from .config import RunConfig, run_seeds, validate
from .errors import ConfigError
from .fit import Callback, FitResult, FitState, fit, make_fit_state
from .models import build_model, required_multiple
from .models.base import RunNet
from .trajectory import TrajectoryRecorder, create_trajectory, prepare_resume

__all__ = ["Problem", "make_problem", "select_device", "prepare_fit", "record", "resume", "ProgressBar"]


@dataclass
class Problem:
    """The signals of one configuration, in their stored shapes: ``(N,)`` or ``(C, H, W)``."""

    kind: str
    clean: np.ndarray
    observed: np.ndarray

    @property
    def model_shape(self) -> tuple[int, ...]:
        """``(C, *spatial)``: a 1D signal is one channel."""
        return (1, *self.clean.shape) if self.kind == "1d" else tuple(self.clean.shape)


def _model_kwargs(cfg: RunConfig) -> dict:
    """The model section as keyword arguments, refusing what cannot be one (from a JSON config)."""
    m = cfg.model
    if not isinstance(m.name, str):
        raise ConfigError(f"model name must be a string, got {m.name!r}")
    if not isinstance(m.options, Mapping) or not all(isinstance(k, str) for k in m.options):
        raise ConfigError(f"model options must map option names to values, got {m.options!r}")
    return dict(m.options)


def make_problem(cfg: RunConfig) -> Problem:
    """Build the clean and observed signals; raises SignalError/ConfigError on bad input."""
    # Overflows become non-finite values, refused below with a clear message, not warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        problem = _make_problem(cfg)
    for name, values in (("signal", problem.clean), ("observed (degraded) signal", problem.observed)):
        if not np.isfinite(values).all():
            raise ConfigError(f"the {name} has values that are not finite; amplitudes or noise sigma "
                              f"too large for float32?")
    return problem


def _make_problem(cfg: RunConfig) -> Problem:
    s = cfg.signal
    multiple = required_multiple(cfg.model.name, **_model_kwargs(cfg))
    if s.kind == "sines":
        clean = signals.sines(s.freqs, s.amps, s.phases, s.length)
        kind = "1d"
        if s.length % multiple:
            raise ConfigError(f"model {cfg.model.name!r} needs a length that is a multiple of {multiple}; "
                              f"got {s.length}")
    elif s.kind == "image":
        path = s.image if s.image is not None else signals.sample_image_path()
        clean = signals.load_image(path, grey=s.grey, downsample=s.downsample,
                                   crop_multiple=math.lcm(multiple, s.crop_multiple))
        kind = "image"
    else:
        if s.size % multiple:
            raise ConfigError(f"model {cfg.model.name!r} needs an image side that is a multiple of "
                              f"{multiple}; got --size {s.size}")
        clean = signals.triangle_image((s.size, s.size), s.pattern_fraction)
        kind = "image"
    if cfg.task == "denoise":
        d = cfg.degrade
        # images live in [0, 1] and are clipped like a saved photograph; 1D signals are signed
        observed = signals.degrade(clean, noise=d.noise, sigma=d.sigma, cutoff=d.cutoff, seed=d.seed,
                                   clip=kind == "image", probe=d.probe)
    else:
        observed = clean
    return Problem(kind, np.asarray(clean, dtype=np.float32), np.asarray(observed, dtype=np.float32))


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
                       weight_seeds=[s["weight_seed"] for s in seeds], **_model_kwargs(cfg))


def prepare_fit(cfg: RunConfig, problem: Problem, device: torch.device | None = None
                ) -> tuple[FitState, torch.Tensor, torch.Tensor]:
    """Network, optimiser state, input z ``(R, C_in, *spatial)`` and target y on ``device``."""
    device = device or select_device(cfg.fit.device)
    seeds = run_seeds(cfg.fit)
    try:
        net = build_net(cfg, problem, seeds)
        # None: the family's own input (RunNet.input_dist / input_scale)
        z = net.make_input([s["input_seed"] for s in seeds], dist=cfg.fit.input_dist, scale=cfg.fit.input_scale)
        net = net.to(device)
        _dry_run(net, z.to(device), (len(seeds), *problem.model_shape))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    except (ArithmeticError, RuntimeError, MemoryError, TypeError) as exc:
        # options the model family does not check itself (width 0, a kernel longer than the
        # signal, ...): refuse them here, before any file exists
        opts = ", ".join(f"{k}={v!r}" for k, v in _model_kwargs(cfg).items()) or "defaults"
        reason = (str(exc).splitlines() or [""])[0]
        raise ConfigError(f"model {cfg.model.name!r} ({opts}) does not work on a signal of shape "
                          f"{problem.model_shape}: {type(exc).__name__}: {reason}") from None
    state = make_fit_state(net, lr=cfg.fit.lr, optimizer=cfg.fit.optimizer,
                           optimizer_options=dict(cfg.fit.optimizer_options), noise_seeds=[s["input_seed"] for s in seeds])
    y = torch.from_numpy(problem.observed).reshape(problem.model_shape).to(device)
    return state, z.to(device), y


def _dry_run(net: RunNet, z: torch.Tensor, shape: tuple[int, ...]) -> None:
    """One forward pass in eval mode (no state changes: BatchNorm statistics stay as they are)
    to check that the network maps z to finite outputs of the signal's shape."""
    net.eval()
    try:
        with torch.no_grad():
            out = net(z)
    finally:
        net.train()
    if tuple(out.shape) != shape:
        raise ConfigError(f"model output has shape {tuple(out.shape)}, not {shape}")
    if not bool(torch.isfinite(out).all()):
        raise ConfigError("the untrained network's output is not finite; input scale too large?")


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
        now = time.monotonic()
        if now - self._last > 0.5:
            self._last = now
            self.bar.set_postfix(loss=f"{float(loss.mean()):.3e}", refresh=False)

    def on_end(self, state: FitState, result: FitResult) -> None:
        if self.bar is not None:
            self.bar.close()


def record(cfg: RunConfig, out: str | Path, *, overwrite: bool = False, progress: bool = True,
           should_stop: Callable[[], bool] | None = None,
           callbacks: Sequence[Callback] = ()) -> FitResult:
    """Record the configured runs into ``out``. Every input is checked before the file exists."""
    validate(cfg)
    problem = make_problem(cfg)
    device = select_device(cfg.fit.device)
    state, z, y = prepare_fit(cfg, problem, device)
    seeds = run_seeds(cfg.fit)
    f = create_trajectory(out, config=cfg.to_dict(), kind=problem.kind, target=problem.clean,
                          observed=problem.observed, run_seeds=seeds, iterations=cfg.fit.iterations,
                          dtype=cfg.record.dtype, compression=cfg.record.compression, overwrite=overwrite)
    return _run(cfg, state, z, y, f, 0, progress, should_stop, callbacks)


def resume(path: str | Path, *, progress: bool = True, should_stop: Callable[[], bool] | None = None,
           callbacks: Sequence[Callback] = ()) -> FitResult:
    """Continue an unfinished recording from its last checkpoint (bitwise identical on CPU)."""
    point, f = prepare_resume(path)
    try:
        cfg = RunConfig.from_dict(point.config)
        problem = make_problem(cfg)
        state, z, y = prepare_fit(cfg, problem)
        if point.blob is not None:
            state.load_bytes(point.blob)
    except BaseException:
        f.close()
        raise
    return _run(cfg, state, z, y, f, point.frames, progress, should_stop, callbacks)


def _run(cfg, state, z, y, f, frames, progress, should_stop, callbacks) -> FitResult:
    try:
        recorder = TrajectoryRecorder(f, frames=frames, flush_seconds=cfg.record.flush_seconds,
                                      checkpoint_seconds=cfg.record.checkpoint_seconds)
    except BaseException:
        f.close()
        raise
    bar = ProgressBar(cfg.fit.iterations + 1, desc=f"{cfg.model.name} x{cfg.fit.runs}", disable=not progress)
    return fit(state, z, y, iterations=cfg.fit.iterations, reg_noise_std=cfg.fit.reg_noise_std,
               callbacks=[recorder, bar, *callbacks], should_stop=should_stop)
