"""Model families, built by name: ``build_model("dip", signal_shape=(3, 64, 64), runs=2)``.

Every model holds R independent runs in stacked tensors (see ``_layers``) and maps an
input ``(R, C_in, *spatial)`` to ``(R, C, *spatial)``. The families are the entries of
`MODELS`: each module of this package registers its class with ``@MODELS.register(name)``,
and the registry imports every module here when it is first read, so a new family is one
new file (see ``conv.py`` for the shortest).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

from ..errors import ConfigError
from .base import MODELS, RunNet

__all__ = ["MODELS", "RunNet", "build_model", "common_crop", "model_class", "model_options", "required_multiple"]


def model_class(name: str) -> type[RunNet]:
    """The class of model family ``name`` (ConfigError naming the families otherwise)."""
    return MODELS.get(name).obj


def model_options(name: str) -> dict[str, Any]:
    """The keyword options of a model family and their defaults."""
    return MODELS.options(name)


def required_multiple(name: str, **options) -> int:
    """The factor the signal's sides must be a multiple of (the network's total stride);
    ConfigError for options that cannot give one."""
    opts = MODELS.check_options(name, options)
    try:
        multiple = int(model_class(name).required_multiple(**{**model_options(name), **opts}))
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ConfigError(f"model {name!r}: {exc}") from None
    if multiple < 1:
        raise ConfigError(f"model {name!r}: its options give a size multiple of {multiple}")
    return multiple


def common_crop(models: Iterable[tuple[str, Mapping[str, Any]]], shape: Sequence[int] | None = None) -> int:
    """The crop multiple under which several models fit the same pixels: the least common
    multiple of their `required_multiple` s (``models``: (name, options) pairs).

    With the signal's ``shape`` ``(C, *spatial)``: 1 when every side is a multiple of it
    already (no crop needed, so nothing to add to a configuration).
    """
    crop = math.lcm(*(required_multiple(name, **dict(options)) for name, options in models))
    if crop > 1 and shape is not None and all(int(side) % crop == 0 for side in shape[1:]):
        return 1
    return crop


def build_model(name: str, *, signal_shape: Sequence[int], runs: int = 1,
                weight_seeds: Sequence[int] | None = None, **options) -> RunNet:
    """Build R runs of model ``name`` for signals of shape ``(C, *spatial)``, on the CPU.

    Each run's weights come from its own seed (``weight_seeds``, default 0..R-1), so run r
    starts from the same weights whether it is trained alone or in a batch.
    """
    cls = model_class(name)
    MODELS.check_options(name, options)
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ConfigError(f"runs must be >= 1, got {runs}")
    if len(signal_shape) not in (2, 3):
        raise ConfigError(f"signal shape must be (C, N) or (C, H, W), got {tuple(signal_shape)}")
    try:
        net = cls(runs=runs, signal_shape=tuple(int(s) for s in signal_shape), **options)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"model {name!r}: {exc}") from None
    net.reset_parameters(list(range(runs)) if weight_seeds is None else list(weight_seeds))
    return net
