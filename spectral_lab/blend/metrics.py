r"""Blending metrics of the student study 003 (appendix A4): GFF, GFP, BSI and the masked SSIM.

Images are arrays of shape ``(C, H, W)`` in [0, 1] (C = 1 or 3): the fused result F, the
foreground A (placed on the canvas) and the background B; Ω_T is a boolean ``(H, W)``
transition region (`transition_region`). Everything is computed in float64.

Choices where A4 is open

- Gradients (GFF, GFP, BSI) are taken on the grey level Y (BT.601 luminance for C = 3, the
  channel for C = 1) with Sobel derivatives scaled to intensity per pixel
  (``scipy.ndimage.sobel / 8``, border mode ``reflect``): G = |∇Y| (a ramp of slope s has
  G = s) and θ = atan2(∂_y Y, ∂_x Y) in (−π, π].
- Ω_T: the pixels within ``width = 5`` px (Euclidean) of the mask's boundary, on both
  sides; the image border is not a boundary.
- ε = 1e-3 in GFP and BSI (so BSI <= 1000); G(·) in BSI a Gaussian of σ = 2 px.
- Q in GFF: where G_F = G_S = 0 the magnitude factor 0/0 is taken as 1 (two flat
  gradients agree); θ of a zero gradient is 0.
- SSIM: ``skimage.metrics.structural_similarity`` with its defaults (7 × 7 uniform window,
  K1 = 0.01, K2 = 0.03), ``data_range = 1``, per channel; its full map averaged over the
  channels and then over Ω_T.

GFP is a mean over the whole image (A4 writes 1/N Σ_x), the other three over Ω_T.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.ndimage as ndi

from spectral_lab.errors import AnalysisError

__all__ = [
    "METRICS",
    "blend_metrics",
    "blend_metrics_frames",
    "bsi",
    "gff",
    "gfp",
    "gradient_field",
    "masked_ssim",
    "transition_region",
]

#: Metric names, in the order of the paper's tables.
METRICS = ("gff", "gfp", "bsi", "ssim")

_LUMA = np.array([0.299, 0.587, 0.114])


def _image(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise AnalysisError(f"the {name} must have shape (C, H, W) with C = 1 or 3, got {x.shape}")
    return x


def _same(*images: tuple[np.ndarray, str]) -> list[np.ndarray]:
    arrays = [_image(x, name) for x, name in images]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise AnalysisError(f"images of shapes {sorted(shapes)} differ: "
                            f"{', '.join(n for _, n in images)} must share one (C, H, W)")
    return arrays


def _region(region, shape: tuple[int, ...]) -> np.ndarray:
    r = np.asarray(region)
    if r.shape != shape[-2:]:
        raise AnalysisError(f"the region has shape {r.shape}, expected (H, W) = {shape[-2:]}")
    r = r.astype(bool)
    if not r.any():
        raise AnalysisError("the transition region is empty")
    return r


def transition_region(mask: np.ndarray, *, width: int = 5) -> np.ndarray:
    """Ω_T: the pixels within ``width`` px of the mask's boundary, on either side.

    Parameters
    ----------
    mask : array, shape (H, W)
        Foreground where >= ½.
    width : int
        Band half-width >= 1 in pixels (Euclidean distance to the nearest pixel of the
        other side; a pixel next to the boundary is at distance 1).

    Returns
    -------
    np.ndarray, shape (H, W), bool
    """
    m = np.asarray(mask, dtype=np.float64)
    if m.ndim != 2:
        raise AnalysisError(f"the mask must have shape (H, W), got {m.shape}")
    if int(width) != width or width < 1:
        raise AnalysisError(f"the band width must be an integer >= 1, got {width!r}")
    inside = m >= 0.5
    if inside.all() or not inside.any():
        raise AnalysisError("the mask has no boundary (it is all foreground or all background)")
    to_outside = ndi.distance_transform_edt(inside)
    to_inside = ndi.distance_transform_edt(~inside)
    return np.where(inside, to_outside, to_inside) <= width


def gradient_field(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient magnitude G and direction θ of the image's grey level (module docstring).

    Parameters
    ----------
    image : array, shape (C, H, W), C = 1 or 3

    Returns
    -------
    magnitude, angle : arrays, shape (H, W), float64
        G >= 0 in intensity per pixel, θ in (−π, π].
    """
    x = _image(image, "image")
    grey = x[0] if x.shape[0] == 1 else np.tensordot(_LUMA, x, axes=1)
    gx = ndi.sobel(grey, axis=1, mode="reflect") / 8.0
    gy = ndi.sobel(grey, axis=0, mode="reflect") / 8.0
    return np.hypot(gx, gy), np.arctan2(gy, gx)


def gff(fused: np.ndarray, foreground: np.ndarray, background: np.ndarray, region: np.ndarray) -> float:
    r"""Gradient-based fusion factor, mean over Ω_T of

    .. math:: Q = \frac{2 G_F G_S}{G_F^2 + G_S^2} \cdot \frac{1 + \cos(\theta_F - \theta_S)}{2},
              \quad G_S = \max(G_A, G_B), \quad
              \theta_S = \theta_A \text{ if } G_A \ge G_B \text{ else } \theta_B

    Returns
    -------
    float in [0, 1]
        1 when F has, at every pixel of Ω_T, the stronger source's gradient.
    """
    f, a, b = _same((fused, "fused image"), (foreground, "foreground"), (background, "background"))
    r = _region(region, f.shape)
    return float(_q_map(f, a, b)[r].mean())


def _q_map(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    gf, tf = gradient_field(f)
    ga, ta = gradient_field(a)
    gb, tb = gradient_field(b)
    gs = np.maximum(ga, gb)
    ts = np.where(ga >= gb, ta, tb)
    denominator = gf ** 2 + gs ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        magnitude = np.where(denominator > 0, 2.0 * gf * gs / denominator, 1.0)
    return magnitude * (1.0 + np.cos(tf - ts)) / 2.0


def gfp(fused: np.ndarray, foreground: np.ndarray, background: np.ndarray, *, eps: float = 1e-3) -> float:
    r"""Gradient fusion performance, :math:`\frac1N \sum_x G_F / (\max(G_A, G_B) + \varepsilon)`.

    The mean is over all N pixels of the image (as A4 writes it), not over Ω_T.

    Returns
    -------
    float >= 0
        Unbounded: gradient in F where both sources are flat (noise) raises it by up to 1/ε.
    """
    f, a, b = _same((fused, "fused image"), (foreground, "foreground"), (background, "background"))
    _check_eps(eps)
    gf = gradient_field(f)[0]
    return float(np.mean(gf / (np.maximum(gradient_field(a)[0], gradient_field(b)[0]) + eps)))


def bsi(fused: np.ndarray, region: np.ndarray, *, sigma: float = 2.0, eps: float = 1e-3) -> float:
    r"""Boundary smoothness index, mean over Ω_T of :math:`1 / (|G_F - g_\sigma * G_F| + \varepsilon)`.

    Returns
    -------
    float in (0, 1/ε]
        1/ε where G_F is locally affine (a constant image or a ramp scores the maximum).
    """
    f = _image(fused, "fused image")
    r = _region(region, f.shape)
    _check_eps(eps)
    if not (np.isfinite(sigma) and sigma > 0):
        raise AnalysisError(f"sigma must be a positive number, got {sigma!r}")
    g = gradient_field(f)[0]
    change = np.abs(g - ndi.gaussian_filter(g, sigma, mode="reflect"))
    return float(np.mean(1.0 / (change[r] + eps)))


def masked_ssim(fused: np.ndarray, background: np.ndarray, region: np.ndarray) -> float:
    """SSIM_T: scikit-image's SSIM map of F against B, averaged over channels and over Ω_T.

    Returns
    -------
    float in [-1, 1]
        1 when F = B on the windows around Ω_T.
    """
    from skimage.metrics import structural_similarity

    f, b = _same((fused, "fused image"), (background, "background"))
    r = _region(region, f.shape)
    if min(f.shape[1:]) < 7:
        raise AnalysisError(f"SSIM needs images of at least 7x7 pixels, got {f.shape[1]}x{f.shape[2]}")
    _, full = structural_similarity(f, b, data_range=1.0, channel_axis=0, full=True)
    return float(full.mean(axis=0)[r].mean())


def _check_eps(eps: float) -> None:
    if not (np.isfinite(eps) and eps > 0):
        raise AnalysisError(f"eps must be a positive number, got {eps!r}")


def blend_metrics(fused: np.ndarray, foreground: np.ndarray, background: np.ndarray, region: np.ndarray, *,
                  eps: float = 1e-3, sigma: float = 2.0) -> dict[str, float]:
    """The four metrics of one fused image, by the names of `METRICS`.

    Parameters
    ----------
    fused, foreground, background : arrays, shape (C, H, W)
    region : array, shape (H, W), bool
        Ω_T.
    eps, sigma : float
        ε of GFP and BSI, σ of BSI.

    Returns
    -------
    dict with keys 'gff', 'gfp', 'bsi', 'ssim' (floats)
    """
    return {
        "gff": gff(fused, foreground, background, region),
        "gfp": gfp(fused, foreground, background, eps=eps),
        "bsi": bsi(fused, region, sigma=sigma, eps=eps),
        "ssim": masked_ssim(fused, background, region),
    }


def blend_metrics_frames(blocks: Iterable[np.ndarray] | np.ndarray, foreground: np.ndarray,
                         background: np.ndarray, region: np.ndarray, *, eps: float = 1e-3,
                         sigma: float = 2.0) -> dict[str, np.ndarray]:
    """Score every frame of a trajectory, block by block (memory bounded by one block).

    Parameters
    ----------
    blocks : iterable of arrays of shape (t, C, H, W), or one array of shape (T, C, H, W)
        Consecutive frames, e.g. chunks read from a trajectory file.
    foreground, background, region, eps, sigma
        As in `blend_metrics`.

    Returns
    -------
    dict with keys 'gff', 'gfp', 'bsi', 'ssim', each an array of shape (T,), float64
        Entry i scores frame i (frames counted across blocks in order).
    """
    if isinstance(blocks, np.ndarray):
        blocks = [blocks]
    scores: dict[str, list[float]] = {name: [] for name in METRICS}
    for block in blocks:
        block = np.asarray(block)
        if block.ndim != 4:
            raise AnalysisError(f"each block must have shape (t, C, H, W), got {block.shape}")
        for frame in block:
            for name, value in blend_metrics(frame, foreground, background, region, eps=eps, sigma=sigma).items():
                scores[name].append(value)
    return {name: np.asarray(values, dtype=np.float64) for name, values in scores.items()}
