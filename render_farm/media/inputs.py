"""Opening media files for reading, with errors translated to the project's hierarchy."""
from __future__ import annotations

import contextlib
import logging
import os
from fractions import Fraction
from typing import Iterator

import av
import av.container

from render_farm.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)


def describe_av_error(exc: BaseException) -> str:
    """A short reason from an av/FFmpeg exception, without the file name FFmpeg repeats."""
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(reason).strip().rstrip(".").replace("\n", " ")


def check_readable(path: str | os.PathLike[str]) -> str:
    """The path as a string; NotFound if missing, InvalidInput if not a non-empty regular file."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise NotFound(f"{p}: no such file")
    if not os.path.isfile(p):
        raise InvalidInput(f"{p}: not a regular file")
    if os.path.getsize(p) == 0:
        raise InvalidInput(f"{p}: empty file")
    return p


@contextlib.contextmanager
def open_input(path: str | os.PathLike[str]) -> Iterator[av.container.InputContainer]:
    """Open a media file for reading; av errors on opening become InvalidInput."""
    p = check_readable(path)
    try:
        container = av.open(p, mode="r", metadata_errors="replace")
    except av.FFmpegError as exc:
        raise InvalidInput(f"{p}: not a readable media file ({describe_av_error(exc)})") from exc
    try:
        yield container
    finally:
        container.close()


def video_stream(container: av.container.InputContainer, path: str, index: int | None = None) -> av.video.stream.VideoStream:
    """The video stream with the given index, or the first one; InvalidInput if there is none."""
    videos = [s for s in container.streams if s.type == "video" and not _is_cover_art(s)]
    if index is not None:
        for s in videos:
            if s.index == index:
                return s
        raise InvalidInput(f"{path}: stream {index} is not a video stream")
    if not videos:
        raise InvalidInput(f"{path}: no video stream")
    return videos[0]


def _is_cover_art(stream: av.stream.Stream) -> bool:
    """Attached pictures (cover art in audio files) are not video to render against."""
    try:
        return bool(stream.disposition & av.stream.Disposition.attached_pic)
    except (AttributeError, TypeError):
        return False


def scanned_duration_s(path: str, stream_index: int) -> Fraction:
    """Duration of a stream from its packets, for files whose headers do not say (raw streams):
    end of the last timestamped packet minus the first, else packet count / frame rate.
    Demuxes a fresh container (raw streams cannot seek back); no decoding."""
    with open_input(path) as container:
        stream = container.streams[stream_index]
        first: int | None = None
        end: int | None = None
        count = 0
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            count += 1
            if packet.pts is not None:
                first = packet.pts if first is None else min(first, packet.pts)
                end = max(end if end is not None else packet.pts, packet.pts + (packet.duration or 0))
        if first is not None and end is not None and end > first and stream.time_base is not None:
            return Fraction(end - first) * stream.time_base
        rate = getattr(stream, "guessed_rate", None) or getattr(stream, "average_rate", None)
        return Fraction(count) / Fraction(rate) if rate else Fraction(0)


def upright_rotation_ccw_deg(frame: av.VideoFrame) -> int:
    """Counter-clockwise turn in {0, 90, 180, 270} that displays this decoded frame upright.

    From the frame's display-matrix side data (FFmpeg convention: the picture is shown rotated
    counter-clockwise by this angle); 0 without one. Flips are ignored.
    """
    try:
        ccw = frame.rotation
    except Exception as exc:  # noqa: BLE001 - side data is optional metadata
        log.debug("no rotation on frame: %s", exc)
        return 0
    return int(round((ccw or 0) / 90.0)) % 4 * 90
