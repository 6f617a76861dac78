"""The problem of one configuration: the clean signal x, the forward operator A, the
observation y = noise(A(x)) (or a degraded image the user has), and the network's input
when it is a guide image.

Shapes as stored in a trajectory: 1D signals ``(N,)``, images ``(C, H, W)``; the
observation has the operator's output shape (``factor`` times smaller per axis for
super-resolution). The operator itself works on ``(R, C, *spatial)`` (`model_shape`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from . import signals
from .config import RunConfig, resolve
from .errors import ConfigError
from .models import required_multiple
from .operators import Operator, build_operator

__all__ = ["Problem", "make_problem", "model_kwargs"]


@dataclass
class Problem:
    """``clean``: the target (None when only a degraded image was given, ``--observed``
    without ``--image``); ``observed``: what is fitted, in the operator's output shape;
    ``operator``: A; ``guide``: the input image ``(C, H, W)`` or None; ``shape``: the
    output's stored shape."""

    kind: str
    clean: np.ndarray | None
    observed: np.ndarray
    operator: Operator
    shape: tuple[int, ...]
    guide: np.ndarray | None = None

    @property
    def model_shape(self) -> tuple[int, ...]:
        """``(C, *spatial)`` of the network's output: a 1D signal is one channel."""
        return (1, *self.shape) if self.kind == "1d" else tuple(self.shape)

    @property
    def observed_model_shape(self) -> tuple[int, ...]:
        return (1, *self.observed.shape) if self.kind == "1d" else tuple(self.observed.shape)


def model_kwargs(cfg: RunConfig) -> dict:
    """The model section as keyword arguments, refusing what cannot be one (from a JSON config)."""
    m = cfg.model
    if not isinstance(m.name, str):
        raise ConfigError(f"model name must be a string, got {m.name!r}")
    if not isinstance(m.options, Mapping) or not all(isinstance(k, str) for k in m.options):
        raise ConfigError(f"model options must map option names to values, got {m.options!r}")
    return dict(m.options)


def make_problem(cfg: RunConfig) -> Problem:
    """Build the clean and observed signals and the operator; SignalError/ConfigError on bad input."""
    cfg = resolve(cfg)
    # Overflows become non-finite values, refused below with a clear message, not warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        problem = _make_problem(cfg)
    for name, values in (("signal", problem.clean), ("observed (degraded) signal", problem.observed)):
        if values is not None and not np.isfinite(values).all():
            raise ConfigError(f"the {name} has values that are not finite; amplitudes or noise sigma "
                              f"too large for float32?")
    return problem


def _make_problem(cfg: RunConfig) -> Problem:
    s, d = cfg.signal, cfg.degrade
    multiple = required_multiple(cfg.model.name, **model_kwargs(cfg))
    crop = math.lcm(multiple, s.crop_multiple)
    clean, image_path = None, None
    if s.kind == "sines":
        clean = signals.sines(s.freqs, s.amps, s.phases, s.length)
        kind = "1d"
        if s.length % multiple:
            raise ConfigError(f"model {cfg.model.name!r} needs a length that is a multiple of {multiple}; "
                              f"got {s.length}")
    elif s.kind == "image":
        kind = "image"
        if s.observed is None or s.image is not None:
            image_path = s.image if s.image is not None else signals.sample_image_path()
            clean = signals.load_image(image_path, grey=s.grey, downsample=s.downsample, crop_multiple=crop)
    else:
        if s.size % multiple:
            raise ConfigError(f"model {cfg.model.name!r} needs an image side that is a multiple of "
                              f"{multiple}; got --size {s.size}")
        clean = signals.triangle_image((s.size, s.size), s.pattern_fraction)
        kind = "image"

    if cfg.task == "blend":
        return _blend_problem(cfg, clean, multiple)
    given = None
    if s.observed is not None:
        # a degraded image as it is: its crop follows the output's (the clean image's) grid
        given = signals.load_image(s.observed, grey=s.grey, downsample=s.downsample,
                                   crop_multiple=1 if cfg.task == "superres" else crop)
    shape = tuple(clean.shape) if clean is not None else tuple(given.shape)
    model_shape = (1, *shape) if kind == "1d" else shape
    operator = build_operator(cfg.operator.name, model_shape, options=cfg.operator.options,
                              seed=d.seed, arrays=_operator_arrays(cfg, kind, image_path, shape))

    if given is not None:
        expected = operator.output_shape(model_shape)
        if tuple(given.shape) != tuple(expected):
            raise ConfigError(f"the observed image is {'x'.join(map(str, given.shape[1:]))} but "
                              f"{_task_phrase(cfg)} needs {'x'.join(map(str, expected[1:]))}")
        if clean is not None and cfg.task != "superres" and given.shape != clean.shape:
            raise ConfigError(f"the observed image ({'x'.join(map(str, given.shape))}) and the clean "
                              f"image ({'x'.join(map(str, clean.shape))}) differ in size")
        observed = given
    else:
        a_x = operator.apply_numpy(np.asarray(clean, dtype=np.float64).reshape(model_shape))
        a_x = a_x.reshape(a_x.shape[1:]) if kind == "1d" else a_x
        if cfg.task == "fit" or d.noise in (None, "none"):
            observed = signals.degrade(a_x, noise="none", probe=d.probe, seed=d.seed)
        else:
            # images live in [0, 1] and are clipped like a saved photograph; 1D signals are signed
            observed = signals.degrade(a_x, noise=d.noise, sigma=d.sigma, cutoff=d.cutoff, seed=d.seed,
                                       clip=kind == "image", probe=d.probe)
    if operator.known is not None:  # unknown samples carry no observation: 0, as A f there
        observed = observed * operator.known.reshape((1,) * (observed.ndim - operator.known.ndim + 1)
                                                     + operator.known.shape[1:])
    guide = None
    if cfg.fit.input_image is not None:
        guide = signals.load_image(cfg.fit.input_image, grey=s.grey, downsample=s.downsample, crop_multiple=crop)
        if guide.shape[1:] != tuple(shape[1:]):
            raise ConfigError(f"the input image is {'x'.join(map(str, guide.shape[1:]))} but the output is "
                              f"{'x'.join(map(str, shape[1:]))}: a guide image must have the output's size")
    return Problem(kind, None if clean is None else np.asarray(clean, dtype=np.float32),
                   np.asarray(observed, dtype=np.float32), operator, shape, guide)


def _task_phrase(cfg: RunConfig) -> str:
    return {"superres": f"super-resolution by {cfg.operator.options.get('factor', 4)} of the clean image",
            "inpaint": "the mask"}.get(cfg.task, "the output")


def _operator_arrays(cfg: RunConfig, kind: str, image_path, shape) -> dict:
    """A mask image, brought to the output's grid (as `signals.load_mask` says)."""
    mask_path = cfg.operator.options.get("mask") if cfg.operator.name == "mask" else None
    if mask_path is None:
        return {}
    s = cfg.signal
    size_source = image_path if image_path is not None else s.observed
    multiple = required_multiple(cfg.model.name, **model_kwargs(cfg))
    mask = signals.load_mask(mask_path, size=signals.image_size(size_source), downsample=s.downsample,
                             crop_multiple=math.lcm(multiple, s.crop_multiple))
    if mask.shape[1:] != tuple(shape[1:]):  # pragma: no cover - same grid by construction
        raise ConfigError(f"the mask's grid {mask.shape[1:]} is not the image's {shape[1:]}")
    return {"mask": mask}


def _blend_problem(cfg: RunConfig, background: np.ndarray, multiple: int) -> Problem:
    """Blending: no clean target; the background (``signal.image``) is the canvas, the
    foreground is placed on it (`place_foreground`), the mask (1 = foreground) is brought to
    the canvas' grid like an inpainting mask."""
    s = cfg.signal
    crop = math.lcm(multiple, s.crop_multiple)
    foreground = signals.load_image(s.foreground, grey=s.grey, downsample=s.downsample, crop_multiple=1)
    mask = signals.load_mask(cfg.operator.options["mask"], size=signals.image_size(s.image),
                             downsample=s.downsample, crop_multiple=crop)
    if not mask.any():
        raise ConfigError("the blending mask selects no pixel (nonzero = foreground)")
    if foreground.shape[0] != background.shape[0]:
        raise ConfigError(f"the foreground has {foreground.shape[0]} channel(s), the background "
                          f"{background.shape[0]}: load both in colour or both grey (--grey)")
    placed = place_foreground(foreground, background.shape, mask[0])
    operator = build_operator("blend", tuple(background.shape), options=cfg.operator.options,
                              arrays={"foreground": placed, "background": background, "mask": mask})
    return Problem("image", None, np.asarray(background, dtype=np.float32), operator, tuple(background.shape))


def place_foreground(foreground: np.ndarray, shape: tuple[int, ...], mask: np.ndarray) -> np.ndarray:
    """The foreground on a canvas of ``shape`` ``(C, H, W)``: as it is when it has the canvas'
    size (already placed), else centred on the mask's centroid (it must cover the mask; the
    canvas outside it is 0, which the blend objective never reads)."""
    if tuple(foreground.shape) == tuple(shape):
        return np.asarray(foreground, dtype=np.float32)
    c, h, w = shape
    fh, fw = foreground.shape[1:]
    if fh > h or fw > w:
        raise ConfigError(f"the foreground ({fh}x{fw}) is larger than the background ({h}x{w})")
    ys, xs = np.nonzero(mask)
    top = int(np.clip(round(ys.mean() - fh / 2), 0, h - fh))
    left = int(np.clip(round(xs.mean() - fw / 2), 0, w - fw))
    covered = np.zeros((h, w), dtype=bool)
    covered[top:top + fh, left:left + fw] = True
    if not covered[mask != 0].all():
        raise ConfigError(f"the foreground ({fh}x{fw}) centred on the mask does not cover it: make the mask "
                          "fit inside the foreground, or give a foreground of the background's size")
    canvas = np.zeros(shape, dtype=np.float32)
    canvas[:, top:top + fh, left:left + fw] = foreground
    return canvas
