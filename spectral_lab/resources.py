"""Will a configuration fit in memory? An estimate made before any file exists.

The estimate adds what a fit holds: the parameters of R runs with their gradients and the
optimiser's state (Adam: two moments; 16 bytes a parameter in float32), the activations
autograd keeps for the backward pass (the outputs of every layer of one forward pass, measured
with hooks during the dry run, times `ACTIVATION_FACTOR` for the inputs and intermediates it
also saves), and the recorder's buffers (frames queued for the writer, the posterior's float64
accumulators). It is compared with the memory the device has available (CPU: MemAvailable of
/proc/meminfo; CUDA: ``torch.cuda.mem_get_info``); a configuration that does not fit is
refused in one line that says how many runs would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .errors import SpectralLabError

__all__ = ["ResourceError", "MemoryEstimate", "estimate_memory", "scale_estimate", "available_memory", "check_memory",
           "forward_with_activation_bytes", "ACTIVATION_FACTOR"]

ACTIVATION_FACTOR = 3.0  # saved inputs, the non-module activations (LeakyReLU, concatenations), workspace
FRAME_BLOCKS = 9  # the recorder's queue (8 blocks) and the one being filled


class ResourceError(SpectralLabError):
    """The configuration needs more memory (or another resource) than the machine has."""


@dataclass(frozen=True)
class MemoryEstimate:
    parameters: int  # bytes: weights, gradients, optimiser state of every run
    activations: int
    buffers: int  # frames queued for the writer, posterior accumulators
    runs: int

    @property
    def total(self) -> int:
        return self.parameters + self.activations + self.buffers

    @property
    def per_run(self) -> int:
        return math.ceil(self.total / max(self.runs, 1))


def forward_with_activation_bytes(net: nn.Module, z: torch.Tensor) -> tuple[torch.Tensor, int]:
    """One forward pass without gradients; returns the output and the bytes of every leaf
    module's output (what a forward pass with gradients would keep, roughly)."""
    total = [0]

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor):
            total[0] += output.numel() * output.element_size()

    handles = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            out = net(z)
    finally:
        for h in handles:
            h.remove()
    return out, total[0]


def estimate_memory(net: nn.Module, activation_bytes: int, *, runs: int, frame_elements: int, block_frames: int,
                    posterior: bool) -> MemoryEstimate:
    """The estimate of a fit of ``runs`` runs (see the module doc)."""
    params = sum(p.numel() * p.element_size() for p in net.parameters())
    buffers = FRAME_BLOCKS * block_frames * runs * frame_elements * 4
    if posterior:
        buffers += 2 * runs * frame_elements * 8
    return MemoryEstimate(parameters=4 * params, activations=int(ACTIVATION_FACTOR * activation_bytes),
                          buffers=buffers, runs=runs)


def scale_estimate(one: MemoryEstimate, runs: int) -> MemoryEstimate:
    """The estimate of ``runs`` runs from that of one (everything a fit holds grows with R)."""
    return MemoryEstimate(one.parameters * runs, one.activations * runs, one.buffers * runs, runs)


def available_memory(device: torch.device) -> int | None:
    """Bytes the device can still give (None where it cannot be told)."""
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_memory(estimate: MemoryEstimate, device: torch.device) -> None:
    """ResourceError when the estimate is above what the device has available."""
    free = available_memory(device)
    if free is None or estimate.total <= free:
        return
    fit = max(0, int(free // max(estimate.per_run, 1)))
    hint = f"{fit} run(s) would fit" if fit else "even one run needs more: a smaller signal or model would fit"
    raise ResourceError(f"this configuration needs about {estimate.total / 1e9:.1f} GB of memory on {device.type} "
                        f"(parameters and optimiser {estimate.parameters / 1e9:.2f} GB, activations "
                        f"{estimate.activations / 1e9:.2f} GB, buffers {estimate.buffers / 1e9:.2f} GB), "
                        f"{free / 1e9:.1f} GB are available; {hint}")
