"""Data terms of the fit, as registry entries: ``loss(A f, y) -> (R,)``, one value per run.

An entry is a class (or factory) taking keyword options (``--loss-opt KEY=VALUE``) whose
instances are called on the operator's output ``(R, C, *spatial')`` and the observation
``(C, *spatial')`` (or ``(R, C, *spatial')``) and return the per-run loss ``(R,)``. The runs'
losses are summed before the backward pass, so each run's gradient stays its own. What is
stored as ``/runs/<r>/loss`` in a trajectory is this value: the data term actually minimised.
"""

from __future__ import annotations

import torch

from .registry import Registry

__all__ = ["LOSSES", "MSE", "mse", "make_loss"]

LOSSES: Registry = Registry("loss")


@LOSSES.register("mse", help="mean squared error over every sample (the DIP data term)")
class MSE:
    """mean over channels and samples of (A f − y)², per run."""

    def __call__(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (pred - y).pow(2).flatten(1).mean(dim=1)


mse = MSE()


def make_loss(name: str, options=None, **context):
    """Build loss ``name`` with its options (ConfigError for unknown ones)."""
    opts = LOSSES.check_options(name, options or {})
    return LOSSES.get(name).obj(**opts, **context)
