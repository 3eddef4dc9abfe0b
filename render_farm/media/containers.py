"""Which audio codecs an output container can hold, chosen by the file extension."""
from __future__ import annotations

import os
from dataclasses import dataclass

from render_farm.errors import InvalidInput


@dataclass(frozen=True)
class AudioTarget:
    format_name: str  # FFmpeg muxer
    default_codec: str
    allowed_codecs: tuple[str, ...]
    max_audio_tracks: int | None = None  # None: no limit


#: Extension → muxer, default audio codec for a new track, codecs the muxer accepts.
AUDIO_TARGETS: dict[str, AudioTarget] = {
    ".mp4": AudioTarget("mp4", "aac", ("aac", "ac3", "flac", "libopus", "mp2")),
    ".m4v": AudioTarget("mp4", "aac", ("aac", "ac3")),
    ".mov": AudioTarget("mov", "aac", ("aac", "ac3", "pcm_s16le", "pcm_s24le")),
    ".mkv": AudioTarget("matroska", "flac", ("flac", "aac", "libopus", "ac3", "mp2", "pcm_s16le", "pcm_s24le")),
    ".webm": AudioTarget("webm", "libopus", ("libopus",)),
    ".avi": AudioTarget("avi", "pcm_s16le", ("pcm_s16le", "mp2", "ac3")),
    ".mpg": AudioTarget("mpeg", "mp2", ("mp2", "ac3")),
    ".mpeg": AudioTarget("mpeg", "mp2", ("mp2", "ac3")),
    ".ts": AudioTarget("mpegts", "mp2", ("mp2", "ac3", "aac")),
    ".ogv": AudioTarget("ogg", "libopus", ("libopus", "flac")),
    ".ogg": AudioTarget("ogg", "libopus", ("libopus", "flac")),
    ".flv": AudioTarget("flv", "aac", ("aac",), max_audio_tracks=1),
}

#: Extensions of outputs that hold pictures only.
VIDEO_ONLY = frozenset({".gif", ".apng", ".webp", ".png", ".jpg", ".jpeg", ".h264", ".264", ".h265", ".hevc",
                        ".m2v", ".ivf", ".y4m", ".yuv", ".mjpeg", ".mjpg"})


def audio_target(path: str | os.PathLike[str], codec: str | None) -> tuple[AudioTarget, str]:
    """The muxer for path and the audio codec to use; InvalidInput when it cannot be done."""
    p = os.fspath(path)
    ext = os.path.splitext(p)[1].lower()
    if ext in VIDEO_ONLY:
        raise InvalidInput(f"{p}: a {ext} file cannot hold an audio track")
    target = AUDIO_TARGETS.get(ext)
    if target is None:
        known = " ".join(sorted(AUDIO_TARGETS))
        raise InvalidInput(f"{p}: unknown output container {ext or '(no extension)'} (known: {known})")
    chosen = codec or target.default_codec
    if chosen not in target.allowed_codecs:
        raise InvalidInput(
            f"{p}: a {ext} file cannot take {chosen} audio (allowed: {', '.join(target.allowed_codecs)})"
        )
    return target, chosen
