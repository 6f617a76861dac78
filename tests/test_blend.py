"""The blending objective (003 A3), the classical baselines and the A4 metrics, on tiny constructed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spectral_lab.blend import objective as obj
from spectral_lab.blend.baselines import (
    alpha_blend,
    laplacian_pyramid_blend,
    poisson_blend,
    soft_alpha,
)
from spectral_lab.blend.metrics import (
    METRICS,
    blend_metrics,
    blend_metrics_frames,
    bsi,
    gff,
    gfp,
    gradient_field,
    masked_ssim,
    transition_region,
)
from spectral_lab.errors import AnalysisError, ConfigError

SHAPE = (3, 23, 29)
C, H, W = SHAPE
DT = torch.float64


def disk_mask(radius: float = 7.0, centre=(11, 13)) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(H, dtype=DT), torch.arange(W, dtype=DT), indexing="ij")
    return (((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) <= radius ** 2).to(DT)


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(3)
    fg = torch.rand(SHAPE, generator=g, dtype=DT)
    bg = torch.rand(SHAPE, generator=g, dtype=DT)
    return fg, bg


@pytest.fixture
def alpha():
    return obj.soft_mask(disk_mask())


@pytest.fixture
def skimage():
    """SSIM and the Gaussian pyramid come from scikit-image."""
    return pytest.importorskip("skimage")


def runs(x: torch.Tensor, r: int = 2) -> torch.Tensor:
    return x.unsqueeze(0).repeat(r, 1, 1, 1)


# --------------------------------------------------------------------------- soft map and annealing

def test_soft_mask_lies_in_zero_one_and_is_exact_far_from_the_boundary():
    mask = torch.zeros(H, W, dtype=DT)
    mask[:, 15:] = 1.0  # a straight edge between columns 14 and 15
    alpha = obj.soft_mask(mask)  # support 3 * (7 - 1) + 1 = 19: radius 9
    assert alpha.min() >= 0 and alpha.max() <= 1
    assert torch.all(alpha[:, : 15 - 9] == 0) and torch.all(alpha[:, 15 + 9:] == 1)
    assert torch.all((alpha[:, 6:24] > 0) & (alpha[:, 6:24] < 1))


def test_soft_mask_of_the_complement_is_one_minus_the_soft_mask():
    mask = disk_mask()
    torch.testing.assert_close(obj.soft_mask(1 - mask), 1 - obj.soft_mask(mask), rtol=0, atol=1e-12)


def test_soft_mask_keeps_a_constant_mask():
    torch.testing.assert_close(obj.soft_mask(torch.full((H, W), 0.3, dtype=DT)),
                               torch.full((H, W), 0.3, dtype=DT), rtol=0, atol=1e-12)


def test_soft_mask_is_three_passes_of_a_seven_box_by_default():
    mask = disk_mask()
    once = obj.box_filter(mask, 7)
    torch.testing.assert_close(obj.soft_mask(mask), obj.box_filter(obj.box_filter(once, 7), 7))


def test_soft_mask_outside_zero_one_raises():
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        obj.soft_mask(disk_mask() * 2)


def test_annealing_exponent_is_five_at_the_start_one_at_the_end_and_two_halfway():
    assert obj.annealing_exponent(0, 100) == 5.0
    assert obj.annealing_exponent(100, 100) == 1.0
    assert obj.annealing_exponent(50, 100) == pytest.approx(2.0)  # c = 2
    assert obj.annealing_exponent(50, 100, power=1.0) == pytest.approx(3.0)


def test_annealed_alpha_starts_at_alpha_to_the_fifth_and_ends_at_alpha(alpha):
    torch.testing.assert_close(obj.annealed_alpha(alpha, 0, 10), alpha ** 5)
    torch.testing.assert_close(obj.annealed_alpha(alpha, 10, 10), alpha)
    mid = obj.annealed_alpha(alpha, 4, 10)
    assert mid.min() >= 0 and mid.max() <= 1 and torch.all(mid <= alpha + 1e-15)


def test_iteration_outside_zero_to_iterations_raises():
    with pytest.raises(ConfigError, match="iteration"):
        obj.annealing_exponent(11, 10)


def test_transition_weight_is_one_at_half_and_zero_at_the_ends():
    w = obj.transition_weight(torch.tensor([0.0, 0.5, 1.0], dtype=DT))
    assert w.tolist() == [0.0, 1.0, 0.0]


# --------------------------------------------------------------------------- background terms

def test_background_terms_vanish_when_the_output_is_the_background(images, alpha):
    _, bg = images
    out = runs(bg)
    for term in (obj.pixel_loss, obj.low_frequency_loss, obj.illumination_loss):
        assert torch.all(term(out, bg, alpha) == 0)


def test_constant_offset_costs_channels_times_square_times_background_share(images, alpha):
    _, bg = images
    out = runs(bg + 0.1)
    share = (1 - alpha).mean()
    torch.testing.assert_close(obj.pixel_loss(out, bg, alpha), (C * 0.01 * share).expand(2))
    torch.testing.assert_close(obj.low_frequency_loss(out, bg, alpha), (C * 0.01 * share).expand(2))
    # the luma weights sum to 1: J shifts by 0.1 too, one grey channel
    torch.testing.assert_close(obj.illumination_loss(out, bg, alpha), (0.01 * share).expand(2))


def test_illumination_ignores_a_colour_change_of_equal_luminance(images, alpha):
    _, bg = images
    out = bg.clone()
    out[0] += 0.05
    out[1] -= 0.05 * 0.299 / 0.587
    assert obj.illumination_loss(runs(out), bg, alpha).abs().max() < 1e-15
    assert torch.all(obj.pixel_loss(runs(out), bg, alpha) > 0)


def test_low_frequency_term_ignores_detail_the_large_box_averages_out(images, alpha):
    _, bg = images
    stripes = 0.05 * torch.tensor([(-1.0) ** j for j in range(W)], dtype=DT)
    out = bg + stripes  # period 2 along x: a 15-box leaves 1/15 of it, more at the border
    assert obj.low_frequency_loss(runs(out), bg, alpha).max() < 0.1 * obj.pixel_loss(runs(out), bg, alpha).min()


def test_background_terms_vanish_where_alpha_is_one(images):
    fg, bg = images
    ones = torch.ones(H, W, dtype=DT)
    for term in (obj.pixel_loss, obj.low_frequency_loss, obj.illumination_loss):
        assert torch.all(term(runs(fg), bg, ones) == 0)


# --------------------------------------------------------------------------- foreground terms

def test_foreground_terms_vanish_when_the_output_is_the_foreground(images, alpha):
    fg, _ = images
    assert torch.all(obj.gradient_loss(runs(fg), fg, alpha) == 0)
    assert obj.direction_loss(runs(fg), fg, alpha).abs().max() < 1e-14


def test_gradient_term_allows_a_colour_shift(images, alpha):
    fg, _ = images
    shifted = fg + torch.tensor([0.1, -0.05, 0.2], dtype=DT).view(3, 1, 1)
    assert obj.gradient_loss(runs(shifted), fg, alpha).abs().max() < 1e-14


def test_gradient_term_of_a_flat_output_against_a_ramp_is_its_slope_sum():
    ramp = (0.02 * torch.arange(W, dtype=DT)).expand(C, H, W)
    ones = torch.ones(H, W, dtype=DT)
    value = obj.gradient_loss(runs(torch.zeros(SHAPE, dtype=DT)), ramp, ones, scales=(1,))
    # |dx| = 0.02 in every column but the last (Neumann), summed over 3 channels
    torch.testing.assert_close(value, torch.full((2,), C * 0.02 * (W - 1) / W, dtype=DT))


def test_gradient_term_averages_its_scales():
    ramp = (0.02 * torch.arange(W, dtype=DT)).expand(C, H, W)
    ones = torch.ones(H, W, dtype=DT)
    flat = runs(torch.zeros(SHAPE, dtype=DT))
    each = [obj.gradient_loss(flat, ramp, ones, scales=(s,)) for s in (1, 2, 4)]
    torch.testing.assert_close(obj.gradient_loss(flat, ramp, ones), sum(each) / 3)


def test_direction_term_is_zero_for_scaled_gradients_and_two_for_opposite_ones(images):
    fg, _ = images
    ones = torch.ones(H, W, dtype=DT)
    assert obj.direction_loss(runs(2 * fg - 0.5), fg, ones).abs().max() < 1e-14
    gx, gy = obj.image_gradient(fg)
    valid = (torch.sqrt(gx ** 2 + gy ** 2) > 1e-2).to(DT).mean()
    torch.testing.assert_close(obj.direction_loss(runs(1 - fg), fg, ones), (2 * valid).expand(2))


def test_direction_term_of_a_constant_foreground_is_zero(images):
    fg, _ = images
    flat = torch.full(SHAPE, 0.4, dtype=DT)
    assert torch.all(obj.direction_loss(runs(fg), flat, torch.ones(H, W, dtype=DT)) == 0)


# --------------------------------------------------------------------------- transition terms

def test_gradient_blend_is_zero_for_the_average_at_alpha_half(images):
    fg, bg = images
    half = torch.full((H, W), 0.5, dtype=DT)
    assert obj.gradient_blend_loss(runs((fg + bg) / 2), fg, bg, half).abs().max() < 1e-14
    assert torch.all(obj.gradient_blend_loss(runs(fg), fg, bg, half) > 0)


def test_transition_terms_vanish_where_alpha_is_zero_or_one(images):
    fg, bg = images
    out = runs(torch.rand(SHAPE, generator=torch.Generator().manual_seed(1), dtype=DT))
    for value in (0.0, 1.0):
        a = torch.full((H, W), value, dtype=DT)
        assert torch.all(obj.gradient_blend_loss(out, fg, bg, a) == 0)
        assert torch.all(obj.anisotropic_loss(out, bg, a) == 0)


def test_structure_tangent_runs_along_stripes():
    stripes = torch.sin(torch.arange(W, dtype=DT)).expand(1, 1, H, W)  # varies along x only
    tx, ty = obj.structure_tangent(stripes)
    torch.testing.assert_close(tx, torch.zeros_like(tx), atol=1e-12, rtol=0)
    torch.testing.assert_close(ty, torch.ones_like(ty))
    tx, ty = obj.structure_tangent(stripes.transpose(-1, -2).contiguous())  # varies along y only
    torch.testing.assert_close(tx.abs(), torch.ones_like(tx))


def test_anisotropic_term_allows_change_across_the_stripes_only():
    x = torch.arange(W, dtype=DT)
    y = torch.arange(H, dtype=DT).view(H, 1)
    bg = (0.5 + 0.4 * torch.sin(x)).expand(C, H, W)
    half = torch.full((H, W), 0.5, dtype=DT)
    across = bg + 0.05 * torch.cos(0.7 * x)  # also constant along the stripes
    along = bg + 0.05 * torch.cos(0.7 * y)
    assert obj.anisotropic_loss(runs(across), bg, half).abs().max() < 1e-12
    assert torch.all(obj.anisotropic_loss(runs(along), bg, half) > 1e-3)


# --------------------------------------------------------------------------- the objective

def test_paper_weights_are_the_defaults():
    assert list(obj.BLEND_WEIGHTS.values()) == [50, 25, 20, 6, 4, 12, 18]
    assert list(obj.BLEND_WEIGHTS) == ["pixel", "low_freq", "illum", "grad", "dir", "blend", "aniso"]


def test_blend_loss_is_the_weighted_sum_of_its_terms(images):
    fg, bg = images
    out = torch.rand((2, *SHAPE), generator=torch.Generator().manual_seed(5), dtype=DT)
    mask = disk_mask()
    terms = obj.blend_terms(out, fg, bg, mask, iteration=3, iterations=10)
    expected = sum(obj.BLEND_WEIGHTS[k] * v for k, v in terms.items())
    torch.testing.assert_close(obj.blend_loss(out, fg, bg, mask, iteration=3, iterations=10), expected)


def test_zero_weights_remove_their_terms(images):
    fg, bg = images
    out = torch.rand((2, *SHAPE), generator=torch.Generator().manual_seed(5), dtype=DT)
    mask = disk_mask()
    zero = {k: 0.0 for k in obj.BLEND_WEIGHTS}
    assert torch.all(obj.blend_loss(out, fg, bg, mask, iteration=0, iterations=10, weights=zero) == 0)
    only = obj.blend_loss(out, fg, bg, mask, iteration=0, iterations=10, weights={**zero, "aniso": 2.0})
    term = obj.blend_terms(out, fg, bg, mask, iteration=0, iterations=10, terms=["aniso"])["aniso"]
    torch.testing.assert_close(only, 2.0 * term)


def test_gradients_flow_to_the_output_and_are_finite(images):
    fg, bg = images
    out = torch.full((2, *SHAPE), 0.5, dtype=DT, requires_grad=True)  # flat: ∇F = 0 in L_dir
    obj.blend_loss(out, fg, bg, disk_mask(), iteration=2, iterations=10).sum().backward()
    assert torch.all(torch.isfinite(out.grad)) and out.grad.abs().sum() > 0


def test_runs_are_scored_independently(images):
    fg, bg = images
    out = torch.rand((3, *SHAPE), generator=torch.Generator().manual_seed(6), dtype=DT)
    both = obj.blend_loss(out, fg, bg, disk_mask(), iteration=1, iterations=4)
    alone = obj.blend_loss(out[1:2], fg, bg, disk_mask(), iteration=1, iterations=4)
    torch.testing.assert_close(both[1:2], alone)


def test_dtype_follows_the_output(images):
    fg, bg = images
    out = torch.rand((2, *SHAPE), generator=torch.Generator().manual_seed(7)).float()
    assert obj.blend_loss(out, fg, bg, disk_mask(), iteration=1, iterations=4).dtype == torch.float32


def test_unknown_weight_or_option_raises(images):
    fg, bg = images
    out = runs(fg)
    with pytest.raises(ConfigError, match="no term 'smooth'"):
        obj.blend_loss(out, fg, bg, disk_mask(), iteration=0, iterations=1, weights={"smooth": 1.0})
    with pytest.raises(ConfigError, match="no option"):
        obj.blend_loss(out, fg, bg, disk_mask(), iteration=0, iterations=1, soft_sigma=2)


def test_a_source_of_another_size_raises(images):
    fg, bg = images
    with pytest.raises(ConfigError, match="does not fit"):
        obj.pixel_loss(runs(fg), bg[:, :-1], torch.ones(H, W, dtype=DT))


def smooth_pair() -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = torch.meshgrid(torch.arange(H, dtype=DT), torch.arange(W, dtype=DT), indexing="ij")
    phase = torch.tensor([0.0, 1.0, 2.0], dtype=DT).view(3, 1, 1)
    return 0.5 + 0.3 * torch.sin(0.4 * xx + 0.3 * yy + phase), 0.5 + 0.3 * torch.cos(0.2 * xx - 0.5 * yy + phase)


def test_a_small_fit_from_a_flat_output_lowers_the_blend_loss():
    fg, bg = smooth_pair()  # at a fixed t: the annealing moves the objective itself
    out = torch.full((1, *SHAPE), 0.5, dtype=DT, requires_grad=True)
    opt = torch.optim.Adam([out], lr=0.02)
    losses = []
    for _ in range(30):
        loss = obj.blend_loss(out, fg, bg, disk_mask(), iteration=30, iterations=30).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# --------------------------------------------------------------------------- baselines

@pytest.fixture
def arrays(images):
    fg, bg = images
    return fg.numpy(), bg.numpy(), disk_mask().numpy()


def test_alpha_blend_with_a_hard_mask_is_the_foreground_inside_and_background_outside(arrays):
    fg, bg, mask = arrays
    out = alpha_blend(fg, bg, mask)
    inside = mask == 1
    np.testing.assert_array_equal(out[:, inside], fg[:, inside])
    np.testing.assert_array_equal(out[:, ~inside], bg[:, ~inside])


def test_alpha_blend_uses_the_objectives_soft_map(arrays):
    fg, bg, mask = arrays
    alpha = soft_alpha(mask)
    np.testing.assert_allclose(alpha, obj.soft_mask(torch.from_numpy(mask)).numpy())
    np.testing.assert_allclose(alpha_blend(fg, bg, alpha), alpha * fg + (1 - alpha) * bg)


def neumann_laplacian(x: np.ndarray) -> np.ndarray:
    """4-neighbour Laplacian |N_p| x_p − Σ x_q over the in-image neighbours."""
    out = np.zeros_like(x)
    for axis in (1, 2):
        d = np.diff(x, axis=axis)
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        out[tuple(lo)] -= d
        out[tuple(hi)] += d
    return out


@pytest.mark.parametrize("centre", [(11, 13), (3, 2)], ids=["inside", "touching-the-border"])
def test_poisson_keeps_the_background_outside_and_the_foreground_laplacian_inside(arrays, centre):
    fg, bg, _ = arrays
    mask = disk_mask(centre=centre).numpy()
    out = poisson_blend(fg, bg, mask, clip=False)
    inside = mask >= 0.5
    np.testing.assert_array_equal(out[:, ~inside], bg[:, ~inside])
    np.testing.assert_allclose(neumann_laplacian(out)[:, inside], neumann_laplacian(fg)[:, inside], atol=1e-10)


def test_poisson_of_a_foreground_that_is_the_background_shifted_is_the_background(arrays):
    _, bg, mask = arrays
    background = 0.5 * bg + 0.2
    out = poisson_blend(background + 0.1, background, mask, clip=False)  # same gradients
    np.testing.assert_allclose(out, background, atol=1e-10)


def test_poisson_with_a_full_mask_raises(arrays):
    fg, bg, _ = arrays
    with pytest.raises(ConfigError, match="background"):
        poisson_blend(fg, bg, np.ones((H, W)))


def test_laplacian_pyramid_with_one_level_is_alpha_blending_with_the_mask(arrays, skimage):
    fg, bg, mask = arrays
    np.testing.assert_allclose(laplacian_pyramid_blend(fg, bg, mask, levels=1), alpha_blend(fg, bg, mask))


def test_laplacian_pyramid_collapses_exactly_to_either_source(arrays, skimage):
    fg, bg, _ = arrays
    np.testing.assert_allclose(laplacian_pyramid_blend(fg, bg, np.ones((H, W))), fg, atol=1e-12)
    np.testing.assert_allclose(laplacian_pyramid_blend(fg, bg, np.zeros((H, W))), bg, atol=1e-12)


def test_laplacian_pyramid_too_deep_for_the_image_raises(arrays, skimage):
    fg, bg, mask = arrays
    with pytest.raises(ConfigError, match="too small"):
        laplacian_pyramid_blend(fg, bg, mask, levels=6)


def test_baselines_reject_images_outside_zero_one(arrays):
    fg, bg, mask = arrays
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        alpha_blend(fg * 2, bg, mask)


# --------------------------------------------------------------------------- metrics

@pytest.fixture
def region(arrays):
    return transition_region(arrays[2])


def test_transition_region_is_the_band_of_pixels_near_the_boundary():
    mask = np.zeros((H, W))
    mask[:, 15:] = 1
    band = transition_region(mask, width=3)
    expected = np.zeros((H, W), dtype=bool)
    expected[:, 12:18] = True
    np.testing.assert_array_equal(band, expected)


def test_transition_region_of_a_mask_without_boundary_raises():
    with pytest.raises(AnalysisError, match="no boundary"):
        transition_region(np.ones((H, W)))


def test_gradient_magnitude_of_a_ramp_is_its_slope():
    ramp = np.broadcast_to(0.01 * np.arange(W), (1, H, W))
    magnitude, angle = gradient_field(ramp)
    np.testing.assert_allclose(magnitude[:, 1:-1], 0.01)
    np.testing.assert_allclose(angle[:, 1:-1], 0.0)


def test_gff_is_one_for_the_foreground_over_a_flat_background(arrays, region):
    fg, _, _ = arrays
    flat = np.full(SHAPE, 0.5)
    assert gff(fg, fg, flat, region) == pytest.approx(1.0, abs=1e-12)


def test_gff_of_a_constant_image_is_zero_against_textured_sources(arrays, region):
    fg, bg, _ = arrays
    assert gff(np.full(SHAPE, 0.5), fg, bg, region) == 0.0


def test_gff_is_symmetric_in_the_sources(arrays, region):
    fg, bg, _ = arrays
    fused = 0.5 * (fg + bg)
    assert gff(fused, fg, bg, region) == pytest.approx(gff(fused, bg, fg, region), abs=1e-12)


def test_gfp_is_zero_for_a_constant_image_and_near_one_for_the_stronger_source(arrays):
    fg, _, _ = arrays
    flat = np.full(SHAPE, 0.5)
    assert gfp(flat, fg, flat) == 0.0
    magnitude = gradient_field(fg)[0]
    assert gfp(fg, fg, flat) == pytest.approx(np.mean(magnitude / (magnitude + 1e-3)))


def test_bsi_of_a_constant_image_is_one_over_eps(region):
    assert bsi(np.full(SHAPE, 0.3), region) == pytest.approx(1e3)
    assert bsi(np.full(SHAPE, 0.3), region, eps=1e-2) == pytest.approx(1e2)


def test_bsi_is_lower_for_a_noisy_image(arrays, region):
    fg, _, mask = arrays
    smooth = alpha_blend(np.full(SHAPE, 0.2), np.full(SHAPE, 0.8), soft_alpha(mask))
    assert bsi(smooth, region) > bsi(fg, region)


def test_masked_ssim_is_one_for_the_background_and_lower_for_the_foreground(arrays, skimage, region):
    fg, bg, _ = arrays
    assert masked_ssim(bg, bg, region) == pytest.approx(1.0)
    assert masked_ssim(fg, bg, region) < 0.5


def test_metrics_reject_mismatched_shapes(arrays, region):
    fg, bg, _ = arrays
    with pytest.raises(AnalysisError, match="share one"):
        gff(fg[:, :-1], fg, bg, region)


def test_streamed_metrics_equal_per_frame_metrics_across_blocks(arrays, skimage, region):
    fg, bg, mask = arrays
    frames = [alpha_blend(fg, bg, soft_alpha(mask)), fg, bg, np.full(SHAPE, 0.5)]
    blocks = [np.stack(frames[:3]), np.stack(frames[3:])]
    streamed = blend_metrics_frames(iter(blocks), fg, bg, region)
    assert list(streamed) == list(METRICS)
    for t, frame in enumerate(frames):
        for name, value in blend_metrics(frame, fg, bg, region).items():
            assert streamed[name][t] == value
    whole = blend_metrics_frames(np.stack(frames), fg, bg, region)
    for name in METRICS:
        np.testing.assert_array_equal(whole[name], streamed[name])


def test_streamed_metrics_reject_a_block_that_is_one_frame(arrays, region):
    fg, bg, _ = arrays
    with pytest.raises(AnalysisError, match=r"\(t, C, H, W\)"):
        blend_metrics_frames([fg], fg, bg, region)


@pytest.mark.parametrize("size", [1, 5, 15])
def test_the_matrix_filters_equal_padding_and_convolving(size):
    x = torch.rand(2, 3, 11, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    padded = F.pad(x.reshape(-1, 1, 11, 9), (size // 2,) * 4, mode="replicate")
    expected = F.avg_pool2d(padded, size, stride=1).reshape(x.shape)
    torch.testing.assert_close(obj.box_filter(x, size), expected)
