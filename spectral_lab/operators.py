"""Forward operators of the data term: the task is an operator A applied to the network output.

Fitting and denoising use the identity; inpainting (a mask) and super-resolution (a
down-sampler) slot in as new operators with the same call signature, not a new loop.
"""

from __future__ import annotations

import torch

__all__ = ["Operator", "Identity", "Mask", "OPERATORS"]


class Operator:
    """``A(x)`` for ``x`` of shape ``(R, C, *spatial)``; returns what is compared with y."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class Identity(Operator):
    """A = I: fitting a clean signal or denoising."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Mask(Operator):
    """A = diag(m): only the samples where ``mask`` is 1 enter the loss (inpainting)."""

    def __init__(self, mask: torch.Tensor) -> None:
        self.mask = mask

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask.to(device=x.device, dtype=x.dtype)


OPERATORS = {"identity": Identity, "mask": Mask}
