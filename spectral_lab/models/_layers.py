"""Layers that hold R independent runs in one set of tensors.

Every parameter has a leading run dimension R. Convolutional activations travel as
``(1, R*C, *spatial)`` so that R runs are one grouped convolution (``groups=R``); fully
connected activations travel as ``(R, B, features)`` so that R runs are one batched matmul.
BatchNorm with batch size 1 normalises per channel, so one BatchNorm over the R*C stacked
channels is exactly R per-run BatchNorms. Adam, SGD and SGLD updates are elementwise, so
one optimiser stepping the stacked tensors on the *sum* of the R losses is R independent
runs.

Initialisation draws each run's slice from that run's own ``torch.Generator`` in module
order, so run r of a batch starts from the same weights as a single run with the same seed.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "RunModule",
    "RunConv",
    "RunLinear",
    "RunBatchNorm",
    "RunConvTranspose",
    "Upsample",
    "concat_runs",
    "to_runs",
    "from_runs",
]

_CONV = {1: F.conv1d, 2: F.conv2d}


class RunModule(nn.Module):
    """A module whose parameters are drawn per run from per-run generators."""

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:  # pragma: no cover
        raise NotImplementedError


def _uniform_per_run(param: torch.Tensor, bound: float, generators: Sequence[torch.Generator]) -> None:
    # Draw on the CPU (generators are CPU generators) and copy, so initialisation does
    # not depend on the device the model is later moved to.
    with torch.no_grad():
        for r, g in enumerate(generators):
            draw = torch.empty(param.shape[1:], dtype=torch.float32).uniform_(-bound, bound, generator=g)
            param[r].copy_(draw)


PADDINGS = ("reflect", "zeros")
INITS = ("default", "xavier")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose from {', '.join(choices)}")


class RunConv(RunModule):
    """R independent ``ndim``-D convolutions with 'same' padding and optional stride.

    Input ``(1, R*C_in, *spatial)``; output ``(1, R*C_out, *spatial/stride)``.
    ``padding``: 'reflect' (the DIP default) or 'zeros'. Initialisation: PyTorch's default
    (uniform with bound 1/sqrt(fan_in) for weights and biases) or ``init='xavier'``
    (uniform with bound sqrt(6/(fan_in+fan_out)), biases zero).
    """

    def __init__(self, runs: int, in_channels: int, out_channels: int, kernel_size: int, *,
                 ndim: int, stride: int = 1, bias: bool = True, padding: str = "reflect",
                 init: str = "default") -> None:
        super().__init__()
        if ndim not in _CONV:
            raise ValueError(f"ndim must be 1 or 2, got {ndim}")
        _check_choice("padding", padding, PADDINGS)
        _check_choice("init", init, INITS)
        self.runs, self.in_channels, self.out_channels = runs, in_channels, out_channels
        self.kernel_size, self.ndim, self.stride, self.padding, self.init = kernel_size, ndim, stride, padding, init
        self.weight = nn.Parameter(torch.empty(runs, out_channels, in_channels, *([kernel_size] * ndim)))
        self.bias = nn.Parameter(torch.empty(runs, out_channels)) if bias else None

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        fan_in = self.in_channels * self.kernel_size ** self.ndim
        fan_out = self.out_channels * self.kernel_size ** self.ndim
        if self.init == "xavier":
            _uniform_per_run(self.weight, math.sqrt(6.0 / (fan_in + fan_out)), generators)
            if self.bias is not None:
                with torch.no_grad():
                    self.bias.zero_()
            return
        bound = 1.0 / math.sqrt(fan_in)
        _uniform_per_run(self.weight, bound, generators)
        if self.bias is not None:
            _uniform_per_run(self.bias, bound, generators)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        weight = self.weight.reshape(self.runs * self.out_channels, *self.weight.shape[2:])
        bias = None if self.bias is None else self.bias.reshape(-1)
        if k % 2 == 1 and self.padding != "reflect":
            # zero 'same' padding inside the convolution: one op fewer (benchmarks/README.md)
            return _CONV[self.ndim](x, weight, bias, stride=self.stride, padding=k // 2, groups=self.runs)
        if k > 1:
            lo, hi = (k - 1) // 2, k // 2
            pad = (lo, hi) * self.ndim
            x = F.pad(x, pad, mode="reflect" if self.padding == "reflect" else "constant")
        return _CONV[self.ndim](x, weight, bias, stride=self.stride, groups=self.runs)

    def extra_repr(self) -> str:
        return (f"runs={self.runs}, {self.in_channels}->{self.out_channels}, k={self.kernel_size}, "
                f"ndim={self.ndim}, stride={self.stride}, padding={self.padding}")


class RunLinear(RunModule):
    """R independent fully connected layers: ``(R, B, in) -> (R, B, out)`` by one ``baddbmm``."""

    def __init__(self, runs: int, in_features: int, out_features: int, *, bias: bool = True,
                 init: str = "default") -> None:
        super().__init__()
        _check_choice("init", init, INITS)
        self.runs, self.in_features, self.out_features, self.init = runs, in_features, out_features, init
        self.weight = nn.Parameter(torch.empty(runs, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(runs, 1, out_features)) if bias else None

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        if self.init == "xavier":
            _uniform_per_run(self.weight, math.sqrt(6.0 / (self.in_features + self.out_features)), generators)
            if self.bias is not None:
                with torch.no_grad():
                    self.bias.zero_()
            return
        bound = 1.0 / math.sqrt(self.in_features)
        _uniform_per_run(self.weight, bound, generators)
        if self.bias is not None:
            _uniform_per_run(self.bias, bound, generators)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return f"runs={self.runs}, {self.in_features}->{self.out_features}"


class RunBatchNorm(RunModule):
    """BatchNorm over ``(1, R*C, *spatial)`` in training mode, per-run affine parameters.

    DIP always runs in training mode with batch size 1, so statistics are the spatial
    mean and variance of each channel of each run; no running statistics are kept.
    """

    def __init__(self, runs: int, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.runs, self.channels, self.eps = runs, channels, eps
        self.weight = nn.Parameter(torch.ones(runs, channels))
        self.bias = nn.Parameter(torch.zeros(runs, channels))

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        with torch.no_grad():
            self.weight.fill_(1.0)
            self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, None, None, self.weight.reshape(-1), self.bias.reshape(-1),
                            training=True, eps=self.eps)


class Upsample(nn.Module):
    """Fixed up-sampling by an integer factor: 'nearest' or 'bilinear' ('linear' in 1D)."""

    def __init__(self, factor: int, mode: str, ndim: int) -> None:
        super().__init__()
        self.factor, self.ndim = factor, ndim
        self.mode = {"nearest": "nearest", "bilinear": "linear" if ndim == 1 else "bilinear"}[mode]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest":
            return F.interpolate(x, scale_factor=self.factor, mode="nearest")
        return F.interpolate(x, scale_factor=self.factor, mode=self.mode, align_corners=False)

    def extra_repr(self) -> str:
        return f"factor={self.factor}, mode={self.mode}"


def to_runs(z: torch.Tensor) -> torch.Tensor:
    """``(R, C, *spatial) -> (1, R*C, *spatial)``."""
    return z.reshape(1, z.shape[0] * z.shape[1], *z.shape[2:])


def from_runs(x: torch.Tensor, runs: int) -> torch.Tensor:
    """``(1, R*C, *spatial) -> (R, C, *spatial)``."""
    return x.reshape(runs, x.shape[1] // runs, *x.shape[2:])


def concat_runs(tensors: Sequence[torch.Tensor], runs: int) -> torch.Tensor:
    """Concatenate ``(1, R*C_i, *s)`` tensors along channels *within* each run."""
    if all(t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) for t in tensors):
        # join per run on the NHWC data, (H, W, R, C_i) -> (H, W, R, ΣC): the result stays
        # channels_last, where oneDNN's grouped convolution is fast (benchmarks/README.md)
        nhwc = [t.permute(0, 2, 3, 1).reshape(*t.shape[2:], runs, t.shape[1] // runs) for t in tensors]
        joined = torch.cat(nhwc, dim=-1)
        return joined.reshape(1, *joined.shape[:2], -1).permute(0, 3, 1, 2)
    parts = [t.reshape(runs, t.shape[1] // runs, *t.shape[2:]) for t in tensors]
    joined = torch.cat(parts, dim=1)
    return joined.reshape(1, -1, *joined.shape[2:])


class RunConvTranspose(RunModule):
    """R independent learned up-samplings: transposed convolution, kernel = stride = ``factor``.

    Input ``(1, R*C_in, *s)``; output ``(1, R*C_out, *s*factor)``. Default PyTorch init.
    """

    def __init__(self, runs: int, in_channels: int, out_channels: int, factor: int, *, ndim: int) -> None:
        super().__init__()
        self.runs, self.in_channels, self.out_channels, self.factor, self.ndim = (
            runs, in_channels, out_channels, factor, ndim)
        self.weight = nn.Parameter(torch.empty(runs, in_channels, out_channels, *([factor] * ndim)))
        self.bias = nn.Parameter(torch.empty(runs, out_channels))

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        bound = 1.0 / math.sqrt(self.out_channels * self.factor ** self.ndim)
        _uniform_per_run(self.weight, bound, generators)
        _uniform_per_run(self.bias, bound, generators)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.reshape(self.runs * self.in_channels, *self.weight.shape[2:])
        fn = F.conv_transpose1d if self.ndim == 1 else F.conv_transpose2d
        return fn(x, weight, self.bias.reshape(-1), stride=self.factor, groups=self.runs)
