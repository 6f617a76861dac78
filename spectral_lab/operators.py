"""Forward operators of the data term: the task is an operator A applied to the network output.

Fitting and denoising use the identity; inpainting (a mask) and super-resolution (a
down-sampler) are other operators with the same call signature, not another loop. An
operator maps the network output ``(R, C, *spatial)`` to what is compared with the
observation y, differentiably.
"""

from __future__ import annotations

import torch

from .registry import Registry

__all__ = ["OPERATORS", "Operator", "Identity", "Mask"]

OPERATORS: Registry = Registry("operator")


class Operator:
    """``A(x)`` for ``x`` of shape ``(R, C, *spatial)``; returns what is compared with y."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


@OPERATORS.register("identity", help="A = I: fitting a clean signal, denoising")
class Identity(Operator):
    """A = I: fitting a clean signal or denoising."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x


@OPERATORS.register("mask", help="A = diag(m): only the known samples enter the loss (inpainting)")
class Mask(Operator):
    """A = diag(m): only the samples where ``mask`` is 1 enter the loss (inpainting)."""

    def __init__(self, mask: torch.Tensor) -> None:
        self.mask = mask

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask.to(device=x.device, dtype=x.dtype)
