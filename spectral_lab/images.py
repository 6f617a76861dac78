"""Which images a study fits and what they are called: files, folders, matplotlib's sample
photograph and the synthetic triangle, as `SignalConfig` s.

Two ways of naming an image, both used in file names and titles:

- an image *spec* string, as ``--image`` takes it: ``"triangle"`` (the synthetic triangle),
  ``"photo"`` (matplotlib's photograph) or a file path; `image_label` is its short name;
- a resolved *path* (None = the sample photograph), as `image_paths` lists them from a file,
  a folder or nothing; `image_name` is its short name (``"sample_photo"`` for None).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .config import SignalConfig
from .errors import SignalError

__all__ = ["IMAGE_SUFFIXES", "image_paths", "image_name", "image_label", "image_size", "downsample_for",
           "image_signal", "save_png16"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def image_paths(spec: str | Path | Sequence[str | Path] | None) -> list[Path | None]:
    """The images to run on: a file, every image file of a folder (by suffix, sorted by
    name), a list of files or folders, or None (the sample photograph, returned as None).
    SignalError for a missing path or a folder without images."""
    if spec is None:
        return [None]
    if isinstance(spec, (list, tuple)):
        return [p for s in spec for p in image_paths(s)]
    path = Path(spec).expanduser().resolve()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise SignalError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
        return files
    if not path.is_file():
        raise SignalError(f"images {spec}: no such file or folder")
    return [path]


def image_name(path: Path | None) -> str:
    """Short name of a resolved image: its file stem, ``"sample_photo"`` for None."""
    return "sample_photo" if path is None else Path(path).stem


def image_label(spec: str) -> str:
    """Short name of an image spec: ``"triangle"``, ``"photo"`` or the file's stem."""
    return spec if spec in ("triangle", "photo") else Path(spec).stem


def image_size(path: str | Path) -> tuple[int, int]:
    """(W, H) of an image file, read from its header; SignalError if it is not one."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise SignalError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise SignalError(f"not an image file: {path} ({exc})") from None


def downsample_for(path: str | Path, size: int) -> int:
    """The integer down-sampling factor that brings the file's shorter side closest to
    ``size`` from above (at least 1): 8 for the 512 x 600 sample photograph at 64."""
    return max(1, min(image_size(path)) // int(size))


def image_signal(image: str, *, size: int = 64, downsample: int | None = None, grey: bool = True,
                 pattern_fraction: float = 1.0) -> SignalConfig:
    """The `SignalConfig` of an image spec.

    ``"triangle"``: the synthetic triangle of side ``size`` with its fine pattern over
    ``pattern_fraction`` of the area; ``"photo"``: matplotlib's photograph; anything else: an
    image file (SignalError if it is none). Files are read ``grey`` and down-sampled by
    ``downsample`` (None: `downsample_for` ``size``); the model's multiple crops them later.
    """
    from .signals import sample_image_path

    if image == "triangle":
        return SignalConfig(kind="triangle", size=size, pattern_fraction=pattern_fraction)
    path = sample_image_path() if image == "photo" else Path(image).expanduser().resolve()
    if downsample is None:
        downsample = downsample_for(path, size)
    return SignalConfig(kind="image", image=None if image == "photo" else str(path), grey=grey,
                        downsample=downsample)


def save_png16(image: np.ndarray, path: str | Path) -> Path:
    """Write a grey ``(1, H, W)`` image in [0, 1] as a 16-bit PNG (steps of 1/65535, far finer
    than 8 bits; `spectral_lab.signals.load_image` reads it back divided by 65535)."""
    from PIL import Image

    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 3 or a.shape[0] != 1:
        raise SignalError(f"save_png16 takes one grey channel (1, H, W), got shape {a.shape}")
    if not (np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1):
        raise SignalError("save_png16 takes values in [0, 1]")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(a[0] * 65535).astype(np.uint16)).save(path)
    return path
