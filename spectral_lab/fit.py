"""The one optimisation loop. It knows no files: recording, progress and checkpoints are callbacks.

Objective, for each run r independently (the runs' losses are summed, which leaves each
run's gradient its own):

    L_r(θ_r) = ℓ(A f_θr(z_r + n_r,i), y),    n_r,i ~ N(0, reg_noise_std²) per step

with A the forward operator of the task (identity for fitting and denoising) and ℓ the
data term (a loss of `spectral_lab.losses`, mean squared error by default). Frame i is the
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

import torch

from .errors import ConfigError
from .models.base import RunNet
from .losses import mse
from .operators import Identity
from .optim import make_optimizer
from .seeding import stream_seed

__all__ = ["Callback", "FitState", "FitResult", "fit", "make_fit_state", "GENERATOR_STREAMS"]


MAX_LR = 1e30

# the generator streams a fit draws from, per run: name -> seeding stream
GENERATOR_STREAMS = {"input_noise": "noise", "optimizer": "optimizer"}


@dataclass
class FitState:
    """What a checkpoint holds: parameters, optimiser state, every per-run generator the fit
    draws from, and the iteration whose forward pass comes next (frames ``< iteration``
    have been produced).

    ``generators`` maps a use to one CPU generator per run: ``input_noise`` (the input
    perturbation of every step) and ``optimizer`` (noise an optimiser draws itself, SGLD).
    """

    net: RunNet
    optimizer: torch.optim.Optimizer
    generators: dict[str, list[torch.Generator]]
    iteration: int = 0

    @property
    def noise_generators(self) -> list[torch.Generator]:
        return self.generators["input_noise"]

    def to_bytes(self, extra: dict | None = None) -> bytes:
        """The checkpoint; ``extra``: the callbacks' own state (a recorder's running statistics)."""
        buf = io.BytesIO()
        torch.save({"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "generators": {k: [g.get_state() for g in gs] for k, gs in self.generators.items()},
                    "iteration": self.iteration, "extra": extra or {}}, buf)
        return buf.getvalue()

    def load_bytes(self, blob: bytes) -> dict:
        """Restore a checkpoint; returns its ``extra`` state."""
        device = next(self.net.parameters()).device
        state = torch.load(io.BytesIO(blob), map_location=device, weights_only=True)
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        # checkpoints of format 1 held the input-noise generators only
        saved = state.get("generators") or {"input_noise": state["noise_generators"]}
        for key, gens in self.generators.items():
            if key in saved:
                for g, s in zip(gens, saved[key]):
                    g.set_state(s.cpu())
        self.iteration = int(state["iteration"])
        return dict(state.get("extra") or {})


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


def make_fit_state(net: RunNet, *, lr: float, optimizer: str = "adam", optimizer_options=None,
                   noise_seeds: Sequence[int] | None = None, context=None) -> FitState:
    """A fresh state: the optimiser over the stacked parameters, and per run one generator of
    each stream in `GENERATOR_STREAMS`, seeded from ``noise_seeds`` (default 0..R-1)."""
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and 0 < lr <= MAX_LR):
        # above ~1e37 Adam's step size overflows float32 inside torch (a RuntimeError)
        raise ConfigError(f"learning rate must be a positive number up to {MAX_LR:g}, got {lr}")
    seeds = list(range(net.runs)) if noise_seeds is None else list(noise_seeds)
    gens = {use: [torch.Generator().manual_seed(stream_seed(s, stream)) for s in seeds]
            for use, stream in GENERATOR_STREAMS.items()}
    opt = make_optimizer(optimizer, net.parameters(), lr=lr, generators=gens["optimizer"],
                         options=optimizer_options, context=context)
    return FitState(net=net, optimizer=opt, generators=gens)


def fit(state: FitState, z: torch.Tensor, y: torch.Tensor, *, iterations: int,
        op: Callable[[torch.Tensor], torch.Tensor] | None = None,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None, reg_noise_std: float = 0.0,
        callbacks: Iterable[Callback] = (), should_stop: Callable[[], bool] | None = None) -> FitResult:
    """Run the DIP optimisation from ``state.iteration`` to ``iterations``.

    Parameters
    ----------
    state : FitState
        Network, optimiser and noise generators (fresh, or loaded from a checkpoint).
    z : Tensor ``(R, C_in, *spatial)``
        The fixed inputs, on the network's device.
    y : Tensor ``(C, *spatial)`` or ``(R, C, *spatial)``
        What each run fits (the observation), on the network's device; its shape is the
        operator's output shape (smaller than the output for super-resolution).
    op : callable, optional
        The forward operator A, ``(R, C, *spatial) -> A's output``; default identity.
    loss : callable, optional
        The data term per run, ``(A f, y) -> (R,)``; default `spectral_lab.losses.mse`.
    iterations : int
        Number of parameter updates; frames ``0 .. iterations`` are produced.
    reg_noise_std : float
        Standard deviation of the fresh Gaussian perturbation of ``z`` at every step.
    should_stop : callable, optional
        Polled once per step; when it returns True the loop stops after the current
        step with status ``interrupted``.
    """
    op = op or Identity()
    loss = loss or mse
    on_iteration = getattr(loss, "on_iteration", None)  # losses that anneal over the iterations
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
            if on_iteration is not None:
                on_iteration(i)
            zi = z if reg_noise_std <= 0 else z + reg_noise_std * _noise(state.noise_generators, z)
            with torch.set_grad_enabled(not last):
                out = net(zi)
                per_run = loss(op(out), y)
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


def _noise(generators: Sequence[torch.Generator], z: torch.Tensor) -> torch.Tensor:
    # Drawn on the CPU from per-run generators: identical on every device, and run r's noise
    # does not depend on which other runs share its batch.
    shape = z.shape[1:]
    draws = torch.stack([torch.randn(shape, generator=g) for g in generators])
    return draws.to(device=z.device, dtype=z.dtype)
