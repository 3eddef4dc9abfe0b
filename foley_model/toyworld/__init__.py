"""Procedural toy foley world (see TOYWORLD.md): picture, stereo sound and exact ground truth.

    clip = make_clip(seed=7)                       # 4 s, 24 fps, 64x64, 16 kHz, training style
    for clip in stream_clips(seed=0, n=None): ...  # endless deterministic training stream
    make_clip(3, style=GenStyle.heldout())         # other sizes/colours/speeds/backgrounds/rates
"""

from .clips import GENERATOR_VERSION, Clip, clip_seed, make_clip, num_frames, stream_clips
from .world import JUDGED_KINDS, KINDS, Event, GenStyle

__all__ = ["GENERATOR_VERSION", "Clip", "Event", "GenStyle", "JUDGED_KINDS", "KINDS", "clip_seed", "make_clip",
           "num_frames", "stream_clips"]
