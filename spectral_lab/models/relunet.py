"""``relunet``: a coordinate MLP mapping each sample's position to its value."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import RunLinear
from .base import RunNet, output_activation


class ReluNet(RunNet):
    """``depth`` fully connected ReLU layers of ``width`` units applied to every position.

    The input is not random: it is the grid of sample coordinates in [0, 1) per axis
    (``ndim`` channels), the same for every run, so runs differ in their weights only.
    Each output sample depends on its own coordinate alone (a kernel of size 1).
    """

    def __init__(self, *, runs: int, signal_shape: tuple[int, ...], depth: int = 10, width: int = 256,
                 output: str | None = None, init: str = "default") -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        self.runs, self.out_channels = runs, signal_shape[0]
        self.spatial, self.ndim = tuple(signal_shape[1:]), len(signal_shape) - 1
        self.in_channels = self.ndim
        sizes = [self.ndim] + [width] * (depth - 1) + [self.out_channels]
        self.layers = nn.ModuleList(RunLinear(runs, a, b, init=init) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out_act = output_activation(output or ("linear" if self.ndim == 1 else "sigmoid"))

    def make_input(self, input_seeds, *, dist: str = "uniform", scale: float = 0.1) -> torch.Tensor:
        """The coordinate grid ``(R, ndim, *spatial)``; seeds, ``dist`` and ``scale`` are unused."""
        axes = [torch.arange(n, dtype=torch.float32) / n for n in self.spatial]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))
        return grid.unsqueeze(0).expand(len(input_seeds), *grid.shape).clone()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z.reshape(self.runs, self.in_channels, -1).transpose(1, 2)  # (R, P, ndim)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        x = x.transpose(1, 2).reshape(self.runs, self.out_channels, *self.spatial)
        return self.out_act(x)
