"""Tangent-kernel benchmarks: what one Rayleigh quotient costs next to a backward pass, and the
eigensolvers' cost against the output size N and the model size (`spectral_lab.kernels.ntk`)."""

from __future__ import annotations

import numpy as np
import torch

from spectral_lab.kernels.ntk import _RunKernel, kernel_energy, top_eigenpairs
from spectral_lab.models import build_model

from _harness import Table, fmt_s, interleave, ratio_cell

# (label, family, options, signal shape): the per-mode cost
MODE_CASES = {
    "quick": [("conv 4×256, N=256", "conv", {}, (1, 256)),
              ("dip 4 lv × 64 ch, 64²×3", "dip", {"levels": 4, "down": 64, "up": 64}, (3, 64, 64))],
    "full": [("conv 4×256, N=256", "conv", {}, (1, 256)),
             ("linear 4×256, N=256", "linear", {}, (1, 256)),
             ("dip 4 lv × 64 ch, 64²×3", "dip", {"levels": 4, "down": 64, "up": 64}, (3, 64, 64)),
             ("dip 5 lv × 128 ch (paper), 64²×3", "dip", {}, (3, 64, 64))],
}
# (label, family, options, signal shape, k): the eigensolvers
EIGEN_CASES = {
    "quick": [("conv 4×256", "conv", {}, (1, 64), 16), ("conv 4×256", "conv", {}, (1, 256), 16),
              ("dip 4 lv × 64 ch", "dip", {"levels": 4, "down": 64, "up": 64}, (3, 64, 64), 32)],
    "full": [*(("conv 4×256", "conv", {}, (1, n), 16) for n in (64, 128, 256, 512, 1024)),
             ("dip 4 lv × 32 ch", "dip", {"levels": 4, "down": 32, "up": 32}, (3, 64, 64), 32),
             ("dip 4 lv × 64 ch", "dip", {"levels": 4, "down": 64, "up": 64}, (3, 64, 64), 32),
             ("dip 5 lv × 128 ch (paper)", "dip", {}, (3, 64, 64), 32)],
}
DIRECTIONS = 16


def _net(model: str, options: dict, shape: tuple[int, ...]):
    net = build_model(model, signal_shape=shape, runs=1, **options)
    return net, net.make_input([0])


def per_mode_cost(quick: bool) -> Table:
    """Seconds per Rayleigh quotient uᵀΘu = ‖Jᵀu‖² (vmapped vjps, 8 at a time) and per product Θv
    (vjp + jvp), each divided by one training step's forward + backward pass."""
    t = Table("Tangent kernel: cost of one Rayleigh quotient and one product Θv ÷ one forward + backward pass",
              ["network", "parameters", "forward + backward", "quotient uᵀΘu", "÷ backward", "product Θv",
               "÷ backward"])
    rounds = 3 if quick else 5
    for label, model, options, shape in MODE_CASES["quick" if quick else "full"]:
        net, z = _net(model, options, shape)
        rng = np.random.default_rng(0)
        u = torch.from_numpy(rng.standard_normal((DIRECTIONS, *shape)).astype(np.float32))
        y = torch.zeros(1, *shape)

        def backward():
            net.zero_grad(set_to_none=True)
            ((net(z) - y) ** 2).mean().backward()

        def quotients():
            kernel_energy(net, z, u)

        with _RunKernel(net, z, 0, False, None) as kernel:
            v = u.reshape(DIRECTIONS, -1)[:4]

            def products():
                kernel.matmat(v)

            samples = interleave({"backward": backward, "quotient": quotients, "product": products}, rounds,
                                 units={"quotient": DIRECTIONS, "product": 4})
        t.add(label, f"{net.parameters_per_run():,}", fmt_s(samples.median("backward")),
              fmt_s(samples.median("quotient")), ratio_cell(samples.ratio("quotient", "backward")),
              fmt_s(samples.median("product")), ratio_cell(samples.ratio("product", "backward")))
    t.note("a quotient includes building the vjp (one forward pass) once per call of "
           f"{DIRECTIONS} directions; the product is one vjp and one jvp (forward-mode) per vector")
    return t


def eigensolver_cost(quick: bool) -> Table:
    """Wall time and products of the top-k eigenpairs by Lanczos and randomized subspace iteration."""
    t = Table("Tangent kernel: top-k eigenpairs, Lanczos (scipy eigsh, tol 1e-6) vs randomized subspace iteration "
              "(k + 10 vectors, 3 power iterations)",
              ["network", "output N", "parameters", "k", "Lanczos", "products", "rsvd", "products",
               "max rel. gap of the k eigenvalues"])
    for label, model, options, shape, k in EIGEN_CASES["quick" if quick else "full"]:
        net, z = _net(model, options, shape)
        lanczos = top_eigenpairs(net, z, k, method="lanczos")
        rsvd = top_eigenpairs(net, z, k, method="rsvd")
        gap = float(np.max(np.abs(rsvd.values - lanczos.values) / lanczos.values))
        t.add(label, "×".join(map(str, shape)) + f" = {int(np.prod(shape)):,}", f"{net.parameters_per_run():,}", k,
              fmt_s(lanczos.seconds), lanczos.matvecs, fmt_s(rsvd.seconds), rsvd.matvecs, f"{gap:.1e}")
    t.note("rsvd's eigenvalues are lower bounds of the top-k: its gap is how far the cheaper method is from Lanczos")
    return t


def kernel(quick: bool) -> None:
    torch.manual_seed(0)
    per_mode_cost(quick)
    eigensolver_cost(quick)
