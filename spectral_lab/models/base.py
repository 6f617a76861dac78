"""The contract every model family follows, and the input it is fed."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..seeding import stream_seed
from ._layers import RunModule

INPUT_DISTRIBUTIONS = ("uniform", "normal")


class RunNet(nn.Module):
    """R independent networks of one family, trained together.

    Subclasses set ``runs``, ``ndim`` (1 or 2), ``in_channels``, ``out_channels`` and
    ``spatial`` (the signal's spatial shape), build their layers from ``_layers`` and
    implement ``forward(z) -> out`` with ``z`` of shape ``(R, in_channels, *spatial)`` and
    ``out`` of shape ``(R, out_channels, *spatial)``.
    """

    runs: int
    ndim: int
    in_channels: int
    out_channels: int
    spatial: tuple[int, ...]

    def reset_parameters(self, weight_seeds: Sequence[int]) -> None:
        """Draw every run's weights from a generator seeded with that run's weight seed."""
        if len(weight_seeds) != self.runs:
            raise ValueError(f"need {self.runs} weight seeds, got {len(weight_seeds)}")
        generators = [torch.Generator().manual_seed(stream_seed(s, "weights")) for s in weight_seeds]
        for module in self.modules():
            if isinstance(module, RunModule):
                module.reset_parameters(generators)

    def make_input(self, input_seeds: Sequence[int], *, dist: str = "uniform",
                   scale: float = 0.1) -> torch.Tensor:
        """The fixed random input z, ``(R, in_channels, *spatial)``, float32 on the CPU.

        ``uniform``: U(0, scale), as in the DIP reference code (``var = 1/10``);
        ``normal``: N(0, scale²). Each run's slice comes from its own input seed.
        """
        if dist not in INPUT_DISTRIBUTIONS:
            raise ValueError(f"unknown input distribution {dist!r}; choose from {INPUT_DISTRIBUTIONS}")
        shape = (self.in_channels, *self.spatial)
        out = torch.empty(len(input_seeds), *shape)
        for r, seed in enumerate(input_seeds):
            g = torch.Generator().manual_seed(stream_seed(seed, "input"))
            if dist == "uniform":
                out[r] = torch.rand(shape, generator=g) * scale
            else:
                out[r] = torch.randn(shape, generator=g) * scale
        return out

    def parameters_per_run(self) -> int:
        return sum(p.numel() for p in self.parameters()) // self.runs


def output_activation(name: str) -> nn.Module:
    """'sigmoid' (images in [0,1]) or 'linear' (signed 1D signals)."""
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "linear":
        return nn.Identity()
    raise ValueError(f"unknown output activation {name!r}; choose 'sigmoid' or 'linear'")
