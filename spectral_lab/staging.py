"""Where a sweep worker writes: a local staging folder, then the file is moved into place.

HDF5's single-writer / multiple-reader mode (which keeps a killed recording readable) relies
on POSIX write ordering and ``flock``; network file systems (NFS, Lustre, GPFS, SMB) do not
promise either. A worker therefore records into a folder on its own disk and only finished
(or cleanly stopped) files travel to the shared output folder.

The move is the delicate part: across file systems it is a copy, and a worker killed in the
middle of a plain ``shutil.move`` leaves a truncated file under the final name. `publish`
copies into a hidden sibling of the destination (``.<name>.incoming-<host>-<pid>``),
flushes it to disk and renames it into place, which is atomic within one file system: the
destination holds the old file or the new one, never half of one. A staged file is removed
only after its copy is in place, so a kill at any moment leaves a complete file somewhere.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
from pathlib import Path

__all__ = ["AUTO", "staging_folder", "staged_path", "publish", "copy_in", "remove_incoming"]

#: ``staging="auto"``: the worker's own temporary folder (``$SPECTRAL_LAB_STAGING`` if set)
AUTO = "auto"


def staging_folder(staging: str | os.PathLike | None) -> Path | None:
    """The folder ``staging`` names, resolved on the machine that runs this (a worker):
    None writes in place; ``"auto"`` is ``$SPECTRAL_LAB_STAGING`` or
    ``<tempfile.gettempdir()>/spectral-lab-staging``; anything else is that folder."""
    if staging is None:
        return None
    if str(staging) == AUTO:
        env = os.environ.get("SPECTRAL_LAB_STAGING")
        return Path(env) if env else Path(tempfile.gettempdir()) / "spectral-lab-staging"
    return Path(staging)


def staged_path(dest: str | os.PathLike, folder: Path) -> Path:
    """The staged file of destination ``dest`` in ``folder``: the same name behind a hash of
    the destination's absolute path, so that two sweeps (or two folders holding the same
    file name) never share a staged file, and a re-run on the same machine finds it."""
    dest = Path(dest).absolute()
    digest = hashlib.sha1(str(dest).encode()).hexdigest()[:16]
    return folder / f"{digest}-{dest.name}"


def _incoming(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.incoming-{socket.gethostname()}-{os.getpid()}")


def remove_incoming(dest: str | os.PathLike) -> None:
    """Delete the hidden copies a killed `publish` of ``dest`` left beside it."""
    dest = Path(dest)
    for stale in dest.parent.glob(f".{dest.name}.incoming-*"):
        stale.unlink(missing_ok=True)


def _same_filesystem(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def _copy_durably(src: Path, dst: Path) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 22)
        fout.flush()
        os.fsync(fout.fileno())
    shutil.copystat(src, dst)


def _copy_then_rename(src: Path, tmp: Path, dst: Path) -> None:
    """``src`` copied durably to the hidden ``tmp``, then renamed to ``dst`` (atomic within
    ``dst``'s file system); ``tmp`` is removed if anything stops it."""
    try:
        _copy_durably(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def publish(staged: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Move the closed file ``staged`` to ``dest`` atomically (see the module docstring):
    a rename on the same file system, else a durable copy to a hidden sibling renamed into
    place; ``staged`` is removed once ``dest`` holds it."""
    staged, dest = Path(staged), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_incoming(dest)
    if _same_filesystem(staged, dest.parent):
        os.replace(staged, dest)
        return
    _copy_then_rename(staged, _incoming(dest), dest)
    staged.unlink()


def copy_in(dest: str | os.PathLike, staged: str | os.PathLike) -> None:
    """Copy the unfinished ``dest`` to the staging file ``staged`` (hidden name first, then a
    rename: a kill leaves no half-copied staged file); ``dest`` is left as it is until the
    resumed file replaces it."""
    dest, staged = Path(dest), Path(staged)
    staged.parent.mkdir(parents=True, exist_ok=True)
    _copy_then_rename(dest, staged.with_name(f".{staged.name}.copying-{os.getpid()}"), staged)
