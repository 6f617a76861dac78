"""``linear``: DIP-Linear, the encoder-decoder shape built of fully connected layers."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._layers import RunLinear
from .base import MODELS, RunNet, positive_int, relu_stack


@MODELS.register("linear", help="DIP-Linear: the same input-to-output shape built of fully connected layers")
class LinearNet(RunNet):
    """The input z flattened, ``depth`` fully connected layers, reshaped to the signal.

    Layers: C_in*P -> width, (depth - 2) x width -> width, width -> C_out*P (P pixels),
    ReLU between them. The reference 1D experiment used no biases and Xavier init; the
    spectral-bias paper's image variant used 5 layers of 128 or 2048 units. Every unit sees
    the whole signal: the other extreme from a convolution, whose kernel sees a neighbourhood.
    """

    input_dist, input_scale = "normal", 1.0

    def __init__(self, *, runs: int, signal_shape: tuple[int, ...], depth: int = 4, width: int = 256,
                 in_channels: int = 1, output: str | None = None, init: str = "xavier",
                 bias: bool = False) -> None:
        super().__init__(runs=runs, signal_shape=signal_shape, in_channels=in_channels, output=output)
        depth, width = positive_int("depth", depth, 2), positive_int("width", width)
        pixels = math.prod(self.spatial)
        sizes = [self.in_channels * pixels] + [width] * (depth - 1) + [self.out_channels * pixels]
        self.layers = nn.ModuleList(RunLinear(runs, a, b, init=init, bias=bias)
                                    for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = relu_stack(self.layers, z.reshape(self.runs, 1, -1))
        return self.out_act(x.reshape(self.runs, self.out_channels, *self.spatial))
