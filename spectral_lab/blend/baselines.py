r"""Classical blending baselines: alpha, Poisson (seamless) and Laplacian-pyramid blending.

Images are numpy arrays of shape ``(C, H, W)`` with values in [0, 1], the foreground ``A``
already placed on the background's canvas; masks are ``(H, W)`` in [0, 1], 1 on the
foreground. Results are float64 ``(C, H, W)``.

Where each comes from

- `alpha_blend`: one line, :math:`F = \alpha A + (1 - \alpha) B`; use it with the same soft
  map as the DIP objective (`soft_alpha`, which calls `objective.soft_mask`).
- `poisson_blend`: Pérez, Gangnet & Blake (2003), solved here with ``scipy.sparse``
  (a sparse LU factorisation, one per mask, reused for every channel). Neither scipy nor
  scikit-image has Poisson image editing; OpenCV's ``seamlessClone`` is not a dependency
  of the lab (and solves on the mask's bounding box with its own erosion of the mask),
  and ``fpie`` needs OpenCV too. The discrete problem is small and exactly specified,
  so the solver is ~40 lines that the tests check against its defining equations.
- `laplacian_pyramid_blend`: Burt & Adelson (1983) on scikit-image's Gaussian pyramid
  (``skimage.transform.pyramid_gaussian``). scikit-image's ``pyramid_laplacian`` is not
  used: its layers are ``G_l − smooth(G_l)`` and it has no reconstruction, while blending
  needs ``L_l = G_l − expand(G_{l+1})``, which collapses back exactly.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from spectral_lab.errors import ConfigError

__all__ = ["alpha_blend", "laplacian_pyramid_blend", "poisson_blend", "soft_alpha"]


def _check_images(foreground, background) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(foreground, dtype=np.float64)
    b = np.asarray(background, dtype=np.float64)
    if a.ndim != 3 or a.shape != b.shape:
        raise ConfigError(f"foreground {a.shape} and background {b.shape} must both have shape (C, H, W)")
    for name, x in (("foreground", a), ("background", b)):
        if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
            raise ConfigError(f"the {name} must hold finite values in [0, 1]")
    return a, b


def _check_mask(mask, shape: tuple[int, int], name: str = "mask") -> np.ndarray:
    m = np.asarray(mask, dtype=np.float64)
    if m.shape != shape:
        raise ConfigError(f"the {name} has shape {m.shape}, expected (H, W) = {shape}")
    if not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
        raise ConfigError(f"the {name} must hold values in [0, 1]")
    return m


def soft_alpha(mask: np.ndarray, *, size: int = 7, repeats: int = 3) -> np.ndarray:
    """The DIP objective's soft map α (`objective.soft_mask`) of a numpy mask, float64 (H, W)."""
    import torch

    from spectral_lab.blend.objective import soft_mask

    m = torch.from_numpy(np.asarray(mask, dtype=np.float64))
    return soft_mask(m, size=size, repeats=repeats).numpy()


def alpha_blend(foreground: np.ndarray, background: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    r"""Alpha blending :math:`F = \alpha A + (1 - \alpha) B`, per pixel and channel.

    Parameters
    ----------
    foreground, background : arrays, shape (C, H, W), values in [0, 1]
    alpha : array, shape (H, W), values in [0, 1]
        The blending weight of the foreground, e.g. `soft_alpha` of the mask.

    Returns
    -------
    np.ndarray, shape (C, H, W), float64, values in [0, 1]
    """
    a, b = _check_images(foreground, background)
    w = _check_mask(alpha, a.shape[1:], "alpha")
    return w * a + (1.0 - w) * b


def poisson_blend(foreground: np.ndarray, background: np.ndarray, mask: np.ndarray, *,
                  mixed: bool = False, clip: bool = True) -> np.ndarray:
    r"""Poisson (seamless) blending: the foreground's gradients inside, the background's values around.

    With Ω = {mask >= ½} and 4-neighbours N_p inside the image, the result f equals B
    outside Ω and solves, for every p in Ω,

    .. math:: |N_p| f_p - \sum_{q \in N_p \cap \Omega} f_q
              = \sum_{q \in N_p \setminus \Omega} B_q + \sum_{q \in N_p} v_{pq},
              \qquad v_{pq} = A_p - A_q

    (Dirichlet values B on Ω's outer boundary, Neumann at the image border), i.e. the
    discrete Laplacian of f equals that of A at every pixel of Ω. With ``mixed=True``
    v_pq is whichever of A_p − A_q and B_p − B_q has the larger magnitude (Pérez et al.'s
    mixed gradients).

    Parameters
    ----------
    foreground, background : arrays, shape (C, H, W), values in [0, 1]
    mask : array, shape (H, W), values in [0, 1]
        Thresholded at ½ to give Ω.
    mixed : bool
        Mixed instead of imported gradients (default False, the seamless clone).
    clip : bool
        Clip the result to [0, 1] (default True; the solution may overshoot).

    Returns
    -------
    np.ndarray, shape (C, H, W), float64

    Raises
    ------
    ConfigError
        If Ω is empty, or a connected part of Ω touches no background pixel (the system
        would be singular: nothing fixes its level).
    """
    a, b = _check_images(foreground, background)
    region = _check_mask(mask, a.shape[1:]) >= 0.5
    if not region.any():
        raise ConfigError("the mask is empty: Poisson blending has no region to fill")
    labels, count = ndi.label(region)
    touching = np.unique(labels[ndi.binary_dilation(~region) & region])
    if len(set(touching) - {0}) < count:
        raise ConfigError("a part of the mask touches no background pixel: Poisson blending "
                          "needs background around every part of the region")
    height, width = region.shape
    index = -np.ones(region.shape, dtype=np.int64)
    index[region] = np.arange(region.sum())
    n = int(region.sum())
    rows, cols, vals = [np.arange(n)], [np.arange(n)], [np.zeros(n)]
    diag = np.zeros(n)
    rhs = np.zeros((n, a.shape[0]))
    pi, pj = np.nonzero(region)
    for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        qi, qj = pi + di, pj + dj
        inside = (qi >= 0) & (qi < height) & (qj >= 0) & (qj < width)
        p = index[pi[inside], pj[inside]]
        qi, qj = qi[inside], qj[inside]
        diag[p] += 1.0
        guide = a[:, pi[inside], pj[inside]] - a[:, qi, qj]  # (C, n_dir)
        if mixed:
            other = b[:, pi[inside], pj[inside]] - b[:, qi, qj]
            guide = np.where(np.abs(other) > np.abs(guide), other, guide)
        np.add.at(rhs, p, guide.T)
        q_in = region[qi, qj]
        rows.append(p[q_in])
        cols.append(index[qi[q_in], qj[q_in]])
        vals.append(-np.ones(int(q_in.sum())))
        np.add.at(rhs, p[~q_in], b[:, qi[~q_in], qj[~q_in]].T)
    vals[0] = diag
    matrix = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    solution = spla.splu(matrix).solve(rhs)  # (n, C)
    out = b.copy()
    out[:, region] = solution.T
    return np.clip(out, 0.0, 1.0) if clip else out


def _expand(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Bilinear up-sampling of an (h, w, C) level to ``shape`` (the pyramid's EXPAND)."""
    from skimage.transform import resize

    return resize(image, shape, order=1, mode="reflect", anti_aliasing=False)


def laplacian_pyramid_blend(foreground: np.ndarray, background: np.ndarray, mask: np.ndarray, *,
                            levels: int = 4) -> np.ndarray:
    r"""Laplacian-pyramid blending (Burt & Adelson): each band blended with the mask's Gaussian level.

    With Gaussian pyramids G_l (skimage ``pyramid_gaussian``: σ = 2/3 Gaussian, halving,
    ceil of odd sides) of A, B and the mask M, and bands L_l = G_l − expand(G_{l+1})
    (l < N − 1), L_{N−1} = G_{N−1}:

    .. math:: L^F_l = G^M_l L^A_l + (1 - G^M_l) L^B_l, \qquad
              F = L^F_0 + \operatorname{expand}(L^F_1 + \operatorname{expand}(\dots))

    expand is bilinear interpolation to the finer level's shape. With ``levels = 1`` this
    is alpha blending with the mask itself; with a mask of ones it returns A exactly.

    Parameters
    ----------
    foreground, background : arrays, shape (C, H, W), values in [0, 1]
    mask : array, shape (H, W), values in [0, 1]
        Usually the binary mask (the pyramid makes its own transition).
    levels : int
        Number of pyramid levels N >= 1 (default 4); the coarsest must keep >= 2 pixels a side.

    Returns
    -------
    np.ndarray, shape (C, H, W), float64, clipped to [0, 1]
    """
    from skimage.transform import pyramid_gaussian

    a, b = _check_images(foreground, background)
    m = _check_mask(mask, a.shape[1:])
    if int(levels) != levels or levels < 1:
        raise ConfigError(f"levels must be an integer >= 1, got {levels!r}")
    levels = int(levels)
    coarsest = [int(np.ceil(s / 2 ** (levels - 1))) for s in a.shape[1:]]
    if min(coarsest) < 2:
        raise ConfigError(f"an image of {a.shape[1]}x{a.shape[2]} is too small for {levels} pyramid levels")

    def gaussian(x, channel_axis):
        return list(pyramid_gaussian(x, max_layer=levels - 1, channel_axis=channel_axis))

    ga = gaussian(np.moveaxis(a, 0, -1), -1)
    gb = gaussian(np.moveaxis(b, 0, -1), -1)
    gm = [g[..., np.newaxis] for g in gaussian(m, None)]

    def bands(g):
        return [g[k] - _expand(g[k + 1], g[k].shape) for k in range(levels - 1)] + [g[-1]]

    blended = [w * la + (1.0 - w) * lb for w, la, lb in zip(gm, bands(ga), bands(gb))]
    out = blended[-1]
    for band in reversed(blended[:-1]):
        out = band + _expand(out, band.shape)
    return np.clip(np.moveaxis(out, -1, 0), 0.0, 1.0)
