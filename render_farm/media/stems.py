"""Audio stems on disk (WAV or FLAC via PyAV), and reading audio back as float32 arrays."""
from __future__ import annotations

import logging
import os
from fractions import Fraction

import av
import numpy as np

from render_farm.errors import InvalidInput
from render_farm.media.atomic import atomic_path
from render_farm.media.inputs import describe_av_error, open_input
from render_farm.media.pcm import AudioLike, as_block_audio, check_finite

log = logging.getLogger(__name__)

#: (format, bits) → (muxer, codec, sample format)
_STEM_CODECS = {
    ("wav", 16): ("wav", "pcm_s16le", "s16"),
    ("wav", 24): ("wav", "pcm_s24le", "s32"),
    ("flac", 16): ("flac", "flac", "s16"),
    ("flac", 24): ("flac", "flac", "s32"),
}
_FRAME_SAMPLES = 4096


def write_stem(
    path: str | os.PathLike[str], audio: AudioLike, sample_rate_hz: int, fmt: str = "wav", bits: int = 24
) -> str:
    """Write (channels, n) float audio in [-1, 1] (an array or a `pcm.PcmFile`, read a block at a
    time) as a WAV or FLAC file, atomically. Returns path."""
    p = os.fspath(path)
    key = (fmt, bits)
    if key not in _STEM_CODECS:
        raise InvalidInput(f"{p}: stems are wav or flac at 16 or 24 bits, got {fmt} at {bits}")
    a = as_block_audio(audio, p)
    if a.channels not in (1, 2) or a.num_samples == 0:
        raise InvalidInput(f"{p}: stem audio must have shape (1 or 2, n) with n > 0, got {(a.channels, a.num_samples)}")
    check_finite(a, f"{p}: stem")
    if sample_rate_hz <= 0:
        raise InvalidInput(f"{p}: sample rate must be positive, got {sample_rate_hz}")
    muxer, codec, sample_fmt = _STEM_CODECS[key]
    layout = "mono" if a.channels == 1 else "stereo"
    with atomic_path(p) as tmp:
        out = av.open(tmp, mode="w", format=muxer, container_options={"fflags": "+bitexact"})
        try:
            stream = out.add_stream(codec, rate=sample_rate_hz)
            stream.codec_context.layout = layout
            stream.codec_context.format = sample_fmt
            stream.codec_context.options = {"flags": "+bitexact"}
            for offset in range(0, a.num_samples, _FRAME_SAMPLES):
                ints = _to_ints(np.clip(a.read(offset, _FRAME_SAMPLES).astype(np.float64), -1.0, 1.0), bits)
                chunk = np.ascontiguousarray(ints.T).reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(chunk, format=sample_fmt, layout=layout)
                frame.sample_rate = sample_rate_hz
                frame.pts = offset
                frame.time_base = Fraction(1, sample_rate_hz)
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        except av.FFmpegError as exc:
            raise InvalidInput(f"{p}: cannot write {fmt} stem ({describe_av_error(exc)})") from exc
        finally:
            out.close()
    log.info("wrote %s stem %s: %s channels, %s samples at %s Hz", fmt, p, a.channels, a.num_samples, sample_rate_hz)
    return p


def _to_ints(audio: np.ndarray, bits: int) -> np.ndarray:
    """Float in [-1, 1] → integers of `bits`, left-aligned in int32 for 24-bit (FFmpeg's s32)."""
    scale = 2 ** (bits - 1)
    ints = np.clip(np.round(audio * scale), -scale, scale - 1).astype(np.int64)
    if bits == 16:
        return ints.astype(np.int16)
    return (ints << 8).astype(np.int32)


def read_audio(path: str | os.PathLike[str], sample_rate_hz: int | None = None, stream_index: int | None = None) -> tuple[np.ndarray, int]:
    """Decode an audio stream (the first, or `stream_index`) as (channels, n) float32, resampled
    to sample_rate_hz when given. Returns (audio, sample_rate_hz)."""
    p = os.fspath(path)
    with open_input(p) as container:
        streams = [s for s in container.streams if s.type == "audio"]
        if stream_index is not None:
            streams = [s for s in streams if s.index == stream_index]
        if not streams:
            raise InvalidInput(f"{p}: no audio stream" + (f" with index {stream_index}" if stream_index is not None else ""))
        stream = streams[0]
        rate = sample_rate_hz or stream.codec_context.sample_rate
        channels = stream.codec_context.channels
        resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout, rate=rate)
        parts: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                frame.pts = None  # decode order is time order; let the resampler run continuously
                parts.extend(f.to_ndarray() for f in resampler.resample(frame))
            parts.extend(f.to_ndarray() for f in resampler.resample(None))
        except av.FFmpegError as exc:
            raise InvalidInput(f"{p}: cannot decode audio ({describe_av_error(exc)})") from exc
    if not parts:
        return np.zeros((channels, 0), dtype=np.float32), rate
    return np.concatenate(parts, axis=1).astype(np.float32, copy=False), rate
