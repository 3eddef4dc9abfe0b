"""Named proxy formats. A job's spec names the format its proxy was made in, so a render (and
`foley audit reproduce` of an old job) always makes and reads the proxy the job was planned on.

Plain data, no media imports: the spec validates names against this table.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProxyFormat:
    name: str  # also the proxy's file name in the blob store (`steps.keys.proxy_key`)
    fps: int | None  # None: the source's own frame rate (`proxy.source_proxy_rate`)
    short_side_px: int
    crf: int  # libx264 constant rate factor (lower: closer to the master)


PROXY_FORMATS: dict[str, ProxyFormat] = {f.name: f for f in (
    # The first format. Its CRF 26 artefacts at 144p read as motion: on 40 independent toy-world clips
    # the picture onset judge fell from F1 0.844 (master frames) to 0.782 through it (bench/RESULTS.md).
    ProxyFormat("p1-24fps-144p", 24, 144, 26),
    # Near-transparent at the model's input size: F1 0.841 at CRF 10, 0.824 at 18; ~4x p1's bytes.
    ProxyFormat("p2-24fps-144p-crf12", 24, 144, 12),
    # The source's own frames (rate capped at 60): the frame encoder measures motion over exactly 1/24 s
    # of source time (`foley_model.motion`), so a steady move at 30 or 60 fps is not a jerk at every
    # 4th or 2nd frame of the 24 fps grid. Up to 2.5x p2's frames to decode.
    ProxyFormat("p3-source-fps-144p-crf12", None, 144, 12),
)}

#: the format new jobs are planned with
CURRENT_PROXY = "p2-24fps-144p-crf12"
#: the format of jobs recorded before the spec named one (their params have no "proxy")
LEGACY_PROXY = "p1-24fps-144p"


def proxy_format(name: str) -> ProxyFormat:
    try:
        return PROXY_FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown proxy format {name!r} (known: {', '.join(PROXY_FORMATS)})") from None
