"""Optimisers of the fit loop, as registry entries.

An entry is a factory ``factory(params, *, lr, generators, **options) -> torch.optim.Optimizer``:

- ``params``: the stacked parameters of R runs (every tensor has the run as its leading
  dimension, see `spectral_lab.models._layers`); an elementwise update keeps the runs
  independent, so one optimiser serves all R runs;
- ``lr``: the configuration's learning rate (``fit.lr``);
- ``generators``: one CPU ``torch.Generator`` per run (seeded from the run's seed on the
  ``optimizer`` stream), for an optimiser that draws noise of its own (SGLD): drawing run
  r's noise from ``generators[r]`` keeps a run in a batch equal to the same run alone. The
  fit state checkpoints them, so a resumed run continues the same noise;
- ``**options``: ``fit.optimizer_options`` of the configuration (``--optimizer-opt K=V``).

Register a new optimiser with ``@OPTIMIZERS.register("name", help=...)``; the CLI's
``--optimizer`` choices and help come from this registry.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch

from .errors import ConfigError
from .registry import Registry

__all__ = ["OPTIMIZERS", "make_optimizer"]

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry(
    "optimizer", skip=("params", "lr", "generators"))


@OPTIMIZERS.register("adam", help="Adam (fused: one kernel for the whole update)")
def adam(params, *, lr: float, generators: Sequence[torch.Generator], betas=(0.9, 0.999), eps: float = 1e-8,
         weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam. fused=True: one kernel for the whole update (benchmarks/README.md: 2.4x faster
    for the linear net); still elementwise, so stacked runs stay independent."""
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, fused=True)


@OPTIMIZERS.register("sgd", help="plain gradient descent (optionally with momentum)")
def sgd(params, *, lr: float, generators: Sequence[torch.Generator], momentum: float = 0.0,
        weight_decay: float = 0.0, nesterov: bool = False) -> torch.optim.Optimizer:
    """Stochastic gradient descent, ``foreach`` (one kernel per tensor list)."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov,
                           foreach=True)


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter], *, lr: float,
                   generators: Sequence[torch.Generator], options=None) -> torch.optim.Optimizer:
    """Build optimiser ``name`` with its options; bad options are one ConfigError line."""
    opts = OPTIMIZERS.check_options(name, options or {})
    try:
        return OPTIMIZERS.get(name).obj(list(params), lr=lr, generators=list(generators), **opts)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"optimizer {name!r} ({_fmt(opts)}): {exc}") from None


def _fmt(opts) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in opts.items()) or "defaults"
