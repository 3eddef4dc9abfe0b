"""Build small test videos with PyAV at test time: known frame times, shot cuts and frame numbers.

Every frame shows (upright, as a viewer sees it):
- a background colour per shot (shots start at the frames nearest `cuts_s`), from a palette of
  colours far apart, so shot cuts are hard colour changes;
- a moving grey square (motion that must not look like a cut);
- its frame number in binary in the top eighth: 8 cells, left = bit 7, white = 1, black = 0.
  `frame_number(rgb)` reads it back from a decoded (even scaled or lossy) frame.

With `rotation_ccw_deg`, pixels are stored turned clockwise and the display matrix says "turn
counter-clockwise by rotation_ccw_deg", so a correct reader shows the upright picture.
With `vfr=True` frame durations cycle through 1/30, 1/15, 1/20, 1/30, 1/10 s.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import av
import numpy as np

PALETTE = np.array(
    [[200, 30, 30], [30, 170, 40], [40, 60, 210], [230, 210, 40], [160, 40, 190], [30, 200, 200], [250, 140, 20]],
    dtype=np.uint8,
)
VFR_DURATIONS_S = (Fraction(1, 30), Fraction(1, 15), Fraction(1, 20), Fraction(1, 30), Fraction(1, 10))

DEFAULT_VIDEO_CODEC = {
    ".mp4": "libx264", ".mov": "libx264", ".m4v": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9",
    ".avi": "mpeg4", ".mpg": "mpeg2video", ".mpeg": "mpeg2video", ".ts": "libx264", ".ogv": "libvpx",
    ".flv": "flv",
}
DEFAULT_AUDIO_CODEC = {
    ".mp4": "aac", ".mov": "aac", ".m4v": "aac", ".mkv": "aac", ".webm": "libopus", ".avi": "mp2",
    ".mpg": "mp2", ".mpeg": "mp2", ".ts": "mp2", ".ogv": "libopus", ".flv": "aac",
}
FORMAT_OF = {".mkv": "matroska", ".ogv": "ogg", ".mpg": "mpeg", ".mpeg": "mpeg", ".ts": "mpegts", ".m4v": "mp4"}


@dataclass(frozen=True)
class MadeVideo:
    path: str
    frame_times_s: tuple[Fraction, ...]  # presentation time of each stored frame, from 0
    cut_frames: tuple[int, ...]  # frame numbers where a new shot starts
    display_size: tuple[int, int]  # (width, height) as a viewer sees it
    duration_s: Fraction  # end of the last frame
    audio_title: str | None

    def frame_on_screen(self, t_s: Fraction) -> int:
        """Number of the last frame whose time is <= t_s (frame 0 before the first)."""
        idx = 0
        for i, ft in enumerate(self.frame_times_s):
            if ft <= t_s:
                idx = i
            else:
                break
        return idx


def frame_times(duration_s: float, fps: Fraction, vfr: bool) -> list[Fraction]:
    end = Fraction(duration_s).limit_denominator(10_000)
    times: list[Fraction] = []
    t = Fraction(0)
    i = 0
    while t < end:
        times.append(t)
        t += VFR_DURATIONS_S[i % len(VFR_DURATIONS_S)] if vfr else 1 / fps
        i += 1
    return times


def draw_frame(number: int, t_s: Fraction, shot: int, size: tuple[int, int]) -> np.ndarray:
    """The upright picture of frame `number` (H×W×3 uint8)."""
    w, h = size
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[:] = PALETTE[shot % len(PALETTE)]
    side = max(4, min(w, h) // 5)
    x = int((float(t_s) * 0.4 * w) % max(1, w - side))
    y0 = h // 8 + (h - h // 8 - side) // 2
    img[y0 : y0 + side, x : x + side] = 128
    stripe = max(2, h // 8)
    for bit in range(8):
        x0, x1 = bit * w // 8, (bit + 1) * w // 8
        on = (number >> (7 - bit)) & 1
        img[:stripe, x0:x1] = 255 if on else 0
    return img


def frame_number(rgb: np.ndarray) -> int:
    """Read back the frame number drawn by `draw_frame` (mod 256) from an upright RGB frame."""
    h, w = rgb.shape[:2]
    stripe = max(2, h // 8)
    value = 0
    for bit in range(8):
        x0, x1 = bit * w // 8, (bit + 1) * w // 8
        cell = rgb[stripe // 4 : max(stripe // 4 + 1, 3 * stripe // 4), x0 + (x1 - x0) // 4 : x1 - (x1 - x0) // 4]
        value = value * 2 + int(cell.mean() > 127)
    return value


def make_video(
    path: str | os.PathLike[str],
    duration_s: float = 2.0,
    fps: float | Fraction = 24,
    size: tuple[int, int] = (160, 120),
    codec: str | None = None,
    container: str | None = None,
    cuts_s: Sequence[float] = (),
    vfr: bool = False,
    rotation_ccw_deg: int | None = None,
    audio: bool = False,
    pix_fmt: str | None = None,
    gop_frames: int | None = None,
) -> MadeVideo:
    """Write a test video; see the module docstring for what it shows. Returns its ground truth."""
    p = os.fspath(path)
    ext = os.path.splitext(p)[1].lower()
    codec = codec or DEFAULT_VIDEO_CODEC[ext]
    fmt = container or FORMAT_OF.get(ext)
    rate = Fraction(fps).limit_denominator(100_000) if not isinstance(fps, Fraction) else fps
    times = frame_times(duration_s, rate, vfr)
    cut_frames = sorted({min(range(len(times)), key=lambda i: abs(times[i] - Fraction(c).limit_denominator(10_000))) for c in cuts_s})
    rotation = (rotation_ccw_deg or 0) % 360
    w, h = size
    stored_w, stored_h = (h, w) if rotation in (90, 270) else (w, h)
    time_base = Fraction(1, 600) if vfr else 1 / rate
    out = av.open(p, mode="w", format=fmt)
    try:
        stream = out.add_stream(codec, rate=None if vfr else rate)
        stream.width, stream.height = stored_w, stored_h
        stream.pix_fmt = pix_fmt or ("yuv420p" if codec not in ("mjpeg",) else "yuvj420p")
        stream.codec_context.time_base = time_base
        stream.time_base = time_base
        stream.codec_context.gop_size = gop_frames or max(1, round(float(rate)))
        if codec == "libx264":
            stream.codec_context.options = {"preset": "ultrafast", "bf": "2", "threads": "1"}
        elif codec in ("libvpx", "libvpx-vp9"):
            stream.codec_context.options = {"deadline": "realtime", "cpu-used": "8", "threads": "1"}
        if rotation:
            stream.set_display_rotation(rotation)
        audio_stream = None
        title = None
        if audio:
            audio_stream = out.add_stream(DEFAULT_AUDIO_CODEC[ext], rate=48_000 if ext in (".webm", ".ogv") else 44_100)
            audio_stream.layout = "stereo"
            title = "dialogue"
            audio_stream.metadata["title"] = title
        shot = 0
        for n, t in enumerate(times):
            while shot < len(cut_frames) and n >= cut_frames[shot]:
                shot += 1
            img = draw_frame(n, t, shot, size)
            if rotation:
                img = np.ascontiguousarray(np.rot90(img, k=-rotation // 90))
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = int(t / time_base)
            frame.time_base = time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        end = times[-1] + (VFR_DURATIONS_S[(len(times) - 1) % len(VFR_DURATIONS_S)] if vfr else 1 / rate)
        if audio_stream is not None:
            _write_tone(out, audio_stream, float(end))
    finally:
        out.close()
    return MadeVideo(p, tuple(times), tuple(cut_frames), (w, h), end, title)


def _write_tone(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, duration_s: float) -> None:
    rate = stream.codec_context.sample_rate
    n = int(round(duration_s * rate))
    t = np.arange(n) / rate
    tone = (0.3 * np.sin(2 * math.pi * 440.0 * t)).astype(np.float32)
    stereo = np.stack([tone, tone])
    frame_size = stream.codec_context.frame_size or 1024
    fmt = stream.codec_context.format.name
    resampler = av.AudioResampler(format=fmt, layout="stereo", rate=rate)
    for start in range(0, n, frame_size):
        chunk = stereo[:, start : start + frame_size]
        if chunk.shape[1] < frame_size:
            chunk = np.pad(chunk, ((0, 0), (0, frame_size - chunk.shape[1])))
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
        frame.sample_rate = rate
        frame.pts = start
        for converted in resampler.resample(frame):
            for packet in stream.encode(converted):
                out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
