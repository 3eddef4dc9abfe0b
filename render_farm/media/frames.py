"""Decode a video as frames at a requested constant rate, by true timestamps, upright and scaled.

Contract (the timing half of the reproducibility contract):
- Time zero is the video stream's start time (its first presentation timestamp).
- Output frame k of a range [start_s, end_s) has time t_k = start_s + k / fps, computed exactly
  with Fractions, and shows the source frame on screen at t_k: the last one whose timestamp is
  <= t_k (with half a stream time-base tick, at most 0.5 ms, of slack, so containers that round
  timestamps — e.g. Matroska's milliseconds — map like the exact ones). Before the first source frame, the first one.
  Variable-frame-rate sources therefore map by their true timestamps, not by index.
- The number of frames is ceil((end_s - start_s) × fps), exactly; end_s defaults to the end of the
  media (container duration, from the video's start). Past the last source frame its picture is
  held (logged when over a second).
- Pictures are turned upright per the display matrix and resized to `size` (width, height) by
  swscale's area filter, as RGB24.
- Streaming: one decoded source frame is held at a time; memory does not grow with length.
- A range starting after 0 seeks to the keyframe before start_s and decodes forward; if the seek
  lands after start_s the file is decoded from its beginning instead. MPEG-PS/TS are always
  decoded from the beginning (their timestamps right after a seek are unreliable).
- Damage fails clearly, it is never papered over: data that makes the demuxer or decoder fail
  raises InvalidInput naming the time of the last good frame, and a stream whose frames stop more
  than a second before the end its headers declare (a truncated file) raises InvalidInput when
  the decoder reaches that point. Frames before the failure have already been yielded.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterator, Sequence

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from render_farm.errors import InvalidInput
from render_farm.media.inputs import (
    check_readable,
    describe_av_error,
    open_input,
    scanned_duration_s,
    upright_rotation_ccw_deg,
    video_stream,
)
from render_farm.timeline.latent_time import Number, exact

log = logging.getLogger(__name__)

#: Timestamps may be rounded to the stream's time base (Matroska, FLV: 1 ms): a source frame up to
#: half a tick, at most this much, after an output time still counts as on screen at that time.
TIMESTAMP_SLACK_S = Fraction(1, 2000)
#: Holding the last source frame longer than this past its timestamp is logged as a warning.
HOLD_WARNING_S = Fraction(1)
#: A video stream whose last frame comes this long before the end its file declares is truncated.
TRUNCATION_SLACK_S = Fraction(1)
#: Demuxers whose timestamps right after a seek are unreliable (MPEG-PS interpolates them half a
#: frame off): ranges in these are decoded from the beginning instead. Proxies are MP4.
NO_SEEK_FORMATS = frozenset({"mpeg", "mpegts", "mpegvideo"})


@dataclass(frozen=True, eq=False)
class VideoFrame:
    index: int  # k: output frame number from start_s
    t_s: Fraction  # start_s + k / fps, exact, from the video stream's start
    rgb: np.ndarray = field(repr=False)  # (height, width, 3) uint8, upright


def num_output_frames(start_s: Number, end_s: Number, fps: Number) -> int:
    """ceil((end_s - start_s) × fps), exactly."""
    return max(0, math.ceil((exact(end_s) - exact(start_s)) * exact(fps)))


def video_end_s(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Fraction:
    """End of the media measured from the video stream's start: the container's duration (all
    streams, as a player shows it) less the video's start offset; else the stream's duration."""
    if container.duration:
        end = Fraction(container.duration, av.time_base)
        if stream.start_time is not None and stream.time_base and container.start_time is not None:
            end -= Fraction(stream.start_time) * stream.time_base - Fraction(container.start_time, av.time_base)
        return end
    if stream.duration and stream.time_base:
        return Fraction(stream.duration) * stream.time_base
    return scanned_duration_s(container.name, stream.index)


def declared_video_end_s(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Fraction | None:
    """End of the video stream as its headers declare it: the stream's duration, its Matroska
    DURATION tag, or the container's duration when no other stream could account for it; None
    when unknown (then truncation cannot be told from a short video)."""
    if stream.duration and stream.time_base:
        return Fraction(stream.duration) * stream.time_base
    tag = (stream.metadata or {}).get("DURATION")
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return Fraction(int(hours) * 3600 + int(minutes) * 60) + Fraction(seconds)
        except ValueError:
            log.debug("unreadable DURATION tag %r", tag)
    if all(s.index == stream.index for s in container.streams if s.type in ("video", "audio")):
        return video_end_s(container, stream)
    return None


def iter_frames(
    path: str | os.PathLike[str],
    fps: Number,
    size: tuple[int, int],
    start_s: Number = 0.0,
    end_s: Number | None = None,
    stream_index: int | None = None,
) -> Iterator[VideoFrame]:
    """Frames of `path` at `fps` over [start_s, end_s), upright, resized to size=(width, height)."""
    p = check_readable(path)
    rate, start = exact(fps), exact(start_s)
    if rate <= 0:
        raise InvalidInput(f"{p}: frame rate must be positive, got {fps!r}")
    if start < 0:
        raise InvalidInput(f"{p}: start_s must be >= 0, got {start_s!r}")
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidInput(f"{p}: output size must be positive, got {size!r}")
    return _frames(p, rate, (int(width), int(height)), start, None if end_s is None else exact(end_s), stream_index)


def frames_for_ranges(
    path: str | os.PathLike[str],
    fps: Number,
    size: tuple[int, int],
    ranges: Sequence[tuple[int, int]],
    end_s: Number | None = None,
    stream_index: int | None = None,
) -> list[np.ndarray]:
    """For each range [k0, k1) of frame numbers at `fps` (frame k shows the picture on screen at
    k / fps, as `iter_frames` picks it), a (k1 - k0, height, width, 3) uint8 array, decoding the
    file once for all ranges instead of once per range (overlapping ranges share the decoding
    and the RGB conversion).

    Frames at or after `end_s` (default: the end of the media) hold the last picture before it;
    a range that starts at or after `end_s` gets the picture on screen 1 / fps before `end_s`,
    repeated. This is exactly what `render_farm.steps.render.window_frames` returns for one
    window without shot bounds (ranges k0 = floor(start·fps) − context, k1 = ceil(end·fps) + context, end_s =
    Fraction(video_end_s)), for all of a batch's windows at once. Decoding runs from min(k0)
    to max(k1): ranges far apart are cheaper one by one. Memory: the frames of the ranges.
    """
    p = check_readable(path)
    rate = exact(fps)
    if rate <= 0:
        raise InvalidInput(f"{p}: frame rate must be positive, got {fps!r}")
    spans = [(int(k0), int(k1)) for k0, k1 in ranges]
    if any(k0 < 0 or k1 <= k0 for k0, k1 in spans):
        raise InvalidInput(f"{p}: frame ranges must satisfy 0 <= k0 < k1, got {list(ranges)!r}")
    if not spans:
        return []
    if end_s is None:
        with open_input(p) as container:
            end = video_end_s(container, video_stream(container, p, stream_index))
    else:
        end = exact(end_s)
    lo, hi = min(k0 for k0, _ in spans), max(k1 for _, k1 in spans)
    needed = sorted(spans)
    picked: dict[int, np.ndarray] = {}
    decoded_end = lo  # frame numbers [lo, decoded_end) were decoded
    stop = min(Fraction(hi) / rate, end)
    if stop > Fraction(lo) / rate:
        for frame in iter_frames(p, rate, size, start_s=Fraction(lo) / rate, end_s=stop, stream_index=stream_index):
            k = lo + frame.index
            if any(k0 <= k < k1 for k0, k1 in needed):
                picked[k] = frame.rgb  # read-only; ranges that overlap share it
            decoded_end = k + 1
    tail: np.ndarray | None = None
    out = []
    for k0, k1 in spans:
        if Fraction(k0) / rate >= end or decoded_end <= k0:
            if tail is None:
                tail = _last_picture(p, rate, size, end, stream_index)
            out.append(np.broadcast_to(tail, (k1 - k0, *tail.shape)).copy())
            continue
        last = min(k1, decoded_end)
        frames = [picked[k] for k in range(k0, last)] + [picked[last - 1]] * (k1 - last)
        out.append(np.stack(frames))
    return out


def _last_picture(path: str, rate: Fraction, size: tuple[int, int], end: Fraction, stream_index: int | None) -> np.ndarray:
    """The picture on screen 1 / rate before `end` (the last decodable one when none)."""
    last: np.ndarray | None = None
    for frame in iter_frames(path, rate, size, start_s=max(Fraction(0), end - 1 / rate), stream_index=stream_index):
        last = frame.rgb
    if last is None:
        return np.zeros((size[1], size[0], 3), np.uint8)
    return last


def _frames(
    path: str, rate: Fraction, size: tuple[int, int], start: Fraction, end: Fraction | None, stream_index: int | None
) -> Iterator[VideoFrame]:
    seek = start > 0
    while True:
        with open_input(path) as container:
            stream = video_stream(container, path, stream_index)
            stop = video_end_s(container, stream) if end is None else end
            if stop < start:
                raise InvalidInput(f"{path}: end {float(stop):.3f} s is before start {float(start):.3f} s")
            count = num_output_frames(start, stop, rate)
            if count == 0:
                return
            emitted = yield from _emit(container, stream, path, rate, size, start, count, seek)
            if emitted is not None:
                return
        log.info("%s: seeking to %.3f s did not work; decoding from the beginning", path, float(start))
        seek = False


def _emit(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    path: str,
    rate: Fraction,
    size: tuple[int, int],
    start: Fraction,
    count: int,
    seek: bool,
) -> Iterator[VideoFrame]:
    """Yield the `count` output frames; return None (nothing yielded) if seeking failed or overshot."""
    seek = seek and container.format.name not in NO_SEEK_FORMATS
    tb = stream.time_base or Fraction(1, 90_000)
    slack = min(tb / 2, TIMESTAMP_SLACK_S)
    stream.thread_type = "AUTO"
    zero_pts = stream.start_time
    if seek:
        base = zero_pts or 0
        try:
            container.seek(base + math.floor(start / tb), stream=stream, backward=True, any_frame=False)
        except av.FFmpegError as exc:  # not seekable (raw streams, pipes): decode from the start
            log.debug("%s: cannot seek (%s)", path, describe_av_error(exc))
            return None
    converter = _Converter(size)
    k = 0
    current: av.VideoFrame | None = None
    current_t = Fraction(0)
    last_t: Fraction | None = None
    try:
        for frame in _decode(container, stream):
            if zero_pts is None:
                zero_pts = frame.pts if frame.pts is not None else 0
            t = (Fraction(frame.pts - zero_pts) * tb) if frame.pts is not None else (
                (last_t + 1 / (stream.guessed_rate or rate)) if last_t is not None else Fraction(0)
            )
            last_t = t
            if current is None:
                if seek and t > start + slack:
                    return None  # the seek landed after start_s: caller decodes from the beginning
                current, current_t = frame, t
                converter.reset()
                continue
            while k < count and t > start + Fraction(k) / rate + slack:
                yield VideoFrame(k, start + Fraction(k) / rate, converter.rgb(current))
                k += 1
            if k >= count:
                return k
            current, current_t = frame, t
            converter.reset()
    except av.FFmpegError as exc:
        where = f"{float(last_t):.3f} s" if last_t is not None else "the start"
        raise InvalidInput(f"{path}: corrupt or truncated video after {where} ({describe_av_error(exc)})") from exc
    if current is None:
        if seek:
            return None  # nothing after the seek point (e.g. start_s past the end): decode it all
        raise InvalidInput(f"{path}: video stream {stream.index} has no decodable frames")
    declared = declared_video_end_s(container, stream)
    if declared is not None and declared - current_t > TRUNCATION_SLACK_S:
        raise InvalidInput(
            f"{path}: video stops at {float(current_t):.3f} s but the file declares {float(declared):.3f} s (truncated?)"
        )
    last_target = start + Fraction(count - 1, 1) / rate
    if k < count and last_target - current_t > HOLD_WARNING_S:
        log.warning(
            "%s: video ends at %.3f s; holding its last frame until %.3f s", path, float(current_t), float(last_target)
        )
    while k < count:
        yield VideoFrame(k, start + Fraction(k) / rate, converter.rgb(current))
        k += 1
    return k


def _decode(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
    for packet in container.demux(stream):
        yield from packet.decode()  # the final empty packet flushes the decoder


class _Converter:
    """Turns the frame on screen into upright RGB at the output size, once per source frame.

    One swscale context serves the whole stream: `VideoFrame.reformat` builds (and initialises
    the filters of) a fresh one per call, which cost more than the scaling itself (~2 ms a 720p
    frame, ~1.5 ms a proxy frame). The reused context gives the same bytes; swscale re-initialises
    it itself when the source's size or format changes.
    """

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        self._reformatter = VideoReformatter()
        self._cached: np.ndarray | None = None

    def reset(self) -> None:
        self._cached = None

    def rgb(self, frame: av.VideoFrame) -> np.ndarray:
        if self._cached is None:
            self._cached = to_upright_rgb(frame, self.size, self._reformatter)
        return self._cached


def to_upright_rgb(
    frame: av.VideoFrame, size: tuple[int, int], reformatter: VideoReformatter | None = None
) -> np.ndarray:
    """The frame turned upright per its display matrix and resized to size=(width, height).

    Pass one `reformatter` for all frames of a stream (much faster; same result). Scaling runs on
    one thread (the decoder has its own), so the bytes never depend on a thread count."""
    width, height = size
    turns = upright_rotation_ccw_deg(frame) // 90
    stored = (height, width) if turns % 2 else (width, height)
    scaler = reformatter if reformatter is not None else VideoReformatter()
    rgb = scaler.reformat(
        frame, width=stored[0], height=stored[1], format="rgb24", interpolation="AREA", threads=1
    ).to_ndarray()
    if turns:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=turns))
    rgb.setflags(write=False)
    return rgb
