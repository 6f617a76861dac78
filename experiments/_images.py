"""Plumbing shared by the image experiments (on top of `experiments._common`).

- `image_signal`: ``"triangle"``, ``"photo"`` (matplotlib's bundled photograph) or a file path
  as a `SignalConfig`.
- `dip_run_config`: the `RunConfig` of R runs of the ``dip`` network fitting a clean image.
- `largest_levels`: how many levels of a stride an image side allows.
- `rebound`: first convergence, peak, re-convergence and excess divergence of one ε curve.
- `image_cli`: ``--quick``, ``--image``, ``--out-dir`` and ``--threads``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence


from experiments._common import REPO
from spectral_lab import signals
from spectral_lab.config import FitConfig, ModelConfig, RecordConfig, RunConfig, SignalConfig, validate
from spectral_lab.errors import SignalError, SpectralLabError
from spectral_lab.analyze.divergence import rebound  # noqa: F401  (re-exported for the scripts)

__all__ = ["image_signal", "image_label", "dip_run_config", "largest_levels", "rebound", "image_cli"]


def image_signal(image: str, *, size: int = 64, downsample: int | None = None, grey: bool = True,
                 pattern_fraction: float = 1.0) -> SignalConfig:
    """``"triangle"``: the synthetic triangle of side ``size`` with the fine pattern over
    ``pattern_fraction`` of its area; ``"photo"``: matplotlib's photograph; anything else: an
    image file. Files are down-sampled by ``downsample`` (None: the integer factor that brings
    the shorter side closest to ``size`` from above, e.g. 8 for the 600 x 512 photograph at
    64) and later cropped to the network's multiple."""
    if image == "triangle":
        return SignalConfig(kind="triangle", size=size, pattern_fraction=pattern_fraction)
    path = signals.sample_image_path() if image == "photo" else Path(image).expanduser().resolve()
    if downsample is None:
        downsample = max(1, min(_image_size(path)) // size)
    return SignalConfig(kind="image", image=None if image == "photo" else str(path), grey=grey,
                        downsample=downsample)


def _image_size(path: Path) -> tuple[int, int]:
    """(W, H) of an image file, read from its header; SignalError if it is not one."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise SignalError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise SignalError(f"not an image file: {path} ({exc})") from None


def image_label(image: str) -> str:
    """A short name of the image for titles and file names."""
    return image if image in ("triangle", "photo") else Path(image).stem


def dip_run_config(signal: SignalConfig, options: Mapping[str, Any], *, iterations: int, lr: float,
                   runs: int, seed: int = 0, vary: str = "both", reg_noise_std: float = 0.0) -> RunConfig:
    """R runs of the ``dip`` network fitting the clean image (task ``fit``), on the CPU.

    Input z ~ U(0, 0.1) of ``options['in_channels']`` channels (the DIP default, 32), Adam.
    Run r uses seed ``seed + r`` for what ``vary`` names (see `spectral_lab.config.run_seeds`);
    the per-step input perturbation (``reg_noise_std``) follows the input seed.
    """
    cfg = RunConfig(
        task="fit",
        signal=signal,
        model=ModelConfig(name="dip", options=dict(options)),
        fit=FitConfig(iterations=iterations, lr=lr, reg_noise_std=reg_noise_std, input_dist="uniform",
                      input_scale=0.1, runs=runs, seed=seed, vary=vary, device="cpu"),
        # float32 frames: the analyses measure small high-frequency differences
        record=RecordConfig(dtype="float32", compression="none", flush_seconds=5.0, checkpoint_seconds=60.0),
    )
    return validate(cfg)


def largest_levels(side: int, stride: int, most: int = 5) -> int:
    """Most levels (<= ``most``) of ``stride`` for which ``side`` is a multiple of
    ``stride ** levels`` and the deepest level keeps at least 2 samples; 0 if none."""
    levels = 0
    while levels < most and side % stride ** (levels + 1) == 0 and side // stride ** (levels + 1) >= 2:
        levels += 1
    return levels


def image_cli(description: str, default: Any, quick: Any, main: Callable[[Any, Path], Any],
              argv: Sequence[str] | None = None, *, image_help: str) -> int:
    """``--quick``, ``--image`` (replaces ``cfg.image``), ``--out-dir`` (default: the
    repository) and ``--threads`` (torch intra-op threads; 1 is fastest on a busy 2-core
    machine). A bad image or setting is one line on stderr and exit status 1."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small configuration, a few minutes on 2 CPU cores")
    p.add_argument("--image", help=image_help)
    p.add_argument("--out-dir", type=Path, default=REPO,
                   help="where trajectories/<experiment>/ and figures/<experiment>/ go (default: %(default)s)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    a = p.parse_args(argv)
    cfg = quick if a.quick else default
    if a.image is not None:
        cfg = replace(cfg, image=a.image)
    if a.threads is not None:
        import torch

        torch.set_num_threads(a.threads)
    started = time.perf_counter()
    try:
        main(cfg, a.out_dir.resolve())
    except (SpectralLabError, ValueError) as exc:  # bad image, size or setting: one line
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(f"total wall time {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0
