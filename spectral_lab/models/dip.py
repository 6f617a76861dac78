"""``dip``: the Deep Image Prior skip encoder-decoder (Ulyanov et al.), in 1D and 2D."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import RunBatchNorm, RunConv, RunConvTranspose, Upsample, concat_runs, from_runs, to_runs
from .base import MODELS, RunNet, positive_int

UPSAMPLE_MODES = ("nearest", "bilinear", "transposed")


def _per_level(value, levels: int, name: str) -> list[int]:
    values = [value] * levels if isinstance(value, int) else list(value)
    if len(values) != levels:
        raise ValueError(f"{name} needs {levels} values (one per level), got {len(values)}")
    return values


class _Block(nn.Module):
    """conv -> BatchNorm -> LeakyReLU(0.2)."""

    def __init__(self, runs, cin, cout, k, *, ndim, stride=1, padding="reflect"):
        super().__init__()
        self.conv = RunConv(runs, cin, cout, k, ndim=ndim, stride=stride, padding=padding)
        self.bn = RunBatchNorm(runs, cout)

    def forward(self, x):
        return F.leaky_relu(self.bn(self.conv(x)), 0.2)


class _Level(nn.Module):
    """One scale: a skip branch beside a deeper branch (down, inner level, up), then merge."""

    def __init__(self, runs, cin, down, up, skip, k_down, k_up, k_skip, inner, inner_out, *,
                 ndim, stride, upsample, padding):
        super().__init__()
        self.runs = runs
        self.skip = _Block(runs, cin, skip, k_skip, ndim=ndim, padding=padding) if skip else None
        self.down = nn.Sequential(_Block(runs, cin, down, k_down, ndim=ndim, stride=stride, padding=padding),
                                  _Block(runs, down, down, k_down, ndim=ndim, padding=padding))
        self.inner = inner
        deep = inner_out if inner is not None else down
        if upsample == "transposed":
            self.up = RunConvTranspose(runs, deep, deep, stride, ndim=ndim)
        else:
            self.up = Upsample(stride, upsample, ndim)
        self.merge_bn = RunBatchNorm(runs, skip + deep)
        self.merge = nn.Sequential(_Block(runs, skip + deep, up, k_up, ndim=ndim, padding=padding),
                                   _Block(runs, up, up, 1, ndim=ndim, padding=padding))

    def forward(self, x):
        deep = self.down(x)
        if self.inner is not None:
            deep = self.inner(deep)
        deep = self.up(deep)
        joined = deep if self.skip is None else concat_runs([self.skip(x), deep], self.runs)
        return self.merge(self.merge_bn(joined))


@MODELS.register("dip", help="the DIP skip encoder-decoder (Ulyanov et al.): BatchNorm, fixed or learned up-sampling")
class DipNet(RunNet):
    """The DIP skip network; defaults are the DIP paper's denoising network.

    Per level i (outermost first): a skip branch conv(k_skip) -> BN -> LeakyReLU with
    ``skip[i]`` channels, and a deeper branch: conv(k_down, stride) -> BN -> LeakyReLU ->
    conv(k_down) -> BN -> LeakyReLU -> level i+1 -> up-sample by ``stride``; the branches
    are concatenated, then BN -> conv(k_up) -> BN -> LeakyReLU -> conv(1) -> BN -> LeakyReLU
    with ``up[i]`` channels. A final 1x1 conv maps to the signal's channels, then the output
    activation. Reflection padding throughout. The signal's side must be a multiple of
    ``stride ** levels`` (``required_multiple``).

    ``upsample``: 'nearest' or 'bilinear' (fixed low-pass filters, the paper's subject) or
    'transposed' (a learned transposed convolution, to separate the two causes of the bias).
    """

    input_dist, input_scale = "uniform", 0.1  # the DIP reference code: U(0, 1/10)

    def __init__(self, *, runs: int, signal_shape: tuple[int, ...], levels: int = 5,
                 down: int | Sequence[int] = 128, up: int | Sequence[int] = 128,
                 skip: int | Sequence[int] = 4, kernel_down: int = 3, kernel_up: int = 3,
                 kernel_skip: int = 1, stride: int = 2, upsample: str = "bilinear",
                 in_channels: int = 32, output: str | None = None, padding: str = "reflect") -> None:
        super().__init__(runs=runs, signal_shape=signal_shape, in_channels=in_channels, output=output)
        levels, stride = positive_int("levels", levels), positive_int("stride", stride, 2)
        for name, value in (("kernel_down", kernel_down), ("kernel_up", kernel_up), ("kernel_skip", kernel_skip)):
            positive_int(name, value)
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"unknown upsample mode {upsample!r}; choose from {UPSAMPLE_MODES}")
        multiple = stride ** levels
        bad = [n for n in self.spatial if n % multiple or n < 2 * multiple]
        if bad:
            raise ValueError(f"dip with {levels} levels of stride {stride} needs sides that are multiples "
                             f"of {multiple} and at least {2 * multiple} (its deepest level must keep 2 "
                             f"samples); got {self.spatial} (use a larger signal or fewer levels)")
        down, up, skip = (_per_level(v, levels, n) for v, n in ((down, "down"), (up, "up"), (skip, "skip")))
        inner = None
        for i in reversed(range(levels)):
            cin = in_channels if i == 0 else down[i - 1]
            inner_out = up[i + 1] if i + 1 < levels else None
            inner = _Level(runs, cin, down[i], up[i], skip[i], kernel_down, kernel_up, kernel_skip, inner,
                           inner_out, ndim=self.ndim, stride=stride, upsample=upsample, padding=padding)
        self.body = inner
        self.head = RunConv(runs, up[0], self.out_channels, 1, ndim=self.ndim)

    @classmethod
    def required_multiple(cls, *, levels: int = 5, stride: int = 2, **_) -> int:
        """``stride ** levels``: every level halves (divides by ``stride``) the sides."""
        levels, stride = positive_int("levels", levels), positive_int("stride", stride, 2)
        if levels > 64 or stride > 64:  # stride ** levels must stay a sane integer
            raise ValueError(f"levels and stride must be at most 64, got levels={levels}, stride={stride}")
        return stride ** levels

    @classmethod
    def largest_levels(cls, side: int, stride: int = 2, most: int = 5) -> int:
        """Most levels (<= ``most``) of ``stride`` for which ``side`` is a multiple of
        ``stride ** levels`` and the deepest level keeps at least 2 samples; 0 if none."""
        side, stride = positive_int("side", side), positive_int("stride", stride, 2)
        levels = 0
        while levels < most and side % stride ** (levels + 1) == 0 and side // stride ** (levels + 1) >= 2:
            levels += 1
        return levels

    @classmethod
    def largest_stride(cls, side: int, levels: int, stride: int) -> int:
        """``stride``, halved (integer division) while a side of ``side`` samples cannot keep
        2 samples at the deepest of ``levels`` levels (``side >= 2 * stride ** levels``);
        ValueError when not even stride 2 fits. Divisibility is left to the crop."""
        side, levels = positive_int("side", side), positive_int("levels", levels)
        stride = positive_int("stride", stride, 2)
        while stride > 2 and side < 2 * stride**levels:
            stride //= 2
        if side < 2 * stride**levels:
            raise ValueError(f"an image side of {side} is too small for {levels} level(s) of stride {stride}")
        return stride

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = to_runs(z)
        if self.ndim == 2:
            # R runs as one grouped convolution are slow in oneDNN with NCHW activations and
            # fast in channels_last (R=10 of the 128-channel dip: 1.26x -> 0.77x sequential)
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.head(self.body(x))
        return self.out_act(from_runs(x.contiguous(), self.runs))
