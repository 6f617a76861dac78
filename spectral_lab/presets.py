"""Presets: settings under which each model family does its job, per signal kind and size.

A preset is a bundle of configuration overrides for one (preset, signal kind, model family);
explicit flags override it. ``quick`` fits 2 CPU cores in a minute or two; ``paper`` follows
the papers. The budgets are the ones the lab's experiments measured (experiments/results/):

- 1D (sin(2π5t) + sin(2π50t), 200 samples): the conv stack of the reference code's last
  version (10 layers, PyTorch's default init, no bias: it separates k = 5 from k = 50 about 2×;
  64 channels at Adam 1e-4, 256 channels need 3e-5 for a steady reading), DIP-Linear of the
  same depth and width, the 1D DIP of the frequency ladder (3 levels × 32), the coordinate
  ReLU MLP (6 × 128 at 1e-3, 2000 iterations);
- images: the DIP paper's denoising settings (Adam 0.01, input U(0, 0.1) of 32 channels, input
  perturbation σ = 1/30) for ``dip``; the denoising experiments' budgets for DIP-Linear (5
  layers × 128 at 1e-4) and the ReLU MLP (10 × 256 at 1e-3). An image file is brought to the
  preset's working size by an integer down-sampling factor computed from its size: the
  shorter side near ``QUICK_SIDE`` (64) for ``quick``, the papers' ×4 for ``paper``.
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError

__all__ = ["PRESETS", "QUICK_SIDE", "preset", "downsample_for"]

PRESETS = ("quick", "paper")
QUICK_SIDE = 64
PAPER_DOWNSAMPLE = 4

_DIP_FIT = {"lr": 0.01, "reg_noise_std": 1.0 / 30, "input_dist": "uniform", "input_scale": 0.1}
_CONV_1D = {"depth": 10, "kernel": 3, "init": "default", "bias": False}

# (preset, "1d" | "2d", model family) -> (model options, fit overrides)
_MODEL: dict[tuple[str, str, str], tuple[dict, dict]] = {
    ("quick", "1d", "conv"): ({**_CONV_1D, "width": 64}, {"iterations": 600, "lr": 1e-4}),
    ("paper", "1d", "conv"): ({**_CONV_1D, "width": 256}, {"iterations": 600, "lr": 3e-5}),
    ("quick", "1d", "linear"): ({"depth": 10, "width": 64}, {"iterations": 600, "lr": 1e-4}),
    ("paper", "1d", "linear"): ({"depth": 10, "width": 256}, {"iterations": 600, "lr": 3e-5}),
    ("quick", "1d", "dip"): ({"levels": 3, "down": 32, "up": 32}, {"iterations": 600, "lr": 1e-4}),
    ("paper", "1d", "dip"): ({"levels": 3, "down": 32, "up": 32}, {"iterations": 600, "lr": 1e-4}),
    ("quick", "1d", "relunet"): ({"depth": 6, "width": 128}, {"iterations": 2000, "lr": 1e-3}),
    ("paper", "1d", "relunet"): ({"depth": 6, "width": 128}, {"iterations": 2000, "lr": 1e-3}),
    ("quick", "2d", "dip"): ({"levels": 4, "down": 64, "up": 64}, {"iterations": 600, **_DIP_FIT}),
    ("paper", "2d", "dip"): ({}, {"iterations": 3000, **_DIP_FIT}),
    ("quick", "2d", "linear"): ({"depth": 5, "width": 128}, {"iterations": 300, "lr": 1e-4}),
    ("paper", "2d", "linear"): ({"depth": 5, "width": 128}, {"iterations": 1000, "lr": 1e-4}),
    ("quick", "2d", "relunet"): ({"depth": 10, "width": 256}, {"iterations": 2500, "lr": 1e-3}),
    ("paper", "2d", "relunet"): ({"depth": 10, "width": 256}, {"iterations": 50000, "lr": 1e-3}),
    ("quick", "2d", "conv"): ({"depth": 8, "width": 64}, {"iterations": 800, "lr": 1e-3}),
    ("paper", "2d", "conv"): ({"depth": 8, "width": 128}, {"iterations": 3000, "lr": 1e-3}),
}
_DEFAULT_MODEL = {"1d": "conv", "2d": "dip"}


def downsample_for(size: tuple[int, int], name: str) -> int:
    """The integer down-sampling factor that brings an image of ``size`` (H, W) to the working
    size of preset ``name``: the shorter side near `QUICK_SIDE` from above for ``quick``, the
    papers' ×4 for ``paper`` (never below 1)."""
    if name == "quick":
        return max(1, min(size) // QUICK_SIDE)
    return PAPER_DOWNSAMPLE if min(size) // PAPER_DOWNSAMPLE >= QUICK_SIDE else 1


def preset(name: str, signal_kind: str, model: str | None = None, *, image_size: tuple[int, int] | None = None
           ) -> dict[str, dict[str, Any]]:
    """Section overrides of preset ``name`` for a signal kind and model family (default: the
    kind's own, conv for 1D, dip for images); ``image_size`` (H, W) of an image file sets its
    down-sampling factor. Explicit flags override what this returns."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    dims = "1d" if signal_kind == "sines" else "2d"
    model = model or _DEFAULT_MODEL[dims]
    options, fit = _MODEL.get((name, dims, model), ({}, {}))
    out: dict[str, Any] = {"model": {"name": model, "options": dict(options)}, "fit": dict(fit)}
    if signal_kind == "sines":
        out["task"] = "fit"
        if model == "conv":
            out["fit"].update(input_dist="normal", input_scale=1.0)
    elif signal_kind == "image":
        out["task"] = "denoise"
        out["signal"] = {"downsample": downsample_for(image_size, name) if image_size else
                         (8 if name == "quick" else PAPER_DOWNSAMPLE)}
    else:
        out["task"] = "fit"
        out["signal"] = {"size": QUICK_SIDE if name == "quick" else 256}
    return out
