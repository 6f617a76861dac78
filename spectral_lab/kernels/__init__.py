"""Kernels of networks: what a random network prefers before training, and what gradient descent fits first.

- ``gp``: the Gaussian-process (NNGP) covariance of wide random conv nets, analytic (float64
  recursions, 1D and 2D), its power spectrum, and GP inference with it (000_… Section 3);
- ``sampled``: the same covariance estimated from random networks of the model registry;
- ``ntk``: the empirical neural tangent kernel Θ = J Jᵀ of one run of a model, matrix-free
  (``torch.func`` vjp / jvp): energies along directions, per Fourier frequency or radial
  band, the full kernel of a small 1D signal, and its top eigenpairs;
- ``fourier``: unit Fourier directions (1D modes, 2D radial bands) and how well a vector
  aligns with one frequency or band;
- ``predict``: what gradient descent on the linearised network does to each frequency's
  amplitude, SE(k) per iteration and the convergence iteration (Fourier-diagonal or the
  full kernel), each radial band's time to fit, and the stable step;
- ``configured``: the kernels of a configuration's runs (at initialisation, or at a stored
  parameter snapshot of a recording), seed-averaged, and the prediction for them: what
  ``spectral-lab kernel ntk`` prints and experiments/ntk_prediction.py measures against.

Import the submodules directly (``from spectral_lab.kernels.ntk import kernel_energy``);
this package imports nothing so that ``import spectral_lab`` stays light.
"""
