"""The timeline-global noise: one standard-normal sequence keyed by (seed, absolute latent frame). Pure.

Reproducibility contract (changing any of this changes every render):

    row(seed, f) = numpy.random.Generator(
        numpy.random.Philox(key=[seed, 0x464F4C4559], counter=[0, f, 0, 0])
    ).standard_normal(channels, dtype=numpy.float32)

for every absolute latent frame f >= 0 and seed in [0, 2**64). 0x464F4C4559 is "FOLEY" in ASCII,
a domain separator. Each frame owns a Philox counter range of 2**64 blocks (the frame number sits
in the second counter word), so frames never share random bits, and a frame's row depends on
nothing but (seed, f, channels). Any slice therefore equals the same frames of the whole
timeline, bit for bit, however the windows were planned. The ziggurat sampler is numpy's own C
code (no SIMD transcendental functions), so rows agree across machines with the same numpy.

Speed: the bit generator's state is set per frame rather than rebuilt (same bits, about 6 µs per
frame): 20,000 frames × 40 channels in about 0.15 s.
"""
from __future__ import annotations

import numpy as np

from render_farm.errors import InvalidInput

#: "FOLEY" in ASCII: the second word of every Philox key.
NOISE_DOMAIN = 0x464F4C4559
_MAX_SEED = 2**64


def timeline_noise(seed: int, start: int, end: int, channels: int) -> np.ndarray:
    """Noise rows for absolute latent frames [start, end): (end - start, channels) float32."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < _MAX_SEED:
        raise InvalidInput(f"noise seed must be an integer in [0, 2**64), got {seed!r}")
    if not 0 <= start <= end:
        raise InvalidInput(f"noise frames must satisfy 0 <= start <= end, got start={start} end={end}")
    if channels <= 0:
        raise InvalidInput(f"noise needs a positive channel count, got {channels}")
    key = np.array([int(seed), NOISE_DOMAIN], dtype=np.uint64)
    bits = np.random.Philox(key=key)
    generator = np.random.Generator(bits)
    counter = np.zeros(4, dtype=np.uint64)
    empty_buffer = np.zeros(4, dtype=np.uint64)
    out = np.empty((end - start, channels), dtype=np.float32)
    for row, frame in enumerate(range(start, end)):
        counter[1] = frame
        bits.state = {
            "bit_generator": "Philox",
            "state": {"counter": counter, "key": key},
            "buffer": empty_buffer,
            "buffer_pos": 4,
            "has_uint32": 0,
            "uinteger": 0,
        }
        generator.standard_normal(dtype=np.float32, out=out[row])
    return out


def reference_row(seed: int, frame: int, channels: int) -> np.ndarray:
    """One row built exactly as the contract states (slow; for tests and audits)."""
    bits = np.random.Philox(key=[int(seed), NOISE_DOMAIN], counter=[0, int(frame), 0, 0])
    return np.random.Generator(bits).standard_normal(channels, dtype=np.float32)


def candidate_seed(seed: int, candidate: int) -> int:
    """The noise seed of sampling candidate k of a job: the job's seed for k = 0 (so a one-candidate render
    keeps its noise), else a 64-bit hash of (seed, k), so every candidate has its own timeline noise that
    windows overlapping on the same frames share."""
    if candidate < 0:
        raise InvalidInput(f"candidate index must be >= 0, got {candidate}")
    if candidate == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(candidate), NOISE_DOMAIN]).generate_state(1, np.uint64)[0])
