"""Media I/O with PyAV: H.264 video out, audio tracks in, WAV files, an AAC round trip."""
from __future__ import annotations

import io
import wave
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_video(path: Path, frames: Iterable[np.ndarray], width_px: int, height_px: int, fps: Fraction,
                crf: int, preset: str = "veryfast") -> None:
    """H.264 (libx264, yuv420p, constant frame rate) with no audio stream."""
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = width_px, height_px, "yuv420p"
        st.codec_context.time_base = 1 / fps
        st.options = {"crf": str(crf), "preset": preset}
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            out.mux(st.encode(frame))
        out.mux(st.encode())


def probe_video(path: Path) -> dict:
    """fps (Fraction), width_px, height_px and num_frames (counted by decoding)."""
    with av.open(str(path)) as inp:
        st = inp.streams.video[0]
        n = sum(1 for _ in inp.decode(st))
        return {"fps": st.average_rate, "width_px": st.width, "height_px": st.height, "num_frames": n}


def write_wav(path: Path, audio: np.ndarray, sample_rate_hz: int) -> None:
    """16-bit PCM WAV of a (n, channels) float array in [-1, 1]."""
    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(sample_rate_hz)
        w.writeframes(pcm.tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())
        return pcm.astype(np.float32) / 32767, w.getframerate()


def read_audio(source: Path | io.BytesIO, sample_rate_hz: int = 48000) -> np.ndarray:
    """The first audio stream as (n, 2) float32 at sample_rate_hz, placed on the stream's timeline
    (samples before t = 0, e.g. an encoder's priming, are dropped)."""
    with av.open(source if isinstance(source, io.BytesIO) else str(source)) as inp:
        st = inp.streams.audio[0]
        rs = av.AudioResampler(format="fltp", layout="stereo", rate=sample_rate_hz)
        chunks, pos = [], None
        for frame in inp.decode(st):
            if pos is None:
                pos = round(float(frame.pts * frame.time_base) * sample_rate_hz) if frame.pts is not None else 0
            chunks += [f.to_ndarray() for f in rs.resample(frame)]
        chunks += [f.to_ndarray() for f in rs.resample(None)]
    audio = np.concatenate(chunks, axis=1).T if chunks else np.zeros((0, 2), np.float32)
    if pos and pos > 0:
        audio = np.concatenate([np.zeros((pos, 2), np.float32), audio])
    elif pos and pos < 0:
        audio = audio[-pos:]
    return audio.astype(np.float32)


def aac_roundtrip(audio: np.ndarray, sample_rate_hz: int, bitrate: int = 128_000) -> np.ndarray:
    """Encode (n, 2) audio to AAC in an in-memory MP4 and decode it back the same way outputs are read."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        st = out.add_stream("aac", rate=sample_rate_hz, layout="stereo")
        st.bit_rate = bitrate
        planar = np.ascontiguousarray(audio.T.astype(np.float32))
        for i in range(0, planar.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(planar[:, i:i + 1024], format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = sample_rate_hz, i
            out.mux(st.encode(frame))
        out.mux(st.encode(None))
    buf.seek(0)
    return read_audio(buf, sample_rate_hz)[: len(audio)]
