"""Timeline arithmetic for long videos, all in integer latent frames. Pure: no I/O.

- `latent_time`: seconds ↔ latent frames with exact Fractions.
- `windows`: plan overlapping render windows, joins centred on shot cuts.
- `noise`: the timeline-global noise sequence keyed by (seed, absolute latent frame).
- `stitch`: crossfade window latents into one sequence (whole or streaming).
- `shots`: detect shot cuts on decoded frames.
- `chunked`: run a stage over a long sequence in chunks that join exactly.
"""
