"""Files the lab writes besides trajectories (figures, exports): outputs never destroy inputs.

- `check_output`, before any work: a known suffix, not the source being read, never a
  trajectory file (even with ``overwrite``), an existing file only with ``overwrite``, a folder
  only when it is a Zarr store being replaced;
- `atomic` / `write_atomically`: the bytes go to a hidden sibling (a short name, the output's
  suffix kept so writers that infer the format from it work) that is renamed into place only
  when complete; a failure (a full disk, an interrupt) leaves the old file or nothing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Callable, Iterator

from .errors import ExportError

__all__ = ["ExportError", "FIGURE_SUFFIXES", "check_output", "atomic", "write_atomically"]

FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff", ".webp")
NAME_MAX = 255


def check_output(path: str | os.PathLike, suffixes: tuple[str, ...] = FIGURE_SUFFIXES, *, overwrite: bool = False,
                 source: str | os.PathLike | None = None) -> Path:
    """Refuse, before any work, an output that cannot or must not be written: a suffix not in
    ``suffixes``, the source itself, a trajectory file (never replaced, even with ``overwrite``),
    an existing file without ``overwrite``, a folder that is not a Zarr store. Returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise ExportError(f"{path}: cannot write a {suffix or 'suffix-less'} file here; use "
                          f"{' or '.join(suffixes)}")
    if len(os.fsencode(path.name)) > NAME_MAX:
        raise ExportError(f"the file name is {len(os.fsencode(path.name))} bytes long; file systems allow {NAME_MAX}")
    if not (path.exists() or path.is_symlink()):
        return path
    if source is not None and Path(source).exists() and os.path.samefile(path, source):
        raise ExportError(f"{path} is the trajectory being read; choose another output")
    if _is_trajectory(path):
        raise ExportError(f"{path} is a trajectory file; it is never overwritten by an output (choose another name)")
    if not overwrite:
        raise ExportError(f"{path} exists; pass --overwrite to replace it")
    if path.is_dir() and not (suffix == ".zarr" and _is_zarr_store(path)):
        raise ExportError(f"{path} is a folder" + ("" if suffix != ".zarr" else " but not a Zarr store")
                          + "; not replacing it")
    return path


def _is_trajectory(path: Path) -> bool:
    """True for an HDF5 file that is a trajectory, or that cannot be read to tell."""
    try:
        with open(path, "rb") as fh:
            if fh.read(8) != b"\x89HDF\r\n\x1a\n":
                return False
    except (IsADirectoryError, PermissionError):
        return False
    except OSError:
        return True
    from .trajectory import schema as S
    from .trajectory._h5 import as_str, open_file

    try:
        f = open_file(path)
    except Exception:  # noqa: BLE001 - an HDF5 file we cannot read is left alone
        return True
    try:
        return as_str(f.attrs.get(S.ATTR_FORMAT, "")) == S.FORMAT_NAME
    except Exception:  # noqa: BLE001
        return True
    finally:
        f.close()


def _is_zarr_store(path: Path) -> bool:
    return any((path / name).exists() for name in ("zarr.json", ".zgroup", ".zattrs", ".zarray"))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic(path: str | os.PathLike, *, overwrite: bool, source=None) -> Iterator[Path]:
    """Yield a hidden sibling to write; rename it to ``path`` when the block succeeds, delete
    it when it fails. ``path`` is checked again just before it is replaced."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the folder {path.parent}: {exc.strerror or exc}") from None
    tmp = path.with_name(f".sl-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")
    try:
        yield tmp
        check_output(path, (path.suffix.lower(),), overwrite=overwrite, source=source)
        if tmp.is_dir() and path.exists():  # a folder cannot replace a folder in one rename
            old = path.with_name(f".sl-{os.getpid()}-{secrets.token_hex(4)}.old")
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    except OSError as exc:
        raise ExportError(f"writing {path} failed: {exc.strerror or exc}") from None
    finally:
        _remove(tmp)


def write_atomically(path: str | os.PathLike, write: Callable[[Path], None], *, overwrite: bool = True) -> Path:
    """``write(tmp)`` through `atomic`; returns the path."""
    with atomic(path, overwrite=overwrite) as tmp:
        write(tmp)
    return Path(path)
