r"""Blending inputs built from ordinary photographs: a background, a foreground placed on its
canvas and a coarse mask, all of one size, written as the PNG files ``record --task blend``
reads.

A pair is described by `PairSpec` in fractions of each image, so the same description gives
a 64 × 64 or a 512 × 512 canvas:

- the **background** is the ``background_box`` of its photograph (top, left, height, width as
  fractions of that photograph's height and width), resampled to the canvas;
- the **foreground** photograph is scaled and shifted so that its ``object_box`` lands on the
  canvas' ``target_box`` (a similarity transform: one scale for both axes when the two boxes
  have the same aspect ratio, else one per axis), and resampled over the *whole* canvas, not
  only inside the box: the blend objective, Poisson and Laplacian-pyramid blending all read the
  foreground outside the mask (the transition band, the Poisson boundary's neighbours, the
  pyramid's coarse levels). Where the canvas maps outside the foreground photograph, the
  photograph is mirrored at its border;
- the **mask** (1 = foreground) is an ellipse ``("ellipse", cy, cx, ry, rx)`` or a straight seam
  ``("left", x)`` (the left part of the canvas, x < the fraction; Burt & Adelson's apple and
  orange), in canvas fractions.

Resampling is PIL's Lanczos filter (anti-aliased when shrinking) on float32 channels, clipped
to [0, 1]. Images are float arrays ``(C, H, W)`` in [0, 1] (`spectral_lab.signals.load_image`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from spectral_lab.errors import ConfigError

__all__ = ["PairSpec", "ellipse_mask", "seam_mask", "resample", "build_pair", "write_pair", "PAIR_FILES"]

#: The file names `write_pair` writes, by role.
PAIR_FILES = {"foreground": "foreground.png", "background": "background.png", "mask": "mask.png"}


@dataclass(frozen=True)
class PairSpec:
    """One blending pair, in fractions of each image (see the module docstring).

    ``foreground`` / ``background``: image files; ``background_box``: (top, left, height,
    width) of the background photograph used as the canvas; ``object_box``: the object's box
    in the foreground photograph; ``target_box``: where that box lands on the canvas (None:
    the whole canvas, i.e. the foreground photograph's ``object_box`` resampled to the
    canvas, as for a seam); ``mask``: ``("ellipse", cy, cx, ry, rx)`` or ``("left", x)``.
    """

    foreground: str
    background: str
    background_box: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    object_box: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    target_box: tuple[float, float, float, float] | None = None
    mask: tuple = ("left", 0.5)


def _box(box, name: str) -> tuple[float, float, float, float]:
    if len(box) != 4 or not all(np.isfinite(v) for v in box):
        raise ConfigError(f"the {name} must be (top, left, height, width) fractions, got {box!r}")
    top, left, height, width = (float(v) for v in box)
    if height <= 0 or width <= 0:
        raise ConfigError(f"the {name} must have a positive height and width, got {box!r}")
    return top, left, height, width


def _size(size) -> tuple[int, int]:
    h, w = (size, size) if np.isscalar(size) else tuple(size)
    if int(h) != h or int(w) != w or h < 2 or w < 2:
        raise ConfigError(f"the canvas size must be integers >= 2, got {size!r}")
    return int(h), int(w)


def ellipse_mask(size, center: tuple[float, float], radii: tuple[float, float]) -> np.ndarray:
    """An axis-aligned ellipse, 1 inside (pixel centres), as uint8 ``(H, W)``.

    Parameters
    ----------
    size : int or (H, W)
    center : (cy, cx)
        In fractions of (H, W).
    radii : (ry, rx)
        Semi-axes in fractions of (H, W), > 0.
    """
    h, w = _size(size)
    (cy, cx), (ry, rx) = center, radii
    if not (ry > 0 and rx > 0):
        raise ConfigError(f"ellipse radii must be positive, got {radii!r}")
    y = (np.arange(h) + 0.5) / h
    x = (np.arange(w) + 0.5) / w
    inside = ((y[:, None] - cy) / ry) ** 2 + ((x[None, :] - cx) / rx) ** 2 <= 1.0
    return inside.astype(np.uint8)


def seam_mask(size, x: float) -> np.ndarray:
    """The canvas left of a vertical seam: 1 where the pixel centre's x < ``x`` (fraction of W)."""
    h, w = _size(size)
    if not 0 < x < 1:
        raise ConfigError(f"the seam must lie inside the canvas (0 < x < 1), got {x!r}")
    cols = (np.arange(w) + 0.5) / w < x
    return np.broadcast_to(cols, (h, w)).astype(np.uint8)


def _mask(spec: tuple, size: tuple[int, int]) -> np.ndarray:
    kind, *args = spec
    if kind == "ellipse" and len(args) == 4:
        return ellipse_mask(size, (args[0], args[1]), (args[2], args[3]))
    if kind == "left" and len(args) == 1:
        return seam_mask(size, args[0])
    raise ConfigError(f"a mask is ('ellipse', cy, cx, ry, rx) or ('left', x), got {spec!r}")


def resample(image: np.ndarray, box: tuple[float, float, float, float], size) -> np.ndarray:
    """The region ``box`` (top, left, height, width in *pixels* of ``image``, fractional
    allowed, possibly beyond its border: the image mirrored there) resampled to ``size``.

    Parameters
    ----------
    image : array, shape (C, H, W), values in [0, 1]
    box : (top, left, height, width), pixels
    size : int or (h, w)

    Returns
    -------
    np.ndarray, shape (C, h, w), float32, clipped to [0, 1]
    """
    from PIL import Image

    x = np.asarray(image, dtype=np.float32)
    if x.ndim != 3:
        raise ConfigError(f"an image must have shape (C, H, W), got {x.shape}")
    h, w = _size(size)
    top, left, height, width = _box(box, "box")
    # mirror the image far enough that the box lies inside, plus the filter's reach (3 lobes
    # of the source pixel size when shrinking)
    reach = 3 * max(1.0, height / h, width / w)
    pad_top = int(np.ceil(max(0.0, -top) + reach))
    pad_left = int(np.ceil(max(0.0, -left) + reach))
    pad_bottom = int(np.ceil(max(0.0, top + height - x.shape[1]) + reach))
    pad_right = int(np.ceil(max(0.0, left + width - x.shape[2]) + reach))
    padded = np.pad(x, ((0, 0), (pad_top, pad_bottom), (pad_left, pad_right)), mode="symmetric")
    region = (left + pad_left, top + pad_top, left + pad_left + width, top + pad_top + height)
    out = [np.asarray(Image.fromarray(channel, mode="F").resize((w, h), Image.LANCZOS, box=region))
           for channel in padded]
    return np.clip(np.stack(out), 0.0, 1.0).astype(np.float32)


def build_pair(spec: PairSpec, size, *, grey: bool = False) -> dict[str, np.ndarray]:
    """The pair's three arrays on a canvas of ``size``.

    Returns
    -------
    dict
        ``foreground``, ``background``: float32 ``(C, H, W)`` in [0, 1]; ``mask``: uint8
        ``(H, W)``, 1 = foreground.

    Raises
    ------
    ConfigError
        A bad box or mask, an empty or full mask, or images of different channel counts.
    """
    from spectral_lab.signals import load_image

    h, w = _size(size)
    bg_image = load_image(spec.background, grey=grey)
    fg_image = load_image(spec.foreground, grey=grey)
    if bg_image.shape[0] != fg_image.shape[0]:
        raise ConfigError(f"{spec.foreground} has {fg_image.shape[0]} channel(s), {spec.background} "
                          f"{bg_image.shape[0]}: read both in colour or both grey")
    bt, bl, bh, bw = _box(spec.background_box, "background box")
    bg_h, bg_w = bg_image.shape[1:]
    background = resample(bg_image, (bt * bg_h, bl * bg_w, bh * bg_h, bw * bg_w), (h, w))
    ot, ol, oh, ow = _box(spec.object_box, "object box")
    fg_h, fg_w = fg_image.shape[1:]
    obj = (ot * fg_h, ol * fg_w, oh * fg_h, ow * fg_w)  # the object, foreground pixels
    tt, tl, th, tw = _box(spec.target_box or (0.0, 0.0, 1.0, 1.0), "target box")
    tgt = (tt * h, tl * w, th * h, tw * w)  # where it goes, canvas pixels
    sy, sx = obj[2] / tgt[2], obj[3] / tgt[3]  # foreground pixels per canvas pixel
    canvas_in_fg = (obj[0] - tgt[0] * sy, obj[1] - tgt[1] * sx, h * sy, w * sx)
    foreground = resample(fg_image, canvas_in_fg, (h, w))
    mask = _mask(tuple(spec.mask), (h, w))
    if not mask.any() or mask.all():
        raise ConfigError(f"the mask {spec.mask!r} leaves no boundary on a {h}x{w} canvas")
    return {"foreground": foreground, "background": background, "mask": mask}


def write_pair(arrays: Mapping[str, np.ndarray], folder: str | Path) -> dict[str, Path]:
    """Write a pair (`build_pair`) as 8-bit PNGs ``foreground.png``, ``background.png`` and
    ``mask.png`` (0 / 255) into ``folder``; returns their paths by role.

    8 bits lose nothing `record` would keep: it reads the inputs from these files.
    """
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, name in PAIR_FILES.items():
        x = np.asarray(arrays[role])
        if role == "mask":
            pixels = (x != 0).astype(np.uint8) * 255
        else:
            pixels = np.round(np.clip(np.moveaxis(x, 0, -1), 0, 1) * 255).astype(np.uint8)
            pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
        paths[role] = folder / name
        Image.fromarray(pixels).save(paths[role])
    return paths
