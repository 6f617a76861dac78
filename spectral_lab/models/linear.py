"""``linear``: DIP-Linear, the encoder-decoder shape built of fully connected layers."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import RunLinear
from .base import RunNet, output_activation


class LinearNet(RunNet):
    """The input z flattened, ``depth`` fully connected layers, reshaped to the signal.

    Layers: C_in*P -> width, (depth - 2) x width -> width, width -> C_out*P (P pixels),
    ReLU between them. The reference 1D experiment used no biases and Xavier init; the
    spectral-bias paper's image variant used 5 layers of 128 or 2048 units. Every unit sees
    the whole signal: the other extreme from a convolution, whose kernel sees a neighbourhood.
    """

    def __init__(self, *, runs: int, signal_shape: tuple[int, ...], depth: int = 4, width: int = 256,
                 in_channels: int = 1, output: str | None = None, init: str = "xavier",
                 bias: bool = False) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        self.runs, self.in_channels, self.out_channels = runs, in_channels, signal_shape[0]
        self.spatial, self.ndim = tuple(signal_shape[1:]), len(signal_shape) - 1
        pixels = math.prod(self.spatial)
        sizes = [in_channels * pixels] + [width] * (depth - 1) + [self.out_channels * pixels]
        self.layers = nn.ModuleList(RunLinear(runs, a, b, init=init, bias=bias)
                                    for a, b in zip(sizes[:-1], sizes[1:]))
        self.out_act = output_activation(output or ("linear" if self.ndim == 1 else "sigmoid"))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z.reshape(self.runs, 1, -1)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return self.out_act(x.reshape(self.runs, self.out_channels, *self.spatial))
