r"""The blending objective of the student study 003 (appendix A3), one torch function per term.

Notation: ``F`` the network output, shape ``(R, C, H, W)`` (R independent runs); ``A`` the
foreground and ``B`` the background, both already placed on the output's canvas, shape
``(C, H, W)`` or ``(R, C, H, W)``; a soft transition map ``alpha`` of shape ``(H, W)`` or
``(R, 1, H, W)``, 1 on the foreground, 0 on the background. Every term returns one value
per run, shape ``(R,)``, and is differentiable in ``F``; device and dtype follow ``F``.

Conventions (the paper's :math:`\mathbb{E}_x` and norms, made explicit)

- :math:`\mathbb{E}_x` is the mean over all ``H * W`` pixels; the region weights are *not*
  renormalised (the paper writes an expectation, not a weighted mean).
- :math:`\|\cdot\|_2^2` and :math:`\|\cdot\|_1` at a pixel run over the channels (and, for
  gradients, over both components): ``sum_c``, not ``mean_c``.
- :math:`\nabla X = (\partial_x X, \partial_y X)` per channel, forward differences
  :math:`\partial_x X[i, j] = X[i, j+1] - X[i, j]`, zero in the last column (last row for
  :math:`\partial_y`): the Neumann boundary, so a constant image has zero gradient.
  x runs along the width (columns), y along the height (rows).
- Filters pad by replicating the border, so they keep constants at any image size.

Choices where the paper is open (each a keyword of `blend_loss`, defaults here)

==========================  ==================================================================
soft map alpha              ``soft_repeats = 3`` passes of a ``soft_size = 7`` box filter over
                            the mask (≈ a Gaussian of σ = sqrt(3 (7² − 1) / 12) ≈ 3.5 px;
                            α is exactly 1 (0) where the mask is 1 (0) within 9 px)
annealing exponent c        ``anneal_power = 2``: γ(t) = 1 + 4 (1 − t/T)², γ(T/2) = 2
G (low frequencies)         ``low_freq_size = 15``: a 15 × 15 box (average) filter per channel
J (illumination)            luminance Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601; a grey
                            image is its own Y), then a Gaussian of ``illum_sigma = 8`` px
                            (truncated at 3σ): grey, and coarser than G
scales S of L_grad          ``grad_scales = (1, 2, 4)``, the multi-scale loss of Section 4.2:
                            F^(s), A^(s), α_t^(s) by s × s average pooling (stride s, a
                            partial last window averages its valid pixels)
cosine of L_dir             per channel, averaged over channels; pixels where
                            ``|∇A| <= dir_eps = 1e-2`` have no direction to keep and add 0;
                            ``|∇F|`` is floored at ``dir_eps`` in the denominator (the exact
                            cosine where |∇F| >= dir_eps; a gradient bounded by 1/dir_eps
                            instead of one growing like 1/|∇F| at a flat output)
structure tensor of L_aniso J = G_ρ * Σ_c ∇B_c ∇B_cᵀ with a Gaussian of ``tensor_sigma = 2`` px;
                            θ = ½ atan2(2 J_xy, J_xx − J_yy) (the quadrant-correct form of the
                            paper's ½ arctan(2 J_xy / (J_xx − J_yy)), which is undefined at
                            J_xx = J_yy and picks the minor eigenvector when J_xx < J_yy);
                            t = (−sin θ, cos θ) is then tangent to B's isophotes; where J is
                            isotropic (e.g. B constant) θ = 0 and t = (0, 1)
==========================  ==================================================================

The input-noise perturbation and early stopping of the paper belong to the fit loop, not
to this objective.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from spectral_lab.blend.filters import box_filter, gaussian_filter, image_gradient, luminance
from spectral_lab.errors import ConfigError

__all__ = [
    "BLEND_OPTIONS",
    "BLEND_WEIGHTS",
    "anisotropic_loss",
    "annealed_alpha",
    "annealing_exponent",
    "blend_loss",
    "blend_terms",
    "direction_loss",
    "gradient_blend_loss",
    "gradient_loss",
    "illumination_loss",
    "low_frequency_loss",
    "pixel_loss",
    "soft_mask",
    "structure_tangent",
    "transition_weight",
]

#: The paper's weights (λ_p, λ_lf, λ_ill, λ_g, λ_d, λ_b, λ_a) = (50, 25, 20, 6, 4, 12, 18),
#: in the order of the paper's L_total, by term name.
BLEND_WEIGHTS: dict[str, float] = {
    "pixel": 50.0,     # λ_p   L_pixel      background pixels
    "low_freq": 25.0,  # λ_lf  L_low-freq   background low frequencies
    "illum": 20.0,     # λ_ill L_illum      background illumination
    "grad": 6.0,       # λ_g   L_grad       foreground multi-scale gradients
    "dir": 4.0,        # λ_d   L_dir        foreground gradient directions
    "blend": 12.0,     # λ_b   L_blend      gradient blending in the transition band
    "aniso": 18.0,     # λ_a   L_aniso      anisotropic texture propagation
}

#: The open choices of the module docstring and their defaults (keywords of `blend_loss`).
BLEND_OPTIONS: dict[str, object] = {
    "soft_size": 7,
    "soft_repeats": 3,
    "anneal_power": 2.0,
    "low_freq_size": 15,
    "illum_sigma": 8.0,
    "grad_scales": (1, 2, 4),
    "dir_eps": 1e-2,
    "tensor_sigma": 2.0,
}

# --------------------------------------------------------------------------- soft map

def soft_mask(mask: torch.Tensor, *, size: int = 7, repeats: int = 3) -> torch.Tensor:
    r"""Soft transition map α of a coarse mask: ``repeats`` passes of a ``size`` box filter.

    .. math:: \alpha = (K_{\text{box}} *)^{n}\, M, \qquad n = \texttt{repeats}

    Parameters
    ----------
    mask : tensor, shape (..., H, W)
        Values in [0, 1]: 1 foreground, 0 background (binary or already soft).
    size : int
        Odd box side (default 7).
    repeats : int
        Number of passes >= 1 (default 3; the three passes approximate a Gaussian of
        σ = sqrt(repeats (size² − 1) / 12) ≈ 3.5 px).

    Returns
    -------
    tensor, shape of ``mask``, values in [0, 1]
        α = 1 wherever the mask is 1 on the whole ``repeats (size − 1) + 1`` square around
        the pixel, 0 wherever it is 0 there; ``soft_mask(1 - m) == 1 - soft_mask(m)``.
    """
    if not torch.is_floating_point(mask):
        mask = mask.to(torch.get_default_dtype())
    if mask.ndim < 2:
        raise ConfigError(f"the mask must have shape (..., H, W), got {tuple(mask.shape)}")
    if bool(torch.any(mask < 0)) or bool(torch.any(mask > 1)) or not bool(torch.all(torch.isfinite(mask))):
        raise ConfigError("the mask must hold values in [0, 1]")
    if int(repeats) != repeats or repeats < 1:
        raise ConfigError(f"soft mask repeats must be an integer >= 1, got {repeats!r}")
    alpha = mask
    for _ in range(int(repeats)):
        alpha = box_filter(alpha, size)
    return alpha.clamp(0.0, 1.0)


def annealing_exponent(iteration: int, iterations: int, *, power: float = 2.0) -> float:
    r"""The annealing exponent :math:`\gamma(t) = 1 + 4 (1 - t/T)^c`.

    Parameters
    ----------
    iteration : int
        t, with 0 <= t <= T.
    iterations : int
        T >= 1, the total number of iterations.
    power : float
        c > 0 (default 2).

    Returns
    -------
    float
        γ(t); γ(0) = 5, γ(T) = 1, γ(T/2) = 1 + 4 · 2^(−c).
    """
    if int(iterations) != iterations or iterations < 1:
        raise ConfigError(f"iterations must be an integer >= 1, got {iterations!r}")
    if not 0 <= iteration <= iterations:
        raise ConfigError(f"iteration must be in [0, {iterations}], got {iteration!r}")
    if not (math.isfinite(power) and power > 0):
        raise ConfigError(f"the annealing power c must be a positive number, got {power!r}")
    return 1.0 + 4.0 * (1.0 - iteration / iterations) ** power


def annealed_alpha(alpha: torch.Tensor, iteration: int, iterations: int, *,
                   power: float = 2.0) -> torch.Tensor:
    r""":math:`\alpha_t = \operatorname{clip}(\alpha^{\gamma(t)}, 0, 1)` (see `annealing_exponent`).

    Since γ(t) >= 1 and decreases to 1, α_t <= α, starts at α^5 and ends at α (t = T).
    """
    gamma = annealing_exponent(iteration, iterations, power=power)
    return alpha.clamp(0.0, 1.0).pow(gamma).clamp(0.0, 1.0)


def transition_weight(alpha_t: torch.Tensor) -> torch.Tensor:
    r"""The transition-band weight :math:`w = 4 \alpha_t (1 - \alpha_t)`: 1 at α_t = ½, 0 at 0 and 1."""
    return 4.0 * alpha_t * (1.0 - alpha_t)


# --------------------------------------------------------------------------- checks

def _check(output: torch.Tensor, sources: Sequence[torch.Tensor], alpha: torch.Tensor
           ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Sources as (R or 1, C, H, W) and alpha as (R or 1, 1, H, W), on the output's device/dtype."""
    if not isinstance(output, torch.Tensor) or output.ndim != 4:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ConfigError(f"the output must be a tensor of shape (R, C, H, W), got {shape}")
    runs, channels, height, width = output.shape
    like = {"device": output.device, "dtype": output.dtype}
    placed = []
    for source in sources:
        s = torch.as_tensor(source).to(**like)
        if s.ndim == 3:
            s = s.unsqueeze(0)
        if s.ndim != 4 or s.shape[1:] != (channels, height, width) or s.shape[0] not in (1, runs):
            raise ConfigError(f"a source image of shape {tuple(s.shape)} does not fit the output "
                              f"{tuple(output.shape)}; expected ({channels}, {height}, {width}) or "
                              f"({runs}, {channels}, {height}, {width})")
        placed.append(s)
    a = torch.as_tensor(alpha).to(**like)
    if a.ndim == 2:
        a = a.view(1, 1, height, width) if a.shape == (height, width) else a
    if a.ndim != 4 or a.shape[1:] != (1, height, width) or a.shape[0] not in (1, runs):
        raise ConfigError(f"alpha of shape {tuple(a.shape)} does not fit the output {tuple(output.shape)}; "
                          f"expected ({height}, {width}) or ({runs}, 1, {height}, {width})")
    return placed, a


def _per_run(x: torch.Tensor, runs: int) -> torch.Tensor:
    """Mean over (H, W) of a (R or 1, 1, H, W) map, as shape (R,)."""
    return x.mean(dim=(-3, -2, -1)).expand(runs) if x.shape[0] == 1 else x.mean(dim=(-3, -2, -1))


# --------------------------------------------------------------------------- background terms

def pixel_loss(output: torch.Tensor, background: torch.Tensor, alpha_t: torch.Tensor) -> torch.Tensor:
    r"""Background pixels: :math:`\mathcal{L}_{pixel} = \mathbb{E}_x[(1 - \alpha_t)\|F - B\|_2^2]`.

    Parameters
    ----------
    output : tensor, shape (R, C, H, W)
    background : tensor, shape (C, H, W) or (R, C, H, W)
    alpha_t : tensor, shape (H, W) or (R, 1, H, W)

    Returns
    -------
    tensor, shape (R,)
    """
    (b,), a = _check(output, [background], alpha_t)
    per_pixel = ((output - b) ** 2).sum(dim=1, keepdim=True)
    return _per_run((1.0 - a) * per_pixel, output.shape[0])


def low_frequency_loss(output: torch.Tensor, background: torch.Tensor, alpha_t: torch.Tensor, *,
                       size: int = 15) -> torch.Tensor:
    r"""Background low frequencies: :math:`\mathbb{E}_x[(1 - \alpha_t)\|G(F) - G(B)\|_2^2]`.

    G is a ``size`` × ``size`` box (average) filter per channel (default 15).

    Returns
    -------
    tensor, shape (R,)
    """
    (b,), a = _check(output, [background], alpha_t)
    diff = box_filter(output - b, size)  # G is linear: G(F) − G(B) = G(F − B)
    return _per_run((1.0 - a) * (diff ** 2).sum(dim=1, keepdim=True), output.shape[0])


def illumination_loss(output: torch.Tensor, background: torch.Tensor, alpha_t: torch.Tensor, *,
                      sigma: float = 8.0) -> torch.Tensor:
    r"""Background illumination: :math:`\mathbb{E}_x[(1 - \alpha_t)(J(F) - J(B))^2]`.

    J(X) = g_σ * Y(X): the BT.601 luminance (C = 3; the image itself for C = 1) smoothed by a
    Gaussian of ``sigma`` px (default 8, truncated at 3σ) — a grey, large-scale illumination.

    Returns
    -------
    tensor, shape (R,)
    """
    (b,), a = _check(output, [background], alpha_t)
    diff = gaussian_filter(luminance(output - b), sigma)  # J is linear
    return _per_run((1.0 - a) * diff ** 2, output.shape[0])


# --------------------------------------------------------------------------- foreground terms

def gradient_loss(output: torch.Tensor, foreground: torch.Tensor, alpha_t: torch.Tensor, *,
                  scales: Sequence[int] = (1, 2, 4)) -> torch.Tensor:
    r"""Foreground multi-scale gradients.

    .. math:: \mathcal{L}_{grad} = \frac{1}{|S|}\sum_{s \in S}
              \mathbb{E}_x\big[\alpha_t^{(s)} \|\nabla F^{(s)} - \nabla A^{(s)}\|_1\big]

    X^(s) is X average-pooled over s × s windows with stride s (a partial last window
    averages its valid pixels); the expectation is over the pixels of scale s. The term is
    blind to a constant colour shift of F (the paper's "allowing colour adaptation").

    Parameters
    ----------
    scales : sequence of int
        The pooling factors S, each >= 1 (default (1, 2, 4)).

    Returns
    -------
    tensor, shape (R,)
    """
    (fg,), a = _check(output, [foreground], alpha_t)
    scales = tuple(scales)
    if not scales or any(int(s) != s or s < 1 for s in scales):
        raise ConfigError(f"gradient scales must be integers >= 1, got {scales!r}")
    total = 0.0
    for s in scales:
        s = int(s)
        if s == 1:
            f_s, fg_s, a_s = output, fg, a
        else:
            f_s, fg_s, a_s = (F.avg_pool2d(x, s, ceil_mode=True) for x in (output, fg, a))
        fx, fy = image_gradient(f_s - fg_s)  # ∇ is linear: ∇F − ∇A = ∇(F − A)
        per_pixel = (fx.abs() + fy.abs()).sum(dim=1, keepdim=True)
        total = total + _per_run(a_s * per_pixel, output.shape[0])
    return total / len(scales)


def direction_loss(output: torch.Tensor, foreground: torch.Tensor, alpha_t: torch.Tensor, *,
                   eps: float = 1e-2) -> torch.Tensor:
    r"""Foreground gradient directions.

    .. math:: \mathcal{L}_{dir} = \mathbb{E}_x\Big[\alpha_t \Big(1 - \frac{\nabla F \cdot \nabla A}
              {\max(\|\nabla F\|, \varepsilon)\,\|\nabla A\|}\Big)\Big]

    The cosine is taken per channel (2-vectors) and averaged over the channels. Pixels
    where ``|∇A_c| <= eps`` have no direction to keep and add 0. Where ``|∇F_c| >= eps``
    this is the paper's cosine, so the term is exactly 0 at F = A; below, ``|∇F_c|`` is
    floored at ``eps``: the paper's cosine jumps at ∇F = 0 and its gradient there grows
    like 1 / |∇F| (from a flat start it swamps Adam's step sizes and the objective rises),
    the floor bounds it by 1 / eps. Values lie in [0, 2 mean(α_t)].

    Parameters
    ----------
    eps : float
        The gradient magnitude, in intensity per pixel, below which a direction is not
        defined (default 1e-2, ≈ 2.5 grey levels of 255 per pixel).

    Returns
    -------
    tensor, shape (R,)
    """
    (fg,), a = _check(output, [foreground], alpha_t)
    if not (math.isfinite(eps) and eps > 0):
        raise ConfigError(f"the direction threshold eps must be a positive number, got {eps!r}")
    fx, fy = image_gradient(output)
    gx, gy = image_gradient(fg)
    # the tiny constant keeps sqrt's derivative finite at 0, where the floor then zeroes it
    norm_f = torch.sqrt(fx ** 2 + fy ** 2 + 1e-24).clamp_min(eps)
    norm_a = torch.sqrt(gx ** 2 + gy ** 2)
    valid = norm_a > eps
    cosine = (fx * gx + fy * gy) / (norm_f * torch.where(valid, norm_a, torch.ones_like(norm_a)))
    per_pixel = torch.where(valid, 1.0 - cosine, torch.zeros_like(cosine)).mean(dim=1, keepdim=True)
    return _per_run(a * per_pixel, output.shape[0])


# --------------------------------------------------------------------------- transition terms

def gradient_blend_loss(output: torch.Tensor, foreground: torch.Tensor, background: torch.Tensor,
                        alpha_t: torch.Tensor) -> torch.Tensor:
    r"""Gradient blending in the transition band.

    .. math:: \mathcal{L}_{blend} = \mathbb{E}_x\big[w\,\|\nabla F - (\alpha_t \nabla A
              + (1 - \alpha_t)\nabla B)\|_1\big], \qquad w = 4\alpha_t(1 - \alpha_t)

    Returns
    -------
    tensor, shape (R,)
    """
    (fg, bg), a = _check(output, [foreground, background], alpha_t)
    fx, fy = image_gradient(output)
    ax, ay = image_gradient(fg)
    bx, by = image_gradient(bg)
    ex = fx - (a * ax + (1.0 - a) * bx)
    ey = fy - (a * ay + (1.0 - a) * by)
    per_pixel = (ex.abs() + ey.abs()).sum(dim=1, keepdim=True)
    return _per_run(transition_weight(a) * per_pixel, output.shape[0])


def structure_tangent(background: torch.Tensor, *, sigma: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Unit tangent t = (−sin θ, cos θ) of the background's structure tensor.

    .. math:: J = g_\sigma * \sum_c \nabla B_c \nabla B_c^\top, \qquad
              \theta = \tfrac12 \operatorname{atan2}(2J_{xy}, J_{xx} - J_{yy})

    θ is the direction of the tensor's major eigenvector (the dominant gradient), so t is
    along the isophotes: for B varying only along x, t = (0, 1).

    Parameters
    ----------
    background : tensor, shape (N, C, H, W)
    sigma : float
        Integration scale of the tensor in pixels (default 2).

    Returns
    -------
    tx, ty : tensors, shape (N, 1, H, W)
        The x (width) and y (height) components of t.
    """
    bx, by = image_gradient(background)
    jxx = gaussian_filter((bx * bx).sum(dim=1, keepdim=True), sigma)
    jxy = gaussian_filter((bx * by).sum(dim=1, keepdim=True), sigma)
    jyy = gaussian_filter((by * by).sum(dim=1, keepdim=True), sigma)
    theta = 0.5 * torch.atan2(2.0 * jxy, jxx - jyy)
    return -torch.sin(theta), torch.cos(theta)


def anisotropic_loss(output: torch.Tensor, background: torch.Tensor, alpha_t: torch.Tensor, *,
                     sigma: float = 2.0) -> torch.Tensor:
    r"""Anisotropic texture propagation along the background's structure.

    .. math:: \mathcal{L}_{aniso} = \mathbb{E}_x\big[w\,|\nabla_{t} F - \nabla_{t} B|\big],
              \qquad \nabla_t X = t_x \partial_x X + t_y \partial_y X

    with t from `structure_tangent` (integration scale ``sigma``) and
    w = 4α_t(1 − α_t); the absolute value is summed over channels.

    Returns
    -------
    tensor, shape (R,)
    """
    (bg,), a = _check(output, [background], alpha_t)
    with torch.no_grad():
        tx, ty = structure_tangent(bg, sigma=sigma)
    dx, dy = image_gradient(output - bg)  # ∇_t is linear: ∇_t F − ∇_t B = ∇_t (F − B)
    per_pixel = (tx * dx + ty * dy).abs().sum(dim=1, keepdim=True)
    return _per_run(transition_weight(a) * per_pixel, output.shape[0])


# --------------------------------------------------------------------------- the objective

def blend_terms(output: torch.Tensor, foreground: torch.Tensor, background: torch.Tensor,
                mask: torch.Tensor, *, iteration: int, iterations: int,
                terms: Sequence[str] | None = None, **options) -> dict[str, torch.Tensor]:
    """The unweighted A3 terms at iteration t, by the names of `BLEND_WEIGHTS`.

    Parameters
    ----------
    output : tensor, shape (R, C, H, W)
        The network output F.
    foreground, background : tensors, shape (C, H, W) or (R, C, H, W)
        A (placed on the canvas) and B.
    mask : tensor, shape (H, W)
        The coarse mask in [0, 1] (1 = foreground); α = `soft_mask` of it, then annealed.
    iteration, iterations : int
        t and T of the annealing.
    terms : sequence of str, optional
        Names of the terms to compute (default all seven).
    **options
        The keys of `BLEND_OPTIONS` (see the module docstring).

    Returns
    -------
    dict[str, tensor of shape (R,)]
    """
    unknown = sorted(set(options) - set(BLEND_OPTIONS))
    if unknown:
        raise ConfigError(f"blend objective has no option {', '.join(unknown)}; "
                          f"its options are {', '.join(BLEND_OPTIONS)}")
    names = list(BLEND_WEIGHTS) if terms is None else list(terms)
    bad = sorted(set(names) - set(BLEND_WEIGHTS))
    if bad:
        raise ConfigError(f"blend objective has no term {', '.join(bad)}; its terms are {', '.join(BLEND_WEIGHTS)}")
    opt = {**BLEND_OPTIONS, **options}
    mask = torch.as_tensor(mask).to(device=output.device, dtype=output.dtype)
    if mask.ndim != 2:
        raise ConfigError(f"the mask must have shape (H, W), got {tuple(mask.shape)}")
    alpha = soft_mask(mask, size=opt["soft_size"], repeats=opt["soft_repeats"])
    alpha_t = annealed_alpha(alpha, iteration, iterations, power=opt["anneal_power"])
    compute = {
        "pixel": lambda: pixel_loss(output, background, alpha_t),
        "low_freq": lambda: low_frequency_loss(output, background, alpha_t, size=opt["low_freq_size"]),
        "illum": lambda: illumination_loss(output, background, alpha_t, sigma=opt["illum_sigma"]),
        "grad": lambda: gradient_loss(output, foreground, alpha_t, scales=opt["grad_scales"]),
        "dir": lambda: direction_loss(output, foreground, alpha_t, eps=opt["dir_eps"]),
        "blend": lambda: gradient_blend_loss(output, foreground, background, alpha_t),
        "aniso": lambda: anisotropic_loss(output, background, alpha_t, sigma=opt["tensor_sigma"]),
    }
    return {name: compute[name]() for name in names}


def blend_loss(output: torch.Tensor, foreground: torch.Tensor, background: torch.Tensor,
               mask: torch.Tensor, *, iteration: int, iterations: int,
               weights: Mapping[str, float] | None = None, **options) -> torch.Tensor:
    r"""The A3 objective, one value per run.

    .. math:: \mathcal{L} = \lambda_p \mathcal{L}_{pixel} + \lambda_{lf} \mathcal{L}_{low\text{-}freq}
              + \lambda_{ill} \mathcal{L}_{illum} + \lambda_g \mathcal{L}_{grad}
              + \lambda_d \mathcal{L}_{dir} + \lambda_b \mathcal{L}_{blend} + \lambda_a \mathcal{L}_{aniso}

    Parameters
    ----------
    output, foreground, background, mask, iteration, iterations, **options
        As in `blend_terms`.
    weights : mapping of str to float, optional
        Weights by term name, overriding `BLEND_WEIGHTS` (the paper's
        pixel 50, low_freq 25, illum 20, grad 6, dir 4, blend 12, aniso 18) for the names
        given. Each >= 0; a term of weight 0 is not computed.

    Returns
    -------
    tensor, shape (R,)
        Sum ``loss.sum()`` to optimise all runs at once: runs do not interact.
    """
    merged = dict(BLEND_WEIGHTS)
    for name, value in (weights or {}).items():
        if name not in BLEND_WEIGHTS:
            raise ConfigError(f"blend objective has no term {name!r}; its terms are {', '.join(BLEND_WEIGHTS)}")
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"the weight of {name!r} must be a finite number >= 0, got {value!r}")
        merged[name] = float(value)
    active = [name for name, w in merged.items() if w != 0]
    values = blend_terms(output, foreground, background, mask, iteration=iteration,
                         iterations=iterations, terms=active, **options)
    total = (output * 0).sum(dim=(1, 2, 3))  # zeros that keep the graph if every weight is 0
    for name in active:
        total = total + merged[name] * values[name]
    return total
