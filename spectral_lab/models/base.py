"""The contract every model family follows, the input it is fed, and the model registry."""

from __future__ import annotations

import numbers
from typing import Sequence

import torch
from torch import nn

from ..registry import Registry
from ..seeding import stream_seed
from ._layers import RunModule

INPUT_DISTRIBUTIONS = ("uniform", "normal")

# Every module of this package (but those starting with "_") is imported the first time
# the registry is read: a new model family is one new file with a decorated class.
MODELS: Registry = Registry("model", skip=("runs", "signal_shape"), package="spectral_lab.models")


class RunNet(nn.Module):
    """R independent networks of one family, trained together.

    Subclasses call ``super().__init__(runs=..., signal_shape=..., in_channels=...,
    output=...)``, build their layers from ``_layers`` and implement ``forward(z) -> out``
    with ``z`` of shape ``(R, in_channels, *spatial)`` and ``out`` of shape
    ``(R, out_channels, *spatial)``.

    What a family declares instead of being special-cased elsewhere:

    - ``input_dist``, ``input_scale``: the fixed input z it is fed when the configuration
      leaves them open (``make_input``);
    - ``required_multiple(**options)``: the factor the signal's sides must be a multiple of.
    """

    input_dist: str = "normal"
    input_scale: float = 1.0

    runs: int
    ndim: int
    in_channels: int
    out_channels: int
    spatial: tuple[int, ...]

    def __init__(self, *, runs: int, signal_shape: Sequence[int], in_channels: int,
                 output: str | None = None) -> None:
        super().__init__()
        self.runs = positive_int("runs", runs)
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = int(signal_shape[0])
        self.spatial, self.ndim = tuple(int(s) for s in signal_shape[1:]), len(signal_shape) - 1
        # images live in [0, 1]; 1D signals are signed
        self.out_act = output_activation(output or ("linear" if self.ndim == 1 else "sigmoid"))

    @classmethod
    def required_multiple(cls, **options) -> int:
        """The factor every spatial side must be a multiple of (1: any size)."""
        return 1

    def reset_parameters(self, weight_seeds: Sequence[int]) -> None:
        """Draw every run's weights from a generator seeded with that run's weight seed."""
        if len(weight_seeds) != self.runs:
            raise ValueError(f"need {self.runs} weight seeds, got {len(weight_seeds)}")
        generators = [torch.Generator().manual_seed(stream_seed(s, "weights")) for s in weight_seeds]
        for module in self.modules():
            if isinstance(module, RunModule):
                module.reset_parameters(generators)

    def make_input(self, input_seeds: Sequence[int], *, dist: str | None = None,
                   scale: float | None = None) -> torch.Tensor:
        """The fixed random input z, ``(R, in_channels, *spatial)``, float32 on the CPU.

        ``uniform``: U(0, scale), as in the DIP reference code (``var = 1/10``);
        ``normal``: N(0, scale²). Each run's slice comes from its own input seed.
        None: the family's own ``input_dist`` / ``input_scale``.
        """
        dist = self.input_dist if dist is None else dist
        scale = self.input_scale if scale is None else scale
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


def positive_int(name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; ValueError naming the option otherwise (instead of
    a torch-internal message from deep inside a layer)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def relu_stack(layers: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """``layers`` applied in order with a ReLU between consecutive layers (none after the last)."""
    for i, layer in enumerate(layers):
        x = layer(x)
        if i < len(layers) - 1:
            x = torch.relu(x)
    return x


def output_activation(name: str) -> nn.Module:
    """'sigmoid' (images in [0,1]) or 'linear' (signed 1D signals)."""
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "linear":
        return nn.Identity()
    raise ValueError(f"unknown output activation {name!r}; choose 'sigmoid' or 'linear'")
