"""Forward operators of the data term: the task is an operator A applied to the network output.

The problem is y = noise(A(x)): the network output f is compared with the observation y
through A f. A new task is a new operator, not another loop. Every operator maps the
stacked outputs of R runs, ``(R, C, *spatial)`` (1D: one spatial axis, images: two), to
``(R, C, *spatial')``, differentiably, on the device and in the dtype of its input.

Registered operators (`OPERATORS`; ``--task`` picks one, see `spectral_lab.config.TASKS`):

- ``identity``: A = I (fitting a clean signal, denoising);
- ``mask``: A = diag(m), m ∈ {0, 1} per sample, the same for every channel and run: a
  Bernoulli keep-mask (``drop``: the fraction of samples removed, from the operator's own
  seed stream ``mask``) or a mask image (nonzero = known); inpainting;
- ``downsample``: anti-aliased decimation by an integer ``factor``: a separable low-pass
  FIR filter, then every ``factor``-th sample (super-resolution; the output keeps the full
  size, the observation is ``factor`` times smaller per axis).

The down-sampler's kernel: ``lanczos`` (default), Lanczos-2 (a = 2) scaled by the factor,
4·factor taps, the kernel of the DIP reference code's ``Downsampler('lanczos2')`` and of
PIL's LANCZOS resize that made its low-resolution images; ``box``: the mean of each
factor × factor block (average pooling; what the lab's prototype used). Measured gains at
factor 4 (new Nyquist 0.125 cycles/sample): Lanczos 0.94 / 0.50 / 0.19 / < 0.02 at 0.0625 /
0.125 / 0.16 / ≥ 0.2, the box 0.91 / 0.65 / 0.47 and side lobes of 0.18–0.27 between its
zeros at multiples of 0.25: Lanczos keeps what aliases out of the observation (aliasing is
what a spectral study must not have), the box lets a quarter of it through. Reflect padding at the borders; the
filter is applied to the centre of each block (phase: the output sample i covers the input
block [i·f, (i+1)·f)).

An operator's arrays (the mask) are written to the trajectory file (``/operator``), so a
file is self-contained. deepinv's physics operators (``Inpainting``, ``Downsampling``) would
fit this interface, but deepinv pulls in torchvision, which does not import beside this
lab's pinned torch build, and costs ~5 s of import (shared/NOTES.md): not used.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError
from .registry import Registry

__all__ = ["OPERATORS", "Operator", "Identity", "Mask", "Downsample", "Blend", "build_operator", "lanczos_kernel",
           "DOWNSAMPLE_KERNELS"]

OPERATORS: Registry = Registry("operator", skip=("signal_shape", "arrays", "mask_array"))


class Operator:
    """``A(x)`` for ``x`` of shape ``(R, C, *spatial)``; returns what is compared with y.

    ``name``: the registry name; ``options``: its JSON options (stored in the file);
    ``arrays``: arrays that define it (stored in the file's ``/operator`` group);
    ``output_shape(shape)``: the shape of A applied to one signal of ``shape`` ``(C, *spatial)``;
    ``known``: the mask of samples the observation constrains, ``(1, *spatial)`` float, or
    None when every sample is observed (used by region metrics and the masked losses).
    """

    name = "operator"

    def __init__(self, signal_shape: tuple[int, ...] = ()) -> None:
        self.signal_shape = tuple(int(s) for s in signal_shape)
        self.options: dict[str, Any] = {}
        self.arrays: dict[str, np.ndarray] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(shape)

    @property
    def known(self) -> np.ndarray | None:
        return None

    def apply_numpy(self, x: np.ndarray) -> np.ndarray:
        """A applied to one clean signal ``(C, *spatial)`` in float64 (to make the observation)."""
        with torch.no_grad():
            out = self(torch.from_numpy(np.asarray(x, dtype=np.float64))[None])
        return out[0].numpy()


@OPERATORS.register("identity", help="A = I: fitting a clean signal, denoising")
class Identity(Operator):
    """A = I: fitting a clean signal or denoising."""

    name = "identity"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x


@OPERATORS.register("mask", help="A = diag(m): only the known samples enter the loss (inpainting)")
class Mask(Operator):
    """A = diag(m): only the samples where the mask is 1 enter the loss (inpainting).

    Options: ``drop`` in (0, 1), the expected fraction of samples removed by a Bernoulli
    keep-mask drawn from ``seed`` (each sample kept with probability 1 − drop, the same
    mask for every channel); or ``mask`` (a path, recorded for reference; the array itself
    comes in ``mask_array``, ``(1, *spatial)`` or ``(*spatial)``, nonzero = known).
    """

    name = "mask"

    def __init__(self, signal_shape, *, drop: float | None = None, mask: str | None = None,
                 seed: int = 0, mask_array: np.ndarray | None = None) -> None:
        super().__init__(signal_shape)
        spatial = self.signal_shape[1:]
        if mask_array is not None:
            m = np.asarray(mask_array)
            m = m.reshape(m.shape[-len(spatial):]) if m.ndim > len(spatial) and m.shape[0] == 1 else m
            if m.shape != spatial:
                raise ConfigError(f"the mask has shape {tuple(m.shape)}, the signal {spatial}: a mask must "
                                  "have the signal's size")
            keep = m != 0
            self.options = {"mask": mask} if mask is not None else {}
        else:
            if drop is None:
                raise ConfigError("the mask operator needs a drop rate (--drop) or a mask image (--mask)")
            if isinstance(drop, bool) or not isinstance(drop, (int, float)) or not 0 < drop < 1:
                raise ConfigError(f"the drop rate must be in (0, 1), got {drop!r}")
            from .seeding import stream_seed

            rng = np.random.default_rng(stream_seed(int(seed), "mask"))
            keep = rng.random(spatial) >= drop
            self.options = {"drop": float(drop), "seed": int(seed)}
        if not keep.any():
            raise ConfigError("the mask keeps no sample: nothing would be fitted")
        self.mask = keep.astype(np.uint8)[None]  # (1, *spatial)
        self.arrays = {"mask": self.mask}
        self._tensors: dict[tuple, torch.Tensor] = {}

    @property
    def known(self) -> np.ndarray:
        return self.mask.astype(np.float64)

    def _mask_like(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.device, x.dtype)
        if key not in self._tensors:  # one copy per device and dtype, not one per step
            self._tensors[key] = torch.from_numpy(self.mask).to(device=x.device, dtype=x.dtype)
        return self._tensors[key]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._mask_like(x)


DOWNSAMPLE_KERNELS = ("lanczos", "box")


def lanczos_kernel(factor: int, a: int = 2) -> np.ndarray:
    """The Lanczos-a low-pass for decimation by ``factor``: 2·a·factor taps, sum 1, symmetric
    about the centre of a factor-sample block (float64)."""
    n = 2 * a * factor
    t = (np.arange(n) - (n - 1) / 2.0) / factor  # tap positions in output samples
    k = np.sinc(t) * np.sinc(t / a)
    return k / k.sum()


@OPERATORS.register("downsample", help="anti-aliased decimation by an integer factor (super-resolution)")
class Downsample(Operator):
    """Low-pass then keep every ``factor``-th sample, per spatial axis (see the module doc).

    Options: ``factor`` >= 2 dividing every spatial side; ``kernel``: 'lanczos' or 'box'.
    """

    name = "downsample"

    def __init__(self, signal_shape, *, factor: int = 4, kernel: str = "lanczos") -> None:
        super().__init__(signal_shape)
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
            raise ConfigError(f"the down-sampling factor must be an integer >= 2, got {factor!r}")
        if kernel not in DOWNSAMPLE_KERNELS:
            raise ConfigError(f"unknown down-sampling kernel {kernel!r}; choose from {', '.join(DOWNSAMPLE_KERNELS)}")
        spatial = self.signal_shape[1:]
        bad = [s for s in spatial if s % factor]
        if bad:
            raise ConfigError(f"super-resolution factor {factor} does not divide the signal's size "
                              f"{'x'.join(map(str, spatial))}; choose a factor that divides it")
        if any(s // factor < 2 for s in spatial):
            raise ConfigError(f"factor {factor} leaves fewer than 2 samples per axis of "
                              f"{'x'.join(map(str, spatial))}")
        self.factor, self.kernel = factor, kernel
        self.taps = lanczos_kernel(factor) if kernel == "lanczos" else np.full(factor, 1.0 / factor)
        self.options = {"factor": factor, "kernel": kernel}
        self._weights: dict[tuple, torch.Tensor] = {}

    def output_shape(self, shape):
        return (shape[0], *(s // self.factor for s in shape[1:]))

    def _taps_like(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.device, x.dtype)
        if key not in self._weights:
            self._weights[key] = torch.from_numpy(self.taps).to(device=x.device, dtype=x.dtype)
        return self._weights[key]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        taps = self._taps_like(x)
        n, f = taps.numel(), self.factor
        pad_lo = (n - f) // 2  # centres the filter on each block of f samples
        pad_hi = n - f - pad_lo
        lead = x.shape[:2]
        y = x.reshape(-1, 1, *x.shape[2:])
        for axis in range(2, x.dim()):  # separable: one strided 1D conv per spatial axis
            y = y.movedim(axis, -1)
            shape = y.shape
            flat = y.reshape(-1, 1, shape[-1])
            flat = F.pad(flat, (pad_lo, pad_hi), mode="reflect" if min(pad_lo, pad_hi) < shape[-1] else "replicate")
            flat = F.conv1d(flat, taps.view(1, 1, -1), stride=f)
            y = flat.reshape(*shape[:-1], flat.shape[-1]).movedim(-1, axis)
        return y.reshape(*lead, *y.shape[2:])


@OPERATORS.register("blend", help="image blending: A = I, with the foreground, background and mask the loss "
                    "compares against (003, appendix A3)")
class Blend(Operator):
    """Image blending (003_…, appendix A3): the output is compared, region by region, with a
    foreground placed on the background's canvas and a mask (1 = foreground), so A = I and
    the operator only carries ``arrays`` ``foreground``, ``background`` ``(C, H, W)`` and
    ``mask`` ``(1, H, W)`` for the ``blend`` loss. Options record where they came from."""

    name = "blend"

    def __init__(self, signal_shape, *, foreground: str | None = None, mask: str | None = None,
                 arrays: Mapping[str, np.ndarray] | None = None) -> None:
        super().__init__(signal_shape)
        arrays = dict(arrays or {})
        missing = [k for k in ("foreground", "background", "mask") if k not in arrays]
        if missing:
            raise ConfigError(f"the blend operator needs its {', '.join(missing)} (record --task blend "
                              "--foreground A --background B --mask M)")
        for key in ("foreground", "background"):
            if tuple(arrays[key].shape) != self.signal_shape:
                raise ConfigError(f"the {key} is {arrays[key].shape}, the output {self.signal_shape}")
        self.options = {k: v for k, v in (("foreground", foreground), ("mask", mask)) if v is not None}
        self.arrays = {"foreground": np.asarray(arrays["foreground"], dtype=np.float32),
                       "background": np.asarray(arrays["background"], dtype=np.float32),
                       "mask": np.asarray(arrays["mask"], dtype=np.uint8).reshape(1, *self.signal_shape[1:])}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x


def build_operator(name: str, signal_shape: tuple[int, ...], *, options: Mapping[str, Any] | None = None,
                   seed: int = 0, arrays: Mapping[str, np.ndarray] | None = None) -> Operator:
    """Operator ``name`` for signals of ``signal_shape`` ``(C, *spatial)``; ``seed`` draws random
    operators (the mask); ``arrays`` restore a stored one (the mask read from a file)."""
    opts = OPERATORS.check_options(name, dict(options or {}))
    cls = OPERATORS.get(name).obj
    kwargs: dict[str, Any] = dict(opts)
    if name == "mask" and arrays and "mask" in arrays:
        kwargs["mask_array"] = arrays["mask"]
        kwargs.pop("drop", None)
    if "arrays" in inspect.signature(cls.__init__).parameters:
        kwargs["arrays"] = dict(arrays or {})
    if "seed" in inspect.signature(cls.__init__).parameters:
        kwargs.setdefault("seed", seed)
    try:
        return cls(tuple(signal_shape), **kwargs)
    except TypeError as exc:
        raise ConfigError(f"operator {name!r}: {exc}") from None

