"""Model families: shapes, parameter counts, errors, and R runs in one batch = R single runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral_lab.config import FitConfig, ModelConfig
from spectral_lab.errors import ConfigError
from spectral_lab.fit import Callback, fit, make_fit_state
from spectral_lab.models import MODELS, build_model, model_options, required_multiple
from spectral_lab.runner import make_problem, prepare_fit
from spectral_lab.seeding import STREAMS, stream_seed

R = 3
SMALL = {  # small enough that every build and forward pass takes milliseconds
    "dip": {"down": 8, "up": 8, "skip": 2, "in_channels": 4},
    "conv": {"depth": 3, "width": 8},
    "linear": {"depth": 3, "width": 8},
    "relunet": {"depth": 3, "width": 8},
}


def build(name, shape, runs=R, weight_seeds=None, **options):
    return build_model(name, signal_shape=shape, runs=runs, weight_seeds=weight_seeds,
                       **{**SMALL[name], **options})


def make_input(net, name, seeds):
    return net.make_input(seeds)  # the family's own input distribution and scale


# --------------------------------------------------------------------------- shapes

SHAPE_CASES = [
    (name, shape) for name in ("conv", "linear", "relunet")
    for shape in [(1, 64), (1, 61), (3, 32, 32), (3, 37, 31), (1, 24, 40)]
]
DIP_CASES = (  # levels up to where the deepest level is still 2 samples wide (see the xfail below)
    [((1, 64), levels) for levels in (2, 3, 4, 5)]
    + [((3, 32, 32), levels) for levels in (2, 3, 4)] + [((3, 64, 64), 5)]
    + [((3, 24, 40), levels) for levels in (2, 3)]
)


@pytest.mark.parametrize("name, shape", SHAPE_CASES)
def test_model_maps_r_inputs_to_r_outputs_of_the_signal_shape(name, shape):
    net = build(name, shape)
    z = make_input(net, name, range(R))
    assert z.shape == (R, net.in_channels, *shape[1:])
    assert net(z).shape == (R, *shape)


@pytest.mark.parametrize("shape, levels", DIP_CASES)
def test_dip_maps_r_inputs_to_r_outputs_at_every_depth_the_shape_allows(shape, levels):
    net = build("dip", shape, levels=levels)
    out = net(make_input(net, "dip", range(R)))
    assert out.shape == (R, *shape)


@pytest.mark.parametrize("upsample", ["nearest", "bilinear", "transposed"])
@pytest.mark.parametrize("shape", [(1, 64), (3, 24, 40)])
def test_dip_up_sampling_modes_keep_the_shape(upsample, shape):
    net = build("dip", shape, levels=3, upsample=upsample)
    assert net(make_input(net, "dip", range(R))).shape == (R, *shape)


def test_transposed_up_sampling_adds_learned_weights():
    fixed = build("dip", (3, 24, 40), levels=2, upsample="bilinear").parameters_per_run()
    learned = build("dip", (3, 24, 40), levels=2, upsample="transposed").parameters_per_run()
    # level 0 up-samples 8 channels, level 1 its 8 down channels: (8*8*2*2 + 8) each
    assert learned - fixed == 2 * (8 * 8 * 2 * 2 + 8)


@pytest.mark.parametrize("name", list(MODELS))
def test_image_outputs_are_in_the_unit_interval_and_1d_outputs_are_signed(name):
    options = {"levels": 2} if name == "dip" else {}
    image_net, signal_net = build(name, (3, 16, 20), **options), build(name, (1, 64), **options)
    image = image_net(make_input(image_net, name, range(R)))
    assert image.min() >= 0 and image.max() <= 1
    assert signal_net(make_input(signal_net, name, range(R))).min() < 0


# --------------------------------------------------------------------------- parameter counts

@pytest.mark.parametrize("name, shape, expected", [
    # conv, kernel 3, biases: 1->8 (8*1*3 + 8), 8->8 (8*8*3 + 8), 8->1 (1*8*3 + 1)
    ("conv", (1, 64), (8 * 1 * 3 + 8) + (8 * 8 * 3 + 8) + (1 * 8 * 3 + 1)),
    # the same in 2D with 3 output channels: 3x3 kernels
    ("conv", (3, 32, 32), (8 * 1 * 9 + 8) + (8 * 8 * 9 + 8) + (3 * 8 * 9 + 3)),
    # linear, no biases: 64 -> 8 -> 8 -> 64
    ("linear", (1, 64), 64 * 8 + 8 * 8 + 8 * 64),
    # relunet, biases: coordinate (1) -> 8 -> 8 -> value (1)
    ("relunet", (1, 64), (1 * 8 + 8) + (8 * 8 + 8) + (8 * 1 + 1)),
])
def test_parameters_per_run_equals_the_count_by_hand(name, shape, expected):
    assert build(name, shape).parameters_per_run() == expected


def test_parameters_per_run_does_not_depend_on_the_number_of_runs():
    one, five = build("conv", (1, 64), runs=1), build("conv", (1, 64), runs=5)
    assert one.parameters_per_run() == five.parameters_per_run()


def test_depth_and_width_from_the_config_reach_the_network(tiny_config):
    # The reference capacity sweep trained one network at every point of the sweep.
    problem = make_problem(tiny_config)
    counts = set()
    for depth, width in [(3, 8), (3, 16), (5, 8)]:
        cfg = tiny_config.replace(model=ModelConfig("conv", {"depth": depth, "width": width}))
        state, _, _ = prepare_fit(cfg, problem)
        counts.add(state.net.parameters_per_run())
        assert len(state.net.layers) == depth and state.net.layers[0].out_channels == width
    assert len(counts) == 3


# --------------------------------------------------------------------------- errors

def test_unknown_model_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match="unknown model 'unet'; choose from ") as info:
        build_model("unet", signal_shape=(1, 64))
    assert sorted(str(info.value).split("choose from ")[1].split(", ")) == ["conv", "dip", "linear", "relunet"]


def test_unknown_option_is_refused_with_the_model_s_options():
    with pytest.raises(ConfigError, match="has no option widht; its options are depth, width"):
        build_model("conv", signal_shape=(1, 64), widht=8)


@pytest.mark.parametrize("shape, levels", [((3, 24, 40), 4), ((1, 62), 2), ((3, 32, 36), 3)])
def test_dip_refuses_a_side_that_is_not_a_multiple_of_two_to_the_levels(shape, levels):
    with pytest.raises(ConfigError, match=f"multiples of {2 ** levels}"):
        build("dip", shape, levels=levels)


@pytest.mark.parametrize("shape, levels", [((3, 32, 32), 5), ((1, 32), 5), ((3, 8, 16), 3)])
def test_dip_whose_deepest_level_is_one_sample_is_refused_or_runs(shape, levels):
    try:
        net = build("dip", shape, levels=levels)
    except ConfigError:
        return
    assert net(make_input(net, "dip", range(R))).shape == (R, *shape)


def test_required_multiple_is_the_total_stride_of_the_dip():
    assert required_multiple("dip", levels=3) == 8
    assert required_multiple("dip") == 2 ** model_options("dip")["levels"]
    assert required_multiple("conv") == 1


def test_unknown_up_sampling_is_a_config_error():
    with pytest.raises(ConfigError, match="upsample"):
        build("dip", (1, 64), levels=2, upsample="cubic")


def test_unknown_input_distribution_is_refused():
    with pytest.raises(ValueError, match="input distribution"):
        build("conv", (1, 64)).make_input([0], dist="laplace")


# --------------------------------------------------------------------------- batched = sequential

class _Frames(Callback):
    def __init__(self):
        self.frames = []

    def on_frame(self, iteration, output, loss):
        self.frames.append(output.clone())


FAMILIES = [
    ("dip", {"levels": 2}),
    ("dip", {"levels": 2, "upsample": "nearest"}),
    ("dip", {"levels": 2, "upsample": "transposed"}),
    ("conv", {}),
    ("linear", {}),
    ("relunet", {}),
]


def _fitted_frames(name, options, shape, seeds, steps=5):
    """Frames 0..steps of R = len(seeds) runs trained together with Adam, (T, R, *shape)."""
    net = build(name, shape, runs=len(seeds), weight_seeds=seeds, **options)
    z = make_input(net, name, seeds)
    y = torch.from_numpy(np.random.default_rng(0).uniform(size=shape).astype(np.float32))
    state = make_fit_state(net, lr=1e-2, noise_seeds=seeds)
    frames = _Frames()
    fit(state, z, y, iterations=steps, reg_noise_std=0.05, callbacks=[frames])
    return torch.stack(frames.frames)


@pytest.mark.parametrize("shape", [(1, 32), (3, 12, 20)], ids=["1d", "2d"])
@pytest.mark.parametrize("name, options", FAMILIES, ids=lambda v: v if isinstance(v, str) else
                         "-".join(map(str, v.values())))
def test_run_of_a_batch_equals_the_same_run_alone(name, options, shape):
    # Observed max |batch - alone| on CPU (torch 2.13, one thread), frame 0 / after 5 Adam
    # steps: dip 1.2e-6 / 3.9e-6 (1D, bilinear), at most 4.2e-7 / 1.1e-6 otherwise (grouped
    # convolutions sum in another order and BatchNorm amplifies it); conv 1.5e-7 / 1.8e-7;
    # linear and relunet 0 / 6e-8.
    batch = _fitted_frames(name, options, shape, [7, 8, 9])
    alone = _fitted_frames(name, options, shape, [8])
    torch.testing.assert_close(batch[0, 1], alone[0, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batch[-1, 1], alone[-1, 0], atol=1e-5, rtol=0)
    assert not torch.equal(alone[-1, 0], alone[0, 0])  # the 5 steps did move the output


@pytest.mark.parametrize("name, options", FAMILIES, ids=lambda v: v if isinstance(v, str) else
                         "-".join(map(str, v.values())))
def test_runs_with_different_weight_seeds_have_different_outputs(name, options):
    net = build(name, (3, 12, 20), weight_seeds=[7, 8, 9], **options)
    out = net(make_input(net, name, [0, 0, 0]))  # one input: only the weights differ
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        assert (out[a] - out[b]).abs().max() > 1e-3


@pytest.mark.parametrize("name", list(MODELS))
def test_every_run_holds_its_own_parameters(name):
    net = build(name, (1, 64), weight_seeds=[4, 4, 5])
    for p in net.parameters():
        assert p.shape[0] == R
    weights = [torch.cat([p[r].flatten() for p in net.parameters()]) for r in range(R)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


# --------------------------------------------------------------------------- seeds

def test_weight_input_and_noise_streams_of_one_seed_are_different_seeds():
    for seed in (0, 1, 8, 2**40):
        seeds = {stream: stream_seed(seed, stream) for stream in STREAMS}
        assert len(set(seeds.values())) == len(STREAMS)
        assert all(0 <= s < 2**63 for s in seeds.values())


def test_stream_seeds_differ_between_user_seeds():
    assert len({stream_seed(s, "weights") for s in range(100)}) == 100


def test_same_user_seed_does_not_give_the_input_the_weights_draws():
    net = build("linear", (1, 64), runs=1, weight_seeds=[8])
    z = net.make_input([8], dist="uniform", scale=1.0).flatten()
    draws = torch.empty(z.numel()).uniform_(0, 1, generator=torch.Generator().manual_seed(8))
    weight_stream = torch.empty(z.numel()).uniform_(0, 1, generator=torch.Generator().manual_seed(
        stream_seed(8, "weights")))
    assert not torch.equal(z, draws) and not torch.equal(z, weight_stream)


@pytest.mark.parametrize("vary, same_weights, same_input", [
    ("weights", False, True), ("input", True, False), ("both", False, False)])
def test_vary_decides_what_differs_between_runs(tiny_config, vary, same_weights, same_input):
    cfg = tiny_config.replace(fit=FitConfig(**{**tiny_config.to_dict()["fit"], "vary": vary}))
    state, z, _ = prepare_fit(cfg, make_problem(cfg))
    w = [torch.cat([p[r].flatten() for p in state.net.parameters()]) for r in range(2)]
    assert torch.equal(w[0], w[1]) == same_weights
    assert torch.equal(z[0], z[1]) == same_input


@pytest.mark.parametrize("name, shape, option", [
    ("dip", (3, 16, 16), {"levels": 2, "padding": "bogus"}),
    ("conv", (1, 32), {"padding": "reflekt"}),
    ("conv", (1, 32), {"init": "bogus"}),
    ("linear", (1, 32), {"init": "Xavier"}),
    ("relunet", (3, 8, 8), {"init": "bogus"}),
])
def test_unknown_padding_or_init_is_refused_not_silently_replaced(name, shape, option):
    with pytest.raises(ValueError, match="unknown (padding|init)"):
        build_model(name, signal_shape=shape, runs=1, **option)


# --------------------------------------------------------------------------- level, stride and crop choices

@pytest.mark.parametrize("side, stride, levels", [(64, 2, 5), (64, 32, 1), (32, 32, 0), (48, 2, 4), (16, 4, 1)])
def test_largest_levels_keeps_two_samples_at_the_deepest_level(side, stride, levels):
    from spectral_lab.models.dip import DipNet

    assert DipNet.largest_levels(side, stride) == levels


@pytest.mark.parametrize("side, levels, stride, expected", [(16, 1, 4, 4), (16, 1, 32, 8), (64, 2, 32, 4), (8, 2, 2, 2)])
def test_largest_stride_halves_until_the_deepest_level_keeps_two_samples(side, levels, stride, expected):
    from spectral_lab.models.dip import DipNet

    assert DipNet.largest_stride(side, levels, stride) == expected


def test_largest_stride_refuses_a_side_too_small_for_stride_two():
    from spectral_lab.models.dip import DipNet

    with pytest.raises(ValueError, match="too small"):
        DipNet.largest_stride(7, 2, 4)


def test_models_of_a_comparison_share_the_least_common_crop():
    from spectral_lab.models import common_crop

    models = [("dip", {"levels": 3}), ("linear", {}), ("dip", {"levels": 2, "stride": 3})]
    assert common_crop(models) == 72  # lcm(2**3, 1, 3**2)
    # the sample photograph down-sampled x16 is 37 x 32: cropped to multiples of 2^3 for every model
    assert common_crop(models[:2], (3, 37, 32)) == 8
    # sides that are multiples already: no crop, nothing added to the configuration
    assert common_crop(models[:2], (3, 32, 24)) == 1
    assert common_crop([("linear", {})], (3, 37, 31)) == 1
