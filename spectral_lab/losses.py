"""Data terms of the fit, as registry entries: ``loss(A f, y) -> (R,)``, one value per run.

An entry is a class taking keyword options (``--loss-opt KEY=VALUE``) and the task's
forward ``operator`` (for the samples it observes); its instances are called on the
operator's output ``(R, C, *spatial')`` and the observation ``(C, *spatial')`` (or
``(R, C, *spatial')``) and return the per-run loss ``(R,)``. The runs' losses are summed
before the backward pass, so each run's gradient stays its own. What a trajectory stores
as ``/runs/<r>/loss`` is this value: the data term actually minimised.

- ``mse`` (default): mean over every channel and sample of (A f − y)², the DIP's data
  term. With the inpainting mask A = diag(m) the unknown samples are 0 on both sides, so
  this is the masked squared error divided by all samples (as in the DIP reference code),
  i.e. the known-sample mean times the known fraction.
- ``multiscale`` (the student study, shared/papers/003_…, Section 4.2): Σ_s w_s · L_s with
  L_s = ‖M_s ⊙ (O_s − I_s)‖² / ‖M_s‖₁ on average-pooled images, scales 1, 2, 4 and weights
  1, 0.5, 0.25 by default. The paper pools O, I and M alike; pooling I where it is unknown
  (0 in the observation) would pull partly known cells towards 0, so here O_s and I_s are
  the means over the *known* samples of each s × s cell, pool(M ⊙ ·) / pool(M), weighted by
  M_s = pool(M), the cell's known fraction. At s = 1 this is the known-sample mean squared
  error; with every sample known it is the MSE of the pooled images.
- ``blend`` (003, appendix A3): the image-blending objective, see `Blend`.

A loss whose value depends on the iteration (the blend objective anneals its transition map)
defines ``on_iteration(i)``; the fit loop calls it before the forward pass of step i.
"""

from __future__ import annotations

import inspect
import math
from typing import Sequence

import torch
import torch.nn.functional as F

from .errors import ConfigError
from .registry import Registry

__all__ = ["LOSSES", "MSE", "MultiScale", "Blend", "mse", "make_loss"]

LOSSES: Registry = Registry("loss", skip=("operator", "iterations"))


@LOSSES.register("mse", help="mean squared error over every sample (the DIP data term)")
class MSE:
    """mean over channels and samples of (A f − y)², per run."""

    def __init__(self, *, operator=None) -> None:
        pass

    def __call__(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (pred - y).pow(2).flatten(1).mean(dim=1)


mse = MSE()


@LOSSES.register("multiscale", help="Σ_s w_s · known-sample MSE after average pooling by s (003, Sec. 4.2)")
class MultiScale:
    """Σ_s w_s ‖M_s ⊙ (O_s − I_s)‖² / ‖M_s‖₁ over scales s (see the module doc)."""

    def __init__(self, *, scales: Sequence[int] = (1, 2, 4), weights: Sequence[float] = (1.0, 0.5, 0.25),
                 operator=None) -> None:
        scales, weights = list(scales), list(weights)
        if not scales or len(scales) != len(weights):
            raise ConfigError(f"multiscale needs as many weights as scales, got scales {scales} and weights {weights}")
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in scales):
            raise ConfigError(f"multiscale scales must be integers >= 1, got {scales}")
        if any(isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0
               for w in weights):
            raise ConfigError(f"multiscale weights must be finite numbers >= 0, got {weights}")
        self.scales, self.weights = scales, [float(w) for w in weights]
        known = None if operator is None else operator.known
        self._known = None if known is None else torch.from_numpy(known)
        self._cache: dict[tuple, torch.Tensor] = {}

    def _mask(self, pred: torch.Tensor) -> torch.Tensor:
        key = (pred.device, pred.dtype)
        if key not in self._cache:
            m = torch.ones((1, 1, *pred.shape[2:])) if self._known is None else self._known[None]
            if tuple(m.shape[2:]) != tuple(pred.shape[2:]):
                raise ConfigError(f"the loss's mask {tuple(m.shape[2:])} does not match the operator's output "
                                  f"{tuple(pred.shape[2:])}")
            self._cache[key] = m.to(device=pred.device, dtype=pred.dtype)
        return self._cache[key]

    def __call__(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        m = self._mask(pred)
        y = y.expand_as(pred) if y.dim() == pred.dim() else y.unsqueeze(0).expand_as(pred)
        pool = F.avg_pool1d if pred.dim() == 3 else F.avg_pool2d
        channels = pred.shape[1]
        total = pred.new_zeros(pred.shape[0])
        for s, w in zip(self.scales, self.weights):
            if w == 0:
                continue
            if s == 1:
                ms, po, py = m, pred * m, y * m
            else:
                ms, po, py = pool(m, s), pool(pred * m, s), pool(y * m, s)
            # po / ms and py / ms are the known-sample means of each cell; ms (po/ms - py/ms)^2
            # = (po - py)^2 / ms, with cells of no known sample left out
            inv = torch.where(ms > 0, 1.0 / ms.clamp_min(1e-12), torch.zeros_like(ms))
            err = ((po - py) ** 2 * inv).flatten(1).sum(dim=1)
            total = total + w * err / (channels * ms.sum())
        return total


@LOSSES.register("blend", help="the image-blending objective of 003 (appendix A3): region-wise pixel, "
                 "low-frequency, illumination, gradient and texture terms")
class Blend:
    """`spectral_lab.blend.objective.blend_loss` against the blend operator's foreground,
    background and mask, annealed over the fit's ``iterations`` (the fit loop tells the loss
    its iteration through `on_iteration`). ``weights``: per-term weights overriding the
    paper's (pixel 50, low_freq 25, illum 20, grad 6, dir 4, blend 12, aniso 18); every other
    option of the objective (``soft_size``, ``anneal_power``, ...) as its keyword."""

    def __init__(self, *, weights=None, operator=None, iterations: int = 1, **options) -> None:
        from .blend.objective import BLEND_OPTIONS, BLEND_WEIGHTS

        if operator is None or getattr(operator, "name", None) != "blend":
            raise ConfigError("the blend loss needs the blend task (record --task blend --foreground A "
                              "--background B --mask M)")
        unknown = sorted(set(options) - set(BLEND_OPTIONS))
        if unknown:
            raise ConfigError(f"loss 'blend' has no option {', '.join(unknown)}; its options are weights, "
                              f"{', '.join(BLEND_OPTIONS)}")
        bad = sorted(set(weights or {}) - set(BLEND_WEIGHTS))
        if bad:
            raise ConfigError(f"the blend objective has no term {', '.join(bad)}; its terms are {', '.join(BLEND_WEIGHTS)}")
        self.weights, self.options, self.iterations = dict(weights or {}), options, max(1, int(iterations))
        self.iteration = 0
        self._arrays = {k: torch.from_numpy(v.astype("float32")) for k, v in operator.arrays.items()}
        self._cache: dict[tuple, tuple] = {}

    def on_iteration(self, iteration: int) -> None:
        self.iteration = int(iteration)

    def __call__(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from .blend.objective import blend_loss

        key = (pred.device, pred.dtype)
        if key not in self._cache:
            a = self._arrays
            self._cache[key] = tuple(a[k].to(device=pred.device, dtype=pred.dtype)
                                     for k in ("foreground", "background")) + (
                a["mask"][0].to(device=pred.device, dtype=pred.dtype),)
        fg, bg, mask = self._cache[key]
        return blend_loss(pred, fg, bg, mask, iteration=min(self.iteration, self.iterations),
                          iterations=self.iterations, weights=self.weights, **self.options)


def make_loss(name: str, options=None, *, operator=None, iterations: int | None = None):
    """Build loss ``name`` with its options, the task's operator and the fit's number of
    iterations (for losses that anneal); ConfigError for unknown options."""
    opts = LOSSES.check_options(name, options or {})
    entry = LOSSES.get(name).obj
    context = {"operator": operator}
    if iterations is not None and "iterations" in inspect.signature(entry.__init__).parameters:
        context["iterations"] = iterations
    try:
        return entry(**opts, **context)
    except TypeError as exc:
        raise ConfigError(f"loss {name!r}: {exc}") from None
