"""Kernels of networks at initialisation: Gaussian-process (NNGP) covariances and their use."""
