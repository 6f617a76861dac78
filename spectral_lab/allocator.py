"""Keep freed CPU memory for reuse instead of giving it back to the kernel at every step.

glibc's ``malloc`` serves a request above its mmap threshold (at most 32 MiB) with a fresh
``mmap`` and returns it with ``munmap`` when freed. A fit allocates the same large buffers at
every step (the ReLUNet's activations at 128², ``(R, 16384, 256)`` float32 = 50 MB for
R = 3; Linear-2048's gradients, 1.8 GB), so every step maps them again and the kernel zeroes
every page on first touch. Keeping them made a ReLUNet step (R = 3, 128²) 0.71× as long and a
Linear-2048 step (R = 3, 64²) 0.58–0.73× (`python benchmarks/run.py --only allocator`).
`reuse_freed_memory` tells glibc to serve every request from its heap (``M_MMAP_MAX`` = 0)
and to keep freed memory (``M_TRIM_THRESHOLD`` 1 GiB), so the buffers of step n are those of
step n+1. The process then keeps its peak memory until it exits, which a fit does anyway, and
the heap holds a few copies of the largest buffers: the ReLUNet's peak RSS was 1.9 GB instead
of 0.8 GB, Linear-2048's (64², R = 3) 2.7 GB instead of 2.4 GB (`python benchmarks/run.py
--only allocator`).

It is called by `spectral_lab.runner.prepare_fit` (every record, resume and estimate probe).
Nothing happens where the C library is not glibc (macOS, Windows, musl) or where the
environment sets ``SPECTRAL_LAB_MALLOC=system`` (``keep`` or unset: the default; any other
value is refused in one line). GPU memory is PyTorch's own caching
allocator and is not touched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

from .errors import ConfigError

__all__ = ["reuse_freed_memory", "ENV"]

ENV = "SPECTRAL_LAB_MALLOC"  # 'system' leaves glibc's defaults alone; 'keep' (or unset) applies them
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc <malloc.h>
_TRIM_BYTES = 1 << 30


def reuse_freed_memory() -> bool:
    """Configure glibc's malloc once per process as the module says; True when it applies.
    Raises `ConfigError` for a ``SPECTRAL_LAB_MALLOC`` other than 'keep' or 'system'."""
    mode = os.environ.get(ENV, "").strip().lower() or "keep"
    if mode not in ("keep", "system"):
        raise ConfigError(f"{ENV} must be 'keep' or 'system', got {os.environ[ENV]!r}")
    return _configure() if mode == "keep" else False


@functools.cache
def _configure() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; the order matters: no mmap first, then keep what is freed
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_BYTES))
