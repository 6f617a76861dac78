"""The one optimisation loop. It knows no files: recording, progress and checkpoints are callbacks.

Objective, for each run r independently (the runs' losses are summed, which leaves each
run's gradient its own):

    L_r(θ_r) = mean((A f_θr(z_r + n_r,i) - y)²),    n_r,i ~ N(0, reg_noise_std²) per step

with A the forward operator of the task (identity for fitting and denoising). Frame i is the
output of the forward pass of step i, i.e. of the parameters after i updates, so a run of
``iterations`` steps yields ``iterations + 1`` frames (frame 0 = the untrained network).
Exactly one forward pass per step.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from .errors import ConfigError
from .models.base import RunNet
from .operators import Identity, Operator
from .seeding import stream_seed

__all__ = ["Callback", "FitState", "FitResult", "OPTIMIZERS", "fit", "make_fit_state"]


def _adam(params, lr):
    # fused: one kernel for the whole update (benchmarks/README.md: 2.4x faster for the linear
    # net); still elementwise, so stacked runs stay independent
    return torch.optim.Adam(params, lr=lr, fused=True)


def _sgd(params, lr):
    return torch.optim.SGD(params, lr=lr, foreach=True)


OPTIMIZERS: dict[str, Callable] = {"adam": _adam, "sgd": _sgd}
MAX_LR = 1e30


@dataclass
class FitState:
    """What a checkpoint holds: parameters, optimiser state, per-run noise generators, and the
    iteration whose forward pass comes next (frames ``< iteration`` have been produced)."""

    net: RunNet
    optimizer: torch.optim.Optimizer
    noise_generators: list[torch.Generator]
    iteration: int = 0

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        torch.save({"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "noise_generators": [g.get_state() for g in self.noise_generators],
                    "iteration": self.iteration}, buf)
        return buf.getvalue()

    def load_bytes(self, blob: bytes) -> None:
        device = next(self.net.parameters()).device
        state = torch.load(io.BytesIO(blob), map_location=device, weights_only=True)
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        for g, s in zip(self.noise_generators, state["noise_generators"]):
            g.set_state(s.cpu())
        self.iteration = int(state["iteration"])


class Callback:
    """Hooks of the fit loop; override what you need. Callbacks must not modify tensors."""

    def on_start(self, state: FitState) -> None:
        pass

    def on_step_begin(self, state: FitState) -> None:
        """Before the forward pass of ``state.iteration`` (the place to checkpoint)."""

    def on_frame(self, iteration: int, output: torch.Tensor, loss: torch.Tensor) -> None:
        """``output`` ``(R, C, *spatial)`` and ``loss`` ``(R,)`` of one step, detached."""

    def on_end(self, state: FitState, result: "FitResult") -> None:
        pass


@dataclass
class FitResult:
    status: str  # complete | interrupted | diverged | failed
    frames: int  # frames produced (iterations 0 .. frames - 1)
    message: str = ""
    bad_runs: list[int] = field(default_factory=list)
    seconds: float = 0.0


def make_fit_state(net: RunNet, *, lr: float, optimizer: str = "adam",
                   noise_seeds: Sequence[int] | None = None) -> FitState:
    """A fresh state: optimiser over the stacked parameters, one noise generator per run."""
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
    if not (math.isfinite(lr) and 0 < lr <= MAX_LR):
        # above ~1e37 Adam's step size overflows float32 inside torch (a RuntimeError)
        raise ConfigError(f"learning rate must be a positive number up to {MAX_LR:g}, got {lr}")
    seeds = list(range(net.runs)) if noise_seeds is None else list(noise_seeds)
    gens = [torch.Generator().manual_seed(stream_seed(s, "noise")) for s in seeds]
    return FitState(net=net, optimizer=OPTIMIZERS[optimizer](net.parameters(), lr), noise_generators=gens)


def fit(state: FitState, z: torch.Tensor, y: torch.Tensor, *, iterations: int,
        op: Operator | None = None, reg_noise_std: float = 0.0,
        callbacks: Iterable[Callback] = (), should_stop: Callable[[], bool] | None = None) -> FitResult:
    """Run the DIP optimisation from ``state.iteration`` to ``iterations``.

    Parameters
    ----------
    state : FitState
        Network, optimiser and noise generators (fresh, or loaded from a checkpoint).
    z : Tensor ``(R, C_in, *spatial)``
        The fixed inputs, on the network's device.
    y : Tensor ``(C, *spatial)`` or ``(R, C, *spatial)``
        What each run fits (the observation), on the network's device.
    iterations : int
        Number of parameter updates; frames ``0 .. iterations`` are produced.
    reg_noise_std : float
        Standard deviation of the fresh Gaussian perturbation of ``z`` at every step.
    should_stop : callable, optional
        Polled once per step; when it returns True the loop stops after the current
        step with status ``interrupted``.
    """
    op = op or Identity()
    callbacks = list(callbacks)
    net, opt = state.net, state.optimizer
    net.train()
    started = time.perf_counter()
    result = FitResult("complete", state.iteration)
    for cb in callbacks:
        cb.on_start(state)
    try:
        while state.iteration <= iterations:
            i = state.iteration
            for cb in callbacks:
                cb.on_step_begin(state)
            last = i == iterations
            zi = z if reg_noise_std <= 0 else z + reg_noise_std * _noise(state.noise_generators, z)
            with torch.set_grad_enabled(not last):
                out = net(zi)
                per_run = (op(out) - y).pow(2).flatten(1).mean(dim=1)
            finite = torch.isfinite(per_run)
            if not bool(finite.all()):
                bad = [int(r) for r in torch.nonzero(~finite).flatten()]
                kept = f"frames 0 to {i - 1} are kept" if i else "no frame is kept"
                result = FitResult("diverged", i, f"loss is not finite at iteration {i} in run(s) "
                                   f"{', '.join(map(str, bad))}; {kept}", bad)
                break
            detached = out.detach()
            for cb in callbacks:
                cb.on_frame(i, detached, per_run.detach())
            if not last:
                opt.zero_grad(set_to_none=True)
                per_run.sum().backward()
                opt.step()
            state.iteration = i + 1
            result.frames = state.iteration
            if should_stop is not None and not last and should_stop():
                result = FitResult("interrupted", state.iteration,
                                   f"stopped after iteration {i}; resumable from iteration {state.iteration}")
                break
    except BaseException as exc:
        result = FitResult("failed", state.iteration, f"{type(exc).__name__}: {exc}")
        result.seconds = time.perf_counter() - started
        for cb in callbacks:
            try:
                cb.on_end(state, result)
            except Exception:
                pass  # the original error is the one to report
        raise
    result.seconds = time.perf_counter() - started
    for cb in callbacks:
        cb.on_end(state, result)
    return result


def _noise(generators: list[torch.Generator], z: torch.Tensor) -> torch.Tensor:
    # Drawn on the CPU from per-run generators: identical on every device, and run r's noise
    # does not depend on which other runs share its batch.
    shape = z.shape[1:]
    draws = torch.stack([torch.randn(shape, generator=g) for g in generators])
    return draws.to(device=z.device, dtype=z.dtype)
