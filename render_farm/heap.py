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
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)


def pin_mmap_threshold(nbytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold for this process (and children it forks). Leaves it alone when
    MALLOC_MMAP_THRESHOLD_ is set (the operator chose), FOLEY_MALLOC_PIN=0 (glibc's adaptive
    threshold: a little faster, memory grows with the video's length) or the C library is not
    glibc. Returns whether it was set."""
    if sys.platform != "linux" or "MALLOC_MMAP_THRESHOLD_" in os.environ or os.environ.get("FOLEY_MALLOC_PIN") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = mallopt(_M_MMAP_THRESHOLD, nbytes) == 1
    log.debug("glibc mmap threshold %s: %s bytes", "fixed" if done else "unchanged", nbytes)
    return done
