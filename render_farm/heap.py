"""Keep the C heap from growing with the length of a render (glibc; a no-op elsewhere).

glibc serves blocks above its mmap threshold with their own mappings, returned to the system when
freed, and smaller ones from the heap. By default the threshold moves: each time a mapped block is
freed it rises to that block's size (up to 32 MiB), so from then on the tensors and frame buffers
of a render — a few MiB each, a different size for every window length — come from the heap,
where freed ones leave holes the next sizes do not fit. Resident memory then climbs with every
window batch (measured on a 3-minute render: 377 → 514 MiB over 15 batches, peak 753 MiB; with a
fixed 1 MiB threshold it stayed at 330 MiB, peak 535 MiB), so a long video peaks higher than a
short one. Setting the threshold explicitly fixes it and stops the adjustment.
"""
from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

MMAP_THRESHOLD_BYTES = 1 << 20  # blocks of 1 MiB and more are mapped, and unmapped when freed
# glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_OPERATOR_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_")


def _mallopt(settings: dict[int, int]) -> bool:
    """Apply glibc mallopt settings to this process; False where the C library is not glibc or one failed."""
    if sys.platform != "linux":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(k, v) == 1 for k, v in settings.items())


def pin_mmap_threshold(nbytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold for this process (and children it forks). Leaves it alone when
    MALLOC_MMAP_THRESHOLD_ is set (the operator chose), FOLEY_MALLOC_PIN=0 (glibc's adaptive
    threshold: a little faster, memory grows with the video's length) or the C library is not
    glibc. Returns whether it was set."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or os.environ.get("FOLEY_MALLOC_PIN") == "0":
        return False
    done = _mallopt({_M_MMAP_THRESHOLD: nbytes})
    log.debug("glibc mmap threshold %s: %s bytes", "fixed" if done else "unchanged", nbytes)
    return done


def keep_freed_memory() -> bool:
    """Let glibc keep what a training step frees for the next step (`foley train`; glibc only).

    A step allocates and frees the same large buffers every time. By default glibc maps buffers over its
    adaptive threshold afresh and returns the top of its heap to the kernel, so each step page-faults
    through zero-filled memory again: measured on the tiny DiT step (1 thread), 1.29 s per step by
    default against 0.92 s with buffers up to 32 MiB kept on the heap and the heap never trimmed. The
    training process's memory then stays at its peak, which is what a trainer holds anyway. Leaves
    glibc alone when the operator set any of these MALLOC_* variables or glibc.malloc tunables."""
    if any(k in os.environ for k in _OPERATOR_SETTINGS) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    return _mallopt({_M_TRIM_THRESHOLD: 2**31 - 1, _M_TOP_PAD: 1 << 30, _M_MMAP_THRESHOLD: 32 << 20})
