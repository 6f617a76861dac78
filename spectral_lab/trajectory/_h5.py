"""Low-level HDF5 for trajectory files: opening (live, killed, finished), the writer's lock,
and clearing a killed writer's superblock flags. The package's only direct libhdf5 access.

A file that a writer has open in SWMR mode (or left so when it was killed) carries the
superblock's "open for writing" flags: HDF5 then refuses a plain open, so `open_file`
reads such a file in SWMR-read mode; `clear_write_flags` does what ``h5clear -s`` does.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
import os
import re
import struct
from contextlib import contextmanager
from pathlib import Path

import h5py

from ..errors import SpectralLabError, TrajectoryError

def locked_by_other(path: Path) -> bool:
    """True when another process holds the HDF5 file lock (a live writer)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)



class _WriterFile(h5py.File):
    """A trajectory open for SWMR writing that holds a shared ``flock`` on the file until closed.

    HDF5 drops its own lock once SWMR writing starts, so without this another process could
    not tell a live writer from a killed one (and ``--resume`` would clear the flags of a
    live file). Readers do not lock (``locking=False``) and are unaffected.
    """

    _lock_fd: int | None = None

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None


def open_for_writing(path: Path) -> h5py.File:
    """Open an existing trajectory directly in SWMR-write mode (no non-SWMR moment a kill
    could leave behind) and take the writer's lock."""
    try:
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
        fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR | h5py.h5f.ACC_SWMR_WRITE, fapl=fapl)
    except OSError as exc:
        raise TrajectoryError(f"cannot open {path} for writing: {exc}") from None
    f = _WriterFile(fid)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        f.close()
        raise TrajectoryError(f"cannot open {path} for writing: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        f.close()
        raise TrajectoryError(f"{path} is being written by another process") from None
    f._lock_fd = fd
    return f



def _lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``: the checksum of HDF5's version 2/3 superblock."""
    m = 0xFFFFFFFF

    def rot(x, k):
        return ((x << k) | (x >> (32 - k))) & m

    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & m
    i = 0
    while n > 12:
        x, y, z = struct.unpack_from("<III", data, i)
        a, b, c = (a + x) & m, (b + y) & m, (c + z) & m
        a = (a - c) & m; a ^= rot(c, 4); c = (c + b) & m  # noqa: E702
        b = (b - a) & m; b ^= rot(a, 6); a = (a + c) & m  # noqa: E702
        c = (c - b) & m; c ^= rot(b, 8); b = (b + a) & m  # noqa: E702
        a = (a - c) & m; a ^= rot(c, 16); c = (c + b) & m  # noqa: E702
        b = (b - a) & m; b ^= rot(a, 19); a = (a + c) & m  # noqa: E702
        c = (c - b) & m; c ^= rot(b, 4); b = (b + a) & m  # noqa: E702
        n -= 12
        i += 12
    if n == 0:
        return c
    x, y, z = struct.unpack("<III", data[i:] + bytes(12 - n))
    a, b, c = (a + x) & m, (b + y) & m, (c + z) & m
    c ^= b; c = (c - rot(b, 14)) & m  # noqa: E702
    a ^= c; a = (a - rot(c, 11)) & m  # noqa: E702
    b ^= a; b = (b - rot(a, 25)) & m  # noqa: E702
    c ^= b; c = (c - rot(b, 16)) & m  # noqa: E702
    a ^= c; a = (a - rot(c, 4)) & m  # noqa: E702
    b ^= a; b = (b - rot(a, 14)) & m  # noqa: E702
    c ^= b; c = (c - rot(b, 24)) & m  # noqa: E702
    return c


def clear_write_flags(path: str | os.PathLike) -> bool:
    """Clear the 'open for writing' flags a killed writer leaves in the superblock (h5clear -s).

    Only for our own files (superblock version 2 or 3, no user block). Returns True when
    flags were set and have been cleared.
    """
    with open(path, "r+b") as fh:
        head = fh.read(64)
        if head[:8] != b"\x89HDF\r\n\x1a\n" or head[8] not in (2, 3):
            return False
        offsets = head[9]
        end = 12 + 4 * offsets
        if head[11] == 0:
            return False
        stored = struct.unpack_from("<I", head, end)[0]
        if _lookup3(head[:end]) != stored:
            raise TrajectoryError(f"{path}: superblock checksum mismatch; the file is corrupted")
        fixed = bytearray(head[:end])
        fixed[11] = 0
        fh.seek(0)
        fh.write(bytes(fixed) + struct.pack("<I", _lookup3(bytes(fixed))))
        fh.flush()
        os.fsync(fh.fileno())
    return True



def write_flags_set(path: str | os.PathLike) -> bool:
    """True when the superblock carries the 'open for writing' flags: a writer has the file
    open, or was killed with it open (then plain h5py, h5dump and xarray refuse the file)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return len(head) == 12 and head[:8] == b"\x89HDF\r\n\x1a\n" and head[8] in (2, 3) and head[11] != 0


def as_str(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def refresh(ds) -> None:
    try:
        ds.refresh()
    except (AttributeError, RuntimeError, ValueError, OSError):
        pass  # not opened in SWMR mode


@contextmanager
def h5_errors(path: Path):
    try:
        yield
    except SpectralLabError:  # our own one-line errors (a missing reference, ...) pass as they are
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise TrajectoryError(f"{path} is truncated, corrupted or of another layout ({exc})") from None


def open_file(path: Path) -> h5py.File:
    if not path.exists():
        raise TrajectoryError(f"{path}: no such file")
    if path.is_dir():
        raise TrajectoryError(f"{path} is a folder, not a trajectory file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(48)
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise TrajectoryError(f"cannot read {path}: {exc.strerror}") from None
    if head[:8] != b"\x89HDF\r\n\x1a\n":
        raise TrajectoryError(f"{path} is not an HDF5 file")
    # Superblock v2/3 (ours): flags set while a writer has the file open, or was killed with
    # it open; such a file only opens in SWMR-read mode, which skips HDF5's truncation check.
    flags, stored_eof = 0, 0
    if len(head) >= 12 and head[8] in (2, 3) and head[9] in (4, 8):
        offsets = head[9]
        flags = head[11]
        if len(head) >= 12 + 3 * offsets:
            stored_eof = int.from_bytes(head[12 + 2 * offsets: 12 + 3 * offsets], "little")
    live = bool(flags) and locked_by_other(path)
    if not live and size < stored_eof:  # a live writer may have allocated what it has not written
        raise TrajectoryError(f"{path} is truncated: {size} of its {stored_eof} bytes are there")
    try:
        if not flags:
            return h5py.File(path, "r", locking=False)
        # A live writer may be mid-flush: let HDF5 retry torn metadata reads (its default).
        # A dead writer's file never changes: retrying a bad checksum would only sleep,
        # with exponential back-off, for hours.
        return _open_swmr_reader(path, retry=live)
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise TrajectoryError(f"{path} is truncated or corrupted and cannot be opened ({exc})") from None


def _open_swmr_reader(path: Path, *, retry: bool) -> h5py.File:
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_file_locking(False, True)
    if not retry:
        _set_metadata_read_attempts(fapl, 1)
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=fapl)
    return h5py.File(fid)


@functools.cache
def _hdf5_set_read_attempts():
    """``H5Pset_metadata_read_attempts`` of the HDF5 library h5py loaded (h5py does not wrap
    it), or None where it cannot be found."""
    try:
        with open("/proc/self/maps") as fh:
            libs = sorted({line.split()[-1] for line in fh
                           if "/libhdf5" in line and "hdf5_hl" not in line and line.split()[-1].startswith("/")})
        func = ctypes.CDLL(libs[0]).H5Pset_metadata_read_attempts
    except (OSError, IndexError, AttributeError):
        return None
    func.argtypes, func.restype = [ctypes.c_int64, ctypes.c_uint], ctypes.c_int
    return func


def _set_metadata_read_attempts(fapl, attempts: int) -> None:
    func = _hdf5_set_read_attempts()
    if func is not None:
        func(fapl.id, attempts)




# --------------------------------------------------------------------------- faults of the device

RESERVE_BYTES = 1 << 20  # what a write keeps free on the device beyond its own data (HDF5 metadata)


def free_bytes(path: str | os.PathLike) -> int:
    """Bytes an unprivileged writer may still use on the device holding ``path`` (or its folder)."""
    target = Path(path)
    while not target.exists() and target != target.parent:
        target = target.parent
    st = os.statvfs(target if target.is_dir() else target.parent)
    return int(st.f_bavail) * int(st.f_frsize)


def check_space(path: str | os.PathLike, nbytes: int, what: str) -> None:
    """OSError(ENOSPC) before writing ``nbytes`` when the device cannot hold them and the reserve:
    a write that would fail inside HDF5 is refused before it starts."""
    free = free_bytes(path)
    if free < nbytes + RESERVE_BYTES:
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: {what} needs {_mb(nbytes + RESERVE_BYTES)}, "
                                    f"{_mb(free)} free")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def one_line(exc: BaseException) -> str:
    """An OS or HDF5 error as one short line: HDF5's messages run over several lines and name
    its buffers; the errno they carry is what a user needs."""
    text = str(exc)
    found = re.search(r"errno = (\d+)", text)
    if found:
        code = int(found.group(1))
        return f"[Errno {code}] {os.strerror(code)}"
    return (text.splitlines() or [type(exc).__name__])[0].strip()


def quarantine(f: h5py.File) -> None:
    """After a failed write, point the file's descriptor at /dev/null: nothing HDF5 still holds
    (dirty metadata it could not flush) reaches the file, and closing it — which HDF5 would
    otherwise retry at exit, crashing the process after ENOSPC or EIO — succeeds. The file on
    the device stays as the last successful flush left it."""
    try:
        fd = f.id.get_vfd_handle()
    except (ValueError, RuntimeError, OSError, TypeError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


def poke(path: str | os.PathLike, offset: int, data: bytes) -> None:
    """Overwrite ``len(data)`` bytes of an existing file in place (no new space is needed):
    how a quarantined writer still marks its file ``failed``."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
        os.fsync(fd)
    finally:
        os.close(fd)
