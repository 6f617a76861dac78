"""The package's optimisers against torch's: the same numbers bit for bit, checkpoints that load
either way, and no torch._dynamo import on the way."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
import torch

from spectral_lab.optim import SGD, Adam, make_optimizer


def stacked_params(seed: int = 0) -> list[torch.nn.Parameter]:
    """Stacked parameters of 3 runs, odd shapes, one in channels_last (as the 2D dip's)."""
    g = torch.Generator().manual_seed(seed)
    conv = torch.randn(3 * 5, 4, 3, 3, generator=g).contiguous(memory_format=torch.channels_last)
    return [torch.nn.Parameter(torch.randn(3, 7, 5, generator=g)), torch.nn.Parameter(torch.randn(3, 11, generator=g)),
            torch.nn.Parameter(conv)]


def run_steps(opt, params, steps: int, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g).contiguous(memory_format=torch.preserve_format)
        opt.step()
        opt.zero_grad(set_to_none=True)


def pair(ours, theirs, options):
    a, b = stacked_params(), stacked_params()
    return a, b, ours(a, lr=1e-2, **options), theirs(b, lr=1e-2, **options)


ADAM_OPTIONS = [{}, {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01}]
SGD_OPTIONS = [{}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}]


def torch_adam(params, **kw):
    return torch.optim.Adam(params, fused=True, **kw)


def torch_sgd(params, **kw):
    return torch.optim.SGD(params, foreach=True, **kw)


CASES = [(Adam, torch_adam, o) for o in ADAM_OPTIONS] + [(SGD, torch_sgd, o) for o in SGD_OPTIONS]


@pytest.mark.parametrize("ours, theirs, options", CASES)
def test_steps_are_bitwise_those_of_torch(ours, theirs, options):
    a, b, oa, ob = pair(ours, theirs, options)
    run_steps(oa, a, 5)
    run_steps(ob, b, 5)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
        assert x.stride() == y.stride()


def saved(opt) -> dict:
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    return torch.load(io.BytesIO(buf.getvalue()), weights_only=True)


@pytest.mark.parametrize("ours, theirs, options", CASES)
@pytest.mark.parametrize("direction", ["torch checkpoint into ours", "our checkpoint into torch"])
def test_a_checkpoint_of_either_resumes_in_the_other_bitwise(ours, theirs, options, direction):
    first, second = (theirs, ours) if direction == "torch checkpoint into ours" else (ours, theirs)
    a, b, oa, ob = pair(first, first, options)
    run_steps(oa, a, 3)  # the uninterrupted run: 3 steps, then 3 more
    run_steps(ob, b, 3)  # the interrupted one: 3 steps, a checkpoint, resumed by the other class
    blob = saved(ob)
    resumed = [torch.nn.Parameter(p.detach().clone()) for p in b]
    oc = second(resumed, lr=1e-2, **options)
    oc.load_state_dict(blob)
    run_steps(oa, a, 3, seed=2)
    run_steps(oc, resumed, 3, seed=2)
    for x, y in zip(a, resumed):
        assert torch.equal(x, y)


@pytest.mark.parametrize("ours, theirs, options", CASES)
def test_state_dict_has_torchs_layout(ours, theirs, options):
    a, b, oa, ob = pair(ours, theirs, options)
    run_steps(oa, a, 2)
    run_steps(ob, b, 2)
    sa, sb = oa.state_dict(), ob.state_dict()
    assert sa["param_groups"][0].keys() == sb["param_groups"][0].keys()
    assert sa["param_groups"][0]["params"] == sb["param_groups"][0]["params"]
    assert sa["state"].keys() == sb["state"].keys()
    for k in sa["state"]:
        assert sa["state"][k].keys() == sb["state"][k].keys()
        for name in sa["state"][k]:
            x, y = sa["state"][k][name], sb["state"][k][name]
            assert x.dtype == y.dtype and x.device == y.device and torch.equal(x, y)


def test_loading_another_layout_is_refused():
    a = stacked_params()
    opt = Adam(a, lr=1e-2)
    run_steps(opt, a, 1)
    other = Adam(a[:2], lr=1e-2)
    with pytest.raises(ValueError, match="other parameter groups"):
        other.load_state_dict(opt.state_dict())


def test_zero_grad_keeps_or_clears_the_gradients():
    a = stacked_params()
    opt = SGD(a, lr=0.1)
    for p in a:
        p.grad = torch.ones_like(p)
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in a)
    opt.zero_grad()
    assert all(p.grad is None for p in a)


def test_bad_sgd_options_are_one_config_error():
    from spectral_lab.errors import ConfigError

    with pytest.raises(ConfigError, match="Nesterov momentum requires a momentum"):
        make_optimizer("sgd", stacked_params(), lr=0.1, generators=[], options={"nesterov": True})


def test_fitting_with_the_default_optimisers_never_imports_torch_dynamo(subprocess_env):
    code = (
        "import sys, torch\n"
        "from spectral_lab.models import build_model\n"
        "from spectral_lab.fit import fit, make_fit_state\n"
        "for name in ('adam', 'sgd'):\n"
        "    net = build_model('conv', signal_shape=(1, 16), runs=2, weight_seeds=[0, 1], depth=2, width=4)\n"
        "    state = make_fit_state(net, lr=1e-3, optimizer=name)\n"
        "    fit(state, net.make_input([0, 1]), torch.zeros(1, 16), iterations=2)\n"
        "    state.load_bytes(state.to_bytes())\n"
        "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
