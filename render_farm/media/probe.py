"""What a media file holds: container, duration, streams — the facts ingest needs before decoding.

`probe` reads the container header, demuxes the first packets of the main video stream (to tell
constant from variable frame rate by their pts spacing) and decodes its first frame (to prove the
stream decodes and to read the display rotation). Missing file → NotFound; anything unusable
(unreadable, corrupt, truncated, no video stream, no frames, zero duration) → InvalidInput.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import av

from render_farm.errors import InvalidInput
from render_farm.media.inputs import (
    describe_av_error,
    open_input,
    scanned_duration_s,
    upright_rotation_ccw_deg,
    video_stream,
)

log = logging.getLogger(__name__)

#: Video packets whose pts spacing decides constant vs variable frame rate.
CFR_CHECK_PACKETS = 64


@dataclass(frozen=True)
class VideoInfo:
    width: int  # coded picture size, pixels
    height: int
    display_width: int  # after the display rotation
    display_height: int
    frame_rate: Fraction  # nominal (average for VFR) frames per second
    constant_frame_rate: bool  # pts spacing of the first packets is uniform
    rotation_ccw_deg: int  # the picture is shown turned counter-clockwise by this (FFmpeg convention)
    pixel_format: str


@dataclass(frozen=True)
class AudioInfo:
    sample_rate_hz: int
    channels: int
    layout: str


@dataclass(frozen=True)
class StreamInfo:
    index: int
    kind: str  # "video", "audio", "subtitle", "data", "attachment"
    codec: str
    duration_s: float | None  # from the stream header when it has one
    title: str | None
    language: str | None
    video: VideoInfo | None = None
    audio: AudioInfo | None = None


@dataclass(frozen=True)
class MediaInfo:
    path: str
    format_name: str
    duration_s: float
    size_bytes: int
    start_time_s: float  # container start (MPEG-TS often starts at 1.4 s)
    streams: tuple[StreamInfo, ...]
    video_index: int | None  # the stream frames are decoded from

    @property
    def has_video(self) -> bool:
        return self.video_index is not None

    @property
    def video(self) -> VideoInfo:
        """The main video stream's facts (probe refuses files without one)."""
        for s in self.streams:
            if s.index == self.video_index and s.video is not None:
                return s.video
        raise InvalidInput(f"{self.path}: no video stream")

    @property
    def audio_streams(self) -> tuple[StreamInfo, ...]:
        return tuple(s for s in self.streams if s.kind == "audio")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: Fractions become "num/den" strings, plus a float `frame_rate_fps`."""
        out = asdict(self)
        out["has_video"] = self.has_video
        for s in out["streams"]:
            v = s.get("video")
            if v is not None:
                rate: Fraction = v["frame_rate"]
                v["frame_rate"] = f"{rate.numerator}/{rate.denominator}"
                v["frame_rate_fps"] = float(rate)
        return out


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Facts about a media file with at least one decodable video stream of positive duration."""
    p = os.fspath(path)
    with open_input(p) as container:
        try:
            main = video_stream(container, p)
            video = _probe_video(container, main, p)
            streams = tuple(_stream_info(s, video if s.index == main.index else None) for s in container.streams)
            duration_s = _duration_s(container, main)
        except av.FFmpegError as exc:
            raise InvalidInput(f"{p}: unreadable media ({describe_av_error(exc)})") from exc
        if duration_s <= 0:
            raise InvalidInput(f"{p}: zero duration")
        start_s = container.start_time / av.time_base if container.start_time is not None else 0.0
        info = MediaInfo(
            path=p,
            format_name=container.format.name,
            duration_s=duration_s,
            size_bytes=os.path.getsize(p),
            start_time_s=float(start_s),
            streams=streams,
            video_index=main.index,
        )
    log.debug("probed %s: %s s, %s streams", p, info.duration_s, len(info.streams))
    return info


def _duration_s(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    if stream.duration is not None and stream.duration > 0 and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return float(scanned_duration_s(container.name, stream.index))


def _probe_video(container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: str) -> VideoInfo:
    pts: list[int] = []
    first: av.VideoFrame | None = None
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        if packet.pts is not None and len(pts) < CFR_CHECK_PACKETS:
            pts.append(packet.pts)
        if first is None:
            try:
                for frame in packet.decode():
                    first = frame
                    break
            except av.FFmpegError as exc:
                raise InvalidInput(f"{path}: video stream {stream.index} does not decode ({describe_av_error(exc)})") from exc
        if first is not None and len(pts) >= CFR_CHECK_PACKETS:
            break
    if first is None:
        try:
            for frame in stream.codec_context.decode(None):  # flush: decoders with delay
                first = frame
                break
        except av.FFmpegError as exc:
            raise InvalidInput(f"{path}: video stream {stream.index} does not decode ({describe_av_error(exc)})") from exc
    if first is None:
        raise InvalidInput(f"{path}: video stream {stream.index} has no decodable frames")
    rotation = upright_rotation_ccw_deg(first)
    width, height = first.width, first.height
    display = (height, width) if rotation in (90, 270) else (width, height)
    cfr = is_constant_spacing(pts)
    rate = _frame_rate(stream, cfr)
    pix_fmt = first.format.name
    return VideoInfo(width, height, display[0], display[1], rate, cfr, rotation, pix_fmt)


def is_constant_spacing(pts: list[int]) -> bool:
    """Whether sorted presentation timestamps are evenly spaced (±1 tick of rounding, ±0.5 %)."""
    ordered = sorted(set(pts))
    if len(ordered) < 3:
        return True
    steps = [b - a for a, b in zip(ordered[:-1], ordered[1:])]
    median = sorted(steps)[len(steps) // 2]
    tolerance = max(1, median // 200)
    return max(steps) - min(steps) <= tolerance


def _frame_rate(stream: av.video.stream.VideoStream, constant: bool) -> Fraction:
    order = ("guessed_rate", "average_rate", "base_rate") if constant else ("average_rate", "guessed_rate", "base_rate")
    for name in order:
        rate = getattr(stream, name, None)
        if rate is not None and rate > 0:
            return Fraction(rate)
    return Fraction(0)


def _stream_info(stream: av.stream.Stream, video: VideoInfo | None) -> StreamInfo:
    duration_s = None
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        duration_s = float(stream.duration * stream.time_base)
    codec = stream.codec_context.name if stream.codec_context is not None else "unknown"
    metadata = dict(stream.metadata or {})
    audio = None
    if stream.type == "audio":
        ctx = stream.codec_context
        audio = AudioInfo(ctx.sample_rate, ctx.channels, ctx.layout.name)
    return StreamInfo(
        index=stream.index,
        kind=stream.type,
        codec=codec,
        duration_s=duration_s,
        title=metadata.get("title") or metadata.get("TITLE") or metadata.get("name"),  # mp4: "name"
        language=metadata.get("language"),
        video=video,
        audio=audio,
    )
