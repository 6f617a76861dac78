"""Model families, built by name: ``build_model("dip", signal_shape=(3, 64, 64), runs=2)``.

Every model holds R independent runs in stacked tensors (see ``_layers``) and maps an
input ``(R, C_in, *spatial)`` to ``(R, C, *spatial)``.
"""

from __future__ import annotations

import inspect
from typing import Sequence

from ..errors import ConfigError
from .base import RunNet
from .conv import ConvNet
from .dip import DipNet
from .linear import LinearNet
from .relunet import ReluNet

MODELS: dict[str, type[RunNet]] = {
    "dip": DipNet,
    "conv": ConvNet,
    "linear": LinearNet,
    "relunet": ReluNet,
}

__all__ = ["MODELS", "RunNet", "build_model", "model_options", "required_multiple"]


def model_options(name: str) -> dict[str, object]:
    """The keyword options of a model family and their defaults."""
    cls = _lookup(name)
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items() if k not in ("self", "runs", "signal_shape")}


def required_multiple(name: str, **options) -> int:
    """The factor the signal's sides must be a multiple of (the network's total stride)."""
    if name == "dip":
        merged = {**model_options("dip"), **options}
        return int(merged["stride"]) ** int(merged["levels"])
    return 1


def build_model(name: str, *, signal_shape: Sequence[int], runs: int = 1,
                weight_seeds: Sequence[int] | None = None, **options) -> RunNet:
    """Build R runs of model ``name`` for signals of shape ``(C, *spatial)``, on the CPU.

    Each run's weights come from its own seed (``weight_seeds``, default 0..R-1), so run r
    starts from the same weights whether it is trained alone or in a batch.
    """
    cls = _lookup(name)
    allowed = model_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"model {name!r} has no option {', '.join(unknown)}; "
                          f"its options are {', '.join(allowed)}")
    if runs < 1:
        raise ConfigError(f"runs must be >= 1, got {runs}")
    if len(signal_shape) not in (2, 3):
        raise ConfigError(f"signal shape must be (C, N) or (C, H, W), got {tuple(signal_shape)}")
    try:
        net = cls(runs=runs, signal_shape=tuple(int(s) for s in signal_shape), **options)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"model {name!r}: {exc}") from None
    net.reset_parameters(list(range(runs)) if weight_seeds is None else list(weight_seeds))
    return net


def _lookup(name: str) -> type[RunNet]:
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None
