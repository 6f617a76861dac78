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
from typing import Any, Callable, Iterable, Sequence

import torch

from .config import PRECISIONS
from .errors import ConfigError
from .models.base import RunNet
from .losses import mse
from .operators import Identity
from .optim import make_optimizer
from .seeding import run_normal, stream_seed

__all__ = ["Callback", "FitState", "FitResult", "Diverged", "fit", "make_fit_state", "GENERATOR_STREAMS", "PRECISIONS"]


MAX_LR = 1e30

# the generator streams a fit draws from, per run: name -> seeding stream
GENERATOR_STREAMS = {"input_noise": "noise", "optimizer": "optimizer"}


@dataclass
class FitState:
    """What a checkpoint holds: parameters, optimiser state, every per-run generator the fit
    draws from, and the iteration whose forward pass comes next (frames ``< iteration``
    have been produced).

    ``generators`` maps a use to one generator per run: ``input_noise`` (the input
    perturbation of every step) and ``optimizer`` (noise an optimiser draws itself, SGLD);
    on the CPU (the same numbers on every device) unless made with ``noise_device``.
    ``optimizer``: a `spectral_lab.optim.RunOptimizer` or any object with
    ``torch.optim.Optimizer``'s interface.
    """

    net: RunNet
    optimizer: Any
    generators: dict[str, list[torch.Generator]]
    iteration: int = 0
    watch: Any = field(default=None, repr=False, compare=False)  # set while `fit` runs

    def check_finite(self) -> None:
        """Check that the losses of every frame produced so far are finite (one host-device
        synchronisation; none when the fit has checked them already); raises `Diverged`.
        For a callback about to write frames when the fit checks only every few steps."""
        if self.watch is not None:
            self.watch.check()

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
                   noise_seeds: Sequence[int] | None = None, context=None,
                   noise_device: torch.device | str | None = None) -> FitState:
    """A fresh state: the optimiser over the stacked parameters, and per run one generator of
    each stream in `GENERATOR_STREAMS`, seeded from ``noise_seeds`` (default 0..R-1), on the
    CPU or on ``noise_device`` (`spectral_lab.seeding.run_normal`: the same seeds give other
    numbers there; no copy from the host at each step)."""
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and 0 < lr <= MAX_LR):
        # above ~1e37 Adam's step size overflows float32 inside torch (a RuntimeError)
        raise ConfigError(f"learning rate must be a positive number up to {MAX_LR:g}, got {lr}")
    seeds = list(range(net.runs)) if noise_seeds is None else list(noise_seeds)
    where = torch.device(noise_device or "cpu")
    gens = {use: [torch.Generator(device=where).manual_seed(stream_seed(s, stream)) for s in seeds]
            for use, stream in GENERATOR_STREAMS.items()}
    opt = make_optimizer(optimizer, net.parameters(), lr=lr, generators=gens["optimizer"],
                         options=optimizer_options, context=context)
    return FitState(net=net, optimizer=opt, generators=gens)


class Diverged(Exception):
    """A loss was not finite: raised by `FitState.check_finite` (in the loop, or in a callback
    that needs its frames checked before it writes them); the fit ends ``diverged``."""

    def __init__(self, iteration: int, runs: list[int]) -> None:
        super().__init__(f"loss is not finite at iteration {iteration} in run(s) {', '.join(map(str, runs))}")
        self.iteration, self.runs = iteration, runs


class _FiniteWatch:
    """Whether each step's losses are finite, checked in blocks: the flags stay on the device
    until a check, which costs one host-device synchronisation however many steps it covers."""

    def __init__(self, first: int) -> None:
        self.pending: list[tuple[int, torch.Tensor]] = []
        self.checked = first  # the frames before this iteration have finite losses

    def add(self, iteration: int, per_run: torch.Tensor) -> None:
        self.pending.append((iteration, torch.isfinite(per_run.detach())))

    def check(self) -> None:
        if not self.pending:
            return
        flags = torch.stack([f for _, f in self.pending])  # (steps, R)
        ok = bool(flags.all())  # the one synchronisation
        if ok:
            self.checked = self.pending[-1][0] + 1
            self.pending.clear()
            return
        row = int((~flags.all(dim=1)).nonzero()[0])
        iteration = self.pending[row][0]
        self.checked = iteration
        self.pending.clear()
        raise Diverged(iteration, [int(r) for r in torch.nonzero(~flags[row]).flatten()])


def default_check_every(device: torch.device) -> int:
    """Steps between two finiteness checks: 1 on the CPU (reading a CPU tensor does not wait for
    anything, and the loop stops at the diverging step itself), 64 on a GPU, where each check
    waits for the device to finish its queue."""
    return 1 if device.type == "cpu" else 64


def fit(state: FitState, z: torch.Tensor, y: torch.Tensor, *, iterations: int,
        op: Callable[[torch.Tensor], torch.Tensor] | None = None,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None, reg_noise_std: float = 0.0,
        callbacks: Iterable[Callback] = (), should_stop: Callable[[], bool] | None = None,
        precision: str = "fp32", compile: bool = False, check_every: int | None = None) -> FitResult:
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
    precision : 'fp32' or 'bf16'
        'bf16': the network's forward pass under ``torch.autocast`` in bfloat16 (its output
        and the loss in float32; parameters and optimiser state stay float32). Faster where
        the hardware has bf16 arithmetic, but the outputs move (experiments/results/precision.md).
    compile : bool
        Run the network through ``torch.compile`` (the first steps compile; the numbers may
        differ from eager mode in the last bits).
    check_every : int, optional
        Steps between two checks that every loss is finite (each check synchronises host and
        device once); default `default_check_every`. With more than 1, callbacks may receive
        the frames of a diverging step and up to ``check_every - 1`` after it before the fit
        ends ``diverged`` at the first non-finite step; ``FitResult.frames`` says which are
        valid, and a callback about to write frames calls ``state.check_finite()`` first.
    """
    op = op or Identity()
    loss = loss or mse
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    on_iteration = getattr(loss, "on_iteration", None)  # losses that anneal over the iterations
    callbacks = list(callbacks)
    net, opt = state.net, state.optimizer
    forward = _compiled(net) if compile else net
    autocast = precision == "bf16"
    check_every = default_check_every(z.device) if check_every is None else max(1, int(check_every))
    watch = state.watch = _FiniteWatch(state.iteration)
    net.train()
    started = time.perf_counter()
    result = FitResult("complete", state.iteration)
    for cb in callbacks:
        cb.on_start(state)
    try:
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
                    with torch.autocast(z.device.type, dtype=torch.bfloat16, enabled=autocast):
                        out = forward(zi)
                    if autocast:
                        out = out.float()
                    per_run = loss(op(out), y)
                watch.add(i, per_run)
                if last or len(watch.pending) >= check_every:
                    watch.check()
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
            watch.check()
        except Diverged as d:
            i = d.iteration
            kept = f"frames 0 to {i - 1} are kept" if i else "no frame is kept"
            result = FitResult("diverged", i, f"{d}; {kept}", d.runs)
    except BaseException as exc:
        result = FitResult("failed", state.iteration, f"{type(exc).__name__}: {exc}")
        result.seconds = time.perf_counter() - started
        for cb in callbacks:
            try:
                cb.on_end(state, result)
            except Exception:
                pass  # the original error is the one to report
        raise
    finally:
        state.watch = None
    result.seconds = time.perf_counter() - started
    for cb in callbacks:
        cb.on_end(state, result)
    return result


def _compiled(net: RunNet):
    """``torch.compile`` of the network's forward (imported only when asked for: it brings in
    torch._dynamo and inductor, seconds of start-up)."""
    return torch.compile(net)


def _noise(generators: Sequence[torch.Generator], z: torch.Tensor) -> torch.Tensor:
    # per-run generators: run r's noise does not depend on which other runs share its batch
    return run_normal(generators, z.shape[1:], device=z.device, dtype=z.dtype)
