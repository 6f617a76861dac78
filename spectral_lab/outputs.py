"""Files the lab writes besides trajectories (figures, exports, tables): outputs never destroy inputs.

- an existing file is replaced only with ``overwrite``; an HDF5 file (a trajectory, found by
  its signature, whatever its name) never;
- the format is checked from the suffix before any work is done;
- the bytes go to a hidden sibling first and are renamed into place, so a failure (a full
  disk, an interrupt) leaves the old file or nothing, never half a file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable, Iterable

from .errors import SpectralLabError

__all__ = ["OutputError", "FIGURE_SUFFIXES", "check_output", "write_atomically"]

FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff", ".webp")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class OutputError(SpectralLabError):
    """An output cannot be written where it was asked for."""


def _is_hdf5(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == _HDF5_SIGNATURE
    except OSError:
        return False


def check_output(path: str | os.PathLike, *, overwrite: bool = False, suffixes: Iterable[str] = FIGURE_SUFFIXES,
                 what: str = "figure") -> Path:
    """``path`` as a Path once it is safe to write: a known suffix, not a folder, not an HDF5
    file, not an existing file unless ``overwrite``. OutputError (one line) otherwise."""
    path = Path(path)
    suffixes = tuple(suffixes)
    if path.suffix.lower() not in suffixes:
        raise OutputError(f"cannot write a {what} as {path.name!r}: use one of {', '.join(suffixes)}")
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give the {what} a file name")
    if path.exists() or path.is_symlink():
        if _is_hdf5(path):
            raise OutputError(f"{path} is an HDF5 file (a trajectory?): a {what} never replaces it")
        if not overwrite:
            raise OutputError(f"{path} exists; pass --overwrite to replace it")
    if len(os.fsencode(path.name)) > 255:
        raise OutputError(f"the file name is {len(os.fsencode(path.name))} bytes long; file systems allow 255")
    return path


def write_atomically(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` to a hidden sibling with the same suffix, then rename it onto ``path``
    (folders created). OutputError (one line) on an OS error; nothing is left behind."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder {path.parent}: {exc.strerror or exc}") from None
    tmp = path.with_name(f".sl-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path
