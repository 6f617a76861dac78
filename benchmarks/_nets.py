"""What the benchmarks train: the package's models through ``spectral_lab.fit``, the bare
PyTorch floor, and prototypes of other ways to batch R runs (measured, not shipped).

A *case* names a model family and its size; ``package_fit`` trains the
package's own stacked model; the other builders train the same architecture another way.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from spectral_lab import signals
from spectral_lab.fit import fit, make_fit_state
from spectral_lab.models import build_model
from spectral_lab.models._layers import RunConv

LR = {"conv": 1e-4, "linear": 1e-4, "dip": 1e-2, "relunet": 1e-4}


@dataclass(frozen=True)
class Case:
    """A model family at one size: ``model`` options and the signal it fits."""

    label: str
    model: str
    options: dict = field(default_factory=dict)
    side: int = 64  # images: side of the (3, side, side) target; 1D: length 200

    @property
    def signal_shape(self) -> tuple[int, ...]:
        return (1, 200) if self.model != "dip" else (3, self.side, self.side)


CONV64 = Case("conv w64", "conv", {"width": 64, "depth": 4})
CONV256 = Case("conv w256", "conv", {"width": 256, "depth": 4})
LINEAR256 = Case("linear w256", "linear", {"width": 256, "depth": 4})
DIP_SMALL = Case("dip 64² ch32", "dip", {"down": 32, "up": 32}, 64)
DIP_DEFAULT = Case("dip 64² ch128", "dip", {}, 64)


def target(case: Case) -> torch.Tensor:
    """The signal fitted: two sines (5 and 50 cycles) in 1D, the sample photograph in 2D."""
    return _target(case.model == "dip", case.side)


@functools.lru_cache(maxsize=None)
def _target(image: bool, side: int) -> torch.Tensor:
    if not image:
        return torch.from_numpy(signals.sines((5, 50), (1.0, 1.0), None, 200)).float().reshape(1, 200)
    factor = {64: 8, 128: 4, 256: 2}[side]
    img = signals.load_image(signals.sample_image_path(), downsample=factor, crop_multiple=32)
    return torch.from_numpy(img[:, :side, :side].copy())


def package_net(case: Case, runs: int, seeds: list[int] | None = None):
    """The package's stacked model of R runs, its input z and target y."""
    seeds = list(range(runs)) if seeds is None else seeds
    net = build_model(case.model, signal_shape=case.signal_shape, runs=runs, weight_seeds=seeds, **case.options)
    z = net.make_input(seeds)  # the family's own input distribution and scale
    return net, z, target(case)


def package_fit(case: Case, runs: int, seeds: list[int] | None = None) -> Callable[[int], object]:
    """``train(n)``: n iterations of ``spectral_lab.fit.fit`` (no callbacks) on one state."""
    net, z, y = package_net(case, runs, seeds)
    state = make_fit_state(net, lr=LR[case.model], noise_seeds=seeds)

    def train(n: int):
        state.iteration = 0
        return fit(state, z, y, iterations=n)

    return train


def step_of(net: nn.Module, z: torch.Tensor, y: torch.Tensor, lr: float,
            forward: Callable | None = None) -> Callable[[], None]:
    """One training step of a stacked net (sum of per-run MSE losses, one foreach Adam)."""
    opt = torch.optim.Adam(net.parameters(), lr=lr, foreach=True)
    forward = forward or net

    def step() -> None:
        out = forward(z)
        loss = (out - y).pow(2).flatten(1).mean(dim=1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def repeat(step: Callable[[], None]) -> Callable[[int], None]:
    def train(n: int) -> None:
        for _ in range(n):
            step()
    return train


def chain(*trains: Callable[[int], object]) -> Callable[[int], None]:
    """Train several independent nets one after another, n iterations each."""
    def train(n: int) -> None:
        for t in trains:
            t(n)
    return train


# --------------------------------------------------------------------------- the floor

def bare_module(case: Case) -> nn.Module:
    """The same architecture as plain ``nn.Conv1d`` / ``nn.Linear`` layers (one run)."""
    o = case.options
    width, depth = o.get("width", 256), o.get("depth", 4)
    if case.model == "conv":
        chans = [1] + [width] * (depth - 1) + [1]
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv1d(a, b, 3, padding=1), nn.ReLU()]
        return nn.Sequential(*layers[:-1])
    if case.model == "linear":
        sizes = [200] + [width] * (depth - 1) + [200]
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b, bias=False), nn.ReLU()]
        return nn.Sequential(nn.Flatten(), *layers[:-1])
    raise ValueError(f"no bare floor for {case.model}")


def bare_loop(case: Case, seed: int = 0) -> Callable[[int], None]:
    """The floor: a plain module, ``torch.optim.Adam`` and the textbook loop, nothing else."""
    torch.manual_seed(seed)
    net = bare_module(case)
    z = torch.randn(1, 1, 200)
    y = target(case).reshape(1, 1, 200) if case.model == "conv" else target(case).reshape(1, 200)
    opt = torch.optim.Adam(net.parameters(), lr=LR[case.model])

    def train(n: int) -> None:
        for _ in range(n):
            loss = F.mse_loss(net(z), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():  # fit's n iterations end with one more forward pass (frame n)
            net(z)

    return train


# --------------------------------------------------------------------------- other batchings

def vmap_fit(case: Case, runs: int) -> Callable[[int], None]:
    """R single-run package models stacked by ``stack_module_state`` and run under ``vmap``."""
    nets = [package_net(case, 1, [r])[0] for r in range(runs)]
    params, buffers = stack_module_state(nets)
    base = copy.deepcopy(nets[0]).to("meta")
    z = torch.stack([package_net(case, 1, [r])[1] for r in range(runs)])  # (R, 1, C, *s)
    y = target(case)

    def one(p, b, zz):
        return functional_call(base, (p, b), (zz,))

    batched = vmap(one)
    opt = torch.optim.Adam(list(params.values()), lr=LR[case.model], foreach=True)

    def step() -> None:
        out = batched(params, buffers, z)
        loss = (out - y).pow(2).flatten(1).mean(dim=1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return repeat(step)


def _pad(layer: RunConv, x: torch.Tensor) -> torch.Tensor:
    k = layer.kernel_size
    if k == 1:
        return x
    lo, hi = (k - 1) // 2, k // 2
    return F.pad(x, (lo, hi) * layer.ndim, mode="reflect" if layer.padding == "reflect" else "constant")


def im2col_forward(layer: RunConv, x: torch.Tensor) -> torch.Tensor:
    """RunConv as one batched matmul per layer: unfold the R inputs, ``baddbmm`` by the R weights.

    ``(1, R*C_in, *s) -> (1, R*C_out, *s/stride)``, the same function as the grouped conv.
    """
    R, k, s = layer.runs, layer.kernel_size, layer.stride
    x = _pad(layer, x)
    spatial = x.shape[2:]
    xr = x.reshape(R, layer.in_channels, *spatial)
    if layer.ndim == 1:
        if k == 1 and s == 1:
            cols = xr
        else:
            cols = xr.unfold(2, k, s).permute(0, 1, 3, 2).reshape(R, layer.in_channels * k, -1)
        out_spatial = ((spatial[0] - k) // s + 1,)
    else:
        if k == 1 and s == 1:
            cols = xr.reshape(R, layer.in_channels, -1)
        else:
            cols = F.unfold(xr, k, stride=s)
        out_spatial = tuple((n - k) // s + 1 for n in spatial)
    w = layer.weight.reshape(R, layer.out_channels, -1)
    if layer.bias is None:
        out = torch.bmm(w, cols)
    else:
        out = torch.baddbmm(layer.bias.unsqueeze(-1), w, cols)
    return out.reshape(1, R * layer.out_channels, *out_spatial)


def use_im2col(net: nn.Module) -> nn.Module:
    """Switch every RunConv of ``net`` (this instance only) to ``im2col_forward``."""
    for m in net.modules():
        if isinstance(m, RunConv):
            m.forward = functools.partial(im2col_forward, m)
    return net


def check_same_function(case: Case, convert: Callable[[nn.Module], object], runs: int = 3,
                        tolerance: float = 1e-3) -> float:
    """Max |package - converted| of one forward pass; raises if a prototype computes another net.

    (Float32 rounding differs between paths; the dip's BatchNorm over its 2×2 deepest level
    amplifies it to ~5e-5, hence the tolerance.)
    """
    net, z, _ = package_net(case, runs)
    with torch.no_grad():
        a = net(z)
        convert(net)
        b = net(z)
    err = float((a - b).abs().max())
    if not err <= tolerance:
        raise RuntimeError(f"{case.label}: the prototype's output differs from the package's by {err:g}")
    return err


def without_mkldnn(train: Callable[[int], object]) -> Callable[[int], None]:
    """Run ``train`` with oneDNN (mkldnn) disabled: ATen's own (im2col + GEMM) convolution."""
    def run(n: int) -> None:
        with torch.backends.mkldnn.flags(enabled=False):
            train(n)
    return run


