"""The empirical neural tangent kernel of one run of a model, matrix-free.

For run r of a stacked `RunNet` at its current parameters θ, with f(θ) the run's output
flattened to M = C·prod(spatial) values and J = ∂f/∂θ (M × P), the tangent kernel is

    Θ = J Jᵀ   (M × M, symmetric positive semi-definite).

Under gradient descent with step η on mean((f - y)²) over the M values, the linearised
residual r = f - y moves as r ← (I - 2η Θ / M) r: the residual along a unit eigenvector of
Θ with eigenvalue λ shrinks by (1 - 2ηλ/M) a step (see `spectral_lab.kernels.predict`).

What network the kernel is of. The network exactly as `spectral_lab.fit` trains it: train
mode (the `dip`'s BatchNorm normalises with the current batch statistics, which depend on
θ and are differentiated through, as in training), the output activation included (the
2D sigmoid), at the fixed input z without the loop's input perturbation (reg-noise).
``pre_activation=True`` gives the kernel of the logits instead (the output activation
skipped). The kernel is that of the current θ; it moves as the network trains.

Stacked runs. The Jacobian of run r's output with respect to *all* stacked parameters is
zero outside run r's slices (runs do not touch each other's parameters, BatchNorm included),
so using the full stacked parameters and run r's output is exactly run r's kernel. It costs
R runs' forward and backward passes: build the net with the runs you need.

Nothing here forms a P × P or M × P matrix: an energy uᵀΘu = ‖Jᵀu‖² costs one
vector-Jacobian product (a backward pass), a product Θv one vjp and one jvp (forward-mode).
Computations run in the network's dtype on its device; results are float64 numpy arrays.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch.func import functional_call, jvp, vjp, vmap

from spectral_lab.analyze.spectrum import radial_bands
from spectral_lab.errors import AnalysisError
from spectral_lab.kernels.fourier import band_directions, fourier_modes_1d

__all__ = ["BandEnergies", "Eigenpairs", "FrequencyEnergies", "band_energies", "frequency_energies",
           "full_kernel", "kernel_energy", "top_eigenpairs"]

METHODS = ("lanczos", "rsvd")
DEFAULT_CHUNK = 8
MAX_FULL_OUTPUTS = 4096


class _RunKernel:
    """Θ of one run as a linear operator; a context manager that holds the net in train mode
    (and, for ``pre_activation``, bypasses its output activation) while it is used."""

    def __init__(self, net: torch.nn.Module, z: torch.Tensor, run: int, pre_activation: bool,
                 chunk_size: int | None) -> None:
        _check_inputs(net, z, run)
        self.net, self.z, self.run, self.pre_activation = net, z, run, pre_activation
        self.chunk = DEFAULT_CHUNK if chunk_size is None else int(chunk_size)
        if self.chunk < 1:
            raise AnalysisError(f"chunk_size must be >= 1, got {chunk_size}")
        self.shape = (int(net.out_channels), *(int(s) for s in net.spatial))
        self.size = math.prod(self.shape)
        self.matvecs = 0

    def __enter__(self) -> "_RunKernel":
        net = self.net
        self._was_training = net.training
        self._hook = None
        net.train()
        if self.pre_activation:
            act = getattr(net, "out_act", None)
            if not isinstance(act, torch.nn.Module):
                net.train(self._was_training)
                raise AnalysisError(f"{type(net).__name__} has no output activation `out_act` to skip")
            self._hook = act.register_forward_hook(lambda module, args, output: args[0])
        try:
            self._build()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _build(self) -> None:
        net = self.net
        trained = {n: p.detach() for n, p in net.named_parameters() if p.requires_grad}
        fixed = {n: p.detach() for n, p in net.named_parameters() if not p.requires_grad}
        fixed.update(dict(net.named_buffers()))
        self.params = trained
        z, run = self.z, self.run

        def f(p):
            return functional_call(net, {**p, **fixed}, (z,))[run]

        self.f = f
        self.output, self._vjp = vjp(f, trained)

    def __exit__(self, *exc) -> None:
        if self._hook is not None:
            self._hook.remove()
        self.net.train(self._was_training)

    # ---------------------------------------------------------------- products
    def _as_batch(self, u) -> torch.Tensor:
        u = torch.as_tensor(u)
        u = u.to(device=self.output.device, dtype=self.output.dtype)
        return u.reshape(u.shape[0], *self.output.shape)

    def _batched(self, fn: Callable, x: torch.Tensor):
        try:
            return vmap(fn, chunk_size=self.chunk)(x)
        except (RuntimeError, NotImplementedError):
            # an op without a batching rule: one product at a time gives the same numbers
            outs = [fn(xi) for xi in x]
            if isinstance(outs[0], dict):
                return {k: torch.stack([o[k] for o in outs]) for k in outs[0]}
            return torch.stack(outs)

    def pullback(self, u: torch.Tensor) -> dict[str, torch.Tensor]:
        """Jᵀu for a batch u ``(D, C, *spatial)``: parameter-shaped tensors with a leading D."""
        return self._batched(lambda ui: self._vjp(ui)[0], u)

    def energy(self, u) -> np.ndarray:
        u = self._as_batch(u)
        grads = self.pullback(u)
        sq = sum(g.double().pow(2).flatten(1).sum(1) for g in grads.values())
        return sq.cpu().numpy()

    def matmat(self, v) -> torch.Tensor:
        """Θ v for a batch v ``(D, M)`` -> ``(D, M)`` in the network's dtype."""
        v = self._as_batch(v)
        tangents = self.pullback(v)
        out = self._batched(lambda t: jvp(self.f, (self.params,), (t,))[1], tangents)
        self.matvecs += v.shape[0]
        return out.reshape(v.shape[0], -1)

    def matmat_numpy(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        single = v.ndim == 1
        batch = v.reshape(1, -1) if single else v.T  # scipy passes (M, D) blocks
        out = self.matmat(torch.from_numpy(np.ascontiguousarray(batch))).double().cpu().numpy()
        return out[0] if single else out.T


# -------------------------------------------------------------------- public API

def kernel_energy(net: torch.nn.Module, z: torch.Tensor, directions, *, run: int = 0,
                  pre_activation: bool = False, chunk_size: int | None = None) -> np.ndarray:
    """The kernel's energy uᵀΘu / ‖u‖² along each direction (one backward pass each).

    For a unit u this is ‖Jᵀu‖², the squared gradient norm of ⟨u, f_θ(z)⟩; gradient descent
    moves the output along u at a rate proportional to it.

    Parameters
    ----------
    net : RunNet
        R stacked runs (see the module docstring for the network the kernel is of).
    z : Tensor ``(R, C_in, *spatial)``
        The network's input, on its device and in its dtype.
    directions : array or Tensor ``(D, C, *spatial)`` or ``(D, C·prod(spatial))``
        Directions in one run's output space; need not be unit (the quotient is returned).
    run : int
        Which run's kernel.
    pre_activation : bool
        Kernel of the logits, before the output activation.
    chunk_size : int, optional
        Directions per vectorised backward pass (memory grows with it); default 8.

    Returns
    -------
    array (D,) float64
    """
    with _RunKernel(net, z, run, pre_activation, chunk_size) as kernel:
        u = _checked_directions(directions, kernel)
        norms = u.double().flatten(1).pow(2).sum(1).cpu().numpy()
        return kernel.energy(u) / norms


@dataclass(frozen=True, eq=False)
class FrequencyEnergies:
    """The kernel's energy along the unit cosine and sine of each 1D frequency.

    Attributes
    ----------
    freqs : array (K,)
    cos, sin : array (K,) float64
        uᵀΘu for the unit cosine and sine at k, averaged over channels when C > 1.
    """

    freqs: np.ndarray
    cos: np.ndarray
    sin: np.ndarray

    @property
    def energy(self) -> np.ndarray:
        """λ_k = the mean of the cosine and sine energies: (half) the trace of Θ on the
        frequency's 2D subspace, the same for every phase of the sinusoid."""
        return 0.5 * (self.cos + self.sin)


def frequency_energies(net: torch.nn.Module, z: torch.Tensor, freqs: Sequence[int], *, run: int = 0,
                       pre_activation: bool = False, chunk_size: int | None = None) -> FrequencyEnergies:
    """Energies of a 1D network's kernel along the Fourier modes of frequencies ``freqs``.

    Two backward passes per frequency and channel (`fourier_modes_1d`: unit cosine and sine,
    placed on each of the C channels in turn).

    Parameters
    ----------
    net, z, run, pre_activation, chunk_size
        See `kernel_energy`; ``net`` must be 1D.
    freqs : sequence of K integers, 0 < k < N/2

    Returns
    -------
    FrequencyEnergies
    """
    if getattr(net, "ndim", None) != 1:
        raise AnalysisError("frequency_energies is for 1D networks; use band_energies for images")
    channels, n = int(net.out_channels), int(net.spatial[0])
    modes = fourier_modes_1d(n, freqs)  # (K, 2, N)
    dirs = np.zeros((modes.shape[0], 2, channels, channels, n))
    for c in range(channels):
        dirs[:, :, c, c] = modes
    e = kernel_energy(net, z, dirs.reshape(-1, channels, n), run=run, pre_activation=pre_activation,
                      chunk_size=chunk_size).reshape(modes.shape[0], 2, channels).mean(axis=2)
    return FrequencyEnergies(np.asarray(freqs, dtype=np.float64).reshape(-1), e[:, 0], e[:, 1])


@dataclass(frozen=True, eq=False)
class BandEnergies:
    """Mean kernel energy per radial band of a 2D network's output.

    Attributes
    ----------
    energy : array (B,) float64
        Mean of uᵀΘu over the band's directions (see `band_directions`).
    band_edges : array (B + 1,) float64
        Cycles per pixel, as `radial_bands`.
    n_directions : array (B,) int64
        Directions (backward passes) used per band.
    exact : array (B,) bool
        True where every basis vector of the band was used (the mean is exact), False
        where it is the mean over a random orthonormal sample (an unbiased estimate).
    """

    energy: np.ndarray
    band_edges: np.ndarray
    n_directions: np.ndarray
    exact: np.ndarray


def band_energies(net: torch.nn.Module, z: torch.Tensor, *, n_bands: int | None = None, run: int = 0,
                  max_directions: int = 32, seed: int = 0, pre_activation: bool = False,
                  chunk_size: int | None = None) -> BandEnergies:
    """Mean energy of a 2D network's kernel over each radial band of the spectrum analyzer.

    Channels: the C channels are independent coordinates, so a band's subspace holds its
    modes on every channel and the mean runs over modes and channels. Bands with more than
    ``max_directions`` such directions are sampled (see `band_directions`).

    Parameters
    ----------
    net, z, run, pre_activation, chunk_size
        See `kernel_energy`; ``net`` must be 2D.
    n_bands : int, optional
        See `spectral_lab.analyze.spectrum.radial_bands`.
    max_directions : int
        Backward passes per band at most.
    seed : int
        Seeds the sampled directions (band b uses seed + b).

    Returns
    -------
    BandEnergies
    """
    if getattr(net, "ndim", None) != 2:
        raise AnalysisError("band_energies is for 2D networks; use frequency_energies for 1D signals")
    shape = tuple(int(s) for s in net.spatial)
    band_index, edges = radial_bands(shape, n_bands)
    n_b = int(band_index.max()) + 1
    energy, counts, exact = np.empty(n_b), np.empty(n_b, dtype=np.int64), np.empty(n_b, dtype=bool)
    with _RunKernel(net, z, run, pre_activation, chunk_size) as kernel:
        for b in range(n_b):
            dirs, exact[b] = band_directions(shape, b, channels=int(net.out_channels), n_bands=n_b,
                                             max_directions=max_directions, seed=seed + b)
            energy[b] = kernel.energy(torch.from_numpy(dirs)).mean()
            counts[b] = dirs.shape[0]
    return BandEnergies(energy, edges, counts, exact)


def full_kernel(net: torch.nn.Module, z: torch.Tensor, *, run: int = 0, pre_activation: bool = False,
                chunk_size: int | None = None, max_outputs: int = MAX_FULL_OUTPUTS) -> np.ndarray:
    """The whole M × M kernel of a small output (M = C·prod(spatial) values).

    Column j is Θ e_j, one vjp and one jvp; the result is symmetrised, (Θ + Θᵀ)/2, which
    removes the float rounding of the network's dtype (it is PSD up to that rounding).

    Parameters
    ----------
    net, z, run, pre_activation, chunk_size
        See `kernel_energy`.
    max_outputs : int
        Refuse outputs larger than this (use `top_eigenpairs`).

    Returns
    -------
    array (M, M) float64, rows and columns in the order of the run's output flattened
    """
    with _RunKernel(net, z, run, pre_activation, chunk_size) as kernel:
        m = kernel.size
        if m > max_outputs:
            raise AnalysisError(f"the full kernel of {m} outputs is too large (max_outputs={max_outputs}); "
                                f"use top_eigenpairs or kernel_energy")
        eye = torch.eye(m, dtype=kernel.output.dtype, device=kernel.output.device)
        theta = kernel.matmat(eye).double().cpu().numpy()
    return 0.5 * (theta + theta.T)


@dataclass(frozen=True, eq=False)
class Eigenpairs:
    """The top eigenpairs of a kernel.

    Attributes
    ----------
    values : array (k,) float64
        Eigenvalues, largest first.
    vectors : array (k, C, *spatial) float64
        Unit eigenvectors in the run's output shape.
    matvecs : int
        Products Θv computed (each one vjp and one jvp).
    seconds : float
        Wall time.
    """

    values: np.ndarray
    vectors: np.ndarray
    matvecs: int
    seconds: float


def top_eigenpairs(net: torch.nn.Module, z: torch.Tensor, k: int, *, run: int = 0, method: str = "lanczos",
                   pre_activation: bool = False, tol: float = 1e-6, oversample: int = 10,
                   power_iterations: int = 3, seed: int = 0, chunk_size: int | None = None) -> Eigenpairs:
    """The k largest eigenvalues of Θ and their eigenvectors, from products v ↦ J(Jᵀv).

    Methods: ``"lanczos"``, implicitly restarted Lanczos (`scipy.sparse.linalg.eigsh` with
    ``which="LA"`` on a `LinearOperator`, one product at a time, relative accuracy ``tol``);
    ``"rsvd"``, randomized subspace iteration for a PSD operator (Halko, Martinsson & Tropp
    2011, alg. 4.4): a Gaussian block of k + ``oversample`` vectors, ``power_iterations``
    products with re-orthonormalisation, then Rayleigh-Ritz; (power_iterations + 2)·(k +
    oversample) products, batched, accurate when the spectrum decays past the k-th value.

    Parameters
    ----------
    net, z, run, pre_activation, chunk_size
        See `kernel_energy`.
    k : int
        1 <= k < M.
    method : "lanczos" or "rsvd"
    tol : float
        Lanczos only: relative accuracy of the eigenvalues (0 = machine precision).
    oversample, power_iterations : int
        Randomized subspace iteration only.
    seed : int
        Seeds the starting vector (Lanczos) or block (rsvd).

    Returns
    -------
    Eigenpairs
    """
    if method not in METHODS:
        raise AnalysisError(f"unknown eigensolver {method!r}; choose from {', '.join(METHODS)}")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    with _RunKernel(net, z, run, pre_activation, chunk_size) as kernel:
        m = kernel.size
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < m:
            raise AnalysisError(f"k must be an integer with 1 <= k < {m} (the output size), got {k!r}")
        if method == "lanczos":
            from scipy.sparse.linalg import LinearOperator, eigsh

            op = LinearOperator((m, m), matvec=kernel.matmat_numpy, matmat=kernel.matmat_numpy,
                                dtype=np.float64)
            values, vectors = eigsh(op, k=k, which="LA", tol=tol, v0=rng.standard_normal(m))
        else:
            if oversample < 0 or power_iterations < 0:
                raise AnalysisError("oversample and power_iterations must be >= 0")
            block = min(m, k + oversample)
            y = kernel.matmat_numpy(rng.standard_normal((m, block)))
            for _ in range(power_iterations):
                q, _ = np.linalg.qr(y)
                y = kernel.matmat_numpy(q)
            q, _ = np.linalg.qr(y)
            small = q.T @ kernel.matmat_numpy(q)
            values, ritz = np.linalg.eigh(0.5 * (small + small.T))
            vectors = q @ ritz
        order = np.argsort(values)[::-1][:k]
        values, vectors = values[order], vectors[:, order]
        matvecs = kernel.matvecs
    return Eigenpairs(values, vectors.T.reshape(k, *kernel.shape).copy(), matvecs, time.perf_counter() - started)


# -------------------------------------------------------------------- checks

def _check_inputs(net, z, run) -> None:
    for attr in ("runs", "out_channels", "spatial", "in_channels"):
        if not hasattr(net, attr):
            raise AnalysisError(f"{type(net).__name__} is not a RunNet (no `{attr}`)")
    if not isinstance(z, torch.Tensor) or not z.is_floating_point():
        raise AnalysisError(f"z must be a floating-point tensor, got {type(z).__name__}")
    expected = (net.runs, net.in_channels, *net.spatial)
    if tuple(z.shape) != tuple(expected):
        raise AnalysisError(f"z must have shape {tuple(expected)} (runs, input channels, *spatial), "
                            f"got {tuple(z.shape)}")
    if isinstance(run, bool) or not isinstance(run, (int, np.integer)) or not 0 <= run < net.runs:
        raise AnalysisError(f"run must be an integer in [0, {net.runs - 1}], got {run!r}")
    p = next(net.parameters(), None)
    if p is None:
        raise AnalysisError(f"{type(net).__name__} has no parameters, so no tangent kernel")
    if p.device != z.device or p.dtype != z.dtype:
        raise AnalysisError(f"z is {z.dtype} on {z.device} but the network is {p.dtype} on {p.device}")


def _checked_directions(directions, kernel: _RunKernel) -> torch.Tensor:
    u = torch.as_tensor(np.asarray(directions) if not isinstance(directions, torch.Tensor) else directions)
    if u.ndim < 1 or u.numel() != u.shape[0] * kernel.size or u.shape[0] == 0:
        raise AnalysisError(f"directions must have shape (D, {', '.join(map(str, kernel.shape))}), "
                            f"got {tuple(u.shape)}")
    u = kernel._as_batch(u)
    if not bool(torch.isfinite(u).all()) or bool((u.flatten(1).abs().sum(1) == 0).any()):
        raise AnalysisError("directions must be finite and nonzero")
    return u
