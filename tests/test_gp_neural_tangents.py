"""Cross-check of spectral_lab.kernels.gp against neural-tangents' NNGP kernel (optional).

neural-tangents (JAX) is not a dependency of the lab. It is run from its own venv:

    python3 -m venv .nt-venv && .nt-venv/bin/pip install neural-tangents "jax==0.4.30" \
        "jaxlib==0.4.30" "tf2jax==0.3.6" pytest
    PYTHONPATH=. .nt-venv/bin/python -m pytest tests/test_gp_neural_tangents.py -q \
        -p no:cacheprovider --noconftest

(neural-tangents 0.6.5 does not import with jax >= 0.5, nor with the tf2jax that pip picks
for jax 0.4.30; ``--noconftest`` because the shared conftest imports torch.) Elsewhere
every test here skips.
"""

import numpy as np
import pytest

nt = pytest.importorskip("neural_tangents")
jax = pytest.importorskip("jax")

from neural_tangents import stax  # noqa: E402

from spectral_lab.kernels.gp import conv_gp_covariance, conv_gp_covariance_matrix, covariance_matrix_from_lags
from spectral_lab.kernels.gp_inputs import gaussian_input_covariance

jax.config.update("jax_enable_x64", True)

W_STD, B_STD = 1.3, 0.4


def stax_conv_net(depth, window, padding, nonlinearity):
    """``depth`` convs of 1 output channel (the NNGP does not depend on it), the non-linearity between."""
    act = {"relu": stax.Relu, "erf": stax.Erf}[nonlinearity]
    layers = []
    for i in range(depth):
        layers.append(stax.Conv(1, (window,), padding=padding, W_std=W_STD, b_std=B_STD))
        if i < depth - 1:
            layers.append(act())
    return stax.serial(*layers)


def nt_nngp(x, depth, window, padding, nonlinearity):
    """neural-tangents' spatial NNGP covariance (N, N) of one input x of shape (N, C)."""
    _, _, kernel_fn = stax_conv_net(depth, window, padding, nonlinearity)
    return np.asarray(kernel_fn(x[None], None, "nngp"))[0, 0]


@pytest.mark.parametrize("nonlinearity", ["relu", "erf"])
@pytest.mark.parametrize("padding", ["SAME", "CIRCULAR"])
def test_fixed_input_kernel_matches_neural_tangents(nonlinearity, padding):
    x = np.random.default_rng(3).normal(size=(21, 5))
    ours = conv_gp_covariance_matrix(x @ x.T / x.shape[1], 4, window=3, nonlinearity=nonlinearity,
                                     padding={"SAME": "zeros", "CIRCULAR": "circular"}[padding],
                                     weight_var=W_STD**2, bias_var=B_STD**2)
    theirs = nt_nngp(x, 4, 3, padding, nonlinearity)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("length_scale", [0.0, 2.0])
def test_stationary_lag_kernel_matches_neural_tangents_on_a_ring(length_scale):
    """An input of N channels whose empirical covariance x x^T / N is exactly the stationary K_x."""
    n = 24
    input_cov = gaussian_input_covariance(n, length_scale)
    root = np.linalg.cholesky(covariance_matrix_from_lags(input_cov) + 1e-13 * np.eye(n))
    x = np.sqrt(n) * root  # x x^T / n = K_x
    lag = conv_gp_covariance(input_cov, 5, weight_var=W_STD**2, bias_var=B_STD**2)
    theirs = nt_nngp(x, 5, 5, "CIRCULAR", "relu")
    np.testing.assert_allclose(covariance_matrix_from_lags(lag), theirs, rtol=0, atol=1e-9)


def test_2d_fixed_input_kernel_matches_neural_tangents():
    x = np.random.default_rng(4).normal(size=(7, 6, 4))  # (H, W, C)
    init, _, kernel_fn = stax.serial(stax.Conv(1, (3, 3), padding="SAME", W_std=W_STD, b_std=B_STD), stax.Relu(),
                                     stax.Conv(1, (3, 3), padding="SAME", W_std=W_STD, b_std=B_STD))
    theirs = np.asarray(kernel_fn(x[None], None, "nngp"))[0, 0].transpose(0, 2, 1, 3)  # (H, H, W, W) -> (H, W, H, W)
    ours = conv_gp_covariance_matrix(np.einsum("hwc,HWc->hwHW", x, x) / 4, 2, window=3,
                                     weight_var=W_STD**2, bias_var=B_STD**2)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
