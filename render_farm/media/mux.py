"""Put a new audio track into a copy of a video: every input stream copied packet for packet.

`mux_audio` writes dst with all streams of src (video packets byte-identical, existing audio and
subtitles kept; data/attachment streams the muxer refuses are dropped with a warning) plus a new
stereo 48 kHz track titled `title`, encoded with the container's default codec (see
`containers.AUDIO_TARGETS`) or the one asked for. The new track's first sample sits at the video
stream's first timestamp (time zero of `frames.iter_frames`). Packets are interleaved by time as
they are written, and the audio (an array, or a `pcm.PcmFile` on disk) is read a block at a time,
so memory does not grow with the length of the video.

Output is deterministic: muxer `fflags=+bitexact`, encoder `flags=+bitexact`, one thread, no
wall-clock metadata; the same inputs give the same bytes. dst is written under a temporary name
in its directory and renamed into place. Codecs that need whole frames (mp2, ac3) get their last
frame padded with silence (under 1,536 samples).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import av
import numpy as np

from render_farm.errors import InvalidInput
from render_farm.media.atomic import atomic_path
from render_farm.media.containers import audio_target
from render_farm.media.inputs import describe_av_error, open_input, video_stream
from render_farm.media.pcm import AudioLike, BlockAudio, as_block_audio, check_finite

log = logging.getLogger(__name__)

MUX_SAMPLE_RATE_HZ = 48_000
_COPIED_KINDS = ("video", "audio", "subtitle")  # must copy; other kinds are dropped if refused
#: Per-stream statistics a muxer computes (Matroska): never copied, the output gets its own.
_STALE_TAGS = frozenset({"DURATION", "NUMBER_OF_FRAMES", "NUMBER_OF_BYTES", "BPS", "_STATISTICS_WRITING_APP",
                         "_STATISTICS_WRITING_DATE_UTC", "_STATISTICS_TAGS"})
_PREFERRED_FORMATS = ("fltp", "flt", "s16", "s16p", "s32", "s32p")
#: Encoder frames read from the audio source at a time.
_FRAMES_PER_READ = 64


@dataclass(frozen=True)
class MuxedFile:
    path: str
    audio_codec: str
    audio_stream_index: int  # index of the new track in dst
    num_samples: int


def mux_audio(
    src_video: str | os.PathLike[str],
    audio: AudioLike,
    dst: str | os.PathLike[str],
    title: str = "foley",
    codec: str | None = None,
    sample_rate_hz: int = MUX_SAMPLE_RATE_HZ,
) -> MuxedFile:
    """Write dst = src_video's streams + `audio` ((2, n) float at 48 kHz: an array or a PcmFile) as
    a new track; samples are clipped to [-1, 1]."""
    src, out_path = os.fspath(src_video), os.fspath(dst)
    target, codec_name = audio_target(out_path, codec)
    samples = _checked_audio(audio, sample_rate_hz, out_path)
    if os.path.exists(src) and os.path.exists(out_path) and os.path.samefile(src, out_path):
        raise InvalidInput(f"{out_path}: would overwrite the input video")
    with open_input(src) as container:
        video = video_stream(container, src)
        if target.max_audio_tracks is not None:
            existing = sum(1 for s in container.streams if s.type == "audio")
            if existing >= target.max_audio_tracks:
                raise InvalidInput(
                    f"{out_path}: this container holds {target.max_audio_tracks} audio track(s) and {src} has {existing} already"
                )
        start_samples = 0
        if video.start_time is not None and video.time_base is not None:
            start_samples = round(Fraction(video.start_time) * video.time_base * sample_rate_hz)
        with atomic_path(out_path) as tmp:
            try:
                written = _write(container, samples, tmp, target.format_name, codec_name, title, start_samples, sample_rate_hz)
                index = _new_track_index(tmp, written, sample_rate_hz)
            except (av.FFmpegError, ValueError) as exc:
                raise InvalidInput(f"{out_path}: cannot mux {src} with {codec_name} audio ({describe_av_error(exc)})") from exc
    log.info("muxed %s samples of %s audio into %s (from %s)", samples.num_samples, codec_name, out_path, src)
    return MuxedFile(out_path, codec_name, index, samples.num_samples)


def _new_track_index(path: str, written: int, rate: int) -> int:
    """Index of the new track when the file is read back (FLV orders streams by first packet)."""
    with av.open(path) as c:
        def is_new(s: av.stream.Stream) -> bool:
            return s.type == "audio" and s.codec_context.sample_rate == rate and s.codec_context.channels == 2

        if written < len(c.streams) and is_new(c.streams[written]):
            return written
        candidates = [s.index for s in c.streams if is_new(s)]
        return candidates[-1] if candidates else written


def _checked_audio(audio: AudioLike, sample_rate_hz: int, where: str) -> BlockAudio:
    if sample_rate_hz != MUX_SAMPLE_RATE_HZ:
        raise InvalidInput(f"{where}: the foley track is muxed at {MUX_SAMPLE_RATE_HZ} Hz, got {sample_rate_hz} Hz")
    a = as_block_audio(audio, where)
    if a.channels != 2 or a.num_samples == 0:
        raise InvalidInput(f"{where}: audio must have shape (2, n) with n > 0, got {(a.channels, a.num_samples)}")
    check_finite(a, where)
    return a


def _write(
    container: av.container.InputContainer,
    samples: BlockAudio,
    tmp: str,
    format_name: str,
    codec_name: str,
    title: str,
    start_samples: int,
    rate: int,
) -> int:
    out = av.open(tmp, mode="w", format=format_name, container_options={"fflags": "+bitexact"})
    try:
        out.metadata.update({k: v for k, v in container.metadata.items() if k.lower() not in ("encoder", "creation_time")})
        mapping: dict[int, av.stream.Stream] = {}
        for s in container.streams:
            try:
                copied = out.add_stream_from_template(s)
            except (ValueError, TypeError, av.FFmpegError) as exc:
                if s.type in _COPIED_KINDS:
                    raise
                log.warning("dropping %s stream %s: %s", s.type, s.index, exc)
                continue
            metadata = {k: v for k, v in (s.metadata or {}).items() if k.upper() not in _STALE_TAGS}
            if "title" not in metadata and "name" in metadata:  # mp4 reports a track title as "name"
                metadata["title"] = metadata.pop("name")
            copied.metadata.update(metadata)
            mapping[s.index] = copied
        new = out.add_stream(codec_name, rate=rate)
        ctx = new.codec_context
        ctx.layout = "stereo"
        ctx.format = _sample_format(new)
        ctx.time_base = Fraction(1, rate)
        ctx.thread_count = 1
        ctx.options = {"flags": "+bitexact"}
        new.metadata["title"] = title
        if format_name in ("mp4", "mov"):
            new.metadata["handler_name"] = title  # mp4/mov read the title back from the track name
        out.start_encoding()
        _interleave(container, out, mapping, _encode(new, samples, start_samples, rate))
        return new.index
    finally:
        out.close()


def _sample_format(stream: av.audio.stream.AudioStream) -> str:
    formats = [f.name for f in (stream.codec_context.codec.audio_formats or ())]
    for name in _PREFERRED_FORMATS:
        if name in formats:
            return name
    return formats[0] if formats else "fltp"


def _encode(stream: av.audio.stream.AudioStream, samples: BlockAudio, start: int, rate: int) -> Iterator[av.Packet]:
    ctx = stream.codec_context
    caps = ctx.codec.capabilities
    whole_frames = not (caps & av.codec.codec.Capabilities.small_last_frame or caps & av.codec.codec.Capabilities.variable_frame_size)
    frame_size = ctx.frame_size or 4096
    resampler = av.AudioResampler(format=ctx.format.name, layout="stereo", rate=rate)
    n = samples.num_samples
    read_size = frame_size * _FRAMES_PER_READ
    for base in range(0, n, read_size):
        block = np.clip(np.asarray(samples.read(base, read_size), dtype=np.float32), -1.0, 1.0)
        for offset in range(0, block.shape[1], frame_size):
            chunk = block[:, offset : offset + frame_size]
            if whole_frames and chunk.shape[1] < frame_size:
                chunk = np.pad(chunk, ((0, 0), (0, frame_size - chunk.shape[1])))
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
            frame.sample_rate = rate
            frame.pts = start + base + offset
            frame.time_base = Fraction(1, rate)
            for converted in resampler.resample(frame):
                yield from stream.encode(converted)
    for converted in resampler.resample(None):
        yield from stream.encode(converted)
    yield from stream.encode(None)


def _packet_time(packet: av.Packet) -> Fraction | None:
    ts = packet.dts if packet.dts is not None else packet.pts
    if ts is None or packet.time_base is None:
        return None
    return Fraction(ts) * packet.time_base


def _interleave(
    container: av.container.InputContainer,
    out: av.container.OutputContainer,
    mapping: dict[int, av.stream.Stream],
    audio: Iterator[av.Packet],
) -> None:
    """Mux copied packets in file order, slipping each new audio packet in before later ones."""
    pending = next(audio, None)
    for packet in container.demux([container.streams[i] for i in mapping]):
        if packet.size == 0:
            continue  # the demuxer's flush packets (dts None, no data)
        t = _packet_time(packet)
        while pending is not None and t is not None and _packet_time(pending) is not None and _packet_time(pending) <= t:
            out.mux(pending)
            pending = next(audio, None)
        packet.stream = mapping[packet.stream.index]
        out.mux(packet)
    while pending is not None:
        out.mux(pending)
        pending = next(audio, None)
