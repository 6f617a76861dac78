"""``conv``: the plain deep convolutional stack of the 1D experiment (no normalisation)."""

from __future__ import annotations

import torch
from torch import nn

from ._layers import RunConv, from_runs, to_runs
from .base import MODELS, RunNet, positive_int, relu_stack


@MODELS.register("conv", help="plain deep conv stack, ReLU, no normalisation")
class ConvNet(RunNet):
    """``depth`` convolutions of ``width`` channels and kernel ``kernel``, ReLU between them.

    Layers: C_in -> width, (depth - 2) x width -> width, width -> C_out; zero 'same'
    padding. Defaults: Xavier-uniform weights with zero biases; the reference 1D experiment's
    last version (dip-mem ``oned.py``) used PyTorch's default init and no biases
    (``init="default", bias=False``, what the sines presets use): its smaller initial
    weights separate the frequencies more (experiments/results/oned.md).
    """

    input_dist, input_scale = "normal", 1.0

    def __init__(self, *, runs: int, signal_shape: tuple[int, ...], depth: int = 4, width: int = 256,
                 kernel: int = 3, in_channels: int = 1, output: str | None = None,
                 padding: str = "zeros", init: str = "xavier", bias: bool = True) -> None:
        super().__init__(runs=runs, signal_shape=signal_shape, in_channels=in_channels, output=output)
        depth, width, kernel = positive_int("depth", depth, 2), positive_int("width", width), positive_int("kernel", kernel)
        chans = [self.in_channels] + [width] * (depth - 1) + [self.out_channels]
        self.layers = nn.ModuleList(
            RunConv(runs, a, b, kernel, ndim=self.ndim, padding=padding, init=init, bias=bias)
            for a, b in zip(chans[:-1], chans[1:]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out_act(from_runs(relu_stack(self.layers, to_runs(z)), self.runs))
