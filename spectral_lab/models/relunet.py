"""``relunet``: a coordinate MLP mapping each sample's position to its value."""

from __future__ import annotations

import torch
from torch import nn

from ._layers import RunLinear
from .base import MODELS, RunNet, positive_int, relu_stack


@MODELS.register("relunet", help="coordinate MLP: each sample's position to its value")
class ReluNet(RunNet):
    """``depth`` fully connected ReLU layers of ``width`` units applied to every position.

    The input is not random: it is the grid of sample coordinates in [0, 1) per axis
    (``ndim`` channels), the same for every run, so runs differ in their weights only.
    Each output sample depends on its own coordinate alone (a kernel of size 1).
    """

    input_dist, input_scale = "uniform", 1.0

    def __init__(self, *, runs: int, signal_shape: tuple[int, ...], depth: int = 10, width: int = 256,
                 output: str | None = None, init: str = "default") -> None:
        super().__init__(runs=runs, signal_shape=signal_shape, in_channels=len(signal_shape) - 1, output=output)
        depth, width = positive_int("depth", depth, 2), positive_int("width", width)
        sizes = [self.ndim] + [width] * (depth - 1) + [self.out_channels]
        self.layers = nn.ModuleList(RunLinear(runs, a, b, init=init) for a, b in zip(sizes[:-1], sizes[1:]))

    def make_input(self, input_seeds, *, dist: str | None = None, scale: float | None = None) -> torch.Tensor:
        """The coordinate grid ``(R, ndim, *spatial)``; seeds, ``dist`` and ``scale`` are unused."""
        axes = [torch.arange(n, dtype=torch.float32) / n for n in self.spatial]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))
        return grid.unsqueeze(0).expand(len(input_seeds), *grid.shape).clone()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z.reshape(self.runs, self.in_channels, -1).transpose(1, 2)  # (R, P, ndim)
        x = relu_stack(self.layers, x)
        return self.out_act(x.transpose(1, 2).reshape(self.runs, self.out_channels, *self.spatial))
