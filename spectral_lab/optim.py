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
- ``**options``: ``fit.optimizer_options`` of the configuration (``--optimizer-opt K=V``);
- what the entry declares it ``needs`` of the problem (`CONTEXT`), e.g. SGLD's likelihood.

Register a new optimiser with ``@OPTIMIZERS.register("name", help=...)``; the CLI's
``--optimizer`` choices and help come from this registry. Metadata an entry may declare:
``needs=`` (see `CONTEXT`), ``sampler=True`` (it samples a posterior: a burn-in is resolved
for it, `spectral_lab.config.resolve`), ``default_lr=`` (its learning rate when ``--lr`` is
not given: the presets' rates are Adam's; Eq. 8 SGLD's step is a gradient-descent step on
the mean squared error, which wants a rate ~1000x larger — 10 gave +1.6 dB over the
observation on 64² DIP denoising where 0.01 stayed 5 dB below it, experiments/results/bayes.md).
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch

from .errors import ConfigError
from .registry import Registry

__all__ = ["OPTIMIZERS", "CONTEXT", "make_optimizer", "is_sampler", "SGLD"]

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry(
    "optimizer", skip=("params", "lr", "generators"))
# what the fit can tell an optimiser that declares it needs it (``needs=`` of its entry)
CONTEXT = ("n_observed", "noise_sigma")


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


def is_sampler(name: str) -> bool:
    """Whether optimiser ``name`` samples a posterior (its entry declares ``sampler=True``)."""
    return name in OPTIMIZERS and bool(OPTIMIZERS[name].get("sampler"))


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter], *, lr: float,
                   generators: Sequence[torch.Generator], options=None, context=None) -> torch.optim.Optimizer:
    """Build optimiser ``name`` with its options; bad options are one ConfigError line.

    ``context``: facts of the problem (`CONTEXT`: the number of observed samples, the noise
    level in signal units) handed to an entry that declares it ``needs`` them, unless its
    options set them."""
    entry = OPTIMIZERS.get(name)
    opts = OPTIMIZERS.check_options(name, options or {})
    for key in entry.get("needs", ()):
        if key not in opts:
            value = (context or {}).get(key)
            if value is None:
                raise ConfigError(f"optimizer {name!r} needs {key}, which this problem does not give: "
                                  f"set it with --optimizer-opt {key}=VALUE")
            opts[key] = value
    try:
        return entry.obj(list(params), lr=lr, generators=list(generators), **opts)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"optimizer {name!r} ({_fmt(opts)}): {exc}") from None


def _fmt(opts) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in opts.items()) or "defaults"


def _run_noise(p: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """Standard normal noise of ``p``'s shape, run r's slice drawn from ``generators[r]`` (on
    the CPU, then moved: identical on every device, and independent of the other runs)."""
    draws = torch.stack([torch.randn(p.shape[1:], generator=g) for g in generators])
    return draws.to(device=p.device, dtype=p.dtype)


class SGLD(torch.optim.Optimizer):
    """Stochastic gradient Langevin dynamics (Welling & Teh 2011), as in Cheng et al. (000_…, Eq. 8):

        Δw = ε/2 (∇ log p(y | w) + ∇ log p(w)) + η,   η ~ N(0, ε T),

    with the Gaussian likelihood of the data term, −log p(y | w) = N L(w) / (2σ²) (L the
    mean squared error over the N observed samples, σ the noise level), and weight decay as
    the log-prior, −log p(w) = λ‖w‖²/2. The step is set by ``lr`` as the step on L that plain
    gradient descent would take, ε = 2σ² lr / N, so that

        Δw = −lr ∇L − (σ² lr λ / N) w + N(0, 4 σ² lr T / N).

    ``temperature`` T = 1 samples the posterior (0: gradient descent with weight decay).
    ``precondition``: the RMSprop preconditioner of pSGLD (Li et al. 2016), G = 1/(√v + δ),
    scaling drift and noise alike (the paper's code used Adam instead: see ``sgld_adam``).
    """

    def __init__(self, params, *, lr: float, generators: Sequence[torch.Generator], n_observed: int,
                 noise_sigma: float, weight_decay: float = 0.0, temperature: float = 1.0,
                 precondition: bool = False, beta: float = 0.99, delta: float = 1e-5) -> None:
        for name, value in (("noise_sigma", noise_sigma), ("weight_decay", weight_decay),
                            ("temperature", temperature)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if not noise_sigma > 0:
            raise ValueError("the likelihood's noise level must be > 0: give the noise sigma "
                             "(--sigma, or --optimizer-opt noise_sigma=VALUE in signal units)")
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, temperature=temperature,
                                      precondition=bool(precondition), beta=beta, delta=delta))
        self.generators = list(generators)
        self.scale = float(noise_sigma) ** 2 / float(n_observed)  # σ²/N

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, lam, temp = group["lr"], group["weight_decay"], group["temperature"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if lam:
                    g = g + (self.scale * lam) * p
                precond = None
                if group["precondition"]:
                    v = self.state[p].setdefault("square_avg", torch.zeros_like(p))
                    v.mul_(group["beta"]).addcmul_(p.grad, p.grad, value=1 - group["beta"])
                    precond = 1.0 / (v.sqrt() + group["delta"])
                    g = g * precond
                p.add_(g, alpha=-lr)
                if temp:
                    noise = _run_noise(p, self.generators)
                    var = 4.0 * self.scale * lr * temp
                    p.add_(noise * (var ** 0.5 if precond is None else (var * precond).sqrt()))
        return None


@OPTIMIZERS.register("sgld", help="stochastic gradient Langevin dynamics (Welling & Teh; 000, Eq. 8): a "
                     "posterior sampler; average after --burn-in (default lr 10)", needs=("n_observed", "noise_sigma"),
                     sampler=True, default_lr=10.0)
def sgld(params, *, lr: float, generators: Sequence[torch.Generator], n_observed: int, noise_sigma: float,
         weight_decay: float = 0.0, temperature: float = 1.0, precondition: bool = False) -> torch.optim.Optimizer:
    """SGLD with the data term's Gaussian likelihood (`SGLD`); ``noise_sigma`` defaults to the
    task's noise level, ``n_observed`` to the observed samples."""
    return SGLD(params, lr=lr, generators=generators, n_observed=n_observed, noise_sigma=noise_sigma,
                weight_decay=weight_decay, temperature=temperature, precondition=precondition)


class _AdamLangevin(torch.optim.AdamW):
    """AdamW, then Gaussian noise of standard deviation ``noise · lr`` added to the weights."""

    def __init__(self, params, *, lr, generators, weight_decay, noise, on):
        params = list(params)
        super().__init__(params, lr=lr, weight_decay=weight_decay)
        self.generators, self.noise, self.on = list(generators), float(noise), on

    @torch.no_grad()
    def step(self, closure=None):
        super().step(closure)
        lr = self.param_groups[0]["lr"]
        for group in self.param_groups:
            for p in group["params"]:
                # stacked conv weights are (R, out, in, *kernel): 4 or more dimensions
                if self.on == "all" or p.dim() >= 4:
                    p.add_(_run_noise(p, self.generators), alpha=self.noise * lr)
        return None


@OPTIMIZERS.register("sgld_adam", help="the practice of Cheng et al.'s released code: AdamW, then noise "
                     "N(0, (noise·lr)²) on the conv weights; average after --burn-in", sampler=True)
def sgld_adam(params, *, lr: float, generators: Sequence[torch.Generator], weight_decay: float = 5e-8,
              noise: float = 2.0, on: str = "conv") -> torch.optim.Optimizer:
    """Adam-preconditioned Langevin steps as GP-DIP's denoising code runs them (AdamW with weight
    decay 5e-8, parameter noise of standard deviation 2·lr on every convolution weight, 2 =
    their ``param_noise_sigma``). Not the SGLD of Eq. 8 — its noise does not scale with √lr —
    but what produced the paper's numbers. ``on``: 'conv' (weights of 4+ stacked dimensions)
    or 'all' parameters."""
    if on not in ("conv", "all"):
        raise ValueError(f"on must be 'conv' or 'all', got {on!r}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or noise < 0:
        raise ValueError(f"noise must be a number >= 0, got {noise!r}")
    return _AdamLangevin(params, lr=lr, generators=generators, weight_decay=weight_decay, noise=noise, on=on)
