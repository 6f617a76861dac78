"""``conv``: the plain deep convolutional stack of the 1D experiment (no normalisation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import RunConv, from_runs, to_runs
from .base import RunNet, output_activation


class ConvNet(RunNet):
    """``depth`` convolutions of ``width`` channels and kernel ``kernel``, ReLU between them.

    Layers: C_in -> width, (depth - 2) x width -> width, width -> C_out; zero 'same'
    padding. Defaults: Xavier-uniform weights with zero biases; the reference 1D experiment's
    last version (dip-mem ``oned.py``) used PyTorch's default init and no biases
    (``init="default", bias=False``, what the sines presets use): its smaller initial
    weights separate the frequencies more (experiments/results/oned.md).
    """

    def __init__(self, *, runs: int, signal_shape: tuple[int, ...], depth: int = 4, width: int = 256,
                 kernel: int = 3, in_channels: int = 1, output: str | None = None,
                 padding: str = "zeros", init: str = "xavier", bias: bool = True) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        self.runs, self.in_channels, self.out_channels = runs, in_channels, signal_shape[0]
        self.spatial, self.ndim = tuple(signal_shape[1:]), len(signal_shape) - 1
        chans = [in_channels] + [width] * (depth - 1) + [self.out_channels]
        self.layers = nn.ModuleList(
            RunConv(runs, a, b, kernel, ndim=self.ndim, padding=padding, init=init, bias=bias)
            for a, b in zip(chans[:-1], chans[1:]))
        self.out_act = output_activation(output or ("linear" if self.ndim == 1 else "sigmoid"))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = to_runs(z)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return self.out_act(from_runs(x, self.runs))
