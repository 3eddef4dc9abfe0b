"""Low-resolution constant-frame-rate H.264 proxies: what GPU workers fetch instead of the master.

A proxy is the source decoded by `iter_frames` at `fps` (so frame k is the source frame on screen
at k / fps, VFR and rotation resolved), scaled so its short side is `short_side_px` (even sizes,
never upscaled past the source), encoded with libx264 single-threaded, no B-frames, fixed GOP
and bitexact flags, so the same source gives the same proxy bytes. Frame k has pts k / fps from 0,
so decoding the proxy at fps — or at any rate dividing it, e.g. 8 fps from a 24 fps proxy — picks
exactly the source frames decoding the master at that rate picks. The CRF is the job's proxy
format's (`proxy_formats`): compression artefacts in the proxy are what the sync path sees.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from fractions import Fraction

import av

from render_farm.errors import InvalidInput
from render_farm.media.atomic import atomic_path
from render_farm.media.frames import iter_frames
from render_farm.media.inputs import describe_av_error
from render_farm.media.probe import probe
from render_farm.media.proxy_formats import CURRENT_PROXY, ProxyFormat, proxy_format
from render_farm.timeline.latent_time import Number, exact

log = logging.getLogger(__name__)

PROXY_PRESET = "veryfast"
#: a proxy at the source's rate keeps at most this many frames a second (`source_proxy_rate`)
MAX_SOURCE_PROXY_FPS = 60


@dataclass(frozen=True)
class Proxy:
    path: str
    width: int
    height: int
    fps: Fraction
    num_frames: int


def proxy_size(display_width: int, display_height: int, short_side_px: int) -> tuple[int, int]:
    """(width, height), both even and never above the source's, short side `short_side_px`."""
    assert display_width > 0 and display_height > 0 and short_side_px >= 2, f"{display_width=} {display_height=} {short_side_px=}"
    short = min(display_width, display_height)
    target = min(short_side_px, short)
    scale = Fraction(target, short)

    def even(x: Fraction, limit: int) -> int:
        nearest = math.floor(x / 2 + Fraction(1, 2)) * 2  # halves round up
        return max(2, min(nearest, limit - limit % 2))

    return even(display_width * scale, display_width), even(display_height * scale, display_height)


def make_proxy(src: str | os.PathLike[str], dst: str | os.PathLike[str], fps: Number = 24, short_side_px: int = 144,
               crf: int | None = None) -> Proxy:
    """Write the proxy of src to dst (an .mp4), atomically. Returns what was written.

    crf: libx264's constant rate factor (default: the current proxy format's)."""
    crf = proxy_format(CURRENT_PROXY).crf if crf is None else crf
    if not 0 <= crf <= 51:
        raise InvalidInput(f"proxy crf {crf} is outside 0..51")
    src_path, dst_path = os.fspath(src), os.fspath(dst)
    if os.path.splitext(dst_path)[1].lower() not in (".mp4", ".m4v", ".mov"):
        raise InvalidInput(f"{dst_path}: a proxy is an .mp4 file")
    rate = exact(fps)
    info = probe(src_path)
    width, height = proxy_size(info.video.display_width, info.video.display_height, short_side_px)
    count = 0
    with atomic_path(dst_path) as tmp:
        try:
            out = av.open(tmp, mode="w", format="mp4", container_options={"movflags": "+faststart", "fflags": "+bitexact"})
        except av.FFmpegError as exc:
            raise InvalidInput(f"{dst_path}: cannot write ({describe_av_error(exc)})") from exc
        try:
            stream = out.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.time_base = 1 / rate
            stream.codec_context.gop_size = max(1, round(2 * rate))
            stream.codec_context.thread_count = 1
            stream.codec_context.options = {
                "preset": PROXY_PRESET, "crf": str(crf), "bf": "0", "threads": "1", "flags": "+bitexact",
                "x264-params": "scenecut=0",
            }
            for frame in iter_frames(src_path, rate, (width, height)):
                picture = av.VideoFrame.from_ndarray(frame.rgb, format="rgb24")
                picture.pts = frame.index
                picture.time_base = 1 / rate
                for packet in stream.encode(picture):
                    out.mux(packet)
                count += 1
            for packet in stream.encode(None):
                out.mux(packet)
        except av.FFmpegError as exc:
            raise InvalidInput(f"{dst_path}: proxy encoding failed ({describe_av_error(exc)})") from exc
        finally:
            out.close()
    log.info("proxy %s: %sx%s at %s fps crf %s, %s frames from %s", dst_path, width, height, rate, crf, count, src_path)
    return Proxy(dst_path, width, height, rate, count)


def source_proxy_rate(source_fps: Fraction) -> Fraction:
    """The rate of a proxy that keeps the source's own frames: the source's nominal (for VFR: average)
    rate, divided by the smallest whole number that brings it to `MAX_SOURCE_PROXY_FPS` or below (a
    120 fps source keeps every 2nd frame: evenly spaced, no judder)."""
    rate = Fraction(source_fps)
    if rate <= 0:
        raise InvalidInput(f"the source's frame rate {rate} is not positive")
    return rate / math.ceil(rate / MAX_SOURCE_PROXY_FPS)


def make_proxy_as(src: str | os.PathLike[str], dst: str | os.PathLike[str], fmt: str | ProxyFormat) -> Proxy:
    """`make_proxy` in a named format (`proxy_formats.PROXY_FORMATS`): what ingest and reproduce call."""
    f = proxy_format(fmt) if isinstance(fmt, str) else fmt
    fps = f.fps if f.fps is not None else source_proxy_rate(probe(os.fspath(src)).video.frame_rate)
    return make_proxy(src, dst, fps, f.short_side_px, crf=f.crf)
