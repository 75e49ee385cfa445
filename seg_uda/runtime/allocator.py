"""Keep freed memory in the process (glibc ``mallopt``), so that each training step stops page-faulting its maps in.

By default glibc hands large freed blocks back to the kernel (``munmap`` / heap trimming), so each training step
faults its feature maps in again: 8,000-130,000 minor faults per bf16 ResNet-101 step, which made it 6-11% slower
on an Intel Xeon (docs/speed.md). The settings change where memory comes from, never what is computed.
``SEG_UDA_MALLOC=default`` in the environment leaves glibc's defaults.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc's malloc.h
MMAP_THRESHOLD = 32 << 20  #: blocks up to this size come from the heap (glibc's maximum)
TRIM_THRESHOLD = 1 << 30  #: free heap memory returned to the kernel only above this
TOP_PAD = 64 << 20  #: the heap grows in steps of this much


def keep_freed_memory() -> bool:
    """Apply the settings above to this process; returns whether they were applied (glibc Linux only)."""
    if os.environ.get("SEG_UDA_MALLOC", "") == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt  # absent in musl
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD)))
